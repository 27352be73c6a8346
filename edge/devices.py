"""The plant registry as the simulator reads it: devices.csv and sites.csv (DESIGN.md).

Plain stdlib csv into frozen dataclasses; a blank cell is None. Only what the simulator
needs is checked (columns present, numbers parse); the warehouse validates registry loads
on its own, with its own rules.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from edge.physics import MotorNameplate, TransformerNameplate

DEMO_DATA_DIR: Final = Path(__file__).resolve().parent.parent / "wattline" / "data"
KINDS: Final = ("motor", "pump", "fan", "compressor", "transformer")


@dataclass(frozen=True)
class Device:
    """One row of devices.csv: rated values each kind needs (blank where not applicable)."""

    device_id: str
    site: str
    kind: str
    rated_power_kw: float | None = None
    rated_voltage_v: float | None = None
    rated_current_a: float | None = None
    rated_speed_rpm: float | None = None
    rated_efficiency: float | None = None
    rated_power_factor: float | None = None
    service_factor: float | None = None
    bep_flow_m3h: float | None = None
    rated_flow_m3h: float | None = None
    unloaded_power_kw: float | None = None
    rated_kva: float | None = None
    no_load_loss_kw: float | None = None
    load_loss_kw: float | None = None


@dataclass(frozen=True)
class Site:
    """One row of sites.csv; shift_calendar is parsed by schemas.calendar when used."""

    site: str
    timezone: str
    tariff_per_kwh: float | None = None
    currency: str | None = None
    emission_kg_per_kwh: float | None = None
    shift_calendar: str | None = None


DEVICE_COLUMNS: Final = tuple(f.name for f in fields(Device))
SITE_COLUMNS: Final = tuple(f.name for f in fields(Site))
_TEXT_COLUMNS: Final = frozenset(
    {"device_id", "site", "kind", "timezone", "currency", "shift_calendar"}
)
_REQUIRED: Final = frozenset({"device_id", "site", "kind", "timezone"})


def load_devices(path: str | Path) -> list[Device]:
    """Read devices.csv; raise ValueError naming the file, line and column of a bad cell."""
    return [Device(**row) for row in _read(Path(path), DEVICE_COLUMNS)]


def load_sites(path: str | Path) -> dict[str, Site]:
    """Read sites.csv into a mapping from site id to Site."""
    sites = [Site(**row) for row in _read(Path(path), SITE_COLUMNS)]
    return {s.site: s for s in sites}


def require(device: Device, *names: str) -> tuple[float, ...]:
    """The named rated values of a device; ValueError naming the blank ones."""
    values = tuple(getattr(device, n) for n in names)
    missing = [n for n, v in zip(names, values, strict=True) if v is None]
    if missing:
        raise ValueError(f"device {device.device_id} ({device.kind}) needs {', '.join(missing)}")
    return values


def motor_nameplate(device: Device) -> MotorNameplate:
    """The drive motor of a motor, pump, fan or compressor row."""
    names = ("rated_power_kw", "rated_voltage_v", "rated_speed_rpm", "rated_efficiency")
    kw, volts, rpm, eta, pf = require(device, *names, "rated_power_factor")
    return MotorNameplate(kw, volts, rpm, eta, pf, device.rated_current_a)


def transformer_nameplate(device: Device) -> TransformerNameplate:
    """A transformer row; rated_voltage_v is the secondary (LV) no-load voltage."""
    names = ("rated_kva", "no_load_loss_kw", "load_loss_kw", "rated_voltage_v")
    return TransformerNameplate(*require(device, *names))


def _read(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        return [_row(path, reader.line_num, raw, columns) for raw in reader]


def _row(
    path: Path, line: int, raw: dict[str, str | None], columns: tuple[str, ...]
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in columns:
        cell = (raw.get(name) or "").strip()
        if not cell and name in _REQUIRED:
            raise ValueError(f"{path}:{line}: column {name} must not be blank")
        if not cell or name in _TEXT_COLUMNS:
            row[name] = cell or None
            continue
        try:
            row[name] = float(cell)
        except ValueError:
            raise ValueError(f"{path}:{line}: column {name} is not a number: {cell!r}") from None
    return row
