"""A deliverer killed with SIGKILL mid-batch loses and duplicates nothing by delivery id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from alerts.outbox import Outbox
from tests.alerts import Received, Receiver, Reply, alert, ok, write_alerts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from pathlib import Path
from alerts.cli import deliver_with
from alerts.settings import AlertSettings, Endpoint
url, lake = sys.argv[1], Path(sys.argv[2])
endpoint = Endpoint(name="hq", url=url, format="generic", secret="k")
settings = AlertSettings(endpoints=(endpoint,), backoff_initial_s=0.05, backoff_max_s=0.2,
                         timeout_s=5.0, max_run_s=15.0)
sys.exit(deliver_with(lake, settings))
"""


def _run(url: str, lake: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, url, str(lake)], cwd=ROOT)


def test_sigkill_mid_batch_then_restart_delivers_each_exactly_once(tmp_path: Path) -> None:
    ids = [f"a{i}" for i in range(1, 7)]
    write_alerts(tmp_path, [alert(a, device_id=f"pump-{a}") for a in ids])
    in_flight = threading.Event()
    release = threading.Event()

    def hangs_on_third(index: int, got: Received) -> Reply:
        if index == 2:
            in_flight.set()
            release.wait(10)
            return 200, {}, b"{}", 0.0
        return ok(index, got)

    receiver = Receiver(hangs_on_third).start()
    try:
        first = _run(receiver.url, tmp_path)
        assert in_flight.wait(20), "deliverer never reached the third request"
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        release.set()
        second = _run(receiver.url, tmp_path)
        assert second.wait(30) == 0
        kept = receiver.unique()
        alert_ids = {
            r.headers["X-Wattline-Delivery"]: r.json()["alert"]["alert_id"]
            for r in receiver.requests
        }
        assert [alert_ids[k] for k in kept] == ids
        assert len(receiver.requests) == len(ids) + 1
        box = Outbox(tmp_path / "alerts" / "outbox.sqlite")
        try:
            rows = box.rows()
        finally:
            box.close()
        assert [r["status"] for r in rows] == ["delivered"] * len(ids)
        assert json.loads(str(rows[2]["body"]))["alert"]["alert_id"] == "a3"
    finally:
        release.set()
        receiver.stop()
