"""Exact money: decimal text in, integer minor units (cents) inside, text out.

Money never passes through float: a TOML float is only accepted when its shortest
repr is itself plain decimal text with no more than the currency's minor digits.
"""

from __future__ import annotations

import re
from functools import lru_cache

from empower_cli.core.errors import InvalidInput

# ISO 4217 minor units for the currencies that differ from the usual 2.
_MINOR_DIGITS = {
    "BHD": 3, "CLP": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3,
    "LYD": 3, "OMR": 3, "PYG": 0, "TND": 3, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0,
}  # fmt: skip
# The largest amount, in minor units: 100,000,000.00 in a 2-digit currency, far beyond any
# real discretion. With it, no sum over the supported number of cases leaves SQLite's 64-bit
# integers (SUM raises "integer overflow" past 2**63 - 1): every report and budget stays exact.
MAX_MINOR_UNITS = 10**10
MAX_SUPPORTED_CASES = 900_000_000  # cases per database; MAX_MINOR_UNITS * this < 2**63


def minor_digits(currency: str) -> int:
    return _MINOR_DIGITS.get(currency.upper(), 2)


def parse_money(value: object, *, field: str, digits: int = 2) -> int:
    """Parse plain decimal text ("12", "12.5", "12.50") into minor units.

    No sign, exponent, thousands separator or more than `digits` decimals.
    """
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool):
        raise InvalidInput(field, f"expected an amount like 12.50, got {value!r}")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    else:
        raise InvalidInput(field, f"expected an amount like 12.50, got {type(value).__name__}")
    if not _amount_pattern(digits).fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        if digits:
            hint = f"an exact amount with at most {digits} decimals, like 12.50"
        else:
            hint = "a whole amount with no decimals"
        raise InvalidInput(field, f"expected {hint}, got {shown!r}")
    whole, _, frac = text.partition(".")
    cents = int(whole + frac.ljust(digits, "0"))  # "12.5" -> "1250" when digits is 2
    if cents > MAX_MINOR_UNITS:
        raise InvalidInput(field, f"at most {format_money(MAX_MINOR_UNITS, digits)}, got {text}")
    return cents


@lru_cache(maxsize=8)  # one per currency precision in use: in practice 0, 2 or 3
def _amount_pattern(digits: int) -> re.Pattern[str]:
    decimals = rf"(?:\.\d{{1,{digits}}})?" if digits else ""
    return re.compile(r"\d{1,16}" + decimals, flags=re.ASCII)


def format_money(cents: int, digits: int = 2) -> str:
    """Format minor units as plain decimal text: 1250 -> "12.50"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 10**digits)
    return f"{sign}{whole}.{str(frac).zfill(digits)}" if digits else f"{sign}{whole}"


def share(part: int, whole: int, places: int = 4) -> float | None:
    """A share as a plain number rounded for display; None when there is nothing to divide."""
    return round(part / whole, places) if whole else None
