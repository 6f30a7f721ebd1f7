"""Tests for course.domain.security: salted argon2id hashes that verify, refuse wrong passwords and plain text."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from course.domain.security import hash_password, is_password_hash, needs_rehash, verify_password
from course.seed.generate import SEEDED_PASSWORD, SEEDED_PASSWORD_HASH


@pytest.fixture(scope="module")
def stored() -> str:
    # Each hash costs ~0.1 s by design: make one for the whole module.
    return hash_password("correct horse battery staple")


def test_hash_is_argon2id_and_never_contains_the_password(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert is_password_hash(stored)


def test_right_password_verifies_and_wrong_ones_do_not(stored: str) -> None:
    assert verify_password(stored, "correct horse battery staple") is True
    assert verify_password(stored, "correct horse battery stapl") is False
    assert verify_password(stored, "Correct horse battery staple") is False
    assert verify_password(stored, "") is False


def test_same_password_gives_different_hashes_that_both_verify(stored: str) -> None:
    again = hash_password("correct horse battery staple")
    assert again != stored
    # Only the salt and digest differ: the algorithm and parameters are the same.
    assert again.rsplit("$", 2)[0] == stored.rsplit("$", 2)[0]
    assert verify_password(again, "correct horse battery staple")


def test_unicode_passwords_round_trip() -> None:
    stored = hash_password("pässwörd ✓ 密码")
    assert verify_password(stored, "pässwörd ✓ 密码")
    assert not verify_password(stored, "passwort ✓ 密码")


@pytest.mark.parametrize("not_a_hash", ["hunter2", "", "$argon2id$v=19$broken", "$2b$12$abcdefghijklmnopqrstuv"])
def test_plain_text_or_broken_hash_never_verifies(not_a_hash: str) -> None:
    # A column that holds the password itself must not let the password in.
    assert verify_password(not_a_hash, not_a_hash) is False
    assert is_password_hash(not_a_hash) is False


def test_hash_password_refuses_bytes() -> None:
    with pytest.raises(TypeError, match="as str"):
        hash_password(b"secret")  # type: ignore[arg-type]


def test_seeded_hash_verifies_and_needs_no_rehash() -> None:
    assert verify_password(SEEDED_PASSWORD_HASH, SEEDED_PASSWORD)
    assert not verify_password(SEEDED_PASSWORD_HASH, "course-passw0rd")
    assert needs_rehash(SEEDED_PASSWORD_HASH) is False


def test_weaker_parameters_ask_for_a_rehash(stored: str) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert verify_password(weak, "pw")
    assert needs_rehash(weak) is True
    assert needs_rehash(stored) is False


def test_needs_rehash_refuses_what_is_not_a_hash() -> None:
    with pytest.raises(ValueError):
        needs_rehash("hunter2")
