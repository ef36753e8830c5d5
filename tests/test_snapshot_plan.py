"""The pure decisions behind versioning."""

from reconcile.store.snapshot import OpenVersion, numbers_to_confirm, plan_versions


def test_plan_opens_new_and_changed_closes_changed_and_gone():
    current = {key: OpenVersion(i, f"h{i}", "active", None) for i, key in enumerate("abcd", start=1)}
    incoming = {"a": {"row_hash": "h1"}, "b": {"row_hash": "CHANGED"}, "e": {"row_hash": "h5"}}
    plan = plan_versions(current, incoming, gone={"c", "zzz"})
    assert [r["row_hash"] for r in plan.to_open] == ["CHANGED", "h5"]
    assert sorted(plan.to_close) == [2, 3]
    assert plan.unchanged == 1  # d is neither listed nor confirmed gone: it stays open


def test_only_unseen_unreleased_numbers_are_confirmed():
    statuses = {"a": "active", "b": "released", "c": "pending", "d": "active"}
    open_numbers = {key: OpenVersion(i, "h", status, None) for i, (key, status) in enumerate(statuses.items())}
    assert numbers_to_confirm(open_numbers, seen={"a"}) == ["c", "d"]


def test_the_fast_sqlite_time_text_is_exactly_what_sqlalchemy_writes():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from hypothesis import given
    from hypothesis import strategies as st
    from sqlalchemy.dialects import sqlite

    from reconcile.store.types import UTCDateTime
    from reconcile.store.writer import sqlite_utc_text

    dialect = sqlite.dialect()
    sqlalchemy_text = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)

    @given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1),
                        timezones=st.sampled_from([dt.UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")])))
    def check(moment):
        assert sqlite_utc_text(moment) == sqlalchemy_text(moment)

    check()
    assert sqlite_utc_text(None) is sqlalchemy_text(None) is None


def test_sqlite_time_texts_made_a_column_at_a_time_are_each_times_own():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconcile.store.writer import sqlite_utc_text, sqlite_utc_texts

    zones = st.sampled_from([dt.UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1),
                                                      timezones=zones)), max_size=8), st.booleans())
    def check(moments, naive):
        if naive and moments:  # a naive time is local to astimezone: the column goes the per-value way
            moments[0] = dt.datetime(2026, 3, 1, 12, 30)
        assert sqlite_utc_texts(moments) == [sqlite_utc_text(moment) for moment in moments]

    check()


def test_row_hashes_made_by_orjson_are_the_hashes_json_dumps_made():
    """Every stored version's row hash must stay what it was: the digest of json.dumps' bytes."""
    import datetime as dt
    import hashlib
    import json
    from decimal import Decimal

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconcile.store.snapshot import row_hash

    def reference(row, fields):  # the digest as every stored version was hashed
        parts = []
        for name in fields:
            value = row[name]
            if hasattr(value, "normalize"):
                value = format(value.normalize(), "f")
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            parts.append(value)
        encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()

    values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                       st.text(alphabet=st.characters(exclude_categories=["Cs"])),
                       st.decimals(allow_nan=False, allow_infinity=False, places=6).map(Decimal),
                       st.datetimes(timezones=st.sampled_from([dt.UTC, None])), st.dates())

    @settings(max_examples=300, deadline=None)
    @given(st.lists(values, min_size=1, max_size=8))
    def check(parts):
        row = {f"f{i}": value for i, value in enumerate(parts)}
        assert row_hash(row, list(row)) == reference(row, list(row))

    check()
