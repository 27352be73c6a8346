"""The buffered paho client: the same bytes, in order, with a fraction of the system calls."""

from __future__ import annotations

import os
import random
import socket
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt._packet import decode_publish
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import BufferedClient, _BufferedSocket
from tests.conftest import Publisher
from wattline.broker import Broker

pytestmark = pytest.mark.broker


def test_small_reads_return_the_stream_exactly_and_pending_counts_what_is_held() -> None:
    left, right = socket.socketpair()
    right.setblocking(False)
    wrapped = _BufferedSocket(right)
    data = os.urandom(600_000)  # more than two of the wrapper's reads
    rng = random.Random(2)
    out = bytearray()

    def send() -> None:
        left.sendall(data)
        left.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    while True:
        try:
            chunk = wrapped.recv(rng.choice([1, 1, 2, 4, 100, 70_000]))
        except BlockingIOError:
            assert wrapped.pending() == 0, "an empty buffer must let paho wait in select()"
            threading.Event().wait(0.001)
            continue
        if not chunk:
            break
        out += chunk
        assert 0 <= wrapped.pending() <= 256 * 1024
    sender.join()
    assert bytes(out) == data
    assert wrapped.pending() == 0
    assert wrapped.fileno() == right.fileno()  # the rest is the socket's own
    left.close()
    right.close()


def test_buffered_client_receives_every_payload_in_order(broker: Broker) -> None:
    """Sizes from 0 bytes to past the 256 KiB read, so packets straddle reads."""
    rng = random.Random(9)
    payloads = [
        os.urandom(rng.choice([0, 1, 60, 127, 128, 16_383, 16_384, 300_000])) for _ in range(400)
    ]
    got: list[bytes] = []
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        client.ack(msg.mid, msg.qos)
        if len(got) == len(payloads):
            done.set()

    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="buffered-test",
        protocol=paho.MQTTv5,
        manual_ack=True,
    )
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe("buffered/#", qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        publisher = Publisher(broker)
        publisher.publish_many([("buffered/t", p) for p in payloads])
        publisher.close()
        assert done.wait(30), f"{len(got)} of {len(payloads)} arrived"
        assert got == payloads
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
def test_fast_publish_path_hands_over_what_paho_would(
    broker: Broker, protocol: MQTTProtocolVersion
) -> None:
    """`on_publish_fast` and paho's `on_message` together see every message once, in
    order, byte for byte: packets cut by a read, QoS 0 and 1, non-ASCII topics, empty
    payloads, and (v5) messages with properties, which only paho's path reads."""
    rng = random.Random(protocol)
    topics = ["buffered/a", "buffered/厂/泵1", "buffered/" + "x" * 300]
    sizes = [0, 1, 60, 127, 128, 9_000, 16_384, 300_000]
    sent = [
        (rng.choice(topics), os.urandom(rng.choice(sizes)), rng.choice([0, 1, 1]), rng.random())
        for _ in range(600)
    ]
    got: dict[str, list[tuple[bytes, int]]] = {}
    via = {"fast": 0, "paho": 0}
    done = threading.Event()
    subscribed = threading.Event()

    def take(topic: str, payload: bytes, mid: int, qos: int, path: str) -> None:
        got.setdefault(topic, []).append((payload, qos))
        via[path] += 1
        if qos:
            client.ack(mid, qos)
        if sum(via.values()) == len(sent):
            done.set()

    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"fast-test-{protocol}",
        protocol=protocol,
        manual_ack=True,
    )
    client.on_publish_fast = lambda t, p, m, q: take(t, p, m, q, "fast")
    client.on_message = lambda c, u, m: take(m.topic, bytes(m.payload), m.mid, m.qos, "paho")
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe("buffered/#", qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    publisher = Publisher(broker)
    try:
        assert subscribed.wait(10)
        infos = []
        for topic, payload, qos, roll in sent:
            props = None
            if roll < 0.1:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.UserProperty = ("k", "v")
            infos.append(publisher.client.publish(topic, payload, qos=qos, properties=props))
        for info in infos:
            info.wait_for_publish(30)
        assert done.wait(30), f"{sum(via.values())} of {len(sent)} arrived"
    finally:
        publisher.close()
        client.disconnect()
        client.loop_stop()
    for topic in topics:  # MQTT orders per topic and QoS (the publisher's QoS 1 queue
        for qos in (0, 1):  # lets QoS 0 overtake)
            wanted = [p for t, p, q, _ in sent if t == topic and q == qos]
            assert [p for p, q in got.get(topic, []) if q == qos] == wanted, (topic, qos)
    assert sum(len(v) for v in got.values()) == len(sent)
    assert via["fast"] > len(sent) // 2, via  # most packets arrive whole in the buffer
    assert via["paho"] > 0, via  # cut packets, 300 KB ones, and (v5) properties


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(
    topic: bytes, payload: bytes, qos: int, mid: int, v5: bool, props: bytes = b""
) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    body += (_varint(len(props)) + props if v5 else b"") + payload
    return bytes([0x30 | qos << 1]) + _varint(len(body)) + body


@pytest.mark.parametrize("v5", [True, False])
def test_fast_path_stops_at_the_first_packet_paho_must_read(v5: bool) -> None:
    """Byte level, no broker: what is handed over, and where the buffer is left for paho."""
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True
    )
    plain = [
        _publish(b"t/a", b"", 1, 1, v5),
        _publish("t/厂".encode(), os.urandom(200), 1, 65535, v5),  # a two-byte length
        _publish(b"t/" + b"x" * 300, os.urandom(20_000), 0, 0, v5),  # a three-byte length
    ]
    stoppers = {
        "qos 2": _publish(b"t/a", b"x", 2, 7, v5),
        "not a publish": b"\xd0\x00",  # PINGRESP
        "empty topic": _publish(b"", b"x", 1, 8, v5),
        "non-UTF-8 topic": _publish(b"t/\xff", b"x", 1, 9, v5),
        "length cut by the read": plain[1][:2],
        "packet cut by the read": plain[2][:-1],
        "five length bytes": b"\x32\xff\xff\xff\xff\x01",
        "too short for a topic": b"\x30\x01\x00",
        "topic longer than the packet": b"\x30\x04\x00\x09t/",
    }
    if v5:
        stoppers["v5 properties"] = _publish(b"t/a", b"x", 1, 10, v5, props=b"\x01\x01")
    for why, stopper in stoppers.items():
        sock = _BufferedSocket(None)
        cut = "cut" in why  # a cut packet is the last thing a read holds
        sock._buf = b"".join(plain) + stopper + (b"" if cut else plain[0])
        handed: list[tuple[str, bytes, int, int]] = []
        count = client._read_publishes(sock, lambda *args, into=handed: into.append(args))
        assert count == len(handed) == 3, why
        assert sock._pos == sum(map(len, plain)), why  # paho reads the stopper next
        expected = [_paho_reads(packet, protocol) for packet in plain]
        assert handed == expected, why


def _paho_reads(packet: bytes, protocol: MQTTProtocolVersion) -> tuple[str, bytes, int, int]:
    """What paho's own decoder makes of one whole PUBLISH packet."""
    at, length, shift = 1, 0, 0
    while True:
        length |= (packet[at] & 0x7F) << shift
        shift += 7
        at += 1
        if packet[at - 1] < 0x80:
            break
    assert at + length == len(packet)
    decoded = decode_publish(packet[0], packet[at:], protocol)
    return decoded.topic.decode(), bytes(decoded.payload), decoded.mid, decoded.qos
