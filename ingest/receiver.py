"""Network reception in its own process (`ingest.receiver = "process"`).

Why: paho's receive loop is Python and holds the GIL for every packet. In one process
it and the landing thread take turns: a 200,000-reading batch that lands in 0.20 s
alone took 0.67 s beside a busy Python thread (measured here). In a child process the
receive loop has its own interpreter, and landing runs at its solo speed.

    child:  paho network thread -> Inbox (bounded by bytes) -> sender thread --batch-->
    parent: Consumer.flush() lands it durably --ack(acks)--> child acks in arrival order
            --release(nbytes)--> the child's inbox frees room, reception resumes

The guarantees do not move: the child acks a message only when the parent asks, and
the parent asks only after the durable write, for whole batches, in order. A parent
that dies (SIGKILL included) closes the pipe; the child sees end-of-file and exits at
once without acking, so the broker redelivers everything unacked to the next run. A
child that dies makes the parent's next `take` raise `ReceiverDied`.

`ProcessReception` has the attributes of `Inbox` and `Subscriber` that the consumer,
its metrics and its health check use, so the consumer drives either the same way.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from ingest.mqtt import ConnectRefused, Inbox, MqttError, Received, Subscriber
from wattline.config import Settings

log = logging.getLogger(__name__)
STATUS_EVERY_S = 0.2


class ReceiverDied(MqttError):
    """The reception process exited; nothing it held was acked (the broker redelivers)."""


class ProcessReception:
    """Parent side: batches in, acks out, status mirrored from the child.

    One thread reads the pipe (`_read`): batches go to a queue that `take` waits on,
    ack replies to the `ack_through` that asked, status to the attributes. So the pipe
    drains while a batch lands, and the consumer's writer stage may ack while its
    main thread takes the next batch.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connected = threading.Event()
        self.refused: ConnectRefused | None = None
        self.down_since: float | None = time.monotonic()
        self.received = 0
        self.pauses = 0
        self.peak_held_bytes = 0
        self._pending = 0
        self._batches: deque[Received] = deque()
        self._acked: deque[int] = deque()
        self._closed = False
        self._dead: str | None = None  # why the pipe ended, once it has
        self._cond = threading.Condition()  # batches, ack replies, status, death
        self._send_lock = threading.Lock()  # the writer stage and the main thread both send
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_child_main,
            args=(settings, child, logging.getLogger().getEffectiveLevel()),
            name="wattline-receiver",
            daemon=True,
        )
        self._child_conn = child
        self._reader = threading.Thread(target=self._read, name="wattline-receiver-pipe")

    # --- Subscriber side ------------------------------------------------------------------
    def start(self) -> None:
        self._process.start()
        self._child_conn.close()
        self._reader.start()

    def stop(self) -> None:
        """Disconnect without ending the session (the child does it), then reap it."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._send(("stop",))
        self._process.join(15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if self._reader.is_alive():
            self._reader.join(5)
        self._conn.close()

    def ack_through(self, acks: list[tuple[int, int, int]]) -> int:
        """Ask the child to ack, in order; returns how many it sent (current connection)."""
        self._send(("ack", acks))
        deadline = time.monotonic() + 30.0
        with self._cond:
            while not self._acked:
                self._raise_if_dead()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ReceiverDied("reception process did not answer in time")
                self._cond.wait(min(remaining, 1.0))
            return self._acked.popleft()

    # --- Inbox side -----------------------------------------------------------------------
    def take(self, max_wait_s: float) -> Received:
        """The next batch the child sent, waiting up to `max_wait_s` (none once closed)."""
        deadline = time.monotonic() + (0.0 if self._closed else max_wait_s)
        with self._cond:
            while not self._batches and self.refused is None:
                self._raise_if_dead()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, STATUS_EVERY_S))
            return self._batches.popleft() if self._batches else Received()

    def release(self, nbytes: int) -> None:
        self._send(("release", nbytes))

    def pending(self) -> int:
        with self._cond:
            return self._pending + sum(len(b) for b in self._batches)

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify_all()

    # --- internals ------------------------------------------------------------------------
    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _raise_if_dead(self) -> None:
        """The reader sets `_dead` whenever it ends (the child's exit closes the pipe)."""
        if self._dead is not None:
            raise ReceiverDied(self._dead)

    def _read(self) -> None:
        """The pipe's only reader, until the child closes it (exit, crash or stop)."""
        reason = "the reception pipe's reader stopped"
        try:
            while True:
                try:
                    message: tuple[Any, ...] = self._conn.recv()
                except (EOFError, OSError):
                    self._process.join(5)
                    reason = f"reception process exited ({self._process.exitcode})"
                    break
                kind = message[0]
                with self._cond:
                    if kind == "batch":
                        self._batches.append(message[1])
                    elif kind == "acked":
                        self._acked.append(int(message[1]))
                    elif kind == "status":
                        self._status(message[1])
                    else:
                        reason = f"unexpected message from the reception process: {kind}"
                        break
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._dead = reason
                self._cond.notify_all()

    def _status(self, status: dict[str, Any]) -> None:
        self.received = status["received"]
        self.pauses = status["pauses"]
        self.peak_held_bytes = status["peak_held_bytes"]
        self._pending = status["pending"]
        down_for = status["down_for_s"]
        self.down_since = None if down_for is None else time.monotonic() - down_for
        if status["connected"]:
            self.connected.set()
        else:
            self.connected.clear()
        if status["refused"] is not None and self.refused is None:
            where, reason = status["refused"]
            self.refused = ConnectRefused(where, reason)


def _child_main(settings: Settings, conn: Connection, level: int) -> None:
    """The reception process: subscribe, send batches, ack when told, exit with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    s = settings.ingest
    inbox = Inbox(s.batch_max_messages, s.batch_max_bytes, s.max_inflight_bytes)
    subscriber = Subscriber(settings.mqtt, inbox)
    send_lock = threading.Lock()
    stopping = threading.Event()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def status() -> tuple[str, dict[str, Any]]:
        refused = subscriber.refused
        down = subscriber.down_since
        return (
            "status",
            {
                "connected": subscriber.connected.is_set(),
                "down_for_s": None if down is None else time.monotonic() - down,
                "refused": None if refused is None else (refused.broker, refused.reason),
                "received": inbox.received,
                "pauses": inbox.pauses,
                "peak_held_bytes": inbox.peak_held_bytes,
                "pending": inbox.pending(),
            },
        )

    def sender() -> None:
        last_status = 0.0
        while not stopping.is_set():
            batch = inbox.take(s.flush_interval_s, idle_s=STATUS_EVERY_S)
            try:
                if len(batch):
                    send(("batch", batch))
                if len(batch) or time.monotonic() - last_status >= STATUS_EVERY_S:
                    send(status())
                    last_status = time.monotonic()
            except (BrokenPipeError, OSError):
                os._exit(0)  # the parent is gone: exit without acking anything

    subscriber.start()
    send(status())
    threading.Thread(target=sender, name="wattline-receiver-send", daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            os._exit(0)  # parent died (SIGKILL too): nothing more is acked
        if message[0] == "ack":
            send(("acked", subscriber.ack_through(message[1])))
        elif message[0] == "release":
            inbox.release(message[1])
        elif message[0] == "stop":
            stopping.set()
            inbox.close()
            subscriber.stop()
            return
