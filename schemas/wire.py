"""Wire contract v1: the facts every stage agrees on.

Pure Python (no polars) so the edge can import it without pulling in the
warehouse stack. The contract itself is documented in DESIGN.md; this module is
its executable form: topic shape, canonical quantity columns with their valid
ranges, message-level fields, size limit and the fixed set of quarantine reasons.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

TOPIC_PREFIX: Final = "telemetry"
ID_PATTERN: Final = r"[A-Za-z0-9_.-]{1,64}"
TOPIC_RE: Final = re.compile(
    rf"^{TOPIC_PREFIX}/(?P<site>{ID_PATTERN})/(?P<device_id>{ID_PATTERN})$"
)
MAX_PAYLOAD_BYTES: Final = 256 * 1024

# Canonical numeric quantities and their valid closed ranges (DESIGN.md, wire contract v1).
QUANTITY_RANGES: Final[dict[str, tuple[float, float]]] = {
    "current_a": (0.0, 100_000.0),
    "current_l1_a": (0.0, 100_000.0),
    "current_l2_a": (0.0, 100_000.0),
    "current_l3_a": (0.0, 100_000.0),
    "voltage_v": (0.0, 1_000_000.0),
    "voltage_ab_v": (0.0, 1_000_000.0),
    "voltage_bc_v": (0.0, 1_000_000.0),
    "voltage_ca_v": (0.0, 1_000_000.0),
    "power_kw": (-1e6, 1e6),
    "power_factor": (0.0, 1.0),
    "frequency_hz": (40.0, 70.0),
    "energy_kwh": (0.0, float("inf")),
    "speed_rpm": (0.0, 100_000.0),
    "temperature_c": (-60.0, 400.0),
    "pressure_kpa": (-101.325, 100_000.0),
    "flow_m3h": (0.0, 1e7),
}
NUMERIC_QUANTITIES: Final = tuple(QUANTITY_RANGES)
STATES: Final = ("running", "stopped", "loaded", "unloaded")
QUANTITIES: Final = (*NUMERIC_QUANTITIES, "state")
READING_FIELDS: Final = frozenset(("ts", *QUANTITIES))
MESSAGE_FIELDS: Final = frozenset(("device_id", "gateway", "seq", "readings"))

# Timestamps outside this window are almost always a device clock fault (epoch 0,
# seconds sent as milliseconds); they would also create absurd date partitions.
TS_MIN_ISO: Final = "2000-01-01T00:00:00Z"
TS_MAX_FUTURE_S_DEFAULT: Final = 24 * 3600


class Reason(StrEnum):
    """Why a message or reading went to quarantine. A small, fixed set (Vector's error codes)."""

    # payload level: the whole message is kept as raw bytes
    OVERSIZE = "oversize"
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    WRONG_SHAPE = "wrong_shape"
    BAD_TOPIC = "bad_topic"
    TOPIC_MISMATCH = "topic_mismatch"
    # reading level: one reading of a message; its siblings still land
    MISSING_TS = "missing_ts"
    TS_WITHOUT_ZONE = "ts_without_zone"
    BAD_TS = "bad_ts"
    NO_QUANTITY = "no_quantity"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_STATE = "bad_state"
    UNKNOWN_FIELD = "unknown_field"
    # Sparkplug B (ingest/sparkplug_host.py): the whole Sparkplug message is kept
    SPARKPLUG_DECODE_ERROR = "sparkplug_decode_error"
    SPARKPLUG_NO_BIRTH = "sparkplug_no_birth"
    SPARKPLUG_UNKNOWN_ALIAS = "sparkplug_unknown_alias"
    SPARKPLUG_UNSUPPORTED_TYPE = "sparkplug_unsupported_type"
    SPARKPLUG_BAD_TOPIC = "sparkplug_bad_topic"
    SPARKPLUG_BAD_ID = "sparkplug_bad_id"


PAYLOAD_REASONS: Final = frozenset(
    {
        Reason.OVERSIZE,
        Reason.NOT_UTF8,
        Reason.MALFORMED_JSON,
        Reason.WRONG_SHAPE,
        Reason.BAD_TOPIC,
        Reason.TOPIC_MISMATCH,
    }
)


def topic_for(site: str, device_id: str) -> str:
    """The topic a gateway publishes a device's readings on."""
    return f"{TOPIC_PREFIX}/{site}/{device_id}"
