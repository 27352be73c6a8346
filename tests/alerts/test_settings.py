"""The [alerts] TOML shape, environment overrides, validation, and secrets kept out of text."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import AlertsConfigError
from alerts.settings import load_alert_settings

TOML = """
[lake]
root = "data/lake"

[alerts]
timeout_s = 5
backoff_initial_s = 1.5

[[alerts.endpoint]]
name = "energy-team"
url = "https://hooks.example.com/wattline"
format = "generic"
secret_env = "TEAM_SECRET"
min_severity = "warning"
sites = ["plant-sh"]
language = "zh"
remind_after_h = 72

[[alerts.endpoint]]
name = "ding"
url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
format = "dingtalk"
secret = "SECdingsecret"
enabled = false
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wattline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_and_env(tmp_path: Path) -> None:
    env = {
        "TEAM_SECRET": "from-env-123",
        "WATTLINE_ALERTS__MAX_RUN_S": "30",
        "WATTLINE_ALERTS__ENDPOINT__DING__ENABLED": "true",
        "WATTLINE_ALERTS__ENDPOINT__ENERGY_TEAM__MIN_SEVERITY": "critical",
    }
    settings = load_alert_settings(_write(tmp_path, TOML), env)
    team, ding = settings.endpoints
    assert settings.timeout_s == 5.0 and settings.backoff_initial_s == 1.5
    assert settings.max_run_s == 30.0
    assert team.secret == "from-env-123" and team.language == "zh" and team.sites == ("plant-sh",)
    assert team.min_severity == "critical" and team.remind_after_h == 72.0
    assert ding.enabled and ding.format == "dingtalk"
    assert "from-env-123" not in repr(settings) and "SECdingsecret" not in repr(settings)
    assert "access_token" not in repr(settings)
    assert settings.outbox_for(Path("lake")) == Path("lake/alerts/outbox.sqlite")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('format = "generic"', "format must be one of"),
        ('min_severity = "warning"', "min_severity must be one of"),
        ('language = "zh"', "language must be one of"),
        ('sites = ["plant-sh"]', "unknown key alerts.endpoint[0].colour"),
    ],
)
def test_bad_endpoint_keys_fail_with_the_key(tmp_path: Path, change: str, message: str) -> None:
    key = change.split(" = ")[0]
    bad = {"sites": 'colour = "red"'}.get(key, f'{key} = "nope"')
    text = TOML.replace(change, bad, 1)
    with pytest.raises(AlertsConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_alert_settings(_write(tmp_path, text), {"TEAM_SECRET": "x"})


def test_missing_secret_env_and_robot_secret(tmp_path: Path) -> None:
    with pytest.raises(AlertsConfigError, match="TEAM_SECRET, not set"):
        load_alert_settings(_write(tmp_path, TOML), {})
    no_secret = TOML.replace('secret = "SECdingsecret"\n', "")
    with pytest.raises(AlertsConfigError, match="dingtalk robots need the signing secret") as info:
        load_alert_settings(_write(tmp_path, no_secret), {"TEAM_SECRET": "hunter2-secret"})
    assert "hunter2" not in str(info.value) and "access_token" not in str(info.value)


def test_no_file_means_no_endpoints() -> None:
    settings = load_alert_settings(None, {})
    assert settings.endpoints == () and settings.max_run_s == 60.0
