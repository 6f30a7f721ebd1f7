"""Password hashing for the lessons and exercises: argon2id with a random salt, so no password is ever stored."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, 64 MiB, 3 passes), the same parameters
# the seed's hashes were made with, so seeded users verify without asking for a rehash.
_hasher = PasswordHasher()

ARGON2_PREFIX = "$argon2"


def hash_password(plain: str) -> str:
    """An argon2id hash of plain, with a fresh random salt: hashing the same password twice gives two hashes.

    The result holds the algorithm, its parameters, the salt and the digest, so it is all a column needs.
    """
    if not isinstance(plain, str):
        raise TypeError(f"hash_password needs the password as str, not {type(plain).__name__}")
    return _hasher.hash(plain)


def verify_password(password_hash: str, plain: str) -> bool:
    """Does plain match password_hash? False for a wrong password and for anything that is not an argon2 hash.

    argon2 compares the digests in constant time, so the time taken does not tell how close a guess came.
    """
    try:
        return _hasher.verify(password_hash, plain)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Was password_hash made with other parameters than today's? Rehash it at the next successful login.

    Raises argon2's InvalidHashError (a ValueError) when password_hash is not an argon2 hash at all.
    """
    return _hasher.check_needs_rehash(password_hash)


def is_password_hash(value: str) -> bool:
    """Does value look like an argon2 hash (rather than, say, a password stored as plain text)?"""
    if not isinstance(value, str) or not value.startswith(ARGON2_PREFIX):
        return False
    try:
        # Parsing checks the parameters and the salt/digest fields without verifying any password.
        needs_rehash(value)
    except InvalidHashError:
        return False
    return True
