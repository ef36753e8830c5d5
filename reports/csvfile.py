"""CSV as the contract says: UTF-8, a header, RFC 4180 quoting, exact money, RFC 3339 UTC,
true/false, empty for unknown, and no spreadsheet formula from customer text."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from reconcile.clock import format_timestamp
from reconcile.money import format_amount
from reconcile.truedy.fields import E164

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_START)  # each a single character
_TEXT_KINDS = {str, type(None), float}  # float: pandas' NaN for a missing text
_MONEY_KINDS = {Decimal, type(None)}
REPEATS_SAMPLE = 2_000  # the first rows of a text column tell whether its texts repeat


def neutralise(text: str) -> str:
    """OWASP CSV injection: a cell that a spreadsheet would run as a formula gets a leading quote."""
    if text.startswith(FORMULA_START) and not E164.fullmatch(text):
        return "'" + text
    return text


def cell(value: Any, currency: str | None = None) -> str:
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_amount(value, currency)
    if isinstance(value, pd.Timestamp):
        return format_timestamp(value.to_pydatetime())
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def write_frame_csv(path: Path, frame: pd.DataFrame, columns: Sequence[str], currency_column: str = "currency") -> int:
    """Write the frame's `columns` as the contract's CSV, formatted column by column (fast for 100,000 rows).

    Money columns take each row's currency for their minor digits.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        _write_frame(handle, frame, columns, currency_column)
    return len(frame)


def frame_csv_bytes(frame: pd.DataFrame, columns: Sequence[str], currency_column: str = "currency") -> bytes:
    """The same CSV as `write_frame_csv`, in memory (an e-mail attachment)."""
    buffer = io.StringIO(newline="")
    _write_frame(buffer, frame, columns, currency_column)
    return buffer.getvalue().encode("utf-8")


CHUNK_ROWS = 20_000  # formatted a slice at a time: 140,000 rows x 33 columns of text never exist at once


def write_frames_csv(path: Path, frames: Iterable[pd.DataFrame], columns: Sequence[str],
                     currency_column: str = "currency") -> int:
    """One CSV from frames that arrive one after another (one header); the rows written."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        _writer(handle).writerow(columns)
        for frame in frames:
            _write_rows(handle, frame, columns, currency_column)
            rows += len(frame)
    return rows


def _write_frame(handle: IO[str], frame: pd.DataFrame, columns: Sequence[str], currency_column: str) -> None:
    _writer(handle).writerow(columns)
    _write_rows(handle, frame, columns, currency_column)


def _write_rows(handle: IO[str], frame: pd.DataFrame, columns: Sequence[str], currency_column: str) -> None:
    """The rows, a slice at a time: each column formatted, then quoted as csv.writer quotes (QUOTE_MINIMAL),
    and the rows joined in C (csv.writer looks at every character of every field: a third of focus.csv's time)."""
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start:start + CHUNK_ROWS]
        currencies = ([c if isinstance(c, str) else None for c in part[currency_column].tolist()]
                      if currency_column in part else None)
        formatted = [_format_column(part[name], currencies) if name in part else [""] * len(part) for name in columns]
        if len(columns) == 1:  # csv.writer writes a lone empty field as "" (else the row would be blank)
            _writer(handle).writerows(zip(*formatted, strict=True))
            continue
        handle.write("\r\n".join(map(",".join, zip(*map(quoted, formatted), strict=True))))
        handle.write("\r\n")


def _writer(handle: IO[str]) -> Any:
    """The contract's CSV dialect: RFC 4180, minimal quoting, CRLF."""
    return csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")


def quoted(texts: list[str]) -> list[str]:
    """A column's texts as `_writer` writes them (QUOTE_MINIMAL): in quotes, with quotes doubled, when
    they hold a comma, a quote or a line end. The column is searched whole first: most need nothing."""
    if not _needs_quotes("\x1f".join(texts)):
        return texts
    shown = {text: f'"{text.replace(chr(34), chr(34) * 2)}"' if _needs_quotes(text) else text for text in set(texts)}
    return list(map(shown.__getitem__, texts))


def _needs_quotes(text: str) -> bool:
    return "," in text or '"' in text or "\r" in text or "\n" in text


def _format_column(column: pd.Series, currencies: list[str | None] | None) -> list[str]:
    if pd.api.types.is_datetime64_any_dtype(column):  # numpy's C formatter: strftime runs per value in Python
        utc = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
        times = utc.to_numpy(dtype="datetime64[s]")
        stamps: list[str] = np.where(np.isnat(times), "", np.datetime_as_string(times, unit="s", timezone="UTC")).tolist()
        return stamps
    if pd.api.types.is_bool_dtype(column):
        return ["true" if value else "false" for value in column.tolist()]
    if pd.api.types.is_integer_dtype(column):
        return [str(value) for value in column.tolist()]
    if column.dtype == "str" and (texts := _plain_texts(column)) is not None:
        return texts
    values = column.tolist()  # plain Python objects: iterating a pandas array value by value is slow
    # pandas' "str" holds text or NaN (its blank): text, with no need to look; "string" blanks are pd.NA
    kinds = {str} if column.dtype == "str" else set(map(type, values))
    if kinds <= _TEXT_KINDS and (float not in kinds or all(v != v for v in values if type(v) is float)):
        # the usual text column (a float there is pandas' NaN for missing); a formula starts with one of
        # FORMULA_START's characters, so the first one tells. A column of few texts (a currency, a type, a
        # constant) formats each distinct text once and looks the rest up at C speed; ids go one by one
        if len(set(values[:REPEATS_SAMPLE])) * 2 < min(len(values), REPEATS_SAMPLE):
            shown = {value: "" if value is None or value != value else neutralise(value)
                     if value[:1] in _FORMULA_FIRST else value for value in set(values)}
            return list(map(shown.__getitem__, values))
        return ["" if value is None or value != value else neutralise(value) if value[:1] in _FORMULA_FIRST
                else value for value in values]
    if currencies is None:
        currencies = [None] * len(values)
    if kinds <= _MONEY_KINDS:  # an amount column: each (amount, currency) formatted once
        if len(one := set(currencies)) == 1:  # one currency (the usual slice): keyed by the amount alone
            currency = one.pop()
            shown = {value: "" if value is None else format_amount(value, currency) for value in set(values)}
            return list(map(shown.__getitem__, values))
        pairs = list(zip(values, currencies, strict=True))
        amounts = {pair: "" if pair[0] is None else format_amount(*pair) for pair in set(pairs)}
        return list(map(amounts.__getitem__, pairs))
    out: list[str] = []
    amounts = {}  # prices repeat: format each once
    for value, currency in zip(values, currencies, strict=True):
        kind = type(value)
        if kind is str:
            out.append(neutralise(value) if value.startswith(FORMULA_START) else value)
        elif kind is Decimal:
            text = amounts.get((value, currency))
            if text is None:
                text = amounts[(value, currency)] = format_amount(value, currency)
            out.append(text)
        elif value is None:
            out.append("")
        else:
            out.append(cell(value, currency))
    return out


_SEPARATOR = "\x00"
# after a separator: a text that `neutralise` would change (a formula character, and not an E164 phone number)
_NEEDS_NEUTRALISING = re.compile(f"{_SEPARATOR}(?!{E164.pattern}(?:{_SEPARATOR}|\\Z))[{re.escape(''.join(FORMULA_START))}]")


def _plain_texts(column: pd.Series) -> list[str] | None:
    """A text column's cells when none needs neutralising (blanks empty), found at C speed; else None.

    The texts are joined once, each after a separator none holds: a text starting with a formula
    character shows as that character after a separator, and one search (`neutralise`'s rule:
    E164 phone numbers are left as they are) finds any.
    """
    values: list[str] = column.to_numpy().tolist()
    try:
        joined = _SEPARATOR + _SEPARATOR.join(values)
    except TypeError:  # NaN, the blanks
        values = column.fillna("").to_numpy().tolist()
        joined = _SEPARATOR + _SEPARATOR.join(values)
    if joined.count(_SEPARATOR) != len(values):  # a text holds the separator itself: look one by one
        return None
    if _NEEDS_NEUTRALISING.search(joined):
        return None
    return values


def frame_rows(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Records with every kind of pandas blank (NaN, NaT, NA) as None."""
    names = [str(name) for name in frame.columns]
    columns = [[None if _blank(value) else value for value in frame[name].tolist()] for name in frame.columns]
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def _blank(value: Any) -> bool:
    return value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value))
