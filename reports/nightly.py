"""The nightly report: nightly.html (self-contained), flagged.csv and inventory.csv."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from markupsafe import Markup, escape

from reconcile.alongside import alongside
from reconcile.analysis.flags import FLAGGED_COLUMNS, INVENTORY_COLUMNS, FlagResult
from reconcile.analysis.nightly import CurrencyTotal, NightlySummary
from reconcile.clock import format_timestamp
from reconcile.money import format_amount, format_display
from reconcile.reports.charts import line_chart
from reconcile.reports.csvfile import frame_rows, write_frame_csv
from reconcile.reports.environment import environment
from reconcile.reports.output import report_folder, write_pieces
from reconcile.reports.workbook import write_flagged_xlsx

FLAGGED_EXTRA_COLUMNS = ["savings_basis"]
NAMES = ("nightly.html", "flagged.csv", "inventory.csv", "flagged.xlsx")


@dataclass(frozen=True)
class NightlyFiles:
    directory: Path
    html: Path
    flagged_csv: Path
    inventory_csv: Path
    flagged_xlsx: Path


def render_nightly(result: FlagResult, summarise: Callable[[], NightlySummary], settings_view: dict[str, Any],
                   out_dir: Path) -> tuple[NightlySummary, NightlyFiles]:
    """Write the files into `out_dir` (made if missing) as one set: all new, or the old ones kept.

    The CSVs and the workbook need only the flags: they are written alongside (by a forked
    copy, see `reconcile.alongside`) while `summarise()` makes the summary the page shows.
    """
    with report_folder(out_dir, "nightly report", NAMES) as staging, \
            alongside(lambda: _write_flag_files(result, staging), "writing the flagged and inventory files") as files:
        summary = summarise()
        pieces = environment().get_template("nightly.html.j2").generate(
            s=summary, flagged_json=flagged_json(result.flagged), flagged_count=len(result.flagged),
            charts=_charts(summary.trend), settings=settings_view, totals=totals_html,
            money=format_display, ts=format_timestamp, changes=_change_rows(summary, result))
        write_pieces(staging / "nightly.html", pieces)
        files.result()
    return summary, NightlyFiles(out_dir, *(out_dir / name for name in NAMES))


def _write_flag_files(result: FlagResult, staging: Path) -> None:
    write_frame_csv(staging / "flagged.csv", result.flagged, FLAGGED_COLUMNS + FLAGGED_EXTRA_COLUMNS)
    write_frame_csv(staging / "inventory.csv", result.inventory, INVENTORY_COLUMNS)
    write_flagged_xlsx(result.flagged, _agent_names(result.flagged), staging / "flagged.xlsx", result.as_of)


def totals_html(totals: list[CurrencyTotal], kind: str) -> Markup:
    """Per-currency totals as the page shows them: a `money` span each, or "none". Written here, not
    as a template macro: the by-agent table calls it twice for each of thousands of agents."""
    if not totals:
        return Markup('<span class="muted">none</span>')
    spans = []
    for t in totals:  # f-strings over escaped pieces: Markup.format runs a Python formatter per field
        head, tail = _span_parts(kind, t.currency)
        spans.append(f'{head}{t.count:d}">{escape(format_display(t.amount, t.currency))}{tail}')
    return Markup("<br>".join(spans))


@lru_cache(maxsize=256)
def _span_parts(kind: str, currency: str) -> tuple[str, str]:
    """A total's span around its count and amount: the same for every total of a kind and currency."""
    code = escape(currency)
    return f'<span class="money" data-total="{escape(kind)}" data-currency="{code}" data-count="', f" {code}</span>"


def flagged_json(flagged: pd.DataFrame) -> str:
    """The flagged rows as a JSON array of arrays, safe inside a <script> element.

    Per row: phone, number id, label, flag, reason, action, saving (text), saving (number,
    for sorting; -1 when unknown), carrier estimate (0/1), currency, idle days, flagged
    since (date), agent, country. Built column by column: 20,000 rows in well under a second.
    """
    def text(name: str) -> list[str]:
        column = flagged[name]
        if column.dtype == "str":  # text or NaN: blanks filled in C
            filled: list[str] = column.fillna("").tolist()
            return filled
        return [value if isinstance(value, str) else "" for value in column.tolist()]

    savings, currencies = flagged["monthly_savings"].tolist(), text("currency")
    since = _days(flagged["first_flagged_at"])
    names = _agent_names(flagged)
    agents = [names.get(a or b, a or b) for a, b in zip(text("inbound_agent_id"), text("outbound_agent_id"), strict=True)]
    shown: dict[tuple[Decimal, str], tuple[str, float]] = {}  # prices repeat: format each once
    for s, c in zip(savings, currencies, strict=True):
        if isinstance(s, Decimal) and (s, c) not in shown:
            shown[(s, c)] = (format_amount(s, c), float(s))
    amounts = [shown[(s, c)] if isinstance(s, Decimal) else ("", -1) for s, c in zip(savings, currencies, strict=True)]
    days_idle = flagged["idle_days"]
    idle = (days_idle.tolist() if pd.api.types.is_integer_dtype(days_idle)
            else [int(v) if pd.notna(v) else -1 for v in days_idle.tolist()])
    rows = list(zip(
        text("phone_number"), text("number_id"), text("label"), text("flag"), text("reason"), text("recommended_action"),
        [a[0] for a in amounts], [a[1] for a in amounts],
        [1 if basis == "carrier_estimate" else 0 for basis in text("savings_basis")],
        currencies, idle, since, agents,
        text("country_code"), strict=True))
    # what json.dumps(ensure_ascii=False, separators=(",", ":")) wrote, in a third of its time (27,654 rows:
    # 0.07 s -> 0.02 s); text orjson would refuse (a lone surrogate) never gets here: the client's orjson
    # refused it in the API's answer
    body = orjson.dumps(rows)
    # inside <script>, "</script>" or "<!--" in customer text must not end or confuse the element; replaced in
    # the UTF-8 bytes (no multi-byte sequence holds an ASCII byte): a quarter of the time on the decoded text
    return body.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026").decode("utf-8")


def _days(column: pd.Series) -> list[str]:
    """Each time's UTC date ("2026-11-01"), '' when blank. Streaks start on few distinct runs: each
    distinct time is formatted once, and the column is never made a Timestamp per row."""
    codes, distinct = pd.factorize(column)  # a blank's code is -1: the '' put last
    texts = [format_timestamp(value)[:10] if isinstance(value, dt.datetime) else ""  # factorize leaves NaT out
             for value in distinct] + [""]
    return [texts[code] for code in codes.tolist()]


def _charts(trend: pd.DataFrame) -> list[str]:
    if trend.empty:
        return [line_chart("Numbers owned", [], {})]
    runs = trend.drop_duplicates("run_id").sort_values("run_id")
    x = [value.to_pydatetime() if hasattr(value, "to_pydatetime") else value for value in runs["as_of"]]
    owned = trend.groupby("run_id")["numbers"].sum().reindex(runs["run_id"]).tolist()
    charts = [line_chart("Numbers owned (active and pending)", x, {"numbers": owned})]
    for currency in sorted(c for c in trend["currency"].unique() if c):
        part = trend[trend["currency"] == currency].set_index("run_id").reindex(runs["run_id"])
        cost = [v if isinstance(v, Decimal) else Decimal(0) for v in part["monthly_cost"]]
        waste = [v if isinstance(v, Decimal) else Decimal(0) for v in part["waste"]]
        charts.append(line_chart(f"Monthly cost and waste, {currency}", x,
                                 {f"monthly cost {currency}": cost, f"flagged {currency}": waste}))
    return charts


def _change_rows(summary: NightlySummary, result: FlagResult) -> dict[str, list[dict[str, Any]]]:
    """Every change row with its phone number and label (blank, never "nan"); flags with the flag."""
    limit = 200
    view: dict[str, list[dict[str, Any]]] = defaultdict(list)
    c = summary.changes
    known: dict[str, dict[str, Any]] = {}
    wanted = [str(n) for frame in (c.newly_flagged, c.resolved) for n in frame["number_id"].head(limit).tolist()]
    for frame in (c.released, c.bought, c.reassigned, result.inventory):
        if not wanted or "number_id" not in frame:
            continue
        frame = frame[frame["number_id"].isin(wanted)]
        for row in frame_rows(frame[[n for n in ("number_id", "phone_number", "label") if n in frame]]):
            known[str(row["number_id"])] = row
    names = _agent_names(result.inventory)  # the flagged rows are inventory rows: their agents are in it
    for name, frame in (("bought", c.bought), ("released", c.released), ("reassigned", c.reassigned)):
        for row in frame_rows(frame.head(limit)):
            view[name].append({"number_id": row["number_id"], "phone_number": row.get("phone_number") or "",
                               "label": row.get("label"), "detail": _change_detail(name, row, names)})
    for name, frame in (("newly_flagged", c.newly_flagged), ("resolved", c.resolved)):
        for row in frame_rows(frame.head(limit)):
            number = known.get(str(row["number_id"]), {})
            detail = (f"newly flagged: {row['flag']}" if name == "newly_flagged"
                      else f"{row['flag']} → {row.get('resolution') or 'resolved'}")
            view[name].append({"number_id": row["number_id"], "phone_number": number.get("phone_number") or "",
                               "label": number.get("label"), "detail": detail})
    return view


def _change_detail(kind: str, row: dict[str, Any], names: dict[str, str]) -> str:
    if kind == "reassigned":
        inbound, outbound = row.get("inbound_agent_id"), row.get("outbound_agent_id")
        return (f"inbound {names.get(inbound, inbound) if inbound else '-'}, "
                f"outbound {names.get(outbound, outbound) if outbound else '-'}")
    if kind == "released":
        return "released"
    return f"bought {format_timestamp(row['purchased_at'])}" if row.get("purchased_at") is not None else "bought"


def _agent_names(flagged: pd.DataFrame) -> dict[str, str]:
    """agent_id -> name, from the flagged rows' own columns (each distinct pair once)."""
    names: dict[str, str] = {}
    for direction in ("inbound", "outbound"):
        if f"{direction}_agent_name" in flagged:
            # an agent's name is the same in every row (the agents' own, as of the run): one entry per agent,
            # no pair kept per row
            pairs = dict(zip(flagged[f"{direction}_agent_id"].tolist(), flagged[f"{direction}_agent_name"].tolist(),
                             strict=True))
            for agent_id, name in pairs.items():
                if isinstance(agent_id, str) and isinstance(name, str):
                    names[agent_id] = name
    return names
