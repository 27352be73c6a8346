"""The buffered paho client: the same bytes, in order, with a fraction of the system calls."""

from __future__ import annotations

import os
import random
import socket
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

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
