"""Decode a batch of MQTT payloads (wire contract v1) into one frame of candidate readings.

Fast path: payload-level checks are vectorised over the batch, then every good
payload becomes one line of NDJSON and polars parses the whole batch in one call.
If the batch holds anything the fast path cannot type exactly (malformed JSON, a
wrong shape, a string where a number belongs, NaN), the whole batch is decoded
again on the reference path, one `json.loads` per message. Both paths give the
same result (tests/ingest/test_decode.py checks it); the slow one only runs for
batches that carry bad input.

Conventions both paths share: a JSON ``null`` is the same as an absent key; a `ts`
that is a string of digits is read as epoch milliseconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from schemas.wire import (
    MESSAGE_FIELDS,
    NUMERIC_QUANTITIES,
    READING_FIELDS,
    TOPIC_RE,
    Reason,
)

CANDIDATE_SCHEMA: Final = pl.Schema(
    {
        "_msg": pl.UInt32,
        "_idx": pl.Int32,
        "device_id_msg": pl.String,
        "gateway": pl.String,
        "seq": pl.Int64,
        "ts_raw": pl.String,
        **{q: pl.Float64 for q in NUMERIC_QUANTITIES},
        "state": pl.String,
        "_unknown": pl.String,
    }
)
REJECT_SCHEMA: Final = pl.Schema(
    {"_msg": pl.UInt32, "_idx": pl.Int32, "reason": pl.String, "detail": pl.String}
)
_MSG_META = ("device_id", "gateway", "seq")


@dataclass(frozen=True)
class Decoded:
    """Candidates (one row per reading) and rejects (payload-level `_idx` is null)."""

    candidates: pl.DataFrame
    rejects: pl.DataFrame
    fast_path: bool


def check_payloads(
    topics: Sequence[str], payloads: Sequence[bytes], max_bytes: int
) -> pl.DataFrame:
    """Per message: site and device from the topic, and a payload-level reason or null."""
    frame = pl.DataFrame(
        {
            "topic": topics,
            "payload": payloads,
            "utf8": [_utf8(p) for p in payloads],
            "blank": [not p or p.isspace() for p in payloads],
        },
        schema={"topic": pl.String, "payload": pl.Binary, "utf8": pl.Boolean, "blank": pl.Boolean},
    ).with_row_index("_msg")
    parts = pl.col("topic").str.extract_groups(TOPIC_RE.pattern)
    size = pl.col("payload").bin.size()
    blank = pl.col("blank")
    reason = (
        pl.when(pl.col("site").is_null())
        .then(pl.lit(Reason.BAD_TOPIC.value))
        .when(size > max_bytes)
        .then(pl.lit(Reason.OVERSIZE.value))
        .when(~pl.col("utf8"))
        .then(pl.lit(Reason.NOT_UTF8.value))
        .when(blank)
        .then(pl.lit(Reason.MALFORMED_JSON.value))
    )
    detail = (
        pl.when(pl.col("site").is_null())
        .then(pl.format("topic '{}' is not telemetry/<site>/<device_id>", pl.col("topic")))
        .when(size > max_bytes)
        .then(pl.format("payload is {} bytes; the limit is {}", size, pl.lit(max_bytes)))
        .when(~pl.col("utf8"))
        .then(pl.lit("payload is not valid UTF-8"))
        .when(blank)
        .then(pl.lit("payload is empty"))
    )
    return (
        frame.with_columns(parts.struct.field("site"), parts.struct.field("device_id"))
        .with_columns(reason=reason, detail=detail)
        .with_columns(
            multiline=pl.col("payload").bin.contains(b"\n") | pl.col("payload").bin.contains(b"\r")
        )
    )


def _utf8(payload: bytes) -> bool:
    if payload.isascii():
        return True
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _stripped(payloads: Sequence[bytes]) -> list[bytes]:
    """Surrounding white space is legal JSON but would break the one-line-per-message read."""
    return [p.strip() if p[:1].isspace() or p[-1:].isspace() else p for p in payloads]


def decode_batch(
    topics: Sequence[str], payloads: Sequence[bytes], max_bytes: int
) -> tuple[pl.DataFrame, Decoded]:
    """Return the per-message frame from `check_payloads` and the decoded candidates."""
    messages = check_payloads(topics, payloads, max_bytes)
    payloads = _stripped(payloads)
    payload_rejects = messages.filter(pl.col("reason").is_not_null()).select(
        "_msg", pl.lit(None, pl.Int32).alias("_idx"), "reason", "detail"
    )
    good = messages.filter(pl.col("reason").is_null())
    good_ids: list[int] = good["_msg"].to_list()
    topic_devices: list[str] = good["device_id"].to_list()
    decoded: Decoded | None = None
    if not good["multiline"].any():
        decoded = _fast(good_ids, [payloads[i] for i in good_ids], topic_devices)
    if decoded is None:
        decoded = _slow(good_ids, [payloads[i] for i in good_ids], topic_devices)
    rejects = pl.concat([payload_rejects, decoded.rejects]).cast(REJECT_SCHEMA)
    return messages, Decoded(decoded.candidates, rejects, decoded.fast_path)


# ---- fast path -----------------------------------------------------------------------------

_NUMERIC = (
    pl.Float64,
    pl.Float32,
    pl.Int64,
    pl.Int32,
    pl.Int16,
    pl.Int8,
    pl.Int128,
    pl.UInt64,
    pl.UInt32,
    pl.UInt16,
    pl.UInt8,
    pl.Null,
)


def _fast(ids: list[int], payloads: list[bytes], topic_devices: list[str]) -> Decoded | None:
    """Parse the batch in one polars call; None when it needs the reference path."""
    if not payloads:
        return Decoded(CANDIDATE_SCHEMA.to_frame(), REJECT_SCHEMA.to_frame(), True)
    try:
        frame = pl.read_ndjson(b"\n".join(payloads), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if frame.height != len(payloads) or not _fast_typable(frame.schema):
        return None
    frame = frame.with_columns(
        _msg=pl.Series(ids, dtype=pl.UInt32), _topic_device=pl.Series(topic_devices)
    )
    return _frame_to_candidates(frame)


def _fast_typable(schema: pl.Schema) -> bool:
    def reading_ok(fields: dict[str, pl.DataType]) -> bool:
        for name, dtype in fields.items():
            if name in NUMERIC_QUANTITIES and dtype not in _NUMERIC:
                return False
            if name == "state" and dtype not in (pl.String, pl.Null):
                return False
            if name == "ts" and dtype not in (pl.String, pl.Int64, pl.Null):
                return False
        return True

    top = dict(schema)
    if top.get("device_id", pl.Null) not in (pl.String, pl.Null):
        return False
    if top.get("gateway", pl.Null) not in (pl.String, pl.Null):
        return False
    if top.get("seq", pl.Null) not in (pl.Int64, pl.Null):
        return False
    batch = top.get("readings", pl.Null)
    if batch != pl.Null:
        if not (isinstance(batch, pl.List) and isinstance(batch.inner, pl.Struct)):
            return False
        if not reading_ok({f.name: f.dtype for f in batch.inner.fields}):
            return False
    return reading_ok(top)


def _frame_to_candidates(frame: pl.DataFrame) -> Decoded:
    rejects = []
    has_batch = "readings" in frame.columns and frame.schema["readings"] != pl.Null
    extra_top = [c for c in frame.columns if c not in MESSAGE_FIELDS | {"_msg", "_topic_device"}]
    mismatch = pl.col("device_id").is_not_null() & (pl.col("device_id") != pl.col("_topic_device"))
    if "device_id" in frame.columns:
        rejects.append(
            frame.filter(mismatch).select(
                "_msg",
                reason=pl.lit(Reason.TOPIC_MISMATCH.value),
                detail=pl.format(
                    "device_id '{}' differs from topic device '{}'",
                    pl.col("device_id"),
                    pl.col("_topic_device"),
                ),
            )
        )
        frame = frame.filter(~mismatch)
    frame = _with_columns_present(frame, [*_MSG_META, "readings"] if has_batch else _MSG_META)
    singles = frame.filter(pl.col("readings").is_null()) if has_batch else frame
    parts = [_singles(singles, extra_top)]
    if has_batch:
        batch = frame.filter(pl.col("readings").is_not_null())
        bad_shape = _batch_shape_problem(batch, extra_top)
        rejects.append(
            batch.filter(bad_shape.is_not_null()).select(
                "_msg", reason=pl.lit(Reason.WRONG_SHAPE.value), detail=bad_shape
            )
        )
        parts.append(_exploded(batch.filter(bad_shape.is_null())))
    candidates = pl.concat([_to_candidates(p) for p in parts], how="vertical")
    rej = (
        pl.concat([r.with_columns(_idx=pl.lit(None, pl.Int32)) for r in rejects], how="diagonal")
        if rejects
        else REJECT_SCHEMA.to_frame()
    )
    return Decoded(candidates, rej.select(REJECT_SCHEMA.names()), True)


def _with_columns_present(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    missing = [pl.lit(None).alias(n) for n in names if n not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _batch_shape_problem(batch: pl.DataFrame, extra_top: list[str]) -> pl.Expr:
    readings = pl.col("readings")
    stray = [c for c in extra_top if c != "readings"]
    stray_present = (
        pl.concat_str(
            [pl.when(pl.col(c).is_not_null()).then(pl.lit(c)) for c in stray],
            separator=", ",
            ignore_nulls=True,
        )
        if stray
        else pl.lit("")
    )
    return (
        pl.when(readings.list.len() == 0)
        .then(pl.lit("readings is an empty list"))
        .when(readings.list.eval(pl.element().is_null()).list.any())
        .then(pl.lit("readings holds a null instead of an object"))
        .when(stray_present != "")
        .then(pl.format("batch message has top-level key(s) beside readings: {}", stray_present))
    )


def _singles(frame: pl.DataFrame, extra_top: list[str]) -> pl.DataFrame:
    fields = [c for c in extra_top if c != "readings"]
    return frame.select("_msg", *_MSG_META, *fields).with_columns(_idx=pl.lit(0, pl.Int32))


def _exploded(batch: pl.DataFrame) -> pl.DataFrame:
    meta = ["_msg", *_MSG_META]
    return (
        batch.select(*meta, "readings")
        .explode("readings")
        .with_columns(_idx=pl.int_range(pl.len(), dtype=pl.Int32).over("_msg"))
        .unnest("readings")
    )


def _to_candidates(rows: pl.DataFrame) -> pl.DataFrame:
    """Rename, cast and gather unknown fields into one `_unknown` detail string."""
    known = READING_FIELDS | {"_msg", "_idx", *_MSG_META}
    unknown = [c for c in rows.columns if c not in known]
    unknown_detail: pl.Expr = pl.lit(None, pl.String)
    if unknown:
        pieces = [
            pl.when(pl.col(c).is_not_null()).then(pl.lit(c + "=") + _show(rows, c)) for c in unknown
        ]
        joined = pl.concat_str(pieces, separator=", ", ignore_nulls=True)
        unknown_detail = pl.when(joined != "").then(pl.lit("unknown field(s): ") + joined)
    rows = _with_columns_present(rows, [*READING_FIELDS, *_MSG_META])
    return rows.select(
        pl.col("_msg"),
        pl.col("_idx"),
        pl.col("device_id").alias("device_id_msg"),
        "gateway",
        "seq",
        pl.col("ts").cast(pl.String).alias("ts_raw"),
        *[pl.col(q).cast(pl.Float64) for q in NUMERIC_QUANTITIES],
        "state",
        unknown_detail.alias("_unknown"),
    ).cast(CANDIDATE_SCHEMA)  # type: ignore[arg-type]


def _show(rows: pl.DataFrame, column: str) -> pl.Expr:
    dtype = rows.schema[column]
    if isinstance(dtype, pl.Struct | pl.List | pl.Array):
        return pl.lit("<nested>")
    return pl.col(column).cast(pl.String)


# ---- reference path ------------------------------------------------------------------------


def _slow(ids: list[int], payloads: list[bytes], topic_devices: list[str]) -> Decoded:
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
            elif isinstance(value, str):
                row["ts_raw"] = value
            else:
                return {}, (Reason.BAD_TS, f"ts={value!r} is neither a string nor an integer")
        elif key == "state":
            if not isinstance(value, str):
                return {}, (Reason.WRONG_TYPE, f"state={value!r} is not a string")
            row["state"] = value
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
