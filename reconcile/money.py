"""Exact money: parsing decimal strings, storage units, and CSV formatting.

Amounts are `Decimal` from the wire to the report. In the database they are integer
nano-units (10^-9 of the currency unit), exact on every engine and summable in SQL.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANOS = 9
_NANO_SCALE = Decimal(10) ** NANOS

# ISO 4217 minor units for the currencies we expect; anything else defaults to 2.
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "KWD": 3, "BHD": 3, "JOD": 3, "TND": 3}


def parse_amount(text: object) -> Decimal:
    """A contract money value (a decimal *string*) as a Decimal; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"money must be a decimal string, got {type(text).__name__}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text[:40]!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text[:40]!r}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -NANOS and value != value.quantize(Decimal(1).scaleb(-NANOS)):
        raise ValueError(f"more than {NANOS} decimal places: {text[:40]!r}")
    return value


def parse_currency(text: object) -> str:
    if not isinstance(text, str) or len(text) != 3 or not text.isalpha() or not text.isupper():
        raise ValueError(f"not an ISO 4217 currency code: {str(text)[:20]!r}")
    return text


def to_nanos(amount: Decimal) -> int:
    return int((amount * _NANO_SCALE).to_integral_exact())


def from_nanos(nanos: int) -> Decimal:
    return (Decimal(nanos) / _NANO_SCALE).normalize()


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


def format_amount(amount: Decimal | None, currency: str | None) -> str:
    """Plain decimal with the currency's minor digits, more only when significant.

    "0.7500" USD -> "0.75"; "0.0075" USD -> "0.0075"; "3" USD -> "3.00"; None -> "".
    """
    if amount is None:
        return ""
    digits = minor_digits(currency or "")
    normalized = amount.normalize()
    exponent = normalized.as_tuple().exponent
    places = max(digits, -exponent if isinstance(exponent, int) else 0)
    return f"{amount.quantize(Decimal(1).scaleb(-places)):f}"
