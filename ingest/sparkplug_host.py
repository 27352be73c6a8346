"""A Sparkplug B 3.0 host's state machine: births, aliases, sequence numbers, deaths, and
the translation of metrics into wire contract v1 readings.

Pure logic, no MQTT: `Host.handle(topic, payload, now)` returns what to land (wire
contract v1 messages, which then take the JSON path's validation, dedup and
quarantine), what to quarantine here (with raw bytes and a reason), which edge nodes to
ask for a rebirth (NCMD `Node Control/Rebirth`), and status changes for the
`device_status` table. What the specification asks and where it is handled:

- NBIRTH (seq 0, a `bdSeq` metric) registers the node's metrics: name, alias, datatype,
  engUnit property; DBIRTH the same for a device, and needs its node born.
- NDATA/DDATA may carry aliases only; an alias not in the birth is
  `sparkplug_unknown_alias` (that metric quarantined, a rebirth asked).
- Data before a birth is `sparkplug_no_birth` (the message quarantined, a rebirth asked).
- seq runs 0..255 and wraps; a message whose seq is not the last + 1 (mod 256) is a gap:
  its metrics still land when its aliases are known (a missed message does not make
  this one wrong), the gap is counted and a rebirth asked (`sparkplug_seq_gap` is
  counted, not a quarantine row, since nothing was lost from this message).
- NDEATH matches the node's birth by `bdSeq` (the broker publishes the Will on a crash
  with the bdSeq of the session); a death with another bdSeq is stale and ignored. A
  node's death marks its devices offline too. DDEATH marks one device offline.
- Rebirth requests are rate-limited per node (`rebirth_interval_s`).

Duplicated and reordered messages cannot make duplicate rows: readings are keyed by
(device_id, ts) downstream, as on the JSON path.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from ingest.sparkplug import DecodeError, metric_value, parse
from schemas.wire import ID_PATTERN

log = logging.getLogger(__name__)
NAMESPACE: Final = "spBv1.0"
MESSAGE_TYPES: Final = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD")
_ID: Final = re.compile(f"^{ID_PATTERN}$")


@dataclass(frozen=True)
class Mapping_:
    """Where a metric goes: the canonical quantity and the factor to its unit."""

    quantity: str
    scale: float = 1.0


# Defaults by metric name (case-insensitive; the last path segment also matches) and
# engUnit. Documented in the README; a mapping file overrides them.
DEFAULT_NAMES: Final[dict[str, Mapping_]] = {
    "energy/import": Mapping_("energy_kwh", 1.0),
    "energy": Mapping_("energy_kwh", 1.0),
    "power": Mapping_("power_kw", 1.0),
    "activepower": Mapping_("power_kw", 1.0),
    "voltage": Mapping_("voltage_v"),
    "current": Mapping_("current_a"),
    "powerfactor": Mapping_("power_factor"),
    "frequency": Mapping_("frequency_hz"),
    "speed": Mapping_("speed_rpm"),
    "temperature": Mapping_("temperature_c"),
    "pressure": Mapping_("pressure_kpa"),
    "flow": Mapping_("flow_m3h"),
}
UNIT_SCALE: Final[dict[tuple[str, str], float]] = {  # (quantity, engUnit) -> factor
    ("energy_kwh", "wh"): 0.001,
    ("energy_kwh", "kwh"): 1.0,
    ("energy_kwh", "mwh"): 1000.0,
    ("power_kw", "w"): 0.001,
    ("power_kw", "kw"): 1.0,
    ("power_kw", "mw"): 1000.0,
    ("voltage_v", "kv"): 1000.0,
    ("pressure_kpa", "bar"): 100.0,
    ("pressure_kpa", "pa"): 0.001,
    ("pressure_kpa", "mpa"): 1000.0,
    ("power_factor", "%"): 0.01,
}


@dataclass
class MetricDef:
    name: str
    datatype: int
    unit: str


@dataclass
class Edge:
    """A node or a device as the host knows it."""

    online: bool = False
    born: bool = False
    bd_seq: int | None = None
    last_birth: datetime | None = None
    last_death: datetime | None = None
    by_alias: dict[int, MetricDef] = field(default_factory=dict)
    by_name: dict[str, MetricDef] = field(default_factory=dict)


class Message(NamedTuple):
    """One Sparkplug message as the handlers see it."""

    group: str
    node: str
    device: str | None
    payload: Any
    raw: bytes
    now: datetime


@dataclass
class Outcome:
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # wire contract v1
    quarantine: list[tuple[str, str, bytes]] = field(default_factory=list)  # reason, detail, raw
    rebirth: list[tuple[str, str]] = field(default_factory=list)  # (group, edge node)
    status: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Counters:
    births: int = 0
    deaths: int = 0
    stale_deaths: int = 0
    seq_gaps: int = 0
    rebirths_requested: int = 0
    rebirths_suppressed: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)  # metric name -> values seen


def rebirth_command(group: str, node: str) -> tuple[str, bytes]:
    """The NCMD that asks an edge node to publish its births again (spec §6.4.17)."""
    from ingest.sparkplug import BOOLEAN, Payload

    payload = Payload()
    payload.timestamp = int(datetime.now(UTC).timestamp() * 1000)
    metric = payload.metrics.add()
    metric.name = "Node Control/Rebirth"
    metric.datatype = BOOLEAN
    metric.boolean_value = True
    return f"{NAMESPACE}/{group}/NCMD/{node}", payload.SerializeToString()


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"


def state_payload(online: bool, now: datetime) -> bytes:
    """The primary host's STATE message (3.0: JSON, retained, QoS 1)."""
    return json.dumps({"online": online, "timestamp": int(now.timestamp() * 1000)}).encode()


class Host:
    def __init__(
        self,
        mapping: Mapping[tuple[str, str, str, str], tuple[str, str, Mapping_]] | None = None,
        rebirth_interval_s: float = 5.0,
    ) -> None:
        self.mapping = dict(mapping or {})
        self.rebirth_interval_s = rebirth_interval_s
        self.nodes: dict[tuple[str, str], Edge] = {}
        self.devices: dict[tuple[str, str, str], Edge] = {}
        self.seq: dict[tuple[str, str], int] = {}
        self.last_rebirth: dict[tuple[str, str], float] = {}
        self.counters = Counters()

    # --- entry point -------------------------------------------------------------
    def handle(self, topic: str, raw: bytes, now: datetime) -> Outcome:
        out = Outcome()
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != NAMESPACE or parts[2] not in MESSAGE_TYPES:
            if len(parts) >= 2 and parts[0] == NAMESPACE and parts[1] == "STATE":
                return out  # another host's STATE: not ours to interpret
            out.quarantine.append(("sparkplug_bad_topic", f"not a Sparkplug B topic: {topic}", raw))
            return out
        group, kind, node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else None
        if kind in ("NCMD", "DCMD"):
            return out  # commands (our own rebirth requests among them)
        try:
            payload = parse(raw)
        except DecodeError as exc:
            out.quarantine.append((exc.reason, str(exc), raw))
            self._ask_rebirth(group, node, now, out)
            return out
        handler = {
            "NBIRTH": self._nbirth,
            "DBIRTH": self._dbirth,
            "NDATA": self._data,
            "DDATA": self._data,
            "NDEATH": self._ndeath,
            "DDEATH": self._ddeath,
        }[kind]
        handler(Message(group, node, device, payload, raw, now), out)
        return out

    # --- births and deaths ------------------------------------------------------
    def _register(self, edge: Edge, payload: Any) -> None:
        edge.by_alias.clear()
        edge.by_name.clear()
        for m in payload.metrics:
            unit = ""
            if m.HasField("properties"):
                for key, value in zip(m.properties.keys, m.properties.values, strict=False):
                    if key == "engUnit":
                        unit = value.string_value
            d = MetricDef(m.name, int(m.datatype), unit)
            edge.by_name[m.name] = d
            if m.HasField("alias"):
                edge.by_alias[int(m.alias)] = d

    def _nbirth(self, m: Message, out: Outcome) -> None:
        group, node, _device, payload, raw, now = m
        edge = self.nodes.setdefault((group, node), Edge())
        bd = next((x for x in payload.metrics if x.name == "bdSeq"), None)
        edge.bd_seq = None if bd is None else int(bd.long_value or bd.int_value)
        self.seq[(group, node)] = int(payload.seq)
        self._born(group, node, None, edge, payload, raw, now, out)

    def _dbirth(self, m: Message, out: Outcome) -> None:
        group, node, device, payload, raw, now = m
        assert device is not None
        parent = self.nodes.get((group, node))
        if parent is None or not parent.born:
            detail = f"DBIRTH of {device} before NBIRTH of {group}/{node}"
            out.quarantine.append(("sparkplug_no_birth", detail, raw))
            self._ask_rebirth(group, node, now, out)
            return
        self._sequence(group, node, payload, now, out)
        edge = self.devices.setdefault((group, node, device), Edge())
        self._born(group, node, device, edge, payload, raw, now, out)

    def _born(
        self,
        group: str,
        node: str,
        device: str | None,
        edge: Edge,
        payload: Any,
        raw: bytes,
        now: datetime,
        out: Outcome,
    ) -> None:
        """A birth's bookkeeping: its metric table, online, counted, said; its values land."""
        self._register(edge, payload)
        edge.born = edge.online = True
        edge.last_birth = now
        self.counters.births += 1
        level = "node" if device is None else "device"
        out.status.append(self._status(level, group, node, device, edge))
        self._readings(group, node, device, edge, payload, raw, now, out)

    def _ndeath(self, m: Message, out: Outcome) -> None:
        group, node, _device, payload, _raw, now = m
        edge = self.nodes.get((group, node))
        bd = next((x for x in payload.metrics if x.name == "bdSeq"), None)
        bd_seq = None if bd is None else int(bd.long_value or bd.int_value)
        if edge is None or (edge.bd_seq is not None and bd_seq != edge.bd_seq):
            self.counters.stale_deaths += 1  # a Will from an earlier session
            return
        edge.online = False
        edge.born = False
        edge.last_death = now
        self.counters.deaths += 1
        out.status.append(self._status("node", group, node, None, edge))
        for (g, n, d), dev in self.devices.items():
            if (g, n) == (group, node) and dev.online:
                dev.online = dev.born = False
                dev.last_death = now
                out.status.append(self._status("device", g, n, d, dev))

    def _ddeath(self, m: Message, out: Outcome) -> None:
        group, node, device, payload, _raw, now = m
        assert device is not None
        self._sequence(group, node, payload, now, out)
        edge = self.devices.setdefault((group, node, device), Edge())
        edge.online = edge.born = False
        edge.last_death = now
        self.counters.deaths += 1
        out.status.append(self._status("device", group, node, device, edge))

    # --- data -------------------------------------------------------------------
    def _data(self, m: Message, out: Outcome) -> None:
        group, node, device, payload, raw, now = m
        parent = self.nodes.get((group, node))
        edge = parent if device is None else self.devices.get((group, node, device))
        if parent is None or not parent.born or edge is None or not edge.born:
            what = f"{group}/{node}" + (f"/{device}" if device else "")
            out.quarantine.append(("sparkplug_no_birth", f"data from {what} before its birth", raw))
            self._ask_rebirth(group, node, now, out)
            return
        self._sequence(group, node, payload, now, out)
        self._readings(group, node, device, edge, payload, raw, now, out)

    def _sequence(self, group: str, node: str, payload: Any, now: datetime, out: Outcome) -> bool:
        last = self.seq.get((group, node))
        seq = int(payload.seq)
        self.seq[(group, node)] = seq
        if last is not None and seq != (last + 1) % 256:
            self.counters.seq_gaps += 1
            self._ask_rebirth(group, node, now, out)
            return False
        return True

    def _ask_rebirth(self, group: str, node: str, now: datetime, out: Outcome) -> None:
        t = now.timestamp()
        last = self.last_rebirth.get((group, node))
        if last is not None and t - last < self.rebirth_interval_s:
            self.counters.rebirths_suppressed += 1
            return
        self.last_rebirth[(group, node)] = t
        self.counters.rebirths_requested += 1
        out.rebirth.append((group, node))

    # --- metrics to readings -----------------------------------------------------
    def _target(
        self, group: str, node: str, device: str | None, d: MetricDef
    ) -> tuple[str, str, Mapping_] | None:
        key = (group, node, device or "", d.name)
        if key in self.mapping:
            return self.mapping[key]
        name = d.name.lower().replace(" ", "")
        rule = DEFAULT_NAMES.get(name) or DEFAULT_NAMES.get(name.rsplit("/", 1)[-1])
        if rule is None:
            return None
        scale = UNIT_SCALE.get((rule.quantity, d.unit.lower()), rule.scale)
        if rule.quantity == "energy_kwh" and not d.unit:
            scale = 0.001 if name == "energy/import" else 1.0  # Energy/Import defaults to Wh
        return group, device or node, Mapping_(rule.quantity, scale)

    def _readings(
        self,
        group: str,
        node: str,
        device: str | None,
        edge: Edge,
        payload: Any,
        raw: bytes,
        now: datetime,
        out: Outcome,
    ) -> None:
        rows: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        unknown: list[str] = []
        for m in payload.metrics:
            if m.name in ("bdSeq",) or m.name.startswith(("Node Control/", "Device Control/")):
                continue
            d = edge.by_name.get(m.name) if m.name else edge.by_alias.get(int(m.alias))
            if d is None:
                unknown.append(m.name or f"alias {int(m.alias)}")
                continue
            target = self._target(group, node, device, d)
            if target is None:
                seen = self.counters.unmapped.get(d.name, 0)
                if not seen:  # said once per name, then counted
                    log.warning(
                        "sparkplug metric %r (%s/%s%s) has no mapping; its values are counted, "
                        "not landed (add it to mqtt.sparkplug_mapping)",
                        d.name,
                        group,
                        node,
                        f"/{device}" if device else "",
                    )
                self.counters.unmapped[d.name] = seen + 1
                continue
            site, device_id, rule = target
            try:
                value = metric_value(m, int(m.datatype) if m.datatype else d.datatype)
            except DecodeError as exc:
                out.quarantine.append((exc.reason, f"{d.name}: {exc}", raw))
                continue
            if value.number is None:
                continue  # null values carry no reading
            ts = int(m.timestamp or payload.timestamp or now.timestamp() * 1000)
            row = rows.setdefault((site, device_id), {}).setdefault(ts, {"ts": ts})
            row[rule.quantity] = value.number * rule.scale
        if unknown:
            out.quarantine.append(
                (
                    "sparkplug_unknown_alias",
                    f"{group}/{node}{'/' + device if device else ''}: "
                    f"not in the birth: {', '.join(unknown)}",
                    raw,
                )
            )
            self._ask_rebirth(group, node, now, out)
        for (site, device_id), by_ts in rows.items():
            if not (_ID.match(site) and _ID.match(device_id)):
                out.quarantine.append(
                    ("sparkplug_bad_id", f"{site}/{device_id} is not a valid site/device id", raw)
                )
                continue
            readings = [r for _, r in sorted(by_ts.items()) if set(r) - {"ts"}]
            body = {
                "device_id": device_id,
                "gateway": f"sparkplug:{group}/{node}",
                "readings": readings,
            }
            out.messages.append((f"telemetry/{site}/{device_id}", json.dumps(body).encode()))

    def _status(
        self, level: str, group: str, node: str, device: str | None, e: Edge
    ) -> dict[str, Any]:
        return {
            "level": level,
            "group": group,
            "edge_node": node,
            "device": device,
            "online": e.online,
            "last_birth": e.last_birth,
            "last_death": e.last_death,
            "bd_seq": e.bd_seq,
        }


class MappingError(ValueError):
    """A Sparkplug mapping file that cannot be used; the message says where."""


def load_mapping(path: str) -> dict[tuple[str, str, str, str], tuple[str, str, Mapping_]]:
    """The mapping file: one `[[metric]]` table per metric, matched on group, edge_node,
    device ("" for a node's own metrics) and metric name, giving site, device_id,
    quantity (a wire contract v1 column) and scale (the factor to that column's unit).

        [[metric]]
        group = "plant-sh"
        edge_node = "gw-01"
        device = "meter-1"
        metric = "Energy/Import"
        site = "plant-sh"
        device_id = "transformer-main-01"
        quantity = "energy_kwh"
        scale = 0.001            # Wh -> kWh
    """
    from schemas.wire import QUANTITY_RANGES

    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            raw = tomllib.loads(handle.read())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"sparkplug mapping {path}: {exc}") from exc
    out: dict[tuple[str, str, str, str], tuple[str, str, Mapping_]] = {}
    for i, entry in enumerate(raw.get("metric", [])):
        where = f"sparkplug mapping {path}, [[metric]] #{i + 1}"
        missing = [
            k
            for k in ("group", "edge_node", "metric", "site", "device_id", "quantity")
            if not isinstance(entry.get(k), str) or not entry.get(k)
        ]
        if missing:
            raise MappingError(f"{where}: needs {', '.join(missing)}")
        if entry["quantity"] not in QUANTITY_RANGES:
            raise MappingError(
                f"{where}: quantity {entry['quantity']!r} is not a wire contract v1 column"
            )
        for field_name in ("site", "device_id"):
            if not _ID.match(entry[field_name]):
                raise MappingError(f"{where}: {field_name} {entry[field_name]!r} is not a valid id")
        scale = entry.get("scale", 1.0)
        if not isinstance(scale, int | float):
            raise MappingError(f"{where}: scale must be a number")
        key = (entry["group"], entry["edge_node"], entry.get("device", ""), entry["metric"])
        out[key] = (entry["site"], entry["device_id"], Mapping_(entry["quantity"], float(scale)))
    return out
