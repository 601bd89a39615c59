"""SHA-256 as hex text for the few small hashes one command makes (the policy file's bytes,
an event of the log): CPython's own implementation, without hashlib.

Importing hashlib loads OpenSSL's libcrypto first (~2.5 ms of every start, more than the
rest of a decision's hashing many times over); CPython ships its own SHA-256 as a built-in
module (`_sha2` from 3.12, `_sha256` before), the one hashlib itself falls back to. Bulk
hashing (an import, `audit verify`) uses hashlib's, faster per byte; the digests are the same.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _builtin_sha256() -> Callable[[bytes], Any]:
    for module in ("_sha2", "_sha256"):  # CPython 3.12+, then 3.10 and 3.11
        try:
            sha256: Callable[[bytes], Any] = importlib.import_module(module).sha256
            return sha256
        except (ImportError, AttributeError):
            continue
    import hashlib  # another Python, or a build without it: hashlib's, at its cost

    return hashlib.sha256


_sha256 = _builtin_sha256()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of DATA as 64 lowercase hex digits (what hashlib.sha256(...).hexdigest() gives)."""
    return str(_sha256(data).hexdigest())
