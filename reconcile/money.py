"""Exact money: parsing decimal strings, storage units, and CSV formatting.

Amounts are `Decimal` from the wire to the report. In the database they are integer
nano-units (10^-9 of the currency unit), exact on every engine and summable in SQL.
"""

from __future__ import annotations

import re
import sys
from decimal import ROUND_HALF_UP, Decimal

NANOS = 9
_NANO_SCALE = Decimal(10) ** NANOS

# ISO 4217 minor units where they are not 2.
MINOR_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4,
}

# ISO 4217 active codes (list one, 2025) for money: funds and precious metals left out.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG
""".split())

# One record's amount stays under this (a phone number's fee, a call's cost, an invoice's total):
# a larger figure is a broken record, and sums of a whole store stay exact in a 64-bit column.
MAX_AMOUNT = Decimal(1_000_000_000)
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def parse_amount(text: object) -> Decimal:
    """A contract money value (a plain decimal *string*, e.g. "1.15") as a Decimal; ValueError otherwise.

    No exponent ("1e3"), sign "+", spaces, NaN or infinity; at most 9 decimal places;
    less than 10^9 in size. Prices repeat (a million calls, a few hundred prices): each distinct
    text is parsed once and its Decimal shared (immutable), up to `PARSED_MAX` texts.
    """
    if type(text) is str and (known := _PARSED.get(text)) is not None:
        return known
    if not isinstance(text, str):
        raise ValueError(f"money must be a decimal string, got {type(text).__name__}")
    if len(text) > 40 or not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal amount: {text[:40]!r}")
    value = Decimal(text)  # the pattern admits only what Decimal reads exactly
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -NANOS and value != value.quantize(Decimal(1).scaleb(-NANOS)):
        raise ValueError(f"more than {NANOS} decimal places: {text[:40]!r}")
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(f"{text[:40]} is beyond any plausible amount (at most {MAX_AMOUNT:,} in size)")
    if len(_PARSED) < PARSED_MAX:
        _PARSED[text] = value
    return value


PARSED_MAX = 10_000
_PARSED: dict[str, Decimal] = {}


def parse_currency(text: object) -> str:
    """An ISO 4217 currency code (`USD`); ValueError otherwise."""
    if not isinstance(text, str) or text not in ISO_4217:
        raise ValueError(f"not an ISO 4217 currency code: {str(text)[:20]!r}")
    return sys.intern(text)  # one string per code, not one per record (the codes are a closed set)


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


def grouped(plain: str) -> str:
    """A plain decimal with thousands separators: "-1234567.891" -> "-1,234,567.891"."""
    whole, dot, fraction = plain.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-') or 0):,}{dot}{fraction}"


def format_display(amount: Decimal | None, currency: str | None) -> str:
    """An amount for people, exact: the currency's minor digits (more when significant), grouped."""
    return "" if amount is None else grouped(format_amount(amount, currency))


def format_billed(amount: Decimal | None, currency: str | None) -> str:
    """An amount as billed: rounded half up to the currency's minor unit, grouped ("112.632" EUR -> "112.63")."""
    if amount is None:
        return ""
    unit = Decimal(1).scaleb(-minor_digits(currency or ""))
    return grouped(f"{amount.quantize(unit, rounding=ROUND_HALF_UP):f}")


def format_money(amount: Decimal, currency: str) -> str:
    """An amount for people with its code: the currency's minor digits (more when significant), thousands
    separated: "1,234.50 USD", "0.0075 USD", "1,200 JPY"."""
    return f"{format_display(amount, currency)} {currency}"
