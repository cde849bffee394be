"""One process-wide pacer in front of every call the ses backend makes to SES.

SES throttles its non-sending actions (CreateContact, ListContacts, ...) at one request per second per account
and region, shared by everything in the process: the console, an import, the mirror's sync. A token bucket per
caller would let them add up past the limit, so there is one bucket per process (:func:`shared_pacer`), and
every SES call goes through :meth:`Pacer.call`.

Throttles still happen (another program on the same account, a burst after idling), so :meth:`Pacer.call`
retries TooManyRequestsException with exponential backoff and full jitter, and drains the bucket so that
every thread backs off, not only the one that was told. botocore's own retries are switched off for the
client (:data:`BOTO_CONFIG`), so this is the one place that decides: a throttle never reaches the user.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError, ReadTimeoutError

T = TypeVar("T")

# botocore would retry a 429 up to 4 times on its own, invisible to the bucket; one attempt per call here.
BOTO_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)

THROTTLE_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
# Transient server-side failures worth a few retries: SES's ConcurrentModificationException is a 500.
TRANSIENT_CODES = frozenset({"ConcurrentModificationException", "InternalFailure", "ServiceUnavailable", "500", "503"})


def parse_throttle(spec: str) -> tuple[float, int]:
    """``RATE[:BURST]`` as used by ``--throttle`` and ``--ses-rate``: BURST defaults to max(1, RATE)."""
    rate_text, _, burst_text = spec.partition(":")
    rate = float(rate_text)
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {spec!r}")
    burst = int(burst_text) if burst_text else max(1, int(rate))
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {spec!r}")
    return rate, burst


@dataclass
class PacerStats:
    calls: int = 0  # SES requests sent, retries included
    throttled: int = 0  # TooManyRequestsException answers absorbed by a retry
    surfaced: int = 0  # throttles given up on (raised to the caller): the figure that must stay 0
    waited: float = 0.0  # seconds spent waiting for a token or a backoff


class Pacer:
    """A token bucket (``rate`` tokens per second, at most ``burst`` saved) plus throttle retries.

    Thread-safe. ``acquire`` reserves a slot under the lock and sleeps outside it, so waiting threads are
    served in arrival order without holding the lock.
    """

    def __init__(
        self,
        rate: float = 1.0,
        burst: int = 2,
        *,
        max_throttle_wait: float = 300.0,
        base_backoff: float = 0.5,
        max_backoff: float = 20.0,
        transient_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.max_throttle_wait = max_throttle_wait
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.transient_retries = transient_retries
        self.stats = PacerStats()
        self.configure(rate, burst)

    def configure(self, rate: float, burst: int) -> None:
        """Change the rate in place: callers keep their reference to the one pacer."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        with self._lock:
            self.rate = float(rate)
            self.burst = int(burst)
            # GCRA form of a token bucket: ``_tat`` is the theoretical arrival time of the next request; a
            # request may go when that is at most ``burst - 1`` intervals ahead of now.
            self._tat = self._clock()

    def acquire(self) -> float:
        """Wait for one token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            interval = 1.0 / self.rate
            tat = max(self._tat, now)
            wait = max(0.0, tat - now - (self.burst - 1) * interval)
            self._tat = tat + interval
            self.stats.calls += 1
            self.stats.waited += wait
        if wait > 0:
            self._sleep(wait)
        return wait

    def _penalise(self, seconds: float) -> None:
        """After a throttle, hold everyone back: nobody gets a token for ``seconds``, and the burst is spent."""
        with self._lock:
            now = self._clock()
            self._tat = max(self._tat, now + seconds + (self.burst - 1) / self.rate)

    def backoff(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)], at least 1/rate."""
        ceiling = min(self.max_backoff, self.base_backoff * (2**attempt))
        return max(1.0 / self.rate, random.uniform(0, ceiling))

    def call(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``func(*args, **kwargs)`` after a token, retrying throttles (and a few transient failures)."""
        throttle_attempt = 0
        transient_attempt = 0
        throttled_for = 0.0
        while True:
            self.acquire()
            try:
                return func(*args, **kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in THROTTLE_CODES or status == 429:
                    delay = self.backoff(throttle_attempt)
                    throttle_attempt += 1
                    throttled_for += delay
                    with self._lock:
                        self.stats.throttled += 1
                    if throttled_for > self.max_throttle_wait:
                        with self._lock:
                            self.stats.surfaced += 1
                        raise
                    self._penalise(delay)
                    continue
                if (code in TRANSIENT_CODES or status >= 500) and transient_attempt < self.transient_retries:
                    transient_attempt += 1
                    self._sleep(self.backoff(transient_attempt))
                    continue
                raise
            except (EndpointConnectionError, ConnectionError, ReadTimeoutError):
                if transient_attempt >= self.transient_retries:
                    raise
                transient_attempt += 1
                self._sleep(self.backoff(transient_attempt))


_shared: Pacer | None = None
_shared_lock = threading.Lock()


def shared_pacer(rate: float | None = None, burst: int | None = None) -> Pacer:
    """The process's pacer, created on first use; given a rate/burst, reconfigures it in place."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Pacer(rate or 1.0, burst or 2)
        elif rate is not None or burst is not None:
            _shared.configure(rate or _shared.rate, burst or _shared.burst)
        return _shared
