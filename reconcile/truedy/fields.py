"""Field access on raw JSON records: each conversion names the field that broke the contract."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from reconcile.clock import parse_date, parse_timestamp
from reconcile.money import parse_amount, parse_currency

E164 = re.compile(r"\+[1-9][0-9]{1,14}")  # always with fullmatch: `$` would let a trailing newline through


class RecordError(ValueError):
    """One field of one record breaks the contract."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


T = TypeVar("T")


class Fields:
    """Field access on one raw JSON object that names the field in every error."""

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def _get(self, name: str, required: bool = True) -> Any:
        if name not in self.raw:
            if required:
                raise RecordError(name, "missing")
            return None
        return self.raw[name]

    def convert(self, name: str, parse: Callable[[Any], T], *, nullable: bool = False, required: bool = True) -> T | None:
        value = self._get(name, required)
        if value is None:
            if nullable or not required:
                return None
            raise RecordError(name, "must not be null")
        try:
            return parse(value)
        except RecordError as exc:
            raise RecordError(f"{name}.{exc.field_name}", exc.reason) from None
        except (ValueError, TypeError) as exc:
            raise RecordError(name, str(exc)) from None

    def required(self, name: str, parse: Callable[[Any], T]) -> T:
        """A field that must be present and not null."""
        value = self.convert(name, parse)
        if value is None:
            raise RecordError(name, "must not be null")
        return value

    def text(self, name: str, *, nullable: bool = False, required: bool = True) -> str | None:
        return self.convert(name, as_text, nullable=nullable, required=required)

    def required_text(self, name: str) -> str:
        value = self.required(name, as_text)
        if not value:
            raise RecordError(name, "must not be empty")
        return value

    def enum(self, name: str, allowed: frozenset[str]) -> str:
        value = self.required_text(name)
        if value not in allowed:
            raise RecordError(name, f"{value[:40]!r} is not one of {', '.join(sorted(allowed))}")
        return sys.intern(value)  # one string per allowed value, not one per record

    def timestamp(self, name: str, *, nullable: bool = False, required: bool = True) -> dt.datetime | None:
        return self.convert(name, parse_timestamp, nullable=nullable, required=required)

    def required_timestamp(self, name: str) -> dt.datetime:
        return self.required(name, parse_timestamp)

    def required_date(self, name: str) -> dt.date:
        return self.required(name, parse_date)

    def amount(self, name: str, *, required: bool = True) -> Decimal | None:
        return self.convert(name, parse_amount, required=required)

    def required_amount(self, name: str) -> Decimal:
        return self.required(name, parse_amount)

    def currency(self, name: str) -> str:
        return self.required(name, parse_currency)


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    return value


def as_e164(value: Any) -> str:
    if not isinstance(value, str) or not E164.fullmatch(value):
        raise ValueError(f"not an E.164 phone number: {str(value)[:30]!r}")
    return value


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {str(value)[:20]!r}")
    return value


def as_string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    return tuple(value)


def as_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object, got {_json_type(value)}")
    return value


def as_record(value: Any) -> Mapping[str, Any]:
    """A listing item must be an object; `null` or a number there is a malformed record, not a crash."""
    try:
        return as_object(value)
    except ValueError as exc:
        raise RecordError("(record)", str(exc)) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__)


def fingerprint(served: Any) -> str:
    """A digest of a record's bytes (any buffer: bytes, `msgspec.Raw`) exactly as served: equal means nothing in it changed.

    Taken from the page's own bytes (`paging.with_raw_records`), never a re-encoding: no parse,
    no dump. A record served with other whitespace or key order has another digest, which
    costs only a parse (and a compare of its row hash, which says nothing changed).
    """
    return hashlib.blake2b(served, digest_size=16).hexdigest()


def record_id(raw: Any) -> str:
    """The id of a raw record for error reports, '' when it has none usable."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return str(raw["id"])[:80]
    return ""
