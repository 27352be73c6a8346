"""Decode a batch of MQTT payloads (wire contract v1) into one frame of candidate readings.

Fast path: payload-level checks are vectorised over the batch, then every good
payload becomes one line of NDJSON and pyarrow (or, for batches it refuses, polars)
parses the whole batch in one call.
If the batch holds anything the fast path cannot type exactly (malformed JSON, a
wrong shape, a string where a number belongs, NaN), the whole batch is decoded
again on the reference path, one `json.loads` per message. Both paths give the
same result (tests/ingest/test_decode.py checks it); the slow one only runs for
batches that carry bad input.

Conventions both paths share: a JSON ``null`` is the same as an absent key; a `ts`
that is a string of digits is read as epoch milliseconds.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json

from ingest.candidates import CANDIDATE_SCHEMA, MSG_META, REJECT_SCHEMA, Decoded
from ingest.decode_reference import decode_reference
from schemas.wire import MESSAGE_FIELDS, NUMERIC_QUANTITIES, READING_FIELDS, TOPIC_RE, Reason


def check_payloads(
    topics: Sequence[str],
    payloads: Sequence[bytes],
    stripped: Sequence[bytes],
    text: bytes,
    max_bytes: int,
) -> pl.DataFrame:
    """Per message: site and device from the topic, and a payload-level reason or null.

    `stripped` is `payloads` without surrounding white space (`_stripped`); a payload
    that strips to nothing is blank. `text` is the stripped payloads joined by newlines.
    """
    frame = pl.DataFrame(
        {"topic": topics, "payload": payloads},
        schema={"topic": pl.String, "payload": pl.Binary},
    ).with_row_index("_msg")
    # one C pass answers for nearly every batch (ASCII is UTF-8)
    if text.isascii():
        utf8: pl.Expr | pl.Series = pl.lit(True)
    else:
        utf8 = pl.Series([_utf8(p) for p in payloads], dtype=pl.Boolean)
    blank = pl.Series([not p for p in stripped], dtype=pl.Boolean)
    frame = frame.with_columns(utf8=utf8, blank=blank)
    size = pl.col("payload").bin.size()
    reason = (
        pl.when(pl.col("site").is_null())
        .then(pl.lit(Reason.BAD_TOPIC.value))
        .when(size > max_bytes)
        .then(pl.lit(Reason.OVERSIZE.value))
        .when(~pl.col("utf8"))
        .then(pl.lit(Reason.NOT_UTF8.value))
        .when(pl.col("blank"))
        .then(pl.lit(Reason.MALFORMED_JSON.value))
    )
    detail = (
        pl.when(pl.col("site").is_null())
        .then(pl.format("topic '{}' is not telemetry/<site>/<device_id>", pl.col("topic")))
        .when(size > max_bytes)
        .then(pl.format("payload is {} bytes; the limit is {}", size, pl.lit(max_bytes)))
        .when(~pl.col("utf8"))
        .then(pl.lit("payload is not valid UTF-8"))
        .when(pl.col("blank"))
        .then(pl.lit("payload is empty"))
    )
    return (
        frame.join(_topic_parts(frame), on="topic", how="left", maintain_order="left")
        .with_columns(reason=reason, detail=detail)
        .with_columns(
            multiline=pl.col("payload").bin.contains(b"\n") | pl.col("payload").bin.contains(b"\r")
        )
    )


def _topic_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """Site and device per distinct topic: a batch has far fewer topics than messages."""
    parts = pl.col("topic").str.extract_groups(TOPIC_RE.pattern)
    return frame.select(pl.col("topic").unique()).with_columns(
        parts.struct.field("site"), parts.struct.field("device_id")
    )


def _utf8(payload: bytes) -> bool:
    if payload.isascii():
        return True
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_WHITESPACE: Final = frozenset(b" \t\n\r\x0b\x0c")


def _stripped(payloads: Sequence[bytes]) -> list[bytes]:
    """Surrounding white space is legal JSON but would break the one-line-per-message read."""
    ws = _WHITESPACE
    return [p.strip() if p and (p[0] in ws or p[-1] in ws) else p for p in payloads]


def decode_batch(
    topics: Sequence[str], payloads: Sequence[bytes], max_bytes: int
) -> tuple[pl.DataFrame, Decoded]:
    """Return the per-message frame from `check_payloads` and the decoded candidates."""
    stripped = _stripped(payloads)
    text = b"\n".join(stripped)
    messages = check_payloads(topics, payloads, stripped, text, max_bytes)
    payload_rejects = messages.filter(pl.col("reason").is_not_null()).select(
        "_msg", pl.lit(None, pl.Int32).alias("_idx"), "reason", "detail"
    )
    if payload_rejects.is_empty():  # the common batch: no per-message lists to build
        good_ids: list[int] = list(range(len(stripped)))
        good_payloads = list(stripped)
        topic_devices: list[str] = messages["device_id"].to_list()
        multiline = bool(messages["multiline"].any())
        joined: bytes | None = text
    else:
        good = messages.filter(pl.col("reason").is_null())
        good_ids = good["_msg"].to_list()
        good_payloads = [stripped[i] for i in good_ids]
        topic_devices = good["device_id"].to_list()
        multiline = bool(good["multiline"].any())
        joined = None
    decoded: Decoded | None = None
    if not multiline:
        decoded = _fast(good_ids, good_payloads, topic_devices, joined)
    if decoded is None:
        decoded = decode_reference(good_ids, good_payloads, topic_devices)
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


def _fast(
    ids: list[int], payloads: list[bytes], topic_devices: list[str], text: bytes | None = None
) -> Decoded | None:
    """Parse the batch in one call; None when it needs the reference path.

    First pyarrow's reader with a schema of the sampled keys (`_read_exact`): it fails
    on any key, duplicate or JSON type the contract's types do not allow, so what it
    returns needs no checking. A batch it refuses is read by polars with the contract's
    fixed schema, trusted only when the number of keys in the text equals the number of
    values it parsed (polars ignores keys a fixed schema does not name); otherwise with
    full schema inference, which sees every key, trusted when keys = values + explicit
    nulls. Values polars would coerce to strings (`_COERCED`) go to the reference path.
    """
    if not payloads:
        return Decoded(CANDIDATE_SCHEMA.to_frame(), REJECT_SCHEMA.to_frame(), True)
    if text is None:
        text = b"\n".join(payloads)
    keys = _sample_keys(payloads)
    frame = _read_exact(text, len(payloads), keys)
    if frame is None:
        if _COERCED.search(text):
            return None
        frame = _read_polars(text, len(payloads), keys)
    if frame is None or frame.height != len(payloads) or not _fast_typable(frame.schema):
        return None
    frame = frame.with_columns(
        _msg=pl.Series(ids, dtype=pl.UInt32), _topic_device=pl.Series(topic_devices)
    )
    return _frame_to_candidates(frame)


# Values polars would turn into strings where the reference path refuses the type: a
# number or bool as device_id or gateway, a non-integer number as ts.
_COERCED: Final = re.compile(
    rb'"(?:device_id|gateway)"\s*:\s*[-0-9tf]|"ts"\s*:\s*-?[0-9]+(?:\.|[eE])'
)

# ---- the exact read: pyarrow refuses what the contract's types do not allow ---------------

_KEY_RE: Final = re.compile(rb'"([^"\\]*)"\s*:\s*(")?')


@dataclass(frozen=True)
class _Keys:
    """What a sample of the batch uses: keys of single-reading messages, of batch messages
    (their readings' keys included), and whether `ts` came quoted (None: both kinds)."""

    single: frozenset[str]
    batch: frozenset[str]
    ts_quoted: bool | None


def _sample_keys(payloads: list[bytes], budget: int = 64 * 1024) -> _Keys | None:
    """The keys a spread sample of the batch uses, to build the reads' schemas from.

    Only a guess: a key the sample missed, a `ts` of the other kind or a message of the
    other shape makes the exact read fail (the batch goes the polars way) and the polars
    read's key count differ (it reads again with inference). None when the sample holds
    a key the contract does not name.
    """
    step = max(1, len(payloads) * max(1, len(payloads[0])) // budget)
    single: set[str] = set()
    batch: set[str] = set()
    quoted: set[bool] = set()
    for payload in payloads[::step]:
        found = _KEY_RE.findall(payload)
        keys = {name.decode() for name, _ in found}
        if not keys <= FIXED_SCHEMA.keys():
            return None
        (batch if "readings" in keys else single).update(keys)
        quoted.update(bool(quote) for name, quote in found if name == b"ts")
    ts_quoted = None if len(quoted) > 1 else quoted == {True}
    return _Keys(frozenset(single), frozenset(batch), ts_quoted)


_ARROW_READ: Final = pa_json.ReadOptions(block_size=1 << 20)


def _read_exact(text: bytes, messages: int, keys: _Keys | None) -> pl.DataFrame | None:
    """Parse with pyarrow and a schema of just the sampled keys, or None.

    pyarrow's reader fails on everything the polars read has to be checked for: a key
    the schema does not name (at either level), a key given twice in one object, a
    value of another JSON type (a bool or string where a number belongs, a float
    `seq`, an integer beyond int64, a number beyond double). So a frame it returns
    holds exactly the payloads' keys and values; JSON integers in number fields become
    doubles (as `float()` makes them on the reference path), and `null` reads as absent.
    One object per line: more or fewer rows than messages is a failure too.
    """
    if keys is None or keys.ts_quoted is None:
        return None
    reading = [pa.field("ts", pa.string() if keys.ts_quoted else pa.int64()), *_ARROW_QUANTITIES]
    used = keys.single | keys.batch
    fields = [f for f in _ARROW_TOP if f.name in used]
    if keys.batch:
        inner = [f for f in reading if f.name in keys.batch]
        fields.append(pa.field("readings", pa.list_(pa.struct(inner))))
    fields += [f for f in reading if f.name in keys.single]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="error"
    )
    try:
        table = pa_json.read_json(
            io.BytesIO(text),
            read_options=_ARROW_READ,
            parse_options=options,
            # malloc gives the parse buffers back; pyarrow's default mimalloc pool kept
            # ~50 MB more resident per consumer (measured with 8 MiB batches)
            memory_pool=pa.system_memory_pool(),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != messages:
        return None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


_ARROW_TOP: Final = (
    pa.field("device_id", pa.string()),
    pa.field("gateway", pa.string()),
    pa.field("seq", pa.int64()),
)
_ARROW_QUANTITIES: Final = (
    *[pa.field(q, pa.float64()) for q in NUMERIC_QUANTITIES],
    pa.field("state", pa.string()),
)

_READING_STRUCT = pl.Struct(
    {"ts": pl.String, **{q: pl.Float64 for q in NUMERIC_QUANTITIES}, "state": pl.String}
)
FIXED_SCHEMA: Final = pl.Schema(
    {
        "device_id": pl.String,
        "gateway": pl.String,
        "seq": pl.Int64,
        "readings": pl.List(_READING_STRUCT),
        **{f.name: f.dtype for f in _READING_STRUCT.fields},
    }
)


def _read_polars(text: bytes, messages: int, keys: _Keys | None) -> pl.DataFrame | None:
    """Parse with polars, for batches the exact read refused; None if it cannot be trusted.

    First with the contract's types for just the sampled keys (no inference pass: ~2.5x
    faster; reading all 22 fields when a plant sends five costs twice as much). Polars
    ignores keys a fixed schema does not name, so that read is only trusted when the
    number of keys in the text equals the number of values it parsed. Otherwise with
    full schema inference, which sees every key, trusted when keys = values + explicit
    nulls (a key given twice: polars keeps the first, the contract the last).
    """
    if keys is not None:
        try:
            frame = pl.read_ndjson(text, schema=_polars_schema(keys))
        except (pl.exceptions.PolarsError, ValueError):
            pass
        else:
            if frame.height == messages and _parsed_keys(frame) == _text_keys(text):
                return frame
    try:
        frame = pl.read_ndjson(text, infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if _parsed_keys(frame) + _null_values(text) != _text_keys(text):
        return None
    return frame


def _polars_schema(keys: _Keys) -> pl.Schema:
    """FIXED_SCHEMA narrowed to the sampled keys (ts as text: polars reads integers so)."""
    used = keys.single | keys.batch
    fields: list[tuple[str, Any]] = [
        (n, t) for n, t in FIXED_SCHEMA.items() if n in MSG_META and n in used
    ]
    if keys.batch:
        inner = [f for f in _READING_STRUCT.fields if f.name in keys.batch]
        fields.append(("readings", pl.List(pl.Struct(inner))))
    fields += [(f.name, f.dtype) for f in _READING_STRUCT.fields if f.name in keys.single]
    return pl.Schema(fields)


def _text_keys(text: bytes) -> int:
    """Object keys in JSON text: every key ends with `":`; inside a string it would be `\\":`."""
    keys = text.count(b'":')
    return keys - text.count(b'\\":') if b"\\" in text else keys


def _null_values(text: bytes) -> int:
    """Explicit nulls: keys that parse to no value."""
    return len(_NULL_RE.findall(text))


_NULL_RE: Final = re.compile(rb'":\s*null')


def _parsed_keys(frame: pl.DataFrame) -> int:
    """Non-null values the fixed-schema read produced, at both levels (null counts are O(1))."""
    top = sum(frame.height - column.null_count() for column in frame.get_columns())
    if "readings" not in frame.columns:
        return top
    inner = frame.get_column("readings").explode(empty_as_null=False).struct.unnest()
    return top + sum(inner.height - column.null_count() for column in inner.get_columns())


def _fast_typable(schema: pl.Schema) -> bool:
    def reading_ok(fields: dict[str, Any]) -> bool:
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
    frame = _with_columns_present(frame, [*MSG_META, "readings"] if has_batch else MSG_META)
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
    return frame.select("_msg", *MSG_META, *fields).with_columns(_idx=pl.lit(0, pl.Int32))


def _exploded(batch: pl.DataFrame) -> pl.DataFrame:
    meta = ["_msg", *MSG_META]
    return (
        batch.select(*meta, "readings")
        .explode("readings")
        .with_columns(_idx=pl.int_range(pl.len(), dtype=pl.Int32).over("_msg"))
        .unnest("readings")
    )


def _to_candidates(rows: pl.DataFrame) -> pl.DataFrame:
    """Rename, cast and gather unknown fields into one `_unknown` detail string."""
    known = READING_FIELDS | {"_msg", "_idx", *MSG_META}
    unknown = [c for c in rows.columns if c not in known]
    unknown_detail: pl.Expr = pl.lit(None, pl.String)
    if unknown:
        pieces = [
            pl.when(pl.col(c).is_not_null()).then(pl.lit(c + "=") + _show(rows, c)) for c in unknown
        ]
        joined = pl.concat_str(pieces, separator=", ", ignore_nulls=True)
        unknown_detail = pl.when(joined != "").then(pl.lit("unknown field(s): ") + joined)
    rows = _with_columns_present(rows, [*READING_FIELDS, *MSG_META])
    return rows.select(
        pl.col("_msg"),
        pl.col("_idx"),
        pl.col("device_id").alias("device_id_msg"),
        "gateway",
        "seq",
        pl.col("ts").cast(pl.String).alias("ts_raw"),
        (pl.col("ts") if rows.schema["ts"] == pl.Int64 else pl.lit(None, pl.Int64)).alias("ts_ms"),
        *[pl.col(q).cast(pl.Float64) for q in NUMERIC_QUANTITIES],
        "state",
        unknown_detail.alias("_unknown"),
    ).cast(CANDIDATE_SCHEMA)


def _show(rows: pl.DataFrame, column: str) -> pl.Expr:
    dtype = rows.schema[column]
    if isinstance(dtype, pl.Struct | pl.List | pl.Array):
        return pl.lit("<nested>")
    return pl.col(column).cast(pl.String)
