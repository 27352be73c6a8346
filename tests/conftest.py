"""Shared fixtures: a real Mosquitto per session on a free loopback port, settings per test."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from wattline.broker import Broker, find_mosquitto, make_broker
from wattline.config import CatalogSettings, IngestSettings, LakeSettings, MqttSettings, Settings

_ids = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: `make test` installs it with apt-get")
    b = make_broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker this test alone may stop and restart."""
    b = make_broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def site() -> str:
    """A unique site per test, so topics never cross between tests on the shared broker."""
    return f"s{next(_ids)}-{uuid.uuid4().hex[:8]}"


def settings_for(broker: Broker, root: Path, site: str, **ingest: object) -> Settings:
    return Settings(
        mqtt=MqttSettings(
            host=broker.host,
            port=broker.port,
            client_id=f"consumer-{site}",
            topic=f"telemetry/{site}/#",
        ),
        ingest=replace(IngestSettings(flush_interval_s=0.2), **ingest),  # type: ignore[arg-type]
        lake=LakeSettings(root=root / "lake"),
        catalog=CatalogSettings(path=root / "catalog.duckdb"),
    ).validate()


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, broker: Broker, client_id: str | None = None) -> None:
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict[str, object], qos: int = 1) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=10)

    def publish_many(self, items: list[tuple[str, bytes]], qos: int = 1) -> None:
        infos = [self.client.publish(t, p, qos=qos) for t, p in items]
        for info in infos:
            info.wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    p = Publisher(broker)
    yield p
    p.close()


class ConsumerThread:
    """The real consumer, in a thread of the test process (for in-process tests)."""

    def __init__(self, settings: Settings) -> None:
        from ingest.consumer import Consumer

        self.consumer = Consumer(settings)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.consumer.run()))

    def __enter__(self) -> ConsumerThread:
        self.thread.start()
        if not self.consumer.subscriber.connected.wait(10):
            raise TimeoutError("consumer did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.stop()
        self.thread.join(30)


def write_toml(settings: Settings, path: Path) -> Path:
    """The settings as a config file, for consumers run as real subprocesses."""
    import dataclasses

    lines = []
    for section in dataclasses.fields(settings):
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(getattr(settings, section.name)):
            value = getattr(getattr(settings, section.name), f.name)
            lines.append(
                f"{f.name} = {json.dumps(str(value) if isinstance(value, Path) else value)}"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


class ConsumerProcess:
    """`wattline consume` as a child process that a test can SIGKILL."""

    def __init__(self, config: Path, log_path: Path, failpoint: str = "") -> None:
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLINE_")}
        if failpoint:
            env["WATTLINE_FAILPOINT"] = failpoint
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wattline.cli", "--config", str(config), "consume"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_connected(self, timeout_s: float = 20.0) -> None:
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "mqtt subscribed" in self.log_path.read_text():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"consumer exited: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError("consumer did not connect")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def terminate(self) -> int:
        import signal

        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


# --- TLS, passwords and ACLs (tests/security, tests/ops) ---------------------------------

PASSWORDS = {"consumer": "c0nsumer-Secret!x9", "gateway": "g4teway-Secret!k2"}


def _openssl(cwd: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(cwd: Path, name: str) -> None:
    _openssl(cwd, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN=Wattline test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip


def _leaf(cwd: Path, name: str, ca: str, extensions: str) -> None:
    (cwd / f"{name}.ext").write_text(extensions + "\nbasicConstraints=CA:FALSE\n")
    _openssl(cwd, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey",
             f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
             "-extfile", f"{name}.ext")  # fmt: skip


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca (signs server, client), other-ca (unrelated), server for 127.0.0.1/localhost."""
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth")  # fmt: skip
    _leaf(d, "client", "ca", "extendedKeyUsage=clientAuth")
    return d


def acl_for(site: str) -> str:
    """Gateway user: publish only under its site. Consumer user: subscribe only."""
    return (
        f"user gateway\ntopic write telemetry/{site}/#\n\nuser consumer\ntopic read telemetry/#\n"
    )


@pytest.fixture
def secure_broker(pki: Path, tmp_path: Path, site: str) -> Iterator[Broker]:
    """Mosquitto with TLS (client certificate required), a password file and an ACL."""
    import subprocess

    from wattline.broker import BrokerSecurity, make_secure_broker

    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: `make test` installs it with apt-get")
    d = tmp_path / "secure-broker"
    d.mkdir()
    passwd = d / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *flags, "-b", str(passwd), user, password],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
    (d / "acl").write_text(acl_for(site))
    sec = BrokerSecurity(pki / "ca.crt", pki / "server.crt", pki / "server.key", passwd, d / "acl")
    b = make_secure_broker(d, sec)
    b.start()
    yield b
    b.stop()


def secure_mqtt(broker: Broker, pki: Path, user: str = "consumer", **over: object) -> MqttSettings:
    """The consumer's TLS + password settings for `secure_broker`; `over` replaces keys."""
    mqtt = MqttSettings(
        host=broker.host, port=broker.port, username=user, password=PASSWORDS[user], tls=True,
        ca_file=str(pki / "ca.crt"), cert_file=str(pki / "client.crt"),
        key_file=str(pki / "client.key"),
    )  # fmt: skip
    return replace(mqtt, **over)  # type: ignore[arg-type]


BUCKET = "energy-lake"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server in a process of its own on a free loopback port. (In this
    process, a delta-rs call that waits on the server while holding the GIL starves the
    server's thread: requests timed out after 180 s.)"""
    import subprocess
    import sys
    import time

    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.1)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "wattline-test",
        "AWS_SECRET_ACCESS_KEY": "wattline-test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)  # the consumers inherit them
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL (127.0.0.1:5432, trust auth),
    dropped afterwards; WATTLINE_TEST_PG overrides the server URL."""
    import os

    psycopg = pytest.importorskip("psycopg")
    server = os.environ.get("WATTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"wattline_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"SKIPPED LOUDLY: no PostgreSQL at {server}: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
