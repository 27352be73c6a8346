"""Shared helpers for the alert delivery tests: a real loopback HTTP receiver and alert rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl

from schemas.results import PRICED_ALERT_SCHEMA
from warehouse.lake import Lake, write_atomic


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


# (status, headers, body, delay before answering in seconds)
Reply = tuple[int, dict[str, str], bytes, float]
Behaviour = Callable[[int, Received], Reply]


def ok(_: int, __: Received) -> Reply:
    return 200, {}, b'{"errcode":0,"code":0}', 0.0


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and dedups by delivery id."""

    behaviour: Behaviour = ok
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                got = Received(
                    self.path, dict(self.headers.items()), self.rfile.read(length), time.time()
                )
                with receiver._cond:
                    index = len(receiver.requests)
                    receiver.requests.append(got)
                    receiver._cond.notify_all()
                status, headers, body, delay = receiver.behaviour(index, got)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"expected {count} requests, got {len(self.requests)}"
            )
            return list(self.requests)

    def unique(self) -> list[str]:
        """Delivery ids in first-receipt order, repeats dropped (what a receiver keeps)."""
        seen: list[str] = []
        for r in self.requests:
            key = r.headers["X-Wattline-Delivery"]
            if key not in seen:
                seen.append(key)
        return seen


def alert(
    alert_id: str = "a1",
    *,
    device_id: str = "pump-01",
    site: str = "plant-sh",
    rule: str = "under_loaded",
    severity: str = "warning",
    max_severity: str | None = None,
    status: str = "open",
    opened_day: date = date(2026, 11, 20),
    resolved_day: date | None = None,
) -> dict[str, Any]:
    """One row of the `alerts` table (PRICED_ALERT_SCHEMA)."""
    return {
        "alert_id": alert_id,
        "device_id": device_id,
        "site": site,
        "kind": "pump",
        "rule": rule,
        "severity": severity,
        "max_severity": max_severity or severity,
        "status": status,
        "opened_day": opened_day,
        "last_seen_day": resolved_day or date(2026, 11, 21),
        "resolved_day": resolved_day,
        "days_breached": 2,
        "metric": 0.31,
        "threshold": 0.5,
        "evidence": '{"metric":0.31,"threshold":0.5,"running_hours":16.9,"energy_kwh":813.2}',
        "waste_kwh_per_year": 24000.0,
        "recommendation": "Fit the next smaller motor (15 kW); saves about 2.7 kW.",
        "recommendation_zh": "更换为小一号电机（15 kW），约节省 2.7 kW。",
        "opened_at": datetime(2026, 11, 19, 16, tzinfo=UTC),
        "last_seen_at": datetime(2026, 11, 21, 16, tzinfo=UTC),
        "resolved_at": None,
        "currency": "CNY",
        "cost_per_year": 18000.0,
        "co2_kg_per_year": 12700.0,
    }


def write_alerts(lake_root: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the alerts file as the analytics job does (atomically)."""
    frame = (
        pl.DataFrame(rows, schema=PRICED_ALERT_SCHEMA) if rows else PRICED_ALERT_SCHEMA.to_frame()
    )
    write_atomic(frame, Lake(lake_root).alerts_path)
