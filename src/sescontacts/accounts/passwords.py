"""Password hashing and the rules for new passwords and user names.

Passwords are hashed with scrypt at parameters that cost ~100 ms and 32 MiB per guess, which is what makes a
stolen database expensive to attack; the parameters are stored with each hash so they can be raised later
without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from ..errors import BadRequest

MIN_PASSWORD_LENGTH = 8
# scrypt: N=2^15, r=8, p=1 needs 32 MiB and ~0.1 s; an offline attacker pays that per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` so verification knows the parameters each hash was made with."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password, verified against when the user does not exist, so that a login for an
# unknown name takes as long as one for a known name (no user enumeration by timing).
_DUMMY_HASH: str | None = None


def dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password")


def check_user_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise BadRequest("A user name is 1 to 64 letters, digits, dots, dashes, underscores or @.", field="username")
