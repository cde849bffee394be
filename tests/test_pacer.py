"""The pacer: token-bucket arithmetic on a fake clock, throttle retries, and one bucket per process."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from sescontacts.sesapi.throttle import TokenBucket
from sescontacts.sesapi.throttle import parse_throttle as parse_server_throttle
from sescontacts.store.ses.pacer import BOTO_CONFIG, Pacer, parse_throttle, shared_pacer


class FakeClock:
    """Time that only moves when someone sleeps: the pacer's waits become exact numbers."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def throttled() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TooManyRequestsException", "Message": "Too many requests."},
            "ResponseMetadata": {"HTTPStatusCode": 429},
        },
        "ListContacts",
    )


def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, 3, clock=clock, sleep=clock.sleep)
    waits = [pacer.acquire() for _ in range(7)]
    assert waits[:3] == [0, 0, 0]  # the burst goes at once
    assert waits[3:] == pytest.approx([0.5] * 4)  # then one every 1/rate seconds
    assert clock.now == pytest.approx(1002.0)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, 2, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        pacer.acquire()
    clock.now += 3600  # an hour idle saves 2 tokens, not 3600
    assert [pacer.acquire() for _ in range(4)] == pytest.approx([0, 0, 1, 1])


def test_throttle_is_retried_with_backoff_and_never_surfaces() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, 1, clock=clock, sleep=clock.sleep, base_backoff=0.5, max_backoff=4)
    answers: list[object] = [throttled(), throttled(), throttled(), "ok"]

    def operation() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert pacer.call(operation) == "ok"
    assert pacer.stats.throttled == 3 and pacer.stats.surfaced == 0 and pacer.stats.calls == 4
    assert clock.now > 1000.3  # it waited (at least 1/rate per retry) before asking again


def test_a_throttle_holds_back_every_caller() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, 5, clock=clock, sleep=clock.sleep)
    pacer._penalise(3.0)
    assert pacer.acquire() == pytest.approx(3.0)  # the next caller waits out the penalty, burst or not


def test_gives_up_only_after_the_throttle_budget() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, 1, clock=clock, sleep=clock.sleep, max_throttle_wait=5, max_backoff=1)

    def always_throttled() -> None:
        raise throttled()

    with pytest.raises(ClientError):
        pacer.call(always_throttled)
    assert pacer.stats.surfaced == 1
    assert clock.now - 1000 >= 5 - 1  # waited out the budget, less the backoff it then declined to wait


def test_other_errors_pass_through_at_once() -> None:
    pacer = Pacer(1000, 10)
    error = ClientError(
        {"Error": {"Code": "NotFoundException", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "Op"
    )

    def missing() -> None:
        raise error

    with pytest.raises(ClientError):
        pacer.call(missing)
    assert pacer.stats.calls == 1


def test_threads_share_one_rate() -> None:
    """Eight threads through one pacer at 200/s with burst 1: ~20 calls take ~0.1 s, not 8x faster."""
    import time

    pacer = Pacer(200.0, 1)
    start = time.monotonic()

    def worker() -> None:
        for _ in range(3):
            pacer.acquire()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 23 / 200 * 0.9


def test_shared_pacer_is_one_object_reconfigured_in_place() -> None:
    first = shared_pacer()
    again = shared_pacer(5.0, 3)
    assert again is first and (first.rate, first.burst) == (5.0, 3)
    shared_pacer(1.0, 2)


def test_botocore_retries_are_off() -> None:
    assert BOTO_CONFIG.retries["total_max_attempts"] == 1


@pytest.mark.parametrize(("spec", "expected"), [("1", (1.0, 1)), ("50:5", (50.0, 5)), ("0.5", (0.5, 1))])
def test_rate_specs(spec: str, expected: tuple[float, int]) -> None:
    assert parse_throttle(spec) == expected
    assert parse_server_throttle(spec) == expected


@pytest.mark.parametrize("spec", ["0", "-1", "x", "5:0"])
def test_bad_rate_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_server_throttle(spec)


def test_server_bucket_refuses_beyond_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.1
    assert bucket.take() is True and bucket.take() is False


def test_ses_errors_map_to_the_product_errors_with_ses_message() -> None:
    from sescontacts import errors
    from sescontacts.store.ses.client import map_client_error

    def client_error(code: str, status: int, message: str = "msg") -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    mapped = map_client_error(client_error("NotFoundException", 404, "List with name: x doesn't exist."))
    assert isinstance(mapped, errors.NotFound) and mapped.message == "List with name: x doesn't exist."
    assert isinstance(map_client_error(client_error("AlreadyExistsException", 400)), errors.AlreadyExists)
    assert isinstance(map_client_error(client_error("LimitExceededException", 400)), errors.LimitExceeded)
    denied = map_client_error(client_error("AccessDeniedException", 403, "not authorized"))
    assert isinstance(denied, errors.AuthError) and (denied.code, denied.status) == ("AccessDeniedException", 403)
    odd = map_client_error(client_error("AccountSuspendedException", 400))
    assert (odd.code, odd.status, odd.message) == ("AccountSuspendedException", 400, "msg")
