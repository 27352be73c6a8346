"""Settings: defaults, TOML, WATTLINE_* overrides, and start-up errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattline.config import ConfigError, load_settings


def test_defaults_need_no_file() -> None:
    s = load_settings(None, environ={})
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.topic) == ("127.0.0.1", 1883, "telemetry/#")
    assert s.lake.root == Path("data/lake") and s.catalog.path == Path("data/wattline.duckdb")


def test_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "w.toml"
    f.write_text('[mqtt]\nport = 1884\nhost = "broker"\n[ingest]\nflush_interval_s = 2\n')
    s = load_settings(
        f, environ={"WATTLINE_MQTT__PORT": "1999", "WATTLINE_LAKE__ROOT": "/x", "OTHER": "1"}
    )
    assert (s.mqtt.host, s.mqtt.port) == ("broker", 1999)
    assert s.ingest.flush_interval_s == 2.0
    assert s.lake.root == Path("/x")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[mqtt]\nprot = 1\n", {}, "unknown key mqtt.prot; [mqtt] has: host, port"),
        ("[mqt]\n", {}, "unknown config section [mqt]"),
        ('[mqtt]\nport = "x"\n', {}, "mqtt.port must be int, got 'x'"),
        ("", {"WATTLINE_MQTT__PORT": "abc"}, "mqtt.port (from WATTLINE_MQTT__PORT) must be int"),
        ("[mqtt]\nport = 70000\n", {}, "mqtt.port must be 1..65535"),
        ("[mqtt]\nreceive_maximum = 100\n", {}, "batch_max_messages must be <= mqtt.receive_max"),
        ("[mqtt]\nqos = 2\n", {}, "mqtt.qos must be 0 or 1"),
        ("[mqtt\n", {}, "is not valid TOML"),
        ("[analytics]\ndemand_window_min = 7\n", {}, "demand_window_min must divide a day"),
        ("[analytics]\ntariff_file = '/nope.toml'\n", {}, "analytics.tariff_file: no file"),
    ],
)
def test_wrong_settings_fail_with_a_fix(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    f = tmp_path / "w.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ=env)
    assert message in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_a_broken_tariff_file_is_refused_when_the_settings_load(tmp_path: Path) -> None:
    tariffs = tmp_path / "tariffs.toml"
    tariffs.write_text(
        "[plant-a]\nprices = { peak = 1.0 }\n[[plant-a.season]]\nmonths = [1]\n"
        'workday = { "00:00" = "peak" }\nrest_day = { "00:00" = "peak" }\n'
    )
    f = tmp_path / "w.toml"
    f.write_text(f"[analytics]\ntariff_file = '{tariffs}'\n")
    with pytest.raises(ConfigError, match=r"months must cover 1\.\.12 exactly once"):
        load_settings(f, environ={})
