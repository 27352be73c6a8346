"""TLS, passwords and ACLs against a real Mosquitto: what works lands, what is refused says why.

The broker (tests/conftest.py `secure_broker`) has one TLS listener that requires a client
certificate, a password file made by mosquitto_passwd and an ACL: the `gateway` user may
publish only under this test's site, the `consumer` user may only subscribe.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from edge.gateway import Gateway, MqttLink
from edge.gateway_cli import BrokerConfig, DeviceConfig, GatewayConfig, GatewaySection
from edge.spool import SpoolConfig
from ingest.consumer import Consumer
from ingest.mqtt import ConnectRefused
from tests.conftest import PASSWORDS, ConsumerThread, secure_mqtt, settings_for, write_toml
from tests.edge.test_gateway import Ticker
from tests.ingest.test_crash import wait_landed
from wattline.broker import Broker
from wattline.config import Settings

pytestmark = [pytest.mark.broker]
T0_MS = 1_795_219_200_000
SECRETS = tuple(PASSWORDS.values())


def consumer_settings(broker: Broker, pki: Path, tmp: Path, site: str, **mqtt: object) -> Settings:
    base = settings_for(broker, tmp, site)
    secured = secure_mqtt(broker, pki, client_id=base.mqtt.client_id, topic=base.mqtt.topic)
    return replace(base, mqtt=replace(secured, **mqtt)).validate()  # type: ignore[arg-type]


def gateway_broker(broker: Broker, pki: Path, **over: object) -> BrokerConfig:
    """The gateway's [broker] section for `secure_broker`."""
    config = BrokerConfig(
        host=broker.host, port=broker.port, client_id="gw-secure", username="gateway",
        password=PASSWORDS["gateway"], tls=True, ca_file=pki / "ca.crt",
        cert_file=pki / "client.crt", key_file=pki / "client.key",
        reconnect_min_s=0.2, reconnect_max_s=0.5,
    )  # fmt: skip
    return replace(config, **over)  # type: ignore[arg-type]


async def publish_with_gateway_link(config: BrokerConfig, topics: list[str]) -> list[int]:
    """The gateway's own connection code: PUBACK reason code per publish."""
    link = MqttLink(config, max_inflight=10)
    link.start()
    try:
        await asyncio.wait_for(link.connected.wait(), 10)
        payload = b'{"ts": %d, "power_kw": 1.5}' % T0_MS
        return [await asyncio.wait_for(link.publish(t, payload), 10) for t in topics]
    finally:
        await link.stop()


def refusal(settings: Settings, caplog: pytest.LogCaptureFixture) -> str:
    """Run the consumer until its fatal error; the error text, checked free of secrets."""
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectRefused) as info:
        Consumer(settings).run()
    message = str(info.value)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(s in message or s in logged for s in SECRETS)
    return message


def test_tls_and_password_land_a_reading(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str
) -> None:
    settings = consumer_settings(secure_broker, pki, tmp_path, site)
    with ConsumerThread(settings):
        codes = asyncio.run(
            publish_with_gateway_link(gateway_broker(secure_broker, pki), [f"telemetry/{site}/d1"])
        )
        assert codes == [0]
        assert wait_landed(settings.lake.root, site, 1, timeout_s=20) == (1, 1)


def test_hostname_localhost_is_verified_and_accepted(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str
) -> None:
    settings = consumer_settings(secure_broker, pki, tmp_path, site, host="localhost")
    with ConsumerThread(settings) as running:
        assert running.consumer.subscriber.refused is None


def test_wrong_password_is_refused_naming_the_keys(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = consumer_settings(secure_broker, pki, tmp_path, site, password="not-it-Zq7")
    message = refusal(settings, caplog)
    # Mosquitto 2.0.11 answers a wrong password with 0x87 Not authorized, not 0x86
    assert "refused the connection: Not authorized (check mqtt.username and mqtt.pass" in message
    assert "not-it-Zq7" not in message


def test_wrong_ca_is_refused_naming_the_certificate(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    other = str(pki / "other-ca.crt")
    message = refusal(consumer_settings(secure_broker, pki, tmp_path, site, ca_file=other), caplog)
    assert "certificate is not trusted by mqtt.ca_file" in message


def test_missing_client_certificate_is_refused(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = consumer_settings(secure_broker, pki, tmp_path, site, cert_file="", key_file="")
    assert "client certificate" in refusal(settings, caplog)


def test_gateway_publish_outside_its_acl_gets_puback_135(
    secure_broker: Broker, pki: Path, site: str
) -> None:
    """Mosquitto 2.0.11 answers a denied MQTT 5 QoS 1 publish with PUBACK 0x87.

    An allowed publish nobody subscribes to gets 0x10 (no matching subscribers): success.
    """
    topics = [f"telemetry/{site}/d1", "telemetry/someone-else/d1"]
    codes = asyncio.run(publish_with_gateway_link(gateway_broker(secure_broker, pki), topics))
    assert codes == [0x10, 0x87]


def test_gateway_outside_its_acl_counts_refusals_and_keeps_the_batch(
    secure_broker: Broker, pki: Path, tmp_path: Path
) -> None:
    config = GatewayConfig(
        GatewaySection(id="gw", site="not-my-site", publish_interval_s=0.05, drain_timeout_s=0),
        SpoolConfig(tmp_path / "spool"),
        (DeviceConfig(id="d1", interval_s=0.01),),
        gateway_broker(secure_broker, pki),
    )

    async def main() -> Gateway:
        gateway, stop = Gateway(config, [Ticker("d1")]), asyncio.Event()
        run = asyncio.create_task(gateway.run(stop))
        while gateway.counters.publishes_refused < 1:
            await asyncio.sleep(0.02)
        stop.set()
        await run
        return gateway

    gateway = asyncio.run(asyncio.wait_for(main(), 30))
    assert gateway.counters.publishes_refused >= 1 and gateway.counters.messages_acked == 0
    assert gateway.spool.readings > 0  # kept for replay, not lost


def test_cli_refusal_is_one_line_exit_2_without_the_password(
    secure_broker: Broker, pki: Path, tmp_path: Path, site: str
) -> None:
    settings = consumer_settings(secure_broker, pki, tmp_path, site, password="wr0ng-Pw-55")
    config = write_toml(settings, tmp_path / "wattline.toml")
    result = subprocess.run(
        [sys.executable, "-m", "wattline.cli", "--config", str(config), "consume"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "wr0ng-Pw-55" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wattline consume: broker 127.0.0.1:")
    assert "Not authorized (check mqtt.username and mqtt.password" in last
