"""E-mail addresses we are willing to put in a header: one plain addr-spec, nothing else."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def is_email(text: object) -> bool:
    """True for `name@example.com`; false for anything with spaces, CR/LF, commas, brackets or names."""
    return isinstance(text, str) and len(text) <= 254 and bool(_ADDRESS.fullmatch(text))
