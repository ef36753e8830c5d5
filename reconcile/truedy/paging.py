"""Paging as objects; the loop that drives them is `TruedyClient.paginate`, written once.

A paginator knows the parameters of its next requests (`next_requests`), learns from
each answer (`update_state`) and says when it is done (`has_next_page`). Page-number
listings hand out all remaining pages at once after the first answer, so the client
fetches them concurrently; cursor listings hand out one request at a time.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from reconcile.errors import ContractError

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])


class PageNumberPaginator:
    """`page`/`page_size` listings with a `meta` block (numbers, agents, invoices).

    Page 1 comes first, to learn how many pages there are; then every page from the
    last down to the first. A release shifts later records one place towards page 1,
    so reading downwards, a shifted record can only move onto a page not read yet:
    it is seen twice (and de-duplicated), never skipped. Purchases land at the end,
    which is read first; growth shows in `total_results` and makes the client re-read.
    """

    def __init__(self, page_size: int, params: dict[str, Any] | None = None) -> None:
        self.page_size = page_size
        self.params = dict(params or {})
        self.total_pages: int | None = None
        self.totals_seen: set[int] = set()
        self.last_page = 0
        self._handed_out = 0

    @property
    def has_next_page(self) -> bool:
        if self.total_pages is None:
            return self._handed_out == 0
        return self._handed_out == 1 and self.total_pages > 1

    def next_requests(self) -> list[dict[str, Any]]:
        if self._handed_out == 0 or self.total_pages is None:
            pages: list[int] = [1]
        else:
            pages = list(range(self.total_pages, 0, -1))
        self._handed_out += 1
        return [{**self.params, "page": page, "page_size": self.page_size} for page in pages]

    def update_state(self, body: dict[str, Any]) -> list[Any]:
        meta = body.get("meta")
        data = body.get("data")
        if not isinstance(meta, dict) or not isinstance(data, list):
            raise ContractError("a listing answer lacks its 'data' list or 'meta' object")
        try:
            total_pages = _count(meta["total_pages"])
            total_results = _count(meta["total_results"])
            self.last_page = _count(meta["page"])
        except (KeyError, TypeError, ValueError):
            raise ContractError("a listing's 'meta' lacks page, total_pages or total_results "
                                "as whole numbers") from None
        check_page_counts(total_pages, total_results, self.page_size, len(data))
        self.totals_seen.add(total_results)
        if self.total_pages is None:
            self.total_pages = total_pages
        return data


def with_raw_records(content: bytes) -> Any:
    """A listing page's JSON with each record of its 'data' list left as the bytes it was served in
    (`msgspec.Raw`, which a fingerprint digests); the rest decoded by orjson, as every answer is.

    msgspec only finds where each record starts and ends, checking the page's syntax on the
    way: a truncated or malformed page raises `msgspec.DecodeError`, as orjson would refuse
    it. What msgspec passes but orjson refuses inside a record (an invalid UTF-8 byte, a number
    past a double) shows when that record is decoded (`orjson.loads` on a memoryview of its bytes). A page
    whose shape is not a listing's is decoded whole, for the paginator to say what is wrong.
    """
    try:
        fields = _OBJECT.decode(content)
    except msgspec.ValidationError:  # valid JSON but not an object
        return orjson.loads(content)
    body = {name: orjson.loads(memoryview(value)) for name, value in fields.items() if name != "data"}
    if "data" in fields:
        try:
            body["data"] = _RECORDS.decode(fields["data"])
        except msgspec.ValidationError:  # not a list
            body["data"] = orjson.loads(memoryview(fields["data"]))
    return body


MAX_RESULTS = 50_000_000  # no account holds more records of one kind; a larger count is a broken answer


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a whole number")
    return value


def check_page_counts(total_pages: int, total_results: int, page_size: int, served: int) -> None:
    """`meta` must agree with itself: pages = ceil(results / page size), and no absurd figure."""
    if total_results > MAX_RESULTS:
        raise ContractError(f"a listing claims {total_results:,} results, beyond any account "
                            f"({MAX_RESULTS:,}): the answer is broken; nothing was committed")
    expected = -(-total_results // page_size)
    if total_pages not in (expected, max(1, expected)):
        raise ContractError(f"a listing's meta says {total_pages:,} pages for {total_results:,} results of "
                            f"{page_size} a page (expected {expected:,}): the answer is broken; nothing was committed")
    if served > page_size:
        raise ContractError(f"a listing page holds {served} records, more than its page_size of {page_size}")


class CursorPaginator:
    """`cursor`/`next_cursor` listings (calls)."""

    def __init__(self, limit: int, params: dict[str, Any] | None = None) -> None:
        self.limit = limit
        self.params = {key: value for key, value in (params or {}).items() if value is not None}
        self.cursor: str | None = None
        self._seen: set[str] = set()
        self._started = False
        self._done = False

    @property
    def has_next_page(self) -> bool:
        return not self._done

    def next_requests(self) -> list[dict[str, Any]]:
        self._started = True
        request = {**self.params, "limit": self.limit}
        if self.cursor is not None:
            request["cursor"] = self.cursor
        return [request]

    def update_state(self, body: dict[str, Any]) -> list[Any]:
        data = body.get("data")
        if not isinstance(data, list) or "next_cursor" not in body:
            raise ContractError("a calls answer lacks its 'data' list or 'next_cursor'")
        cursor = body["next_cursor"]
        if cursor is not None and not isinstance(cursor, str):
            raise ContractError("'next_cursor' is neither a string nor null")
        if cursor is not None and (cursor in self._seen or cursor == ""):
            raise ContractError("the calls listing handed out a cursor it had handed out before (a paging loop): "
                                "the answer is broken; nothing was committed, the calls watermark is unchanged")
        if cursor is None:
            self._done = True
        else:
            self._seen.add(cursor)
        self.cursor = cursor
        return data
