"""What decoding produces: candidate readings and rejects, shared by both decoders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from schemas.wire import NUMERIC_QUANTITIES

CANDIDATE_SCHEMA: Final = pl.Schema(
    {
        "_msg": pl.UInt32,
        "_idx": pl.Int32,
        "device_id_msg": pl.String,
        "gateway": pl.String,
        "seq": pl.Int64,
        "ts_raw": pl.String,
        "ts_ms": pl.Int64,  # the ts when it came as a JSON integer (epoch ms), else null
        **{q: pl.Float64 for q in NUMERIC_QUANTITIES},
        "state": pl.String,
        "_unknown": pl.String,
    }
)
REJECT_SCHEMA: Final = pl.Schema(
    {"_msg": pl.UInt32, "_idx": pl.Int32, "reason": pl.String, "detail": pl.String}
)
MSG_META: Final = ("device_id", "gateway", "seq")


@dataclass(frozen=True)
class Decoded:
    """Candidates (one row per reading) and rejects (payload-level `_idx` is null)."""

    candidates: pl.DataFrame
    rejects: pl.DataFrame
    fast_path: bool
