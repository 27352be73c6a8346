"""Lifecycle: open, unchanged rerun, escalation and resolution each notify once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from alerts.cli import deliver_with, list_alerts
from alerts.lifecycle import next_event
from alerts.outbox import Past
from alerts.settings import AlertSettings, Endpoint
from tests.alerts import Receiver, alert, write_alerts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _events(receiver: Receiver, endpoint: str) -> list[str]:
    return [r.json()["event_key"] for r in receiver.requests if r.path.endswith(endpoint)]


def test_open_rerun_escalate_resolve_notify_once_each(tmp_path: Path, receiver: Receiver) -> None:
    endpoints = (
        Endpoint(name="all", url=f"{receiver.url}/all", min_severity="info"),
        Endpoint(name="crit", url=f"{receiver.url}/crit", min_severity="critical"),
        Endpoint(name="bj", url=f"{receiver.url}/bj", sites=("plant-bj",)),
        Endpoint(name="off", url=f"{receiver.url}/off", enabled=False),
    )
    settings = AlertSettings(endpoints=endpoints, max_run_s=5.0)
    steps = [
        alert("a1", severity="warning"),
        alert("a1", severity="warning"),
        alert("a1", severity="critical"),
        alert("a1", severity="warning", max_severity="critical"),
        alert(
            "a1",
            severity="warning",
            max_severity="critical",
            status="resolved",
            resolved_day=date(2026, 11, 24),
        ),
        alert(
            "a1",
            severity="warning",
            max_severity="critical",
            status="resolved",
            resolved_day=date(2026, 11, 24),
        ),
    ]
    for row in steps:
        write_alerts(tmp_path, [row])
        assert deliver_with(tmp_path, settings) == 0
    assert _events(receiver, "/all") == ["opened", "escalated:critical", "resolved"]
    assert _events(receiver, "/crit") == ["opened", "resolved"]
    assert _events(receiver, "/bj") == [] and _events(receiver, "/off") == []
    resolved = next(r.json() for r in receiver.requests if r.json()["event"] == "resolved")
    assert resolved["text"].startswith("Resolved on: 2026-11-24")


def test_resolved_alert_never_announced_is_not_news(tmp_path: Path, receiver: Receiver) -> None:
    write_alerts(tmp_path, [alert("old", status="resolved", resolved_day=date(2026, 1, 2))])
    settings = AlertSettings(endpoints=(Endpoint(name="hq", url=receiver.url),), max_run_s=5.0)
    assert deliver_with(tmp_path, settings) == 0
    assert receiver.requests == []


def test_reminder_after_interval_once_per_interval() -> None:
    endpoint = Endpoint(name="hq", url="http://127.0.0.1:9/", remind_after_h=24.0)
    row = alert("a1")
    opened = [Past("opened", "warning", 1000.0)]
    assert next_event(row, endpoint, opened, now=1000.0 + 23 * 3600) is None
    assert next_event(row, endpoint, opened, now=1000.0 + 24 * 3600) == "reminder:1"
    reminded = [*opened, Past("reminder:1", "warning", 1000.0 + 24 * 3600)]
    assert next_event(row, endpoint, reminded, now=1000.0 + 30 * 3600) is None
    assert next_event(row, endpoint, reminded, now=1000.0 + 48 * 3600) == "reminder:2"
    no_reminders = Endpoint(name="hq", url="http://127.0.0.1:9/")
    assert next_event(row, no_reminders, opened, now=1e12) is None


def test_dry_run_prints_and_sends_nothing(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    write_alerts(tmp_path, [alert("a1"), alert("a2", device_id="fan-02")])
    settings = AlertSettings(endpoints=(Endpoint(name="hq", url=receiver.url),), max_run_s=5.0)
    assert deliver_with(tmp_path, settings, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "0 pending in the outbox, 2 new; nothing sent" in out and "fan-02" in out
    assert receiver.requests == []
    assert deliver_with(tmp_path, settings) == 0
    assert len(receiver.wait_for(2)) == 2


def test_list_alerts_table_and_filters(tmp_path: Path) -> None:
    write_alerts(
        tmp_path,
        [alert("a1", severity="critical"), alert("a2", site="plant-bj", device_id="fan-02")],
    )
    table = list_alerts(tmp_path, site=None, status="open", severity=None)
    assert table.splitlines()[0].split()[:3] == ["alert", "device", "site"]
    assert "pump-01" in table and "fan-02" in table and "18,000" in table
    only_bj = list_alerts(tmp_path, site="plant-bj", status=None, severity=None)
    assert "fan-02" in only_bj and "pump-01" not in only_bj
    assert list_alerts(tmp_path, None, "resolved", None) == "no alerts"
    assert list_alerts(tmp_path / "empty", None, None, None) == "no alerts"
    with pytest.raises(ValueError):
        list_alerts(tmp_path, None, "closed", None)
