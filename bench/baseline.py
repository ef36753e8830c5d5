"""The script a competent user would write in an afternoon instead of `reconcile`.

It is the yardstick `make bench` holds the nightly job against, so it makes no attempt
to be slow and none to be careful: httpx with 4 threads pulls every number (live and
released) and agent, and the calls since its newest stored call; pandas appends a full
inventory snapshot to the database every night (`to_sql`), flags unassigned and idle
numbers, and writes `flagged.csv` and an HTML table (`DataFrame.to_html`).

    python -m bench.baseline URL DATABASE_URL OUT_DIR AS_OF [API_KEY]

It keeps nothing else: no version history, no flag history, no retries, no exact money.
"""

from __future__ import annotations

import datetime as dt
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from sqlalchemy import create_engine, inspect, text

THREADS = 4
GRACE_DAYS = 7
IDLE_DAYS = 30
BACKFILL_DAYS = 90


def listing(client: httpx.Client, path: str, **query: Any) -> list[dict[str, Any]]:
    """Every page of a page-numbered listing: the first for the page count, the rest on 4 threads."""
    first = client.get(path, params={**query, "page": 1, "page_size": 100})
    first.raise_for_status()
    body = first.json()

    def page(number: int) -> list[dict[str, Any]]:
        answer = client.get(path, params={**query, "page": number, "page_size": 100})
        answer.raise_for_status()
        return list(answer.json()["data"])

    with ThreadPoolExecutor(THREADS) as pool:
        rest = pool.map(page, range(2, body["meta"]["total_pages"] + 1))
        return list(body["data"]) + [record for data in rest for record in data]


def calls_between(client: httpx.Client, after: dt.datetime, before: dt.datetime) -> list[dict[str, Any]]:
    """The calls started in [after, before), cut into 4 time slices read on 4 threads."""
    step = (before - after) / THREADS

    def read(i: int) -> list[dict[str, Any]]:
        query = {"started_after": iso(after + step * i), "started_before": iso(after + step * (i + 1)), "limit": 500}
        records: list[dict[str, Any]] = []
        while True:
            answer = client.get("calls", params=query)
            answer.raise_for_status()
            body = answer.json()
            records += body["data"]
            if not body["next_cursor"]:
                return records
            query["cursor"] = body["next_cursor"]

    with ThreadPoolExecutor(THREADS) as pool:
        return [record for part in pool.map(read, range(THREADS)) for record in part]


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def night(url: str, database_url: str, out_dir: Path, as_of: dt.datetime, api_key: str) -> dict[str, int]:
    """One night: pull, append, flag, write. Returns what it counted."""
    engine = create_engine(database_url)
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=THREADS * 2)
    with httpx.Client(base_url=url.rstrip("/") + "/", headers=headers, timeout=60, limits=limits) as client:
        agents = pd.DataFrame(listing(client, "agents"))
        numbers = pd.json_normalize(listing(client, "telephony/numbers") +
                                    listing(client, "telephony/numbers", status="released"))
        since = as_of - dt.timedelta(days=BACKFILL_DAYS)
        if inspect(engine).has_table("calls"):
            with engine.connect() as connection:
                newest = connection.execute(text("SELECT max(started_at) FROM calls")).scalar()
            if newest:
                since = dt.datetime.fromisoformat(str(newest).replace("Z", "+00:00"))
        calls = pd.json_normalize(calls_between(client, since, as_of))

    # the calls table: append what is new (the first page repeats the newest stored call)
    if not calls.empty:
        if inspect(engine).has_table("calls"):
            known = pd.read_sql(text("SELECT id FROM calls WHERE started_at >= :since"), engine,
                                params={"since": iso(since)})
            calls = calls[~calls["id"].isin(known["id"])]
        calls.to_sql("calls", engine, if_exists="append", index=False)

    # tonight's full inventory snapshot, appended
    snapshot = numbers.assign(snapshot_at=iso(as_of), assignments=numbers["assignments"].astype(str),
                              features=numbers["features"].astype(str))
    snapshot.to_sql("inventory", engine, if_exists="append", index=False)
    agents.assign(snapshot_at=iso(as_of), metadata=agents.get("metadata", pd.Series(dtype=str)).astype(str)).to_sql(
        "agents", engine, if_exists="append", index=False)

    # flags: unassigned past the grace period, or assigned and idle past the threshold
    last = pd.read_sql(text("SELECT number_id, max(started_at) AS last_call FROM calls GROUP BY number_id"), engine)
    live = numbers[numbers["status"] != "released"].merge(last, left_on="id", right_on="number_id", how="left")
    purchased = pd.to_datetime(live["purchased_at"], utc=True)
    last_seen = pd.to_datetime(live["last_call"], utc=True).fillna(purchased)
    live["idle_days"] = (pd.Timestamp(as_of) - last_seen).dt.days
    old_enough = (pd.Timestamp(as_of) - purchased).dt.days >= GRACE_DAYS
    assigned = live["assignments"].str.len() > 0
    live["flag"] = None
    live.loc[~assigned & old_enough, "flag"] = "unassigned"
    live.loc[assigned & (live["idle_days"] >= IDLE_DAYS), "flag"] = "idle"
    flagged = live[live["flag"].notna()]
    columns = ["id", "phone_number", "label", "country_code", "provider", "flag", "idle_days",
               "cost_information.monthly_cost", "cost_information.currency"]
    flagged = flagged[[c for c in columns if c in flagged]]

    out_dir.mkdir(parents=True, exist_ok=True)
    flagged.to_csv(out_dir / "flagged.csv", index=False)
    (out_dir / "report.html").write_text(
        f"<html><body><h1>{len(flagged)} flagged of {len(live)} numbers</h1>{flagged.to_html(index=False)}</body></html>",
        encoding="utf-8")
    engine.dispose()
    return {"numbers": len(live), "flagged": len(flagged), "calls_added": len(calls)}


if __name__ == "__main__":
    from reconcile.config import SANDBOX_API_KEY

    arguments = sys.argv[1:]
    counts = night(arguments[0], arguments[1], Path(arguments[2]),
                   dt.datetime.fromisoformat(arguments[3].replace("Z", "+00:00")),
                   arguments[4] if len(arguments) > 4 else SANDBOX_API_KEY)
    print(counts)
