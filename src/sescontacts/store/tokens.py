"""Opaque, signed page tokens.

A token carries the keyset position (the last key of the page) and a fingerprint of the query it belongs
to, signed with a secret kept in the database, so a client can neither forge a position nor reuse a token
with another filter. Tampered, truncated or foreign tokens are a BadRequest, never a crash, worded as SES
words it for ListContacts and ListContactLists (probed: floci's SesListPaging).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from ..errors import BadRequest

_SIG_BYTES = 12
INVALID_TOKEN = "Provided NextToken is invalid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    @staticmethod
    def _scope_id(scope: str) -> str:
        return hashlib.sha256(scope.encode()).hexdigest()[:12]

    def encode(self, scope: str, position: list[object]) -> str:
        payload = orjson.dumps({"s": self._scope_id(scope), "p": position})
        return _b64(payload + self._sign(payload))

    def decode(self, scope: str, token: str) -> list[object]:
        """The position stored in ``token``; BadRequest if it was not made by us for this ``scope``."""
        try:
            raw = _unb64(token)
        except (ValueError, TypeError):
            raise BadRequest(INVALID_TOKEN, field="NextToken") from None
        payload, signature = raw[:-_SIG_BYTES], raw[-_SIG_BYTES:]
        if len(raw) <= _SIG_BYTES or not hmac.compare_digest(signature, self._sign(payload)):
            raise BadRequest(INVALID_TOKEN, field="NextToken")
        data = orjson.loads(payload)
        if data.get("s") != self._scope_id(scope):
            raise BadRequest("The NextToken does not belong to this request's filter.", field="NextToken")
        position = data.get("p")
        if not isinstance(position, list):
            raise BadRequest(INVALID_TOKEN, field="NextToken")
        return position
