"""Password hashing and the rules for new passwords and user names (accounts/passwords.py)."""

from __future__ import annotations

import pytest

from sescontacts.accounts import passwords
from sescontacts.errors import BadRequest

from .support.accounts import fast_kdf_fixture  # noqa: F401


def test_password_hash_is_slow_kdf_with_stored_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**15)
    encoded = passwords.hash_password("s3cret-password")
    scheme, n, r, p, _salt, _digest = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)
    assert passwords.verify_password("s3cret-password", encoded)
    assert not passwords.verify_password("s3cret-passworD", encoded)
    assert passwords.hash_password("s3cret-password") != encoded  # salted
    assert not passwords.verify_password("x", "garbage")


def test_a_hash_made_at_other_parameters_still_verifies() -> None:
    """The parameters travel with each hash, so raising SCRYPT_N later keeps every stored password working."""
    encoded = passwords.hash_password("an older password")  # at the fast_kdf strength, 2**10
    assert encoded.split("$")[1] == str(2**10)
    assert passwords.verify_password("an older password", encoded)


def test_new_password_and_user_name_rules() -> None:
    passwords.check_new_password("x" * passwords.MIN_PASSWORD_LENGTH)
    with pytest.raises(BadRequest, match="at least 8"):
        passwords.check_new_password("short")
    passwords.check_user_name("carol.o-k_1@example")
    for name in ("", "x" * 65, "with space", "semi;colon"):
        with pytest.raises(BadRequest):
            passwords.check_user_name(name)
