"""Which notifications an alerts table calls for, given what each endpoint was told.

The analytics job rewrites the whole `alerts` table every run, so "changed since last
time" is worked out here against the outbox history, per endpoint:

- `opened`: an open alert the endpoint has not heard of (and whose maximum severity
  passes its filter);
- `escalated:<severity>`: the alert's maximum severity rose above the highest severity
  already sent (once per level; a drop and rise again does not repeat);
- `resolved`: the alert resolved and the endpoint was told it opened (a resolved alert
  it never heard of is history, not news);
- `reminder:<n>`: optional, when still open `remind_after_h` after the last message.

An unchanged rerun therefore plans nothing (DESIGN guarantee 6: not noisy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from alerts.formats import build_body
from alerts.outbox import NewDelivery, Past, delivery_id
from alerts.settings import Endpoint, rank


def plan(
    alerts: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Endpoint],
    history: Mapping[tuple[str, str], list[Past]],
    now: float,
) -> list[NewDelivery]:
    """New outbox rows, in the order they should reach each endpoint (oldest alert first)."""
    ordered = sorted(alerts, key=lambda a: (str(a["opened_day"]), str(a["alert_id"])))
    out: list[NewDelivery] = []
    for endpoint in endpoints:
        for alert in ordered:
            past = history.get((endpoint.name, str(alert["alert_id"])), [])
            event = next_event(alert, endpoint, past, now)
            if event is None:
                continue
            body = build_body(
                endpoint, dict(alert), event, delivery_id(endpoint.name, alert["alert_id"], event)
            )
            severity = str(alert["max_severity"] or alert["severity"])
            out.append(NewDelivery(endpoint.name, str(alert["alert_id"]), event, severity, body))
    return out


def next_event(
    alert: Mapping[str, Any], endpoint: Endpoint, past: list[Past], now: float
) -> str | None:
    """The one lifecycle event this alert owes this endpoint now, if any."""
    max_severity = str(alert["max_severity"] or alert["severity"])
    events = {p.event for p in past}
    if alert["status"] == "resolved":
        return "resolved" if "opened" in events and "resolved" not in events else None
    if not endpoint.accepts(str(alert["site"]), max_severity):
        return None
    if "opened" not in events:
        return "opened"
    if rank(max_severity) > max(rank(p.severity) for p in past):
        return f"escalated:{max_severity}"
    if endpoint.remind_after_h > 0 and now - past[-1].created_at >= endpoint.remind_after_h * 3600:
        reminders = sum(1 for p in past if p.event.startswith("reminder:"))
        return f"reminder:{reminders + 1}"
    return None


def json_ready(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alerts row with days as YYYY-MM-DD and instants as RFC 3339 UTC (`Z`)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out
