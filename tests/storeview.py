"""A comparable picture of a store's contents, without run ids."""

from __future__ import annotations

from sqlalchemy import Engine, select

from reconcile.store.schema import agent_versions, calls, data_issues, number_versions, sync_state


def store_state(engine: Engine) -> dict:
    with engine.connect() as c:
        return {
            "open_numbers": set(c.execute(select(number_versions.c.number_id, number_versions.c.row_hash)
                                          .where(number_versions.c.valid_to_run.is_(None))).all()),
            "number_versions": sorted(c.execute(select(number_versions.c.number_id, number_versions.c.row_hash,
                                                       number_versions.c.valid_to_run.is_(None))).all()),
            "agent_versions": sorted(c.execute(select(agent_versions.c.agent_id, agent_versions.c.row_hash,
                                                      agent_versions.c.valid_to_run.is_(None))).all()),
            "calls": set(c.execute(select(calls.c.call_id, calls.c.cost_amount, calls.c.started_at)).all()),
            "state": set(c.execute(select(sync_state.c.key, sync_state.c.value)).all()),
            "issues": sorted(c.execute(select(data_issues.c.record_type, data_issues.c.record_id,
                                              data_issues.c.field)).all()),
        }
