"""The durable outbox: every notification is a SQLite row before anyone tries to send it.

One row per (endpoint, alert_id, event), enforced by a UNIQUE key, so enqueuing again
from the same alerts file adds nothing (a rerun never notifies twice). Rows are sent per
endpoint in `seq` order; a row is marked delivered only after the receiver's 2xx, so a
crash between send and mark re-sends it with the same `delivery_id`, which the receiver
uses to drop the repeat (at-least-once on the wire, exactly-once by idempotency key).
WAL mode lets `alerts list` and tests read while the deliverer writes; an exclusive
`flock` on a sibling lock file keeps to one deliverer, since two would break the order.
"""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alerts import OutboxBusyError

_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    delivery_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    response_status INTEGER,
    last_error TEXT,
    UNIQUE (endpoint, alert_id, event)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (endpoint, status, seq);
"""


@dataclass(frozen=True)
class NewDelivery:
    """A planned notification, before it has a row."""

    endpoint: str
    alert_id: str
    event: str
    severity: str
    body: str

    @property
    def delivery_id(self) -> str:
        return delivery_id(self.endpoint, self.alert_id, self.event)


@dataclass(frozen=True)
class Delivery:
    """An outbox row as the deliverer sees it."""

    seq: int
    endpoint: str
    alert_id: str
    event: str
    delivery_id: str
    body: str
    attempts: int
    created_at: float
    next_attempt_at: float


@dataclass(frozen=True)
class Past:
    """What an endpoint was already told about an alert (for the lifecycle planner)."""

    event: str
    severity: str
    created_at: float


def delivery_id(endpoint: str, alert_id: str, event: str) -> str:
    """Deterministic, so a re-enqueue or re-send after a crash carries the same id."""
    text = f"{endpoint}|{alert_id}|{event}".encode()
    return "wl-" + hashlib.blake2b(text, digest_size=16).hexdigest()


class Outbox:
    """The SQLite outbox file; one connection per thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_DDL)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive deliverer lock; released by the kernel if the process dies."""
        with open(self.path.with_name(self.path.name + ".lock"), "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise OutboxBusyError(f"another deliverer is using {self.path}") from exc
            yield

    def history(self) -> dict[tuple[str, str], list[Past]]:
        rows = self._db.execute(
            "SELECT endpoint, alert_id, event, severity, created_at FROM outbox ORDER BY seq"
        ).fetchall()
        out: dict[tuple[str, str], list[Past]] = {}
        for endpoint, alert, event, severity, created in rows:
            out.setdefault((endpoint, alert), []).append(Past(event, severity, created))
        return out

    def enqueue(self, planned: list[NewDelivery], now: float, dry_run: bool = False) -> int:
        """Insert planned rows (duplicates ignored); with dry_run, roll back. Returns new rows."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            added = 0
            for d in planned:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO outbox (endpoint, alert_id, event, severity,"
                    " delivery_id, body, created_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.endpoint, d.alert_id, d.event, d.severity, d.delivery_id, d.body, now, now),
                )
                added += cursor.rowcount
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("ROLLBACK" if dry_run else "COMMIT")
        return added

    def pending(self, endpoint: str | None = None) -> list[Delivery]:
        """Pending rows in delivery order (of one endpoint, or all)."""
        query = (
            "SELECT seq, endpoint, alert_id, event, delivery_id, body, attempts, created_at,"
            " next_attempt_at FROM outbox WHERE status = 'pending'"
        )
        args: tuple[str, ...] = ()
        if endpoint is not None:
            query += " AND endpoint = ?"
            args = (endpoint,)
        rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [Delivery(*row) for row in rows]

    def head(self, endpoint: str) -> Delivery | None:
        """The next row this endpoint must receive; nothing behind it goes first."""
        rows = self.pending(endpoint)
        return rows[0] if rows else None

    def mark_delivered(self, seq: int, status: int, now: float) -> None:
        self._db.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?,"
            " response_status = ?, last_error = NULL WHERE seq = ?",
            (now, status, seq),
        )

    def mark_retry(self, seq: int, next_at: float, status: int | None, error: str) -> None:
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, response_status = ?,"
            " last_error = ? WHERE seq = ?",
            (next_at, status, error, seq),
        )

    def mark_failed(self, seq: int, status: int | None, error: str) -> None:
        self._db.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, response_status = ?,"
            " last_error = ? WHERE seq = ?",
            (status, error, seq),
        )

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}

    def rows(self) -> list[dict[str, object]]:
        """Every row as a dict, oldest first: for tests and `alerts deliver --dry-run`."""
        cursor = self._db.execute("SELECT * FROM outbox ORDER BY seq")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
