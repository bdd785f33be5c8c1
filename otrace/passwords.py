"""Passwords for ``lock``: only a salted hash is ever stored.

``encrypt_password`` makes ``salt:hexdigest`` with PBKDF2-HMAC-SHA256 (200,000 rounds) and a
random salt; ``verify_password`` checks a password against it.  Hashes made by the original
otrace (16 hex digits of HMAC-SHA256 keyed with the salt) still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ROUNDS = 200_000


def encrypt_password(password: str, salt: str | None = None) -> str:
    """Return ``salt:hexdigest`` for ``password`` (store this, never the password)."""
    if salt is None:
        salt = secrets.token_hex(8)
    if ":" in salt:
        raise ValueError("salt must not contain ':'")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), ROUNDS).hex()
    return f"{salt}:{digest}"


def verify_password(password: str, encrypted: str) -> bool:
    """True if ``password`` matches ``encrypted`` (a value from :func:`encrypt_password`)."""
    salt, sep, digest = encrypted.partition(":")
    if not sep or not digest:
        return False
    if len(digest) == 16:  # the original's format
        mine = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()[:16]
    else:
        mine = encrypt_password(password, salt).partition(":")[2]
    return hmac.compare_digest(mine, digest)
