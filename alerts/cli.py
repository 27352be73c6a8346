"""The bodies of `wattline alerts list` and `wattline alerts deliver`.

The CLI module parses arguments and calls these; they read the lake's alerts file
(rewritten atomically by `wattline jobs run`, so never half-written) and the outbox.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import polars as pl

from alerts.deliver import deliver_pending
from alerts.lifecycle import json_ready, plan
from alerts.outbox import Outbox
from alerts.settings import SEVERITIES, AlertSettings, load_alert_settings
from warehouse.lake import Lake

log = logging.getLogger(__name__)
_COLUMNS = (
    ("alert_id", "alert"),
    ("device_id", "device"),
    ("site", "site"),
    ("rule", "rule"),
    ("severity", "severity"),
    ("status", "status"),
    ("opened_day", "opened"),
    ("last_seen_day", "last seen"),
    ("waste_kwh_per_year", "kWh/yr"),
    ("cost_per_year", "cost/yr"),
    ("currency", "cur"),
    ("co2_kg_per_year", "CO2 kg/yr"),
)


def read_alerts(lake_root: Path) -> list[dict[str, Any]]:
    """Every alert row, JSON-ready; an absent file (no job run yet) is no alerts."""
    path = Lake(lake_root).alerts_path
    if not path.exists():
        return []
    return [json_ready(row) for row in pl.read_parquet(path).iter_rows(named=True)]


def list_alerts(lake_root: Path, site: str | None, status: str | None, severity: str | None) -> str:
    """A readable table of alerts (exact-match filters), most money per year first."""
    if status not in (None, "open", "resolved"):
        raise ValueError("status must be open or resolved")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    rows = [
        a
        for a in read_alerts(lake_root)
        if (site is None or a["site"] == site)
        and (status is None or a["status"] == status)
        and (severity is None or a["severity"] == severity)
    ]
    if not rows:
        return "no alerts"
    rows.sort(key=lambda a: -(a.get("cost_per_year") or a.get("waste_kwh_per_year") or 0.0))
    table = [[title for _, title in _COLUMNS]]
    table += [[_cell(a.get(key)) for key, _ in _COLUMNS] for a in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
    numeric = {i for i, (key, _) in enumerate(_COLUMNS) if key.endswith("_per_year")}
    lines = [
        "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def deliver(lake_root: Path, config_path: Path | None, dry_run: bool) -> int:
    """Enqueue lifecycle notifications from the alerts file, then send them.

    Returns 0 when nothing is left pending and nothing failed in this run, else 1 (the
    rows stay in the outbox; the next run retries pending ones). With `dry_run`, prints
    every message that would be sent and changes nothing.
    """
    settings = load_alert_settings(config_path)
    return deliver_with(lake_root, settings, dry_run)


def deliver_with(lake_root: Path, settings: AlertSettings, dry_run: bool = False) -> int:
    """`deliver` with settings already built (tests pass them explicitly)."""
    outbox = Outbox(settings.outbox_for(lake_root))
    try:
        with outbox.lock():
            now = time.time()
            planned = plan(read_alerts(lake_root), settings.endpoints, outbox.history(), now)
            if dry_run:
                _print_dry_run(outbox, planned)
                return 0
            added = outbox.enqueue(planned, now)
            log.info(
                "alerts enqueued %d notifications (%d endpoints)", added, len(settings.endpoints)
            )
            report = deliver_pending(outbox.path, settings)
    finally:
        outbox.close()
    print(report.summary())
    return 0 if report.pending == 0 and report.failed == 0 else 1


def _print_dry_run(outbox: Outbox, planned: list[Any]) -> None:
    waiting = [(d.endpoint, d.event, d.alert_id, d.body) for d in outbox.pending()]
    new = [(d.endpoint, d.event, d.alert_id, d.body) for d in planned]
    print(f"dry run: {len(waiting)} pending in the outbox, {len(new)} new; nothing sent")
    for endpoint, event, alert_id, body in waiting + new:
        print(f"--- {endpoint} {event} {alert_id}\n{body}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)


def delivery_counts(lake_root: Path) -> dict[str, int]:
    """Notifications in the outbox by status (delivered, pending, failed), read-only.

    For the consumer's /metrics: the deliverer is a short-lived command, so its outcome
    is scraped from the outbox it leaves behind. Empty when no outbox exists yet.
    """
    path = AlertSettings().outbox_for(lake_root)
    if not path.exists():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    try:
        rows = con.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    return {str(status): int(n) for status, n in rows}
