"""The gateway's /metrics and /healthz, scraped from a running gateway (simulated plant)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge.gateway_cli import load_gateway_config, start_metrics
from tests.edge.test_gateway import GatewayThread
from wattline.broker import Broker

pytestmark = pytest.mark.broker


def scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(f"wattline_gateway_{name}{{"))
    return float(line.rsplit(" ", 1)[1])


def wait_until(check, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_gateway_metrics_follow_polling_spooling_and_an_outage(
    own_broker: Broker, site: str, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[gateway]\nid = "gw-{site}"\nsite = "plant-sh"\npublish_interval_s = 0.2\n'
        f"[broker]\nport = {own_broker.port}\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
        '[spool]\ndir = "spool"\n[metrics]\nenabled = true\nport = 0\nunhealthy_after_s = 0.5\n'
        '[[device]]\nid = "motor-conveyor-01"\nsource = "simulator"\ninterval_s = 0.05\n'
    )
    config = load_gateway_config(path, {})
    with GatewayThread(config) as running:
        server = start_metrics(running.gateway, config.metrics)
        assert server is not None
        try:
            wait_until(
                lambda: value(scrape(server.port, "/metrics")[1], "readings_acked_total") > 5
            )
            text = scrape(server.port, "/metrics")[1]
            assert value(text, "broker_connected") == 1
            assert value(text, "readings_polled_total") >= value(text, "readings_acked_total")
            assert scrape(server.port, "/healthz") == (200, "ok\n")
            own_broker.stop()
            wait_until(lambda: value(scrape(server.port, "/metrics")[1], "spool_batches") >= 3)
            text = scrape(server.port, "/metrics")[1]
            assert value(text, "broker_connected") == 0
            assert value(text, "spool_readings") > 0
            wait_until(lambda: scrape(server.port, "/healthz")[0] == 503)
            assert "broker unreachable" in scrape(server.port, "/healthz")[1]
            own_broker.start()
            wait_until(lambda: scrape(server.port, "/healthz")[0] == 200)
        finally:
            server.stop()
