"""The numbers owned at a run, kept whole in the store a column at a time: the next night patches it.

Reading the numbers owned at a run from their versions makes a Python object of every cell
(100,000 numbers: 1.4 million, 0.5 s, the longest step before the nightly's flags). The
first evaluation of each newest run keeps what it read here, as one body of msgpack (texts,
integers and blanks as lists, money as nanos, times as 64-bit integers: 10 MB, decoded in
0.04 s). The next night reads that body and patches it with the versions the syncs between
opened and closed (a few hundred a night), and gets the frame `readers.inventory_as_of`
would have read: the same rows, columns, types and order (a test holds them equal).

Only the newest copy is kept. A copy of a layout this code does not write, or one the
versions do not agree with, is passed over: the versions are read as before, and the
copy is written again at the next evaluation. Agreeing means: every version closed since
that the copy should hold, it holds; and the patched rows' version ids are as many, and
add up to the same, as those the store has open at the run (one count over the index of
open versions: 0.03 s). A copy of other columns than the versions now have (a migration
added one) is passed over too; a migration that rewrites versions in place must delete
the copy (`DELETE FROM inventory_copies`): only the sync's own opening and closing of
versions is patched in.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, and_, delete, func, insert, select

from reconcile.analysis.frames import texts
from reconcile.money import to_nanos
from reconcile.store import readers
from reconcile.store.schema import inventory_copies, number_versions, open_at
from reconcile.store.types import Money

log = logging.getLogger("reconcile.inventory_copy")

FORMAT = "msgpack-1"  # how a body is laid out; a new way gets a new name
MAX_BODY = 256 << 20  # SQLite refuses a value past 1 GB; 100,000 numbers take 10 MB


def layout(statuses: tuple[str, ...], skip: tuple[str, ...]) -> str:
    """The name of the copy of one kind of read (these statuses, these columns left out), in this format."""
    kind = ",".join(statuses) + "|" + ",".join(sorted(_skipped(skip)))
    return f"{FORMAT}:{hashlib.blake2b(kind.encode(), digest_size=8).hexdigest()}"


def read_live(connection: Connection, run_id: int, statuses: tuple[str, ...],
              skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """The versions open at `run_id` with these statuses as `readers.inventory_as_of` reads them (less
    `skip` and the version id), and their version ids (int64, row by row): from the newest copy at or
    before the run, patched, when there is one the versions agree with; else from the versions."""
    name = layout(statuses, skip)
    row = connection.execute(
        select(inventory_copies.c.run_id, inventory_copies.c.body)
        .where(inventory_copies.c.run_id <= run_id, inventory_copies.c.layout == name)
        .order_by(inventory_copies.c.run_id.desc()).limit(1)).first()
    if row is not None:
        copy_run, body = row
        del row
        copied = decode(body)
        del body  # 10 MB at 100,000 numbers: not held while the copy is patched
        patched = _patched(connection, copied, copy_run, run_id, statuses, skip) if copied else None
        if patched is not None:
            return patched
        log.info("the inventory copy of run %d was passed over: reading the versions of run %d", copy_run, run_id)
    frame = readers.inventory_as_of(connection, run_id, statuses, skip=_skipped(skip))
    ids = frame.pop("version_id").to_numpy(dtype=np.int64)
    return frame, ids


def keep(connection: Connection, run_id: int, frame: pd.DataFrame, version_ids: np.ndarray[Any, Any],
         statuses: tuple[str, ...], skip: tuple[str, ...] = ()) -> None:
    """Keep `frame` (as `read_live` returned it for `run_id`) as the one copy, in the caller's transaction."""
    body = encode(frame, version_ids)
    connection.execute(delete(inventory_copies))
    if len(body) > MAX_BODY:  # past what a store takes in one value with ease: the versions are read instead
        log.info("the inventory copy of run %d (%d MB) is not kept: over %d MB", run_id, len(body) >> 20,
                 MAX_BODY >> 20)
        return
    connection.execute(insert(inventory_copies).values(run_id=run_id, layout=layout(statuses, skip),
                                                       numbers=len(frame), body=body))


def encode(frame: pd.DataFrame, version_ids: np.ndarray[Any, Any]) -> bytearray:
    """The frame a column at a time: [names, kinds, columns, version ids]. Texts, integers, booleans and
    blanks (None) as lists, money as nanos (None blank), UTC times as int64 microseconds (NaT as numpy
    holds it, the int64 minimum).

    Written into one buffer a column after another (msgpack is a stream: the same bytes as the whole
    list encoded at once), so only one column's values exist as a list at a time: at 400,000 numbers
    the lists of every column would be 60 MB more beside the body.
    """
    names = [str(name) for name in frame.columns]
    kinds = [_kind(frame[name], name) for name in names]
    encoder = msgspec.msgpack.Encoder()
    body = bytearray(_array_head(4))
    encoder.encode_into(names, body, -1)
    encoder.encode_into(kinds, body, -1)
    body += _array_head(len(names))
    for name, kind in zip(names, kinds, strict=True):
        encoder.encode_into(_values(frame[name], kind), body, -1)
    encoder.encode_into(np.asarray(version_ids, dtype=np.int64).tobytes(), body, -1)
    return body


def _kind(column: pd.Series, name: str) -> str:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return "time"
    return "money" if column.dtype == object and _is_money(name) else "plain"


def _values(column: pd.Series, kind: str) -> Any:
    """One column as `encode` writes it."""
    if kind == "time":
        return column.dt.tz_convert("UTC").to_numpy(dtype="datetime64[us]").view(np.int64).tobytes()
    if kind == "money":
        values = column.tolist()
        nanos = {amount: to_nanos(amount) for amount in set(values) if amount is not None}  # prices repeat
        return [None if value is None else nanos[value] for value in values]
    return texts(column)  # a text column's blanks are NaN: None, as the reader had them


def _array_head(length: int) -> bytes:
    """msgpack's header of an array of `length` items."""
    if length < 16:
        return bytes([0x90 | length])
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def decode(body: bytes | bytearray) -> tuple[pd.DataFrame, np.ndarray[Any, Any]] | None:
    """The frame and version ids `encode` wrote, built as the store's reader builds them; None when
    the body is not one (a copy written otherwise, or damaged)."""
    try:
        names, kinds, columns, ids = msgspec.msgpack.decode(body)
        made: dict[str, Any] = {}
        money: dict[str, list[Any]] = {}
        for name, kind, values in zip(names, kinds, columns, strict=True):
            if kind == "time":
                made[name] = pd.DatetimeIndex(np.frombuffer(values, dtype=np.int64).view("datetime64[us]")
                                              ).tz_localize("UTC")
            else:
                made[name] = values
                if kind == "money":
                    money[name] = values
        frame = pd.DataFrame(made, columns=names)
        for name, nanos in money.items():  # as `readers.table_frame` makes them: one Decimal per distinct amount
            frame[name] = pd.Series(readers.decimals(nanos), index=frame.index, dtype=object)
        version_ids = np.frombuffer(ids, dtype=np.int64).copy()
    except (msgspec.DecodeError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return (frame, version_ids) if len(version_ids) == len(frame) else None


def _patched(connection: Connection, copied: tuple[pd.DataFrame, np.ndarray[Any, Any]], copy_run: int, run_id: int,
             statuses: tuple[str, ...], skip: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray[Any, Any]] | None:
    """The copy of `copy_run` moved to `run_id`: the versions closed since dropped, those opened since (and
    open at the run) added, sorted as the reader sorts. None when the versions say the copy is not whole:
    a version it should hold is missing, or the count and sum of the version ids open at the run differ."""
    frame, ids = copied
    v = number_versions.c
    owned = and_(open_at(v.valid_from_run, v.valid_to_run, run_id), v.status.in_(statuses))
    count, total = connection.execute(select(func.count(), func.sum(v.version_id)).where(owned)).one()
    if not len(frame) or not count:  # none owned, then or now: the reader types an empty frame its own way
        return None
    closed = connection.execute(select(v.version_id, v.valid_from_run, v.status).where(
        v.valid_to_run > copy_run, v.valid_to_run <= run_id)).all() if copy_run < run_id else []
    # the versions the copy must hold among those: open at its run, with a status it keeps
    expected = {version_id for version_id, opened, status in closed if opened <= copy_run and status in statuses}
    dropped = np.isin(ids, np.fromiter(expected, dtype=np.int64, count=len(expected)))
    if int(dropped.sum()) != len(expected):
        return None
    added = readers.table_frame(connection, number_versions, and_(owned, v.valid_from_run > copy_run), v.number_id,
                                skip=_skipped(skip))
    if [name for name in added.columns if name != "version_id"] != list(frame.columns):
        return None  # a copy of other columns
    added_ids = added.pop("version_id").to_numpy(dtype=np.int64)
    ids_now = np.concatenate([ids[~dropped], added_ids])
    if len(ids_now) != count or int(ids_now.sum()) != int(total or 0):
        return None
    if not len(added):
        if not dropped.any():
            return frame, ids
        return _texts_as_read(frame[~dropped].reset_index(drop=True)), ids_now
    kept = frame[~dropped]
    order = _merged_order(kept["number_id"].tolist(), added["number_id"].tolist())
    whole = pd.concat([kept, added.astype(kept.dtypes.to_dict())], ignore_index=True).take(order)
    return _texts_as_read(whole.reset_index(drop=True)), ids_now[order]


def _merged_order(kept: list[str], added: list[str]) -> np.ndarray[Any, Any]:
    """Where each row of `kept` then `added` (each in order) goes in the order both sorted together
    would have, ties kept before added, as the reader's stable sort puts them: each added key found
    by bisection (a few hundred), not the whole frame sorted again."""
    at = np.fromiter((bisect.bisect_right(kept, key) for key in added), dtype=np.int64, count=len(added))
    at += np.arange(len(added))
    order = np.empty(len(kept) + len(added), dtype=np.int64)
    placed = np.zeros(len(order), dtype=bool)
    placed[at] = True
    order[~placed] = np.arange(len(kept))
    order[at] = len(kept) + np.arange(len(added))
    return order


def _texts_as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """Each text column typed as the reader types it from its values: "str" when it holds a text, an object
    column of None when every value is blank (a patched column may have gained or lost its only text)."""
    for column in number_versions.columns:
        name = column.name
        if name not in frame or not isinstance(column.type, String):  # Text is a String
            continue
        values = frame[name]
        if values.isna().all():
            if values.dtype != object or any(value is not None for value in values.tolist()):
                frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        elif values.dtype != "str":
            frame[name] = values.astype("str")
    return frame


def _skipped(skip: tuple[str, ...]) -> tuple[str, ...]:
    """The columns a read leaves out: the version id is always read (the copy keeps it apart)."""
    return tuple(name for name in skip if name != "version_id")


def _is_money(name: str) -> bool:
    return name in number_versions.c and isinstance(number_versions.c[name].type, Money)
