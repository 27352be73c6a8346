"""Retries, backoff, Retry-After, timeouts and permanent failures against real receivers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from alerts.cli import deliver_with
from alerts.outbox import Outbox
from alerts.settings import AlertSettings, Endpoint
from tests.alerts import Received, Receiver, Reply, alert, ok, write_alerts
from wattline.broker import free_port

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 2.0, "max_run_s": 15.0}


def _settings(url: str, **overrides: float) -> AlertSettings:
    endpoint = Endpoint(name="hq", url=url, format="generic", secret="k")
    return AlertSettings(endpoints=(endpoint,), **{**FAST, **overrides})  # type: ignore[arg-type]


def _outbox(tmp_path: Path) -> list[dict[str, object]]:
    box = Outbox(tmp_path / "alerts" / "outbox.sqlite")
    try:
        return box.rows()
    finally:
        box.close()


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a state another process or thread changes (the outbox has no notifier)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _three_alerts(tmp_path: Path) -> None:
    write_alerts(tmp_path, [alert(f"a{i}", device_id=f"pump-0{i}") for i in (1, 2, 3)])


def test_receiver_down_then_up_gets_everything_in_order(tmp_path: Path) -> None:
    _three_alerts(tmp_path)
    port = free_port()
    settings = _settings(f"http://127.0.0.1:{port}/hook")
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(deliver_with(tmp_path, settings)))
    worker.start()
    _wait_until(lambda: any(int(str(r["attempts"])) >= 2 for r in _outbox(tmp_path)))
    receiver = Receiver(port=port).start()
    try:
        got = receiver.wait_for(3)
        worker.join(15)
        assert codes == [0]
        assert [r.json()["alert"]["alert_id"] for r in got] == ["a1", "a2", "a3"]
        rows = _outbox(tmp_path)
        assert {r["status"] for r in rows} == {"delivered"}
        assert int(str(rows[0]["attempts"])) >= 3 and rows[1]["attempts"] == 1
    finally:
        receiver.stop()


def test_429_honours_retry_after(tmp_path: Path) -> None:
    write_alerts(tmp_path, [alert("a1")])

    def throttled(index: int, got: Received) -> Reply:
        return (429, {"Retry-After": "1"}, b"slow down", 0.0) if index == 0 else ok(index, got)

    receiver = Receiver(throttled).start()
    try:
        assert deliver_with(tmp_path, _settings(receiver.url)) == 0
        first, second = receiver.wait_for(2)
        assert second.at - first.at >= 0.95
        assert first.headers["X-Wattline-Delivery"] == second.headers["X-Wattline-Delivery"]
        (row,) = _outbox(tmp_path)
        assert row["status"] == "delivered" and row["attempts"] == 2
    finally:
        receiver.stop()


def test_slow_receiver_past_timeout_is_retried(tmp_path: Path) -> None:
    write_alerts(tmp_path, [alert("a1")])

    def slow_once(index: int, got: Received) -> Reply:
        return (200, {}, b"{}", 1.0) if index == 0 else ok(index, got)

    receiver = Receiver(slow_once).start()
    try:
        assert deliver_with(tmp_path, _settings(receiver.url, timeout_s=0.3)) == 0
        got = receiver.wait_for(2)
        assert len({r.headers["X-Wattline-Delivery"] for r in got}) == 1
        (row,) = _outbox(tmp_path)
        assert row["status"] == "delivered" and row["attempts"] == 2
    finally:
        receiver.stop()


def test_5xx_retries_then_delivers(tmp_path: Path) -> None:
    write_alerts(tmp_path, [alert("a1")])

    def flaky(index: int, got: Received) -> Reply:
        return (503, {}, b"busy", 0.0) if index < 2 else ok(index, got)

    receiver = Receiver(flaky).start()
    try:
        assert deliver_with(tmp_path, _settings(receiver.url)) == 0
        assert len(receiver.wait_for(3)) == 3
        (row,) = _outbox(tmp_path)
        assert row["status"] == "delivered" and row["attempts"] == 3
    finally:
        receiver.stop()


def test_4xx_is_permanent_recorded_and_does_not_block_the_rest(tmp_path: Path) -> None:
    _three_alerts(tmp_path)

    def rejects_first(index: int, got: Received) -> Reply:
        if got.json()["alert"]["alert_id"] == "a1":
            return 400, {}, b'{"error":"bad payload"}', 0.0
        return ok(index, got)

    receiver = Receiver(rejects_first).start()
    try:
        assert deliver_with(tmp_path, _settings(receiver.url)) == 1
        rows = _outbox(tmp_path)
        assert [r["status"] for r in rows] == ["failed", "delivered", "delivered"]
        assert rows[0]["response_status"] == 400 and rows[0]["attempts"] == 1
        assert "bad payload" in str(rows[0]["last_error"])
        assert len(receiver.requests) == 3
    finally:
        receiver.stop()


def test_still_down_at_the_end_of_the_run_stays_pending(tmp_path: Path) -> None:
    write_alerts(tmp_path, [alert("a1")])
    settings = _settings(f"http://127.0.0.1:{free_port()}/hook", max_run_s=0.3)
    assert deliver_with(tmp_path, settings) == 1
    (row,) = _outbox(tmp_path)
    assert row["status"] == "pending" and int(str(row["attempts"])) >= 1


def test_delivery_outcomes_are_counted_for_the_consumers_metrics(tmp_path: Path) -> None:
    from alerts.cli import delivery_counts

    assert delivery_counts(tmp_path) == {}  # no outbox yet: nothing, and none created
    _three_alerts(tmp_path)
    receiver = Receiver().start()
    try:
        assert deliver_with(tmp_path, _settings(receiver.url)) == 0
    finally:
        receiver.stop()
    assert delivery_counts(tmp_path) == {"delivered": 3}
