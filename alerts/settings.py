"""Alert delivery settings: the `[alerts]` table and its `[[alerts.endpoint]]` entries.

Validated once at start-up (Telegraf's ``Init()`` rule): a wrong key, format, severity
or language raises ``AlertsConfigError`` naming the key. Secrets come from the file,
from ``secret_env`` (the name of an environment variable), or from
``WATTLINE_ALERTS__ENDPOINT__<NAME>__SECRET``; they are kept out of ``repr`` so they
never reach a log line or a traceback. Example::

    [alerts]
    timeout_s = 10.0
    backoff_initial_s = 2.0
    backoff_max_s = 300.0
    give_up_after_s = 86400.0
    max_run_s = 60.0

    [[alerts.endpoint]]
    name = "energy-team"
    url = "https://hooks.example.com/wattline"
    format = "generic"          # generic | slack | feishu | dingtalk | wecom
    secret_env = "ENERGY_TEAM_SECRET"
    min_severity = "warning"    # info | warning | critical
    sites = ["plant-sh"]        # empty: every site
    language = "zh"             # en | zh
    remind_after_h = 72.0       # 0: no reminders
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from alerts import AlertsConfigError

FORMATS: Final = ("generic", "slack", "feishu", "dingtalk", "wecom")
SEVERITIES: Final = ("info", "warning", "critical")
LANGUAGES: Final = ("en", "zh")
ENV_PREFIX: Final = "WATTLINE_ALERTS__"
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Endpoint:
    """One webhook receiver; `name` keys its outbox rows, so renaming it re-notifies."""

    name: str
    url: str = field(repr=False)
    format: str = "generic"
    secret: str = field(default="", repr=False)
    secret_env: str = ""
    min_severity: str = "warning"
    sites: tuple[str, ...] = ()
    enabled: bool = True
    language: str = "en"
    remind_after_h: float = 0.0
    verify_tls: bool = True

    def accepts(self, site: str, severity: str) -> bool:
        """Whether an alert of this site and (maximum) severity is meant for this endpoint."""
        in_site = not self.sites or site in self.sites
        return self.enabled and in_site and rank(severity) >= rank(self.min_severity)


@dataclass(frozen=True)
class AlertSettings:
    """Delivery tuning shared by all endpoints; tests pass small backoffs explicitly."""

    endpoints: tuple[Endpoint, ...] = ()
    timeout_s: float = 10.0
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 300.0
    # An endpoint down longer than this gets the notification marked failed (expired).
    give_up_after_s: float = 24 * 3600.0
    # One `deliver` run waits for retries at most this long, then leaves them pending.
    max_run_s: float = 60.0
    outbox_path: Path | None = None

    def outbox_for(self, lake_root: Path) -> Path:
        return self.outbox_path or lake_root / "alerts" / "outbox.sqlite"


def rank(severity: str | None) -> int:
    """Order of severities; unknown or null ranks below info."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def load_alert_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> AlertSettings:
    """Defaults, then the `[alerts]` table of the TOML file, then WATTLINE_ALERTS__* vars."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = dict(tomllib.loads(Path(path).read_text(encoding="utf-8")).get("alerts", {}))
        except FileNotFoundError as exc:
            raise AlertsConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise AlertsConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    env = os.environ if environ is None else environ
    endpoints = [_endpoint(i, e, env) for i, e in enumerate(_list(raw.pop("endpoint", [])))]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise AlertsConfigError("alerts.endpoint names must be unique")
    top = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and "__" not in k[17:]}
    for name, value in top.items():
        key = name[len(ENV_PREFIX) :].lower()
        raw[key] = _from_env(key, value)
    settings = AlertSettings(endpoints=tuple(endpoints))
    known = {f.name: f for f in fields(AlertSettings)} | {"outbox": None}
    for key, value in raw.items():
        if key not in known or key == "endpoints":
            raise AlertsConfigError(f"unknown key alerts.{key}; [alerts] has: {', '.join(known)}")
        if key == "outbox":
            settings = replace(settings, outbox_path=Path(str(value)))
        else:
            settings = replace(settings, **{key: _number(f"alerts.{key}", value)})  # type: ignore[arg-type]
    for key in ("timeout_s", "backoff_initial_s", "backoff_max_s", "max_run_s"):
        if getattr(settings, key) <= 0:
            raise AlertsConfigError(f"alerts.{key} must be > 0")
    return settings


def _list(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise AlertsConfigError("alerts.endpoint must be an array of tables: [[alerts.endpoint]]")
    return value


def _endpoint(index: int, raw: Mapping[str, Any], env: Mapping[str, str]) -> Endpoint:
    values = dict(raw)
    name = str(values.get("name", ""))
    where = f"alerts.endpoint[{index}]"
    if not _NAME_RE.match(name):
        raise AlertsConfigError(f"{where}.name must match [A-Za-z0-9_.-]{{1,64}}")
    prefix = f"{ENV_PREFIX}ENDPOINT__{name.upper().replace('-', '_').replace('.', '_')}__"
    for var, text in env.items():
        if var.startswith(prefix):
            values[var[len(prefix) :].lower()] = _from_env(var[len(prefix) :].lower(), text)
    known = {f.name for f in fields(Endpoint)}
    for key in values:
        if key not in known:
            raise AlertsConfigError(f"unknown key {where}.{key}; it has: {', '.join(known)}")
    if "url" not in values:
        raise AlertsConfigError(f"{where}.url is required")
    if isinstance(values.get("sites"), str):
        values["sites"] = [s.strip() for s in str(values["sites"]).split(",") if s.strip()]
    values["sites"] = tuple(str(s) for s in values.get("sites", ()))
    for key in ("enabled", "verify_tls"):
        if key in values and not isinstance(values[key], bool):
            raise AlertsConfigError(f"{where}.{key} must be true or false")
    if "remind_after_h" in values:
        values["remind_after_h"] = _number(f"{where}.remind_after_h", values["remind_after_h"])
    endpoint = Endpoint(**values)
    if endpoint.secret_env and not endpoint.secret:
        secret = env.get(endpoint.secret_env, "")
        if not secret:
            raise AlertsConfigError(f"{where}.secret_env names {endpoint.secret_env}, not set")
        endpoint = replace(endpoint, secret=secret)
    _check(where, "format", endpoint.format, FORMATS)
    _check(where, "min_severity", endpoint.min_severity, SEVERITIES)
    _check(where, "language", endpoint.language, LANGUAGES)
    if not endpoint.url.startswith(("https://", "http://")):
        raise AlertsConfigError(f"{where}.url must start with https:// or http://")
    if endpoint.format in ("dingtalk", "feishu") and not endpoint.secret:
        raise AlertsConfigError(f"{where}: {endpoint.format} robots need the signing secret")
    return endpoint


def _check(where: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise AlertsConfigError(f"{where}.{key} must be one of {', '.join(allowed)}")


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AlertsConfigError(f"{where} must be a number")
    return float(value)


def _from_env(key: str, text: str) -> Any:
    """Environment text typed by the key it sets; a bad value fails in validation."""
    if key in ("enabled", "verify_tls"):
        return {"1": True, "true": True, "0": False, "false": False}.get(text.lower(), text)
    if key in ("url", "name", "format", "secret", "secret_env", "min_severity", "sites"):
        return text
    if key in ("language", "outbox"):
        return text
    try:
        return float(text)
    except ValueError:
        return text
