"""Sparkplug B 3.0 payloads: the Eclipse Tahu schema (`org.eclipse.tahu.protobuf`,
sparkplug_b.proto) as protobuf messages built here from a descriptor, and the decoding
of metric values by their declared datatype.

No generated code and no protoc: the message definitions are written out below as a
FileDescriptorProto (field numbers and types from the Sparkplug B 3.0 specification's
payload definition) and turned into classes by the `protobuf` runtime.

Signed integers travel in unsigned fields (`int_value` uint32, `long_value` uint64).
Edge nodes in the field send a negative Int8/Int16/Int32 two ways: as the two's
complement of the declared width (Int8 −1 = 0xFF) or sign-extended to 32 bits
(0xFFFFFFFF). Taking the value modulo 2^width and reading it as signed decodes both.

Not decoded to readings (they are not telemetry values): DataSet, Template, File,
PropertySet values of metrics; they are reported as `sparkplug_unsupported_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE: Final = "org.eclipse.tahu.protobuf"

# DataType enum of the specification (§6.4.16).
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = 9, 10, 11, 12, 13, 14
UUID, DATASET, BYTES, FILE, TEMPLATE = 15, 16, 17, 18, 19
DATATYPES: Final = {
    INT8: "Int8",
    INT16: "Int16",
    INT32: "Int32",
    INT64: "Int64",
    UINT8: "UInt8",
    UINT16: "UInt16",
    UINT32: "UInt32",
    UINT64: "UInt64",
    FLOAT: "Float",
    DOUBLE: "Double",
    BOOLEAN: "Boolean",
    STRING: "String",
    DATETIME: "DateTime",
    TEXT: "Text",
    UUID: "UUID",
    DATASET: "DataSet",
    BYTES: "Bytes",
    FILE: "File",
    TEMPLATE: "Template",
}
_WIDTH: Final = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}
_UNSIGNED: Final = {UINT8: 8, UINT16: 16, UINT32: 32, UINT64: 64}

F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def _field(
    msg: Any,
    name: str,
    number: int,
    kind: int,
    label: int = _OPT,
    type_name: str = "",
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        f.type_name = f".{PACKAGE}.{type_name}"
    if oneof is not None:
        f.oneof_index = oneof


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="sparkplug_b_wattline.proto", package=PACKAGE, syntax="proto2"
    )
    payload = fd.message_type.add(name="Payload")
    # Payload.PropertyValue / PropertySet / PropertySetList
    pv = payload.nested_type.add(name="PropertyValue")
    pv.oneof_decl.add(name="value")
    _field(pv, "type", 1, F.TYPE_UINT32)
    _field(pv, "is_null", 2, F.TYPE_BOOL)
    for name, number, kind in (
        ("int_value", 3, F.TYPE_UINT32),
        ("long_value", 4, F.TYPE_UINT64),
        ("float_value", 5, F.TYPE_FLOAT),
        ("double_value", 6, F.TYPE_DOUBLE),
        ("boolean_value", 7, F.TYPE_BOOL),
        ("string_value", 8, F.TYPE_STRING),
    ):
        _field(pv, name, number, kind, oneof=0)
    _field(pv, "propertyset_value", 9, F.TYPE_MESSAGE, type_name="Payload.PropertySet", oneof=0)
    _field(
        pv, "propertysets_value", 10, F.TYPE_MESSAGE, type_name="Payload.PropertySetList", oneof=0
    )
    ps = payload.nested_type.add(name="PropertySet")
    _field(ps, "keys", 1, F.TYPE_STRING, _REP)
    _field(ps, "values", 2, F.TYPE_MESSAGE, _REP, "Payload.PropertyValue")
    psl = payload.nested_type.add(name="PropertySetList")
    _field(psl, "propertyset", 1, F.TYPE_MESSAGE, _REP, "Payload.PropertySet")
    meta = payload.nested_type.add(name="MetaData")
    for name, number, kind in (
        ("is_multi_part", 1, F.TYPE_BOOL),
        ("content_type", 2, F.TYPE_STRING),
        ("size", 3, F.TYPE_UINT64),
        ("seq", 4, F.TYPE_UINT64),
        ("file_name", 5, F.TYPE_STRING),
        ("file_type", 6, F.TYPE_STRING),
        ("md5", 7, F.TYPE_STRING),
        ("description", 8, F.TYPE_STRING),
    ):
        _field(meta, name, number, kind)
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind in (
        ("name", 1, F.TYPE_STRING),
        ("alias", 2, F.TYPE_UINT64),
        ("timestamp", 3, F.TYPE_UINT64),
        ("datatype", 4, F.TYPE_UINT32),
        ("is_historical", 5, F.TYPE_BOOL),
        ("is_transient", 6, F.TYPE_BOOL),
        ("is_null", 7, F.TYPE_BOOL),
    ):
        _field(metric, name, number, kind)
    _field(metric, "metadata", 8, F.TYPE_MESSAGE, type_name="Payload.MetaData")
    _field(metric, "properties", 9, F.TYPE_MESSAGE, type_name="Payload.PropertySet")
    for name, number, kind in (
        ("int_value", 10, F.TYPE_UINT32),
        ("long_value", 11, F.TYPE_UINT64),
        ("float_value", 12, F.TYPE_FLOAT),
        ("double_value", 13, F.TYPE_DOUBLE),
        ("boolean_value", 14, F.TYPE_BOOL),
        ("string_value", 15, F.TYPE_STRING),
        ("bytes_value", 16, F.TYPE_BYTES),
    ):
        _field(metric, name, number, kind, oneof=0)
    # DataSet (17) and Template (18) values are kept as opaque bytes: a host that does
    # not use them must still parse the rest of the payload.
    _field(metric, "dataset_value", 17, F.TYPE_BYTES, oneof=0)
    _field(metric, "template_value", 18, F.TYPE_BYTES, oneof=0)
    for name, number, kind in (
        ("timestamp", 1, F.TYPE_UINT64),
        ("seq", 3, F.TYPE_UINT64),
        ("uuid", 4, F.TYPE_STRING),
        ("body", 5, F.TYPE_BYTES),
    ):
        _field(payload, name, number, kind)
    _field(payload, "metrics", 2, F.TYPE_MESSAGE, _REP, "Payload.Metric")
    payload.extension_range.add(start=6, end=536870912)
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
Payload: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.Payload"))


class DecodeError(ValueError):
    """A payload or a metric that cannot be read; `reason` is the quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def parse(raw: bytes) -> Any:
    """A Payload message from the wire bytes, or DecodeError(sparkplug_decode_error)."""
    message = Payload()
    try:
        message.ParseFromString(raw)
    except Exception as exc:  # protobuf raises its own DecodeError and others
        raise DecodeError("sparkplug_decode_error", f"not a Sparkplug B payload: {exc}") from exc
    return message


def signed(value: int, width: int) -> int:
    """A signed integer of `width` bits from its unsigned carrier, whether it was sent as
    the two's complement of the width or sign-extended to 32 (or 64) bits."""
    value %= 1 << width
    return value - (1 << width) if value >= 1 << (width - 1) else value


@dataclass(frozen=True)
class Value:
    number: float | None  # numeric metrics (and booleans as 0/1)
    text: str | None  # String / Text / UUID
    timestamp: datetime | None  # DateTime metrics


def metric_value(metric: Any, datatype: int) -> Value:
    """A metric's value by its declared datatype (from the metric or its birth)."""
    if metric.is_null:
        return Value(None, None, None)
    which = metric.WhichOneof("value")
    if datatype in _WIDTH:
        carrier = metric.long_value if which == "long_value" else metric.int_value
        return Value(float(signed(int(carrier), _WIDTH[datatype])), None, None)
    if datatype in _UNSIGNED:
        carrier = metric.long_value if which == "long_value" else metric.int_value
        return Value(float(int(carrier) % (1 << _UNSIGNED[datatype])), None, None)
    if datatype == FLOAT:
        return Value(float(metric.float_value), None, None)
    if datatype == DOUBLE:
        return Value(float(metric.double_value), None, None)
    if datatype == BOOLEAN:
        return Value(1.0 if metric.boolean_value else 0.0, None, None)
    if datatype in (STRING, TEXT, UUID):
        return Value(None, str(metric.string_value), None)
    if datatype == DATETIME:
        ms = int(metric.long_value)
        return Value(None, None, datetime.fromtimestamp(ms / 1000, UTC))
    name = DATATYPES.get(datatype, f"unknown ({datatype})")
    raise DecodeError("sparkplug_unsupported_type", f"metric datatype {name} is not telemetry")


def encode_signed(value: int, width: int, sign_extend: bool = False) -> int:
    """The unsigned carrier of a signed value (the edge side; tests and the simulator)."""
    bits = 32 if sign_extend and width < 32 else width
    return value % (1 << bits)
