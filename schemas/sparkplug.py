"""Sparkplug B host tables (ingest/sparkplug_ingest.py)."""

from __future__ import annotations

from typing import Final

import polars as pl

STATUS_SCHEMA: Final = pl.Schema(
    {
        "level": pl.String(),  # node or device
        "group_id": pl.String(),
        "edge_node": pl.String(),
        "device": pl.String(),
        "online": pl.Boolean(),
        "last_birth": pl.Datetime("us", "UTC"),
        "last_death": pl.Datetime("us", "UTC"),
        "bd_seq": pl.Int64(),
    }
)
