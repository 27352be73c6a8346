"""Two consumers in one MQTT shared subscription; one SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ConsumerProcess, Publisher, settings_for, write_toml
from tests.ingest.test_crash import _paced, stream, wait_landed
from wattline.broker import Broker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_shared_subscription_kill_one_consumer_every_reading_lands_once(
    broker: Broker, site: str, tmp_path: Path
) -> None:
    """Each consumer has its own client id (so its own session and file names), one lake."""
    base = settings_for(broker, tmp_path, site)
    topic = f"$share/g-{site}/telemetry/{site}/#"
    configs = []
    for name in ("a", "b"):
        mqtt = replace(base.mqtt, client_id=f"consumer-{name}-{site}", topic=topic)
        configs.append(write_toml(replace(base, mqtt=mqtt), tmp_path / f"{name}.toml"))
    logs = [tmp_path / "a.log", tmp_path / "b.log", tmp_path / "a-restarted.log"]
    # One after the other: two consumers preparing an empty lake at the same instant race
    # on its schema placeholder files (warehouse/lake.py uses one fixed temporary name).
    a = ConsumerProcess(configs[0], logs[0])
    a.wait_connected()
    b = ConsumerProcess(configs[1], logs[1])
    b.wait_connected()
    items = stream(site, messages=2000, per_message=10)
    publisher = Publisher(broker)
    sender = threading.Thread(target=_paced, args=(publisher, items, 5.0))
    sender.start()
    try:
        time.sleep(1.5)
        a.kill()  # SIGKILL with a batch in hand: unacked, the broker must redeliver it
        time.sleep(0.5)
        a = ConsumerProcess(configs[0], logs[2])
        a.wait_connected()
        sender.join()
        total, distinct = wait_landed(base.lake.root, site, 20_000)
    finally:
        sender.join()
        publisher.close()
        codes = [p.terminate() for p in (a, b)]
    assert codes == [0, 0]
    assert all("batch=" in log.read_text() for log in logs)  # all three landed batches
    assert (total, distinct) == (20_000, 20_000)
