"""Relevant variables loaded from CSV (warehouse/drivers.py): production and weather."""

from __future__ import annotations

from typing import Final

import polars as pl

PRODUCTION_SCHEMA: Final = pl.Schema(
    {
        "site": pl.String(),
        "line": pl.String(),
        "day": pl.Date(),
        "units": pl.Float64(),
        "unit": pl.String(),
    }
)
LINE_SCHEMA: Final = pl.Schema({"site": pl.String(), "line": pl.String(), "device_id": pl.String()})
WEATHER_SCHEMA: Final = pl.Schema(
    {"site": pl.String(), "day": pl.Date(), "mean_temp_c": pl.Float64()}
)
DRIVERS: Final = {"production": PRODUCTION_SCHEMA, "lines": LINE_SCHEMA, "weather": WEATHER_SCHEMA}
