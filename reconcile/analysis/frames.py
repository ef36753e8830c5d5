"""Row access over the analysis frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd


def rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples. Typed loosely on purpose: the store's frames hold Python
    objects (Decimal, date, None) in object columns, which pandas' type stubs cannot describe."""
    return frame.itertuples(index=False)
