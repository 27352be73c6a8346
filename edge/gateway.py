"""The edge gateway: poll devices, batch per device, spool every batch, publish in order.

    poll tasks (one per device, fixed rate; ts at read time) -> pending readings per device
    every publish_interval_s: one message per device {"device_id","gateway","seq","readings"}
                              -> spool.append (durable before anything is sent)
    publisher: oldest spooled batch first -> MQTT QoS 1, <= max_inflight unacked,
               <= rate_msgs_per_s -> PUBACK -> batch fully acked -> spool.remove

Live traffic and replay are one path: while the broker is away polling continues and
batches pile up in the spool; when it is back the same publisher drains them oldest
first at the bounded rate (ThingsBoard #15685: an unthrottled backlog flush trips the
platform's rate limits). paho-mqtt's network thread owns the socket and re-sends
unacknowledged QoS 1 messages after a reconnect; its callbacks are handed to the event
loop, which alone touches the spool. A PUBACK with a failure reason code (MQTT 5: quota
exceeded, not authorised) keeps the batch and the message is re-sent after a pause.
A refused CONNECT (wrong password, bad certificate) is logged once as an error naming
the cause and retried like an outage: the gateway keeps polling and spooling, so the
readings survive until the broker's accounts or the gateway's settings are fixed.

`seq` counts messages per gateway (wire contract) and continues across restarts through
the spool; it shows gaps only where the spool policy dropped or expired batches.
Stopping (SIGTERM): polls finish, pending readings are spooled, the spool drains for up
to drain_timeout_s; whatever is left replays at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.modbus import Reading, Source, poll_forever
from edge.spool import Entry, Record, Spool, SpoolError
from schemas.wire import MAX_PAYLOAD_BYTES, topic_for
from wattline.config import TlsContext, describe_tls_failure, refusal_hint, tls_context

if TYPE_CHECKING:
    from edge.gateway_cli import BrokerConfig, GatewayConfig

log = logging.getLogger(__name__)
MAX_READINGS_PER_MESSAGE: Final = 500
REFUSED_RETRY_S: Final = 5.0


@dataclass
class GatewayCounters:
    readings_polled: int = 0
    polls_skipped: int = 0
    messages_acked: int = 0
    readings_acked: int = 0
    publishes_refused: int = 0
    readings_replayed: int = 0


class MqttLink:
    """paho-mqtt on its own thread; connection state and PUBACKs surface as asyncio objects."""

    def __init__(self, config: BrokerConfig, max_inflight: int) -> None:
        self._loop, self.config = asyncio.get_running_loop(), config
        self.connected, self.disconnected = asyncio.Event(), asyncio.Event()
        self.disconnected.set()
        self._v5 = config.protocol == "5"
        self._client = c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
        )
        if config.username:
            c.username_pw_set(config.username, config.password or None)
        self._tls: TlsContext | None = None
        if config.tls:
            self._tls = tls_context("broker", *config.tls_files(), config.tls_insecure)
            c.tls_set_context(self._tls)
            c.tls_insecure_set(config.tls_insecure)
        # paho's hints say int; its backoff arithmetic is float, sub-second delays work
        c.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)  # type: ignore[arg-type]
        c.max_inflight_messages_set(max_inflight)
        c.on_connect, c.on_disconnect, c.on_publish = self._connack, self._gone, self._puback
        c.on_connect_fail = self._unreachable
        self._acks: dict[int, asyncio.Future[int]] = {}
        self._complaint, self._stopping = "", False

    def start(self) -> None:
        extra = {"clean_start": True} if self._v5 else {}
        cfg = self.config
        self._client.connect_async(cfg.host, cfg.port, cfg.keepalive_s, **extra)  # type: ignore[arg-type]
        self._client.loop_start()

    async def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[int]:
        """QoS 1 publish; the future gets the PUBACK reason code (>= 0x80: refused)."""
        info = self._client.publish(topic, payload, qos=1)
        done: asyncio.Future[int] = self._loop.create_future()
        if info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):  # sent, or queued
            self._acks[info.mid] = done
        else:
            done.set_result(0x80)
        return done

    def _connack(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        hint = refusal_hint(reason.value, "broker") if reason.is_failure else ""
        refused = f"refused the connection: {reason} ({hint})" if reason.is_failure else ""
        self._loop.call_soon_threadsafe(self._state, not reason.is_failure, refused)

    def _gone(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        problem = self._tls_problem() or f"lost ({reason})"
        self._loop.call_soon_threadsafe(self._state, False, problem)

    def _unreachable(self, client: Any, userdata: Any) -> None:
        problem = self._tls_problem() or "unreachable"
        self._loop.call_soon_threadsafe(self._state, False, problem)

    def _tls_problem(self) -> str:
        """The last TLS failure as a refusal (untrusted or misnamed certificate), or ""."""
        tls = self._tls
        if tls is None or tls.failure is None:
            return ""
        failure, tls.failure = tls.failure, None
        return f"refused TLS: {describe_tls_failure('broker', failure)}"

    def _puback(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._loop.call_soon_threadsafe(self._acked, mid, int(reason.value))

    def _state(self, up: bool, problem: str) -> None:
        """Connection changes; a problem is logged once until the next successful connect."""
        if up:
            self.disconnected.clear()
            self.connected.set()
            self._complaint = ""
            return
        was_up = self.connected.is_set()
        self.connected.clear()
        self.disconnected.set()
        refused = problem.startswith("refused")
        if self._stopping or problem == self._complaint or (self._complaint and not refused):
            return  # one line per outage; a refusal (credentials, ACL) is worth its own
        if problem.startswith("lost") and not was_up:
            return  # paho's disconnect after a refused CONNACK
        self._complaint = problem
        level = logging.ERROR if refused else logging.WARNING
        log.log(level, "broker %s:%d %s; spooling and retrying", self.config.host,
                self.config.port, problem)  # fmt: skip

    def _acked(self, mid: int, code: int) -> None:
        done = self._acks.pop(mid, None)
        if done is not None and not done.done():
            done.set_result(code)


@dataclass
class _Flight:
    """A spooled batch being published: removed from the spool when `unacked` reaches 0."""

    entry: Entry
    unacked: int


@dataclass
class Gateway:
    """One gateway process: its sources, its spool, its broker link. `run` until stopped."""

    config: GatewayConfig
    sources: Sequence[Source]
    counters: GatewayCounters = field(default_factory=GatewayCounters)

    def __post_init__(self) -> None:
        self.spool = Spool(self.config.spool)
        self.paused, self._refusing = False, False
        self._pending: dict[str, list[Reading]] = {s.device_id: [] for s in self.sources}
        self._spooled, self._removed = asyncio.Event(), asyncio.Event()
        self._window = asyncio.Semaphore(self.config.replay.max_inflight)
        self._retries: set[asyncio.Task[None]] = set()
        self._next_send, self._replay_started = 0.0, 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then stop polling, spool what is pending and drain."""
        cfg = self.config
        self.link = MqttLink(cfg.broker, cfg.replay.max_inflight)
        self.link.start()
        polls_stop, interval = asyncio.Event(), {d.id: d.interval_s for d in cfg.devices}
        pollers = [
            asyncio.create_task(
                poll_forever(
                    s, interval[s.device_id], self._add, polls_stop, self._held, self._skip
                )
            )
            for s in self.sources
        ]
        workers = [asyncio.create_task(c()) for c in (self._tick, self._publish, self._watch)]
        stopper = asyncio.create_task(stop.wait())
        log.info("gateway %s started: %d devices", cfg.gateway.id, len(self.sources))
        try:
            everything = [stopper, *pollers, *workers]
            done, _ = await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                task.result()  # a worker that ends is a bug: raise it
        finally:
            polls_stop.set()
            await asyncio.gather(*pollers, return_exceptions=True)  # polls finish, not cancelled
            workers[0].cancel()
            self._flush()
            if unspooled := sum(len(r) for r in self._pending.values()):
                log.error("stopping with %d readings the full spool refused: lost", unspooled)
            await self._drain()
            for task in (*workers, *self._retries, stopper):
                task.cancel()
            await self.link.stop()
            for source in self.sources:
                await source.close()
            self.spool.close()
            c = self.counters
            log.info("gateway stopped: polled=%d acked=%d replayed=%d readings; spool keeps %d",
                     c.readings_polled, c.readings_acked, c.readings_replayed,
                     self.spool.readings)  # fmt: skip

    def _held(self) -> bool:
        return self.paused

    def _skip(self) -> None:
        self.counters.polls_skipped += 1

    def _add(self, device_id: str, reading: Reading) -> None:
        self._pending[device_id].append(reading)
        self.counters.readings_polled += 1

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.gateway.publish_interval_s)  # the batching clock
            self._flush()

    def _flush(self) -> None:
        """Pending readings -> one message per device (a seq each) -> one durable spool batch."""
        ready = {d: r for d, r in self._pending.items() if r}
        records: list[Record] = []
        for device_id, readings in ready.items():
            topic = topic_for(self.config.gateway.site, device_id)
            seq = self.spool.next_seq + len(records)
            for payload, count in self._messages(device_id, readings, seq):
                records.append(Record(seq, topic, payload, count))
                seq += 1
        try:
            entry = self.spool.append(records)
        except SpoolError as exc:
            if not self.paused:
                log.error("spool refused a batch (%s): polling paused, readings kept", exc)
            self.paused = True
            return
        if self.paused:
            log.info("spool accepts batches again: polling resumed")
            self.paused = False
        if entry is None:
            return
        for device_id in ready:
            self._pending[device_id] = []
        self._spooled.set()
        log.info("batch seq=%d..%d devices=%d readings=%d; spool %d batches, %.2f MB",
                 entry.first_seq, entry.last_seq, len(ready), entry.readings,
                 len(self.spool.entries), self.spool.bytes / 1e6)  # fmt: skip

    def _messages(self, device: str, readings: list[Reading], seq: int) -> list[tuple[bytes, int]]:
        """Wire-contract batches of <= 500 readings, halved again if one passes 256 KiB."""
        out: list[tuple[bytes, int]] = []
        step = MAX_READINGS_PER_MESSAGE
        chunks = [readings[i : i + step] for i in range(0, len(readings), step)]
        while chunks:
            chunk = chunks.pop(0)
            body = {"device_id": device, "gateway": self.config.gateway.id, "seq": seq + len(out)}
            payload = json.dumps(
                {**body, "readings": chunk}, separators=(",", ":"), allow_nan=False
            )
            if len(payload) > MAX_PAYLOAD_BYTES and len(chunk) > 1:
                chunks[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
                continue
            out.append((payload.encode(), len(chunk)))
        return out

    async def _publish(self) -> None:
        while True:
            taken = self.spool.take()
            if taken is None:
                self._spooled.clear()
                await self._spooled.wait()
                continue
            entry, records = taken
            flight = _Flight(entry, len(records))
            for record in records:
                await self._send(record, flight)

    async def _send(self, record: Record, flight: _Flight) -> None:
        await self.link.connected.wait()
        await self._window.acquire()
        loop = asyncio.get_running_loop()
        if (delay := self._next_send - loop.time()) > 0:
            await asyncio.sleep(delay)  # the replay rate bound, not a wait for an event
        self._next_send = max(loop.time(), self._next_send) + 1 / self.config.replay.rate_msgs_per_s
        done = self.link.publish(record.topic, record.payload)
        done.add_done_callback(partial(self._on_puback, record, flight))

    def _on_puback(self, record: Record, flight: _Flight, done: asyncio.Future[int]) -> None:
        self._window.release()
        if done.cancelled():
            return
        if done.result() >= 0x80:
            self.counters.publishes_refused += 1
            if not self._refusing:
                log.warning("broker refuses publishes (reason %#x at seq %d); retrying every %g s",
                            done.result(), record.seq, REFUSED_RETRY_S)  # fmt: skip
            self._refusing = True
            task = asyncio.get_running_loop().create_task(self._resend(record, flight))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
            return
        if self._refusing:
            log.info("broker accepts publishes again (%d refused)", self.counters.publishes_refused)
            self._refusing = False
        self.counters.messages_acked += 1
        self.counters.readings_acked += record.readings
        flight.unacked -= 1
        if flight.unacked == 0:
            self.spool.remove(flight.entry)
            self._removed.set()
            if self._replay_started and not self.spool.entries:
                log.info("replay done in %.1f s", time.monotonic() - self._replay_started)
                self._replay_started = 0.0

    async def _resend(self, record: Record, flight: _Flight) -> None:
        await asyncio.sleep(REFUSED_RETRY_S)  # back off from a broker that said no
        await self._send(record, flight)

    async def _watch(self) -> None:
        """One log line per connection; counts the backlog each reconnect replays."""
        while True:
            await self.link.connected.wait()
            if backlog := self.spool.readings:
                self._replay_started = time.monotonic()
                self.counters.readings_replayed += backlog
                log.info("broker connected; replaying %d batches (%d readings) at <= %g msg/s",
                         len(self.spool.entries), backlog,
                         self.config.replay.rate_msgs_per_s)  # fmt: skip
            else:
                log.info("broker connected")
            await self.link.disconnected.wait()

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.config.gateway.drain_timeout_s
        while self.spool.entries and self.link.connected.is_set():
            self._removed.clear()
            try:
                await asyncio.wait_for(self._removed.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        if self.spool.entries:
            log.warning("stopping with %d batches (%d readings) spooled; they replay at the next "
                        "start", len(self.spool.entries), self.spool.readings)  # fmt: skip
