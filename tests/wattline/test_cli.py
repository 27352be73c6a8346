"""The console script: every documented command exists and a bad config says what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def wattline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattline.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    out = wattline("--help").stdout
    for command in ("demo", "consume", "catalog", "registry", "jobs", "edge", "alerts"):
        assert command in out


def test_gateway_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "gw.toml"
    bad.write_text('[gateway]\nid = "gw1"\n')
    result = wattline("edge", "run", "--config", str(bad))
    assert result.returncode == 2
    assert "site" in result.stderr


def test_consumer_config_error_is_one_clear_line(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "WATTLINE_MQTT__PORT": "not-a-port"}
    result = wattline("catalog", "init", env=env)
    assert result.returncode == 2
    assert "mqtt.port (from WATTLINE_MQTT__PORT) must be int" in result.stderr


def test_jobs_run_every_repeats_until_sigterm_then_exits_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import time

    env = {
        **os.environ,
        "WATTLINE_LAKE__ROOT": str(tmp_path / "lake"),
        "WATTLINE_CATALOG__PATH": str(tmp_path / "c.duckdb"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattline.cli", "jobs", "run", "--every", "0.2", "--no-deliver"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(4)  # imports, then runs 0.2 s apart
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.count("jobs: days nothing new") >= 2, out
