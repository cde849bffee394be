"""``sescontacts serve --throttle RATE[:BURST]``: answer as SES does when a client calls too fast.

Real SES throttles non-sending actions at about one request per second with a 429 TooManyRequestsException
(``x-amzn-ErrorType`` header, JSON body, no Retry-After). The ses backend's pacer must cope with exactly
that, so the local server can be told to behave the same way; tests and ``make bench`` run against it.

An ASGI wrapper around the SES API app: a request over the rate is refused before any work is done (its
body is still read, so keep-alive connections stay in step). Requests within the rate are passed through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import TooManyRequests
from .codec import encode_error, new_request_id

THROTTLE_MESSAGE = "Too many requests."


def parse_throttle(spec: str) -> tuple[float, int]:
    """``RATE[:BURST]``: requests per second, and how many may come at once (default: max(1, RATE))."""
    rate_text, _, burst_text = spec.partition(":")
    try:
        rate = float(rate_text)
        burst = int(burst_text) if burst_text else max(1, int(rate))
    except ValueError:
        raise ValueError(f"--throttle expects RATE[:BURST], e.g. 1 or 50:5, not {spec!r}") from None
    if rate <= 0 or burst < 1:
        raise ValueError(f"--throttle rate must be > 0 and burst >= 1, not {spec!r}")
    return rate, burst


class TokenBucket:
    """Non-blocking token bucket: ``take`` says yes or no at once (a server refuses, it does not wait)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()
        self.allowed = 0
        self.refused = 0

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                self.allowed += 1
                return True
            self.refused += 1
            return False


class Throttle:
    """Wraps the SES API app; beyond ``rate`` requests per second answers 429 TooManyRequestsException."""

    def __init__(self, app: ASGIApp, spec: str) -> None:
        self.app = app
        rate, burst = parse_throttle(spec)
        self.bucket = TokenBucket(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.bucket.take():
            await self.app(scope, receive, send)
            return
        while True:  # drain the body so the connection can carry the client's retry
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        encoded = encode_error(new_request_id(), TooManyRequests(THROTTLE_MESSAGE))
        await send({"type": "http.response.start", "status": encoded.status, "headers": encoded.headers})
        await send({"type": "http.response.body", "body": encoded.body})
