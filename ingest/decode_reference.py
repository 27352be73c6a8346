"""The reference decoder: one `json.loads` per message, exact JSON types.

Used for batches the vectorised path in ingest/decode.py cannot type exactly (malformed
JSON, wrong shapes, strings where numbers belong, NaN). It defines the contract's
decoding; the fast path must agree with it (tests/ingest/test_decode.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

from ingest.candidates import CANDIDATE_SCHEMA, REJECT_SCHEMA, Decoded
from schemas.wire import MESSAGE_FIELDS, NUMERIC_QUANTITIES, Reason


def decode_reference(ids: list[int], payloads: list[bytes], topic_devices: list[str]) -> Decoded:
    """One `json.loads` per message; exact types, used only for batches with bad input."""
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for msg, payload, topic_device in zip(ids, payloads, topic_devices, strict=True):
        try:
            doc = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            rejects.append(_reject(msg, None, Reason.MALFORMED_JSON, f"not JSON: {exc}"))
            continue
        problem, readings, meta = _message_shape(doc, topic_device)
        if problem is not None:
            rejects.append(_reject(msg, None, problem[0], problem[1]))
            continue
        for idx, reading in enumerate(readings):
            row, bad = _reading_row(reading)
            if bad is not None:
                rejects.append(_reject(msg, idx, bad[0], bad[1]))
            else:
                rows.append({"_msg": msg, "_idx": idx, **meta, **row})
    candidates = (
        pl.DataFrame(rows, schema=CANDIDATE_SCHEMA) if rows else CANDIDATE_SCHEMA.to_frame()
    )
    rej = pl.DataFrame(rejects, schema=REJECT_SCHEMA) if rejects else REJECT_SCHEMA.to_frame()
    return Decoded(candidates, rej, False)


def _reject(msg: int, idx: int | None, reason: Reason, detail: str) -> dict[str, Any]:
    return {"_msg": msg, "_idx": idx, "reason": reason.value, "detail": detail}


def _message_shape(
    doc: Any, topic_device: str
) -> tuple[tuple[Reason, str] | None, list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(doc, dict):
        return (Reason.WRONG_SHAPE, f"top level is {type(doc).__name__}, not an object"), [], {}
    meta = {
        "device_id_msg": doc.get("device_id"),
        "gateway": doc.get("gateway"),
        "seq": doc.get("seq"),
    }
    device = meta["device_id_msg"]
    if device is not None and not isinstance(device, str):
        return (Reason.WRONG_SHAPE, "device_id must be a string"), [], {}
    if device is not None and device != topic_device:
        detail = f"device_id '{device}' differs from topic device '{topic_device}'"
        return (Reason.TOPIC_MISMATCH, detail), [], {}
    if meta["gateway"] is not None and not isinstance(meta["gateway"], str):
        return (Reason.WRONG_SHAPE, "gateway must be a string"), [], {}
    seq = meta["seq"]
    if seq is not None and (not _is_int(seq) or not -(2**63) <= seq < 2**63):
        return (Reason.WRONG_SHAPE, "seq must be a 64-bit integer"), [], {}
    readings = doc.get("readings")
    if readings is None:
        return None, [{k: v for k, v in doc.items() if k not in MESSAGE_FIELDS}], meta
    if not isinstance(readings, list):
        return (Reason.WRONG_SHAPE, "readings must be a list of objects"), [], {}
    stray = sorted(k for k, v in doc.items() if k not in MESSAGE_FIELDS and v is not None)
    if not readings:
        return (Reason.WRONG_SHAPE, "readings is an empty list"), [], {}
    if any(r is None for r in readings):
        return (Reason.WRONG_SHAPE, "readings holds a null instead of an object"), [], {}
    if not all(isinstance(r, dict) for r in readings):
        return (Reason.WRONG_SHAPE, "readings must be a list of objects"), [], {}
    if stray:
        detail = f"batch message has top-level key(s) beside readings: {', '.join(stray)}"
        return (Reason.WRONG_SHAPE, detail), [], {}
    return None, readings, meta


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reading_row(reading: dict[str, Any]) -> tuple[dict[str, Any], tuple[Reason, str] | None]:
    row: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in reading.items():
        if value is None:
            continue
        if key == "ts":
            if _is_int(value):
                row["ts_raw"] = str(value)
                if -(2**63) <= value < 2**63:
                    row["ts_ms"] = value
            elif isinstance(value, str):
                row["ts_raw"] = value
            else:
                return {}, (Reason.BAD_TS, f"ts={value!r} is neither a string nor an integer")
        elif key == "state":
            row["state"] = value if isinstance(value, str) else _plain(value)
        elif key in NUMERIC_QUANTITIES:
            if not (isinstance(value, float) or _is_int(value)):
                return {}, (Reason.WRONG_TYPE, f"{key}={value!r} is not a number")
            row[key] = _to_float(value)
        else:
            unknown.append(
                f"{key}=" + ("<nested>" if isinstance(value, dict | list) else _plain(value))
            )
    row["_unknown"] = "unknown field(s): " + ", ".join(unknown) if unknown else None
    return row, None


def _to_float(value: float | int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
