"""Row access over the analysis frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd


def rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples. Typed loosely on purpose: the store's frames hold Python
    objects (Decimal, date, None) in object columns, which pandas' type stubs cannot describe."""
    return frame.itertuples(index=False)


def texts(column: pd.Series) -> list[Any]:
    """A column's values with every blank as None (text columns hold NaN for a blank).

    For lookups and counting: since Python 3.10 a NaN hashes by its identity, and pandas gives
    each blank its own NaN object, so blanks kept as NaN are as many distinct keys as rows.
    A column with no blank (pandas knows at C speed) is its values as they are.
    """
    values = column.tolist()
    if not column.hasnans:
        return values
    return [None if value is None or value != value else value for value in values]
