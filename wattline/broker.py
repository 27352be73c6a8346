"""Start a private MQTT broker on a free loopback port: Mosquitto, or an embedded one.

Used by the demo, the tests' fixture and the benches; never touches the system
broker on 1883. Mosquitto started as root drops to the `mosquitto` user unless the
config names a user, and then cannot write its persistence directory: the config
written here names the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(RuntimeError):
    """The broker could not be started; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    for name in MOSQUITTO_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def mosquitto_conf(port: int, data_dir: Path, extra: str = "") -> str:
    """A test/demo broker config in the spirit of deploy/mosquitto/mosquitto.conf."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    return (
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                f"user {user}",
                "persistence true",
                f"persistence_location {data_dir}/",
                "autosave_interval 60",
                "max_queued_messages 1000000",
                "max_queued_bytes 0",
                "max_inflight_messages 0",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                extra,
            ]
        )
        + "\n"
    )


@dataclass
class Broker:
    """A running broker process. `kind` is "mosquitto" or "amqtt (embedded)"."""

    kind: str
    port: int
    data_dir: Path
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "broker.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self, timeout_s: float = 10.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"{self.kind} exited at start: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"{self.kind} did not listen on port {self.port} in {timeout_s} s")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass(frozen=True)
class BrokerSecurity:
    """A TLS listener with passwords and an ACL: the files Mosquitto reads (PEM, its formats)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    password_file: Path
    acl_file: Path
    require_certificate: bool = True


def secure_mosquitto_conf(port: int, data_dir: Path, sec: BrokerSecurity) -> str:
    """Like deploy/mosquitto/secure/mosquitto.conf, on a loopback port of its own."""
    base = mosquitto_conf(port, data_dir).replace("allow_anonymous true", "allow_anonymous false")
    return base + "\n".join(
        [
            f"cafile {sec.ca_file}",
            f"certfile {sec.cert_file}",
            f"keyfile {sec.key_file}",
            f"require_certificate {str(sec.require_certificate).lower()}",
            f"password_file {sec.password_file}",
            f"acl_file {sec.acl_file}",
            "",
        ]
    )


def make_secure_broker(data_dir: Path, sec: BrokerSecurity, port: int | None = None) -> Broker:
    """Mosquitto (required: the embedded broker has no TLS) with `sec` on its only listener."""
    binary = find_mosquitto()
    if binary is None:
        raise BrokerError("a secure test broker needs mosquitto")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = data_dir / "mosquitto.conf"
    conf.write_text(secure_mosquitto_conf(port, data_dir, sec))
    return Broker("mosquitto", port, data_dir, [binary, "-c", str(conf)])


def make_broker(data_dir: Path, port: int | None = None, prefer: str = "mosquitto") -> Broker:
    """Mosquitto when installed, else the embedded amqtt broker (MQTT 3.1.1 only)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    binary = find_mosquitto() if prefer == "mosquitto" else None
    if binary:
        conf = data_dir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(port, data_dir))
        return Broker("mosquitto", port, data_dir, [binary, "-c", str(conf)])
    conf = data_dir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    return Broker(
        "amqtt (embedded)",
        port,
        data_dir,
        [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)],
    )
