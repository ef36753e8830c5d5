"""The pure decisions behind versioning."""

from reconcile.store.snapshot import numbers_to_confirm, plan_versions


def test_plan_opens_new_and_changed_closes_changed_and_gone():
    current = {"a": (1, "h1"), "b": (2, "h2"), "c": (3, "h3"), "d": (4, "h4")}
    incoming = {"a": {"row_hash": "h1"}, "b": {"row_hash": "CHANGED"}, "e": {"row_hash": "h5"}}
    plan = plan_versions(current, incoming, gone={"c", "zzz"})
    assert [r["row_hash"] for r in plan.to_open] == ["CHANGED", "h5"]
    assert sorted(plan.to_close) == [2, 3]
    assert plan.unchanged == 1  # d is neither listed nor confirmed gone: it stays open


def test_only_unseen_unreleased_numbers_are_confirmed():
    statuses = {"a": "active", "b": "released", "c": "pending", "d": "active"}
    assert numbers_to_confirm(statuses, seen={"a"}) == ["c", "d"]
