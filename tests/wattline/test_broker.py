"""The embedded broker the demo falls back to when Mosquitto is not installed."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ConsumerThread, settings_for
from wattline.broker import make_broker


@pytest.mark.broker
def test_embedded_amqtt_fallback_lands_and_acks(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "amqtt", prefer="amqtt")
    assert broker.kind == "amqtt (embedded)"
    broker.start()
    try:
        settings = settings_for(broker, tmp_path, "fallback")
        settings = replace(settings, mqtt=replace(settings.mqtt, protocol="3.1.1"))
        with ConsumerThread(settings) as ct:
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id="pub",
                protocol=paho.MQTTv311,
            )
            client.connect(broker.host, broker.port)
            client.loop_start()
            infos = [
                client.publish(
                    "telemetry/fallback/m1",
                    f'{{"ts": {1795219200000 + i * 1000}, "power_kw": 1}}',
                    qos=1,
                )
                for i in range(100)
            ]
            for info in infos:
                info.wait_for_publish(10)
            deadline = time.monotonic() + 20
            while ct.consumer.totals.acked < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            client.disconnect()
            client.loop_stop()
        assert (ct.consumer.totals.landed, ct.consumer.totals.acked) == (100, 100)
    finally:
        broker.stop()
