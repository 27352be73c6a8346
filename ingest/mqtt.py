"""The MQTT side of the consumer: a persistent QoS 1 session whose acks we send ourselves.

paho-mqtt 2.x with ``manual_ack=True``: the broker's message stays unacknowledged
(and is redelivered after a crash) until `ack_through` is called for it, which the
consumer does only once the file holding it is durable. aiomqtt has no manual ack
(aiomqtt#345) and discards already-acked messages when its queue is full, so it is
not used here.

Flow control: the broker sends at most Receive Maximum (MQTT 5, set on CONNECT) or
``max_inflight_messages`` (Mosquitto, MQTT 3.1.1) unacked messages. With acks held
until a batch is written, a batch can never hold more messages than that window,
hence `Settings.validate` requires batch_max_messages <= receive_maximum.

Flow control by bytes: the inbox counts the payload bytes it holds unacknowledged
(buffered plus the batch being landed). At ``max_inflight_bytes`` the network thread
waits inside ``on_message`` until the consumer releases a landed batch, so paho stops
reading the socket and TCP pushes back on the broker: memory stays bounded whatever
the message size. Acks queued meanwhile are written as soon as the thread resumes.

Acks go out in the order messages arrived (MQTT 5 §4.6). A message that arrived on
an earlier connection is never acked on a later one: its packet id may by then
name a different message, and the broker redelivers it anyway (dedup drops it).

Threads: paho's network thread appends to the inbox; the consumer thread takes
batches and acks. The inbox's condition variable is their only shared state.

Errors: ``MqttError`` > ``ConnectRefused`` (wrong password, not authorised, refused
subscription, untrusted or misnamed broker certificate, rejected client certificate).
A refusal is fatal: retrying cannot fix it, so the consumer loop raises it and the CLI
exits 2 with its one-line message (it is also a ``ConfigError``: the fix is in the
settings or the broker's accounts). A broker that is down or unreachable is transient:
paho retries with backoff. The password never appears in a log line or error text.
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wattline.config import (
    ConfigError,
    MqttSettings,
    TlsContext,
    describe_tls_failure,
    refusal_hint,
    tls_context,
)

log = logging.getLogger(__name__)


# PUBACK without reason code or properties (MQTT 3.1.1 3.4; 5.0 3.4.2.1 allows it for
# success): fixed header 0x40, remaining length 2, then the packet identifier.
_PUBACK: Final = struct.Struct("!HH")
_PUBACK_HEADER: Final = (paho.PUBACK << 8) | 2


class MqttError(Exception):
    """Base of the consumer's MQTT errors."""


class ConnectRefused(MqttError, ConfigError):
    """The broker refused us (credentials, ACL, certificates): fatal, `reason` says why."""

    def __init__(self, broker: str, reason: str) -> None:
        self.broker, self.reason = broker, reason
        super().__init__(f"broker {broker} refused the connection: {reason}")


@dataclass
class Received:
    """What arrived, in order, plus how to ack it. Parallel lists keep the hot path cheap."""

    topics: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    received_us: list[int] = field(default_factory=list)
    acks: list[tuple[int, int, int]] = field(default_factory=list)  # (mid, qos, generation)
    nbytes: int = 0  # payload bytes, released to the inbox once landed and acked

    def __len__(self) -> int:
        return len(self.topics)


BURST_QUIET_S: Final = 0.05


class Inbox:
    """Messages handed over by the network thread, taken in batches by the consumer."""

    def __init__(
        self,
        batch_max: int,
        batch_max_bytes: int = 16 * 1024 * 1024,
        max_held_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._batch_max = batch_max
        self._batch_max_bytes = batch_max_bytes
        self._max_held_bytes = max_held_bytes
        self.received = 0  # every message put, for metrics
        self.held_bytes = 0  # unacked payload bytes: buffered + taken, not yet released
        self.peak_held_bytes = 0
        self.pauses = 0  # times reception waited for a landed batch to free room
        self._cond = threading.Condition()
        self._items = Received()
        self._first_at = 0.0
        self._last_at = 0.0  # monotonic time of the newest put
        self._bursting = False  # the last take handed out a full batch
        self._closed = False

    def put(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        """Append a message; wait first while the unacked bytes are at the bound.

        Once closed it never waits: what still arrives is landed by the last flush (or
        redelivered), and skipping a message would break the in-order acks.
        """
        with self._cond:
            if self.held_bytes >= self._max_held_bytes and not self._closed:
                self.pauses += 1
                self._cond.notify()  # the consumer may take what is buffered now
                while self.held_bytes >= self._max_held_bytes and not self._closed:
                    self._cond.wait()
            items = self._items
            if not items.topics:
                self._first_at = time.monotonic()
            items.topics.append(topic)
            items.payloads.append(payload)
            items.received_us.append(time.time_ns() // 1000)
            items.acks.append((mid, qos, generation))
            self._last_at = time.monotonic()
            items.nbytes += len(payload)
            self.held_bytes += len(payload)
            self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes)
            self.received += 1
            if self._full(items):
                self._cond.notify()

    def _full(self, items: Received) -> bool:
        return (
            len(items.topics) >= self._batch_max
            or items.nbytes >= self._batch_max_bytes
            or self.held_bytes >= self._max_held_bytes
        )

    def take(self, max_wait_s: float, idle_s: float | None = None) -> Received:
        """Wait until a batch is full, its oldest message is `max_wait_s` old, or close().

        After a full batch (a burst: a backfill, a replay), also when nothing has arrived
        for `BURST_QUIET_S`: the end of a burst lands at once instead of a flush
        interval later, while a slow steady stream still lands once per interval (its
        batches are never full, so it never counts as a burst; no file per message).
        With `idle_s`, an empty inbox returns an empty batch after that long.
        """
        idle_until = None if idle_s is None else time.monotonic() + idle_s
        with self._cond:
            while not self._closed:
                if idle_until is not None and not self._items and time.monotonic() >= idle_until:
                    break
                count = len(self._items)
                if count and self._full(self._items):
                    break
                if count:
                    now = time.monotonic()
                    remaining = self._first_at + max_wait_s - now
                    if self._bursting:
                        remaining = min(remaining, self._last_at + BURST_QUIET_S - now)
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                elif idle_until is not None:
                    self._cond.wait(max(0.0, min(max_wait_s, idle_until - time.monotonic())))
                else:
                    self._cond.wait(max_wait_s)
            full = bool(self._items) and self._full(self._items)
            taken, self._items = self._split(self._items)
            self._bursting = full
            return taken

    def _split(self, items: Received) -> tuple[Received, Received]:
        """At most one batch's messages and bytes to take; the rest stays, in order.

        A consumer busy landing lets up to `max_held_bytes` pile up: landed as one batch,
        its frames would need several times that (measured: 20 MB batches of 100-reading
        messages). Capped at `batch_max_bytes`, the peak stays that of one full batch.
        """
        if len(items) <= self._batch_max and items.nbytes <= self._batch_max_bytes:
            return items, Received()
        cut = nbytes = 0
        for payload in itertools.islice(items.payloads, self._batch_max):
            cut += 1
            nbytes += len(payload)
            if nbytes >= self._batch_max_bytes:
                break
        if cut >= len(items):
            return items, Received()
        taken = Received(
            items.topics[:cut],
            items.payloads[:cut],
            items.received_us[:cut],
            items.acks[:cut],
            nbytes,
        )
        rest = Received(
            items.topics[cut:],
            items.payloads[cut:],
            items.received_us[cut:],
            items.acks[cut:],
            items.nbytes - nbytes,
        )
        # the rest's oldest message arrived this long ago
        self._first_at = time.monotonic() - max(0.0, time.time() - rest.received_us[0] / 1e6)
        return taken, rest

    def release(self, nbytes: int) -> None:
        """A taken batch is landed and acked: its bytes no longer count against the bound."""
        with self._cond:
            self.held_bytes -= nbytes
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _BufferedSocket:
    """A socket whose reads come from one large `recv`, for paho's small ones.

    paho reads each packet's first byte, then its length one byte at a time, then the
    rest: three to five system calls a message. This answers them from a 256 KiB read
    and says how much it holds through `pending()`, which paho's loop already asks of
    TLS sockets before it waits in select(). Everything else goes to the socket.
    """

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = bytes(self._sock.recv(max(size, _RECV_BYTES)))  # BlockingIOError passes up
            if not buf:
                return buf  # the peer closed
            self._buf, pos = buf, 0
        end = min(pos + size, len(buf))
        self._pos = end
        return buf if pos == 0 and end == len(buf) else buf[pos:end]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_RECV_BYTES: Final = 256 * 1024
_PACKETS_PER_READ: Final = 1000


OnPublish = Callable[[str, bytes, int, int], None]


class BufferedClient(paho.Client):
    """paho's client, reading through `_BufferedSocket` and handling every packet the
    buffer holds per wake-up (paho's own loop handles one, then waits in select again).

    With `on_publish_fast` set (topic, payload, mid, qos) and manual acks (the caller
    acks; this path sends none), the plain PUBLISH packets the buffer holds whole are
    parsed here and handed to it (`_read_publishes`): no MQTTMessage, v5 Properties,
    log call or topic matcher per message. paho's callbacks (`on_message`) see what
    that path leaves: QoS 2, v5 properties, an empty or non-UTF-8 topic, anything
    malformed, packets cut by a read.

    Measured with a bare QoS 1 collector and mosquitto_pub (tests' broker, 2 cores): CPU
    per one-reading message 37 -> 23 us, per 100-reading message 51 -> 38 us with the
    buffer alone; with the fast path, bench/ingest.py's consumer went from 30,000 to
    50,000-58,000 one-reading msg/s and from ~600,000 to ~800,000 readings/s in
    100-reading messages. Uses paho's internals `_create_socket`, `_packet_read`,
    `_in_packet`, `_manual_ack`, `_protocol`, `_msgtime_mutex`, `_last_bytes_received`
    and (for acks, in `Subscriber`) `_packet_queue`, stable across paho 2.x (pinned
    below 3); tests/ingest/test_mqtt_buffered.py and the redelivery test in
    test_crash.py hold them to it.
    """

    on_publish_fast: OnPublish | None = None

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(_PACKETS_PER_READ):
            sock: Any = self._sock
            if sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if self._in_packet["command"] == 0 and self.on_publish_fast and self._manual_ack:
                self._read_publishes(sock, self.on_publish_fast)
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or not sock.pending():
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _read_publishes(self, sock: _BufferedSocket, on_publish: OnPublish) -> int:
        """Hand over the whole plain PUBLISH packets at the head of the buffer; stop at
        the first packet paho must read (MQTT 3.1.1 and 5.0, section 3.3)."""
        buf, pos = sock._buf, sock._pos
        size = len(buf)
        v5 = self._protocol == paho.MQTTv5
        handed = 0
        while pos < size:
            header = buf[pos]
            qos = (header >> 1) & 3
            if header >> 4 != _PUBLISH or qos > 1:
                break
            at, length, shift = pos + 1, 0, 0
            while at < size and at - pos <= 4:
                byte = buf[at]
                length |= (byte & 0x7F) << shift
                shift += 7
                at += 1
                if byte < 0x80:
                    break
            else:
                break  # the length is cut by the read, or longer than four bytes
            end = at + length
            if end > size or end < at + 2:
                break  # cut by the read, or too short for a topic
            topic_end = at + 2 + ((buf[at] << 8) | buf[at + 1])
            body = topic_end + (2 if qos else 0)
            if topic_end == at + 2 or body + v5 > end or (v5 and buf[body]):
                break  # an empty topic (v5: an alias), too short, or v5 properties
            try:
                topic = buf[at + 2 : topic_end].decode()
            except UnicodeDecodeError:
                break
            mid = (buf[topic_end] << 8) | buf[topic_end + 1] if qos else 0
            sock._pos = pos = end
            on_publish(topic, buf[body + v5 : end], mid, qos)
            handed += 1
        if handed:
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
        return handed


_PUBLISH: Final = 3


class Subscriber:
    """A paho client in a background thread, feeding an `Inbox`."""

    def __init__(self, settings: MqttSettings, inbox: Inbox) -> None:
        self.settings = settings
        self.inbox = inbox
        self.generation = 0
        self.connected = threading.Event()
        self.refused: ConnectRefused | None = None
        # monotonic time since the broker is away (None while subscribed), for /healthz
        self.down_since: float | None = time.monotonic()
        self._stopping = False
        self._where = f"{settings.host}:{settings.port}"
        v5 = settings.protocol == "5"
        self._client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        self._tls: TlsContext | None = None
        if settings.tls:
            s = settings
            self._tls = tls_context("mqtt", s.ca_file, s.cert_file, s.key_file, s.tls_insecure)
            self._client.tls_set_context(self._tls)
            self._client.tls_insecure_set(s.tls_insecure)
        if settings.sparkplug_topic:  # Sparkplug B 3.0 primary host: STATE offline as our Will
            from ingest.sparkplug_host import state_payload, state_topic

            self._client.will_set(
                state_topic(settings.host_id),
                state_payload(False, datetime.now(UTC)),
                qos=1,
                retain=True,
            )
        self._client.reconnect_delay_set(1, max(1, int(settings.reconnect_max_s)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish_fast = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_connect_fail = self._on_connect_fail

    def start(self) -> None:
        s = self.settings
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            self._client.connect_async(
                s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect without ending the session: the broker keeps queueing for us."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """A message from the host (Sparkplug rebirth commands); paho queues it while away."""
        self._client.publish(topic, payload, qos=qos)

    def ack_through(self, acks: list[tuple[int, int, int]]) -> int:
        """Ack in arrival order the messages that came on the current connection.

        A batch's QoS 1 acks go out as one write: paho's `ack()` queues one packet per
        message and wakes its loop with a byte on a socket pair each time, so 20,000
        acks cost 40,000 system calls; here each run of them is one packet of PUBACKs
        (4 bytes each, the bytes `ack()` sends, in the same order) queued through paho's
        `_packet_queue`. QoS 2 (never subscribed at) still goes through `ack()`, in place.
        """
        current = self.generation
        run: list[int] = []
        sent = 0
        for mid, qos, generation in acks:
            if not qos or generation != current:
                continue
            sent += 1
            if qos == 1:
                run.append(mid)
                continue
            self._queue_pubacks(run)
            run = []
            self._client.ack(mid, qos)
        self._queue_pubacks(run)
        return sent

    def _queue_pubacks(self, mids: list[int]) -> None:
        if mids:
            packet = b"".join([_PUBACK.pack(_PUBACK_HEADER, mid) for mid in mids])
            self._client._packet_queue(paho.PUBACK, packet, 0, 1)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refuse(f"{reason} ({refusal_hint(reason.value, 'mqtt')})")
            return
        self.generation += 1
        s = self.settings
        if s.sparkplug_topic:
            from ingest.sparkplug_host import state_payload, state_topic

            client.subscribe([(s.topic, s.qos), (s.sparkplug_topic, s.qos)])
            client.publish(
                state_topic(s.host_id), state_payload(True, datetime.now(UTC)), qos=1, retain=True
            )
        else:
            client.subscribe(s.topic, qos=s.qos)
        log.info(
            "mqtt connected host=%s port=%d session_present=%s generation=%d",
            s.host,
            s.port,
            flags.session_present,
            self.generation,
        )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        """Ready only once the broker confirms the subscription (a refusal is fatal)."""
        refused = [r for r in reasons if r.is_failure]
        if refused:
            hint = refusal_hint(refused[0].value, "mqtt")
            self._refuse(f"subscription to {self.settings.topic}: {refused[0]} ({hint})")
            return
        log.info("mqtt subscribed topic=%s qos=%s", self.settings.topic, reasons[0])
        self.down_since = None
        self.connected.set()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        """Unreachable is transient (paho retries); a TLS failure is not."""
        self._tls_refusal()

    def _tls_refusal(self) -> bool:
        tls = self._tls
        if tls is None or tls.failure is None:
            return False
        failure, tls.failure = tls.failure, None
        self._refuse(describe_tls_failure("mqtt", failure))
        return True

    def _refuse(self, reason: str) -> None:
        """Record the fatal refusal the consumer loop raises; log it once; wake the loop."""
        if self.refused is None:
            self.refused = ConnectRefused(self._where, reason)
            log.error("mqtt %s", self.refused)
            self.inbox.close()  # an empty inbox would otherwise keep the loop waiting

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self.connected.is_set() and self._tls_refusal():
            return  # TLS 1.3: the broker rejects a client certificate after the handshake
        if self.connected.is_set() and not self._stopping:
            log.warning("mqtt disconnected reason=%s; unacked messages will be redelivered", reason)
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.connected.clear()

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.inbox.put(topic, payload, mid, qos, self.generation)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        self._on_publish(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
