"""Master data the telemetry does not carry: device nameplates and sites.

Users edit these as CSV; blank means unknown. Analytics report a device with a
missing value as "unmatched" rather than guessing (DESIGN.md, Nameplates and sites).
"""

from __future__ import annotations

from typing import Final

import pandera.polars as pa
import polars as pl

from schemas.wire import ID_PATTERN

KINDS: Final = ("motor", "pump", "fan", "compressor", "transformer")
MOTOR_DRIVEN: Final = ("motor", "pump", "fan")  # kinds whose load is the driving motor's
_ID = f"^{ID_PATTERN}$"

DEVICE_NUMERIC: Final = (
    "rated_power_kw",
    "rated_voltage_v",
    "rated_current_a",
    "rated_speed_rpm",
    "rated_efficiency",
    "rated_power_factor",
    "service_factor",
    "bep_flow_m3h",
    "rated_flow_m3h",
    "unloaded_power_kw",
    "rated_kva",
    "no_load_loss_kw",
    "load_loss_kw",
)
DEVICE_COLUMNS: Final = ("device_id", "site", "kind", *DEVICE_NUMERIC)
SITE_NUMERIC: Final = ("tariff_per_kwh", "emission_kg_per_kwh")
SITE_COLUMNS: Final = (
    "site",
    "timezone",
    "tariff_per_kwh",
    "currency",
    "emission_kg_per_kwh",
    "shift_calendar",
)

DEVICE_SCHEMA: Final = pl.Schema(
    {"device_id": pl.String, "site": pl.String, "kind": pl.String}
    | {c: pl.Float64 for c in DEVICE_NUMERIC}
)
SITE_SCHEMA: Final = pl.Schema(
    {
        "site": pl.String,
        "timezone": pl.String,
        "tariff_per_kwh": pl.Float64,
        "currency": pl.String,
        "emission_kg_per_kwh": pl.Float64,
        "shift_calendar": pl.String,
    }
)


class Devices(pa.DataFrameModel):
    device_id: str = pa.Field(str_matches=_ID, unique=True)
    site: str = pa.Field(str_matches=_ID)
    kind: str = pa.Field(isin=list(KINDS))
    rated_power_kw: float = pa.Field(gt=0, le=1e6, nullable=True)
    rated_voltage_v: float = pa.Field(gt=0, le=1e6, nullable=True)
    rated_current_a: float = pa.Field(gt=0, le=1e5, nullable=True)
    rated_speed_rpm: float = pa.Field(gt=0, le=1e5, nullable=True)
    rated_efficiency: float = pa.Field(gt=0, le=1, nullable=True)
    rated_power_factor: float = pa.Field(gt=0, le=1, nullable=True)
    service_factor: float = pa.Field(ge=1, le=2, nullable=True)
    bep_flow_m3h: float = pa.Field(gt=0, nullable=True)
    rated_flow_m3h: float = pa.Field(gt=0, nullable=True)
    unloaded_power_kw: float = pa.Field(ge=0, nullable=True)
    rated_kva: float = pa.Field(gt=0, nullable=True)
    no_load_loss_kw: float = pa.Field(ge=0, nullable=True)
    load_loss_kw: float = pa.Field(ge=0, nullable=True)

    class Config:
        strict = True
        coerce = False


class Sites(pa.DataFrameModel):
    site: str = pa.Field(str_matches=_ID, unique=True)
    timezone: str
    tariff_per_kwh: float = pa.Field(ge=0, nullable=True)
    currency: str = pa.Field(str_matches=r"^[A-Z]{3}$", nullable=True)
    emission_kg_per_kwh: float = pa.Field(ge=0, le=2, nullable=True)
    shift_calendar: str = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False
