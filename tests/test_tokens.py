"""Page tokens: opaque, signed, tied to their query; anything else is a BadRequest, never a crash."""

from __future__ import annotations

import base64

import pytest

from sescontacts.errors import BadRequest
from sescontacts.store.tokens import TokenCodec

CODEC = TokenCodec("s3cret")


def test_round_trip_and_url_safe() -> None:
    for position in ([], ["a@example.com"], [1700000000.123, "ünï+tag@exämple.com"], [None, 3]):
        token = CODEC.encode("scope", position)
        assert CODEC.decode("scope", token) == position
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_same_position_same_token_so_retries_are_idempotent() -> None:
    assert CODEC.encode("scope", ["x"]) == CODEC.encode("scope", ["x"])


def test_token_from_another_scope_is_refused() -> None:
    token = CODEC.encode("contacts:list:query-a", ["x"])
    with pytest.raises(BadRequest) as exc:
        CODEC.decode("contacts:list:query-b", token)
    assert exc.value.message == "The NextToken does not belong to this request's filter."
    assert exc.value.field == "NextToken"


def test_token_from_another_secret_is_refused() -> None:
    with pytest.raises(BadRequest) as exc:
        TokenCodec("other").decode("scope", CODEC.encode("scope", ["x"]))
    assert exc.value.message == "Provided NextToken is invalid"


def _forged(payload: bytes, signature: bytes) -> str:
    return base64.urlsafe_b64encode(payload + signature).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature bit flipped
        lambda t: ("A" if t[0] != "A" else "B") + t[1:],  # payload changed
        lambda t: t[:10],  # truncated
        lambda t: t + "AAAA",  # extended
        lambda t: "",
        lambda t: "x",
        lambda t: "not a token!",
        lambda t: "é" * 20,
        lambda t: "=" * 8,
        lambda t: _forged(b'{"s":"x","p":["a"]}', b"\0" * 12),  # plausible payload, made-up signature
        lambda t: _forged(b"\xff\xfe", b""),
    ],
)
def test_tampered_tokens_are_bad_request(mutate: object) -> None:
    token = CODEC.encode("scope", ["a@example.com"])
    with pytest.raises(BadRequest) as exc:
        CODEC.decode("scope", mutate(token))  # type: ignore[operator]
    assert exc.value.message == "Provided NextToken is invalid"
