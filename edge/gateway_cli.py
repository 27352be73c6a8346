"""`wattline edge run --config gateway.toml`: the gateway config, checked at start-up; the runner.

The sample config (edge/gateway.example.toml) documents every key. Each TOML table maps
onto one frozen dataclass below, field for key. [gateway], [broker], [spool], [replay]
and [simulator] hold scalars that ``WATTLINE_<SECTION>__<KEY>`` overrides (for example
``WATTLINE_BROKER__PASSWORD``); [[device]] tables come from the file only. Relative
paths (spool dir, register maps, registry CSVs) are relative to the config file; a map
given as a bare name (``map = "eastron_sdm630"``) is one shipped in edge/maps/.

Everything is checked before anything starts: unknown keys, types, ranges, register
maps, simulator registry rows, and that the replay rate can outpace live traffic. A
mistake is a `ConfigError` naming the key (exit code 2), never a warning in a log
(Telegraf's ``Init()`` returns an error, it does not log).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from edge import metrics as gateway_metrics
from edge.devices import DEMO_DATA_DIR, load_devices, load_sites
from edge.gateway import Gateway
from edge.modbus import Reading, Source
from edge.registers import RegisterMap, RegisterMapError, load_map
from edge.scenarios import get_scenario, load_scenario_assignments
from edge.spool import WHEN_FULL, SpoolConfig, SpoolError
from schemas.wire import ID_PATTERN
from wattline.config import ConfigError, MetricsSettings, check_tls, tls_context
from wattline.metrics_http import MetricsHTTP

MAPS_DIR: Final = Path(__file__).resolve().parent / "maps"
_ID: Final = re.compile(f"^{ID_PATTERN}$")


@dataclass(frozen=True)
class GatewaySection:
    id: str = ""  # required
    site: str = ""  # required
    publish_interval_s: float = 5.0
    drain_timeout_s: float = 10.0


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""  # default wattline-gw-<gateway id>
    username: str = ""
    password: str = field(default="", repr=False)  # a secret: never in a repr, log or error
    protocol: str = "5"
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    # TLS, as the consumer's [mqtt]: chain always verified (ca_file, else the system
    # store), host name too unless tls_insecure; cert_file/key_file for mutual TLS.
    tls: bool = False
    ca_file: Path = Path()
    cert_file: Path = Path()
    key_file: Path = Path()
    tls_insecure: bool = False

    def tls_files(self) -> tuple[str, str, str]:
        """ca, cert, key as strings, "" where unset (Path() is the unset value)."""
        ca, cert, key = ("" if f == Path() else str(f) for f in (self.ca_file, self.cert_file,
                                                                  self.key_file))  # fmt: skip
        return ca, cert, key


@dataclass(frozen=True)
class SpoolSection:
    dir: Path = Path()  # required
    max_mb: float = 512.0
    max_age_h: float = 168.0
    when_full: str = "drop_oldest"


@dataclass(frozen=True)
class ReplayConfig:
    rate_msgs_per_s: float = 20.0
    max_inflight: int = 10


@dataclass(frozen=True)
class SimulatorConfig:
    devices: Path = DEMO_DATA_DIR / "devices.csv"
    sites: Path = DEMO_DATA_DIR / "sites.csv"
    scenarios: Path = DEMO_DATA_DIR / "scenarios.csv"
    seed: int = 0


@dataclass(frozen=True)
class DeviceConfig:
    id: str = ""  # required
    source: str = "modbus"  # or "simulator"
    interval_s: float = 1.0
    timeout_s: float = 1.0
    host: str = ""
    port: int = 502
    unit_id: int = 1
    map: Path = Path()
    scenario: str = ""
    register_map: RegisterMap | None = field(default=None, metadata={"loaded": True})


@dataclass(frozen=True)
class GatewayConfig:
    gateway: GatewaySection
    spool: SpoolConfig
    devices: tuple[DeviceConfig, ...]
    broker: BrokerConfig = BrokerConfig()
    replay: ReplayConfig = ReplayConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    metrics: MetricsSettings = field(default_factory=MetricsSettings)


_SECTIONS: Final[dict[str, type[Any]]] = {
    "gateway": GatewaySection,
    "broker": BrokerConfig,
    "spool": SpoolSection,
    "replay": ReplayConfig,
    "simulator": SimulatorConfig,
    "metrics": MetricsSettings,
}


class _Env(str):
    """A value from WATTLINE_<SECTION>__<KEY>: text to convert, unlike the file's typed values."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def load_gateway_config(path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The file, then WATTLINE_<SECTION>__<KEY>; every value checked."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"gateway config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"gateway config {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - set(_SECTIONS) - {"device"})
    _check(not unknown, f"unknown section(s) {unknown}; known: {sorted(_SECTIONS)}, [[device]]")
    for name, value in (environ or {}).items():
        section, sep, key = name.removeprefix("WATTLINE_").lower().partition("__")
        if name.startswith("WATTLINE_") and sep and section in _SECTIONS:
            doc.setdefault(section, {})[key] = _Env(value)
    base = path.resolve().parent
    s = {name: _build(name, cls, doc.get(name, {}), base) for name, cls in _SECTIONS.items()}
    g, b, sp, r = s["gateway"], s["broker"], s["spool"], s["replay"]
    for key in ("id", "site"):
        value = getattr(g, key)
        _check(bool(_ID.match(value)), f"gateway.{key} must match {ID_PATTERN}, got {value!r}")
    _check(g.publish_interval_s > 0, "gateway.publish_interval_s must be > 0")
    _check(g.drain_timeout_s >= 0, "gateway.drain_timeout_s must be >= 0")
    _check(1 <= b.port <= 65535, "broker.port must be 1..65535")
    _check(b.protocol in ("5", "3.1.1"), "broker.protocol must be '5' or '3.1.1'")
    _check(b.keepalive_s >= 5, "broker.keepalive_s must be >= 5")
    _check(0 < b.reconnect_min_s <= b.reconnect_max_s, "need 0 < reconnect_min_s <= max")
    ca, cert, key = b.tls_files()
    check_tls("broker", b.tls, ca, cert, key, b.tls_insecure)
    if b.tls:
        tls_context("broker", ca, cert, key, b.tls_insecure)  # unreadable files fail here
    _check(sp.dir != Path(), "spool.dir is required: a directory only this gateway uses")
    _check(sp.max_mb >= 1, "spool.max_mb must be >= 1 (a batch must fit)")
    _check(sp.max_age_h >= 0, "spool.max_age_h must be >= 0 (0 = no age limit)")
    _check(sp.when_full in WHEN_FULL, f"spool.when_full must be one of {', '.join(WHEN_FULL)}")
    _check(r.rate_msgs_per_s > 0, "replay.rate_msgs_per_s must be > 0")
    _check(1 <= r.max_inflight <= 65535, "replay.max_inflight must be 1..65535")
    raw_devices = doc.get("device", [])
    _check(isinstance(raw_devices, list) and bool(raw_devices), "need at least one [[device]]")
    devices: list[DeviceConfig] = []
    for index, table in enumerate(raw_devices):
        device = _device(_build(f"device #{index + 1}", DeviceConfig, table, base), g, s)
        _check(all(d.id != device.id for d in devices), f"device {device.id!r} is listed twice")
        devices.append(device)
    live = len(devices) / g.publish_interval_s
    _check(
        r.rate_msgs_per_s >= 2 * live,
        f"replay.rate_msgs_per_s ({r.rate_msgs_per_s:g}) must be at least twice the live rate "
        f"({live:g} msg/s: one per device per publish interval) or a backlog never drains",
    )
    spool = SpoolConfig(sp.dir, int(sp.max_mb * 1e6), sp.max_age_h * 3600, sp.when_full)
    broker = dataclasses.replace(b, client_id=b.client_id or f"wattline-gw-{g.id}")
    metrics = s["metrics"]
    _check(0 <= metrics.port <= 65535, "metrics.port must be 0..65535")
    _check(metrics.unhealthy_after_s > 0, "metrics.unhealthy_after_s must be > 0")
    return GatewayConfig(g, spool, tuple(devices), broker, r, s["simulator"], metrics)


def _build(where: str, cls: type[Any], raw: Any, base: Path) -> Any:
    """One table -> its dataclass: unknown keys refused, types checked, paths made absolute."""
    _check(isinstance(raw, dict), f"[{where}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("loaded")}
    unknown = sorted(set(raw) - set(fields))
    _check(not unknown, f"unknown key(s) {unknown} in [{where}]; known: {sorted(fields)}")
    hints, values = typing.get_type_hints(cls), {}
    for key, value in raw.items():
        kind, origin = hints[key], f"{where}.{key}"
        origin += " (from the environment)" if isinstance(value, _Env) else ""
        try:
            if isinstance(value, _Env) and kind is bool:
                value = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
            value = kind(value) if isinstance(value, _Env) and kind is not Path else value
        except (ValueError, KeyError):
            raise ConfigError(f"{origin} must be {kind.__name__}, got {value!r}") from None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is Path and isinstance(value, str):
            value = base / value
        _check(isinstance(value, kind) and (kind is bool or not isinstance(value, bool)),
               f"{origin} must be {kind.__name__}, got {value!r}")  # fmt: skip
        values[key] = value
    return cls(**values)


def _device(d: DeviceConfig, g: GatewaySection, sections: dict[str, Any]) -> DeviceConfig:
    where = f"device {d.id!r}"
    _check(bool(_ID.match(d.id)), f"{where}: id must match {ID_PATTERN}")
    _check(d.interval_s > 0 and d.timeout_s > 0, f"{where}: interval_s and timeout_s must be > 0")
    if d.source == "simulator":
        return dataclasses.replace(d, scenario=_simulated(d, g.site, sections["simulator"]))
    _check(d.source == "modbus", f"{where}: source must be 'modbus' or 'simulator'")
    _check(bool(d.host), f"{where}: host is required for source = 'modbus'")
    _check(1 <= d.port <= 65535, f"{where}: port must be 1..65535")
    _check(0 <= d.unit_id <= 255, f"{where}: unit_id must be 0..255")
    _check(d.map.name != "", f"{where}: map (a register map) is required for source = 'modbus'")
    path = d.map if d.map.suffix == ".toml" else MAPS_DIR / f"{d.map.name}.toml"
    try:
        return dataclasses.replace(d, map=path, register_map=load_map(path))
    except RegisterMapError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _simulated(d: DeviceConfig, site: str, sim: SimulatorConfig) -> str:
    """The scenario a simulated device runs; ConfigError if the registry cannot simulate it."""
    where = f"device {d.id!r}"
    try:
        registry = {row.device_id: row for row in load_devices(sim.devices)}
        _check(d.id in registry, f"{where}: not in the simulator registry {sim.devices}")
        row = registry[d.id]
        _check(row.site == site, f"{where}: its registry site is {row.site!r}, not {site!r}")
        assigned = load_scenario_assignments(sim.scenarios) if sim.scenarios.exists() else {}
        scenario = d.scenario or assigned.get(d.id, "healthy")
        get_scenario(scenario).profile_for(row.kind)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return scenario


class SimulatedDevice:
    """The simulated plant (edge.simulate) as a polled device, so the demo needs no hardware."""

    def __init__(self, config: DeviceConfig, sim: SimulatorConfig) -> None:
        self.device_id, self.config, self.sim = config.id, config, sim
        self._step_ms = max(1, round(config.interval_s * 1000))
        self._messages: Any = None

    async def poll(self, ts_ms: int) -> Reading | None:
        from edge.simulate import generate_messages

        if self._messages is None:
            start = datetime.fromtimestamp(ts_ms / 1000, UTC)
            devices = [d for d in load_devices(self.sim.devices) if d.device_id == self.device_id]
            self._messages = generate_messages(
                devices, load_sites(self.sim.sites), {self.device_id: self.config.scenario},
                start, start + timedelta(days=36500), self.config.interval_s, 1, self.sim.seed,
            )  # fmt: skip
        while True:  # catch up with the wall clock after skipped polls
            reading: Reading = json.loads(next(self._messages)[1])["readings"][0]
            ts = reading["ts"]
            at = ts if isinstance(ts, int) else int(datetime.fromisoformat(ts).timestamp() * 1000)
            if at >= ts_ms - self._step_ms // 2:
                return {**reading, "ts": ts_ms}

    async def close(self) -> None:
        return None


def build_sources(config: GatewayConfig) -> list[Source]:
    """One source per device; call inside the event loop (pymodbus clients bind to it)."""
    from edge.modbus import ModbusCollector, ModbusTarget

    sources: list[Source] = []
    for d in config.devices:
        if d.register_map is None:
            sources.append(SimulatedDevice(d, config.simulator))
        else:
            target = ModbusTarget(d.id, d.host, d.port, d.unit_id, d.register_map, d.timeout_s)
            sources.append(ModbusCollector(target))
    return sources


def start_metrics(gateway: Gateway, settings: MetricsSettings) -> MetricsHTTP | None:
    """The gateway's /metrics and /healthz (edge/metrics.py), when [metrics] enabled."""
    if not settings.enabled:
        return None
    limit = settings.unhealthy_after_s
    server = MetricsHTTP(
        settings.host,
        settings.port,
        lambda: gateway_metrics.render(gateway),
        lambda: gateway_metrics.problem(gateway, limit),
    )
    server.start()
    return server


def run_gateway_command(config_path: Path) -> int:
    """Run the gateway until SIGTERM/SIGINT: 0 after a clean stop, 2 on a config error."""
    try:
        config = load_gateway_config(config_path, os.environ)
    except ConfigError as exc:
        print(f"wattline edge run: configuration error: {exc}", file=sys.stderr)
        return 2
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every failed request

    async def main() -> int:
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            gateway = Gateway(config, build_sources(config))
        except SpoolError as exc:
            print(f"wattline edge run: {exc}", file=sys.stderr)
            return 2
        server = start_metrics(gateway, config.metrics)
        try:
            await gateway.run(stop)
        finally:
            if server is not None:
                server.stop()
        return 0

    return asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m edge.gateway_cli --config gateway.toml`, what `wattline edge run` does."""
    parser = argparse.ArgumentParser(prog="wattline edge run")
    parser.add_argument("--config", type=Path, required=True, help="gateway TOML file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run_gateway_command(args.config)


if __name__ == "__main__":
    sys.exit(main())
