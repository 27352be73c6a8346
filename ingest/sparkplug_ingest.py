"""Sparkplug B in the consumer: each batch's `spBv1.0/...` messages go through the host
state machine (ingest/sparkplug_host.py) before the JSON path's decoding, so their
readings get the same validation, dedup, landing and acks after the durable write.

What must survive a crash is the host's knowledge of births: data messages carry
aliases only. The current birth certificates (the raw NBIRTH/DBIRTH payloads) are kept
in `sparkplug/births.parquet`, written durably after the batch lands and before its
messages are acknowledged; a restarted consumer replays them, so redelivered data is
understood. The `device_status` table (`sparkplug/device_status.parquet`) holds each
node's and device's online state, last birth, last death and bdSeq.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl

from ingest.pipeline import _quarantine_id
from ingest.sparkplug_host import NAMESPACE, Host, load_mapping, rebirth_command
from schemas.readings import QUARANTINE_SCHEMA
from schemas.sparkplug import STATUS_SCHEMA
from warehouse.lake import Lake, write_atomic

log = logging.getLogger(__name__)

BIRTH_SCHEMA: Final = pl.Schema({"topic": pl.String(), "payload": pl.Binary()})


@dataclass
class Translated:
    topics: list[str]
    payloads: list[bytes]
    received_us: list[int]
    quarantine: pl.DataFrame
    commands: list[tuple[str, bytes]] = field(default_factory=list)  # rebirth NCMDs


def births_path(lake: Lake) -> Any:
    return lake.root / "sparkplug" / "births.parquet"


def status_path(lake: Lake) -> Any:
    return lake.sparkplug_status_path


class SparkplugIngest:
    def __init__(self, lake: Lake, mapping: str = "", rebirth_interval_s: float = 5.0) -> None:
        self.lake = lake
        self.host = Host(load_mapping(mapping), rebirth_interval_s=rebirth_interval_s)
        self.births: dict[str, bytes] = {}
        self.status: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._dirty = False
        self._restore()

    def _restore(self) -> None:
        path = births_path(self.lake)
        if path.exists():
            frame = pl.read_parquet(path)
            now = datetime.now(UTC)
            # Node births before device births; the outcome (readings, commands) is not
            # wanted again: those messages were landed and acknowledged.
            rows = sorted(frame.iter_rows(), key=lambda r: "/DBIRTH/" in r[0])
            for topic, raw in rows:
                self.births[topic] = raw
                self.host.handle(topic, raw, now)
            self.host.seq.clear()  # the next message sets it; no false gap
            self.host.last_rebirth.clear()
            log.info("sparkplug births restored=%d", len(rows))
        spath = status_path(self.lake)
        if spath.exists():
            for row in pl.read_parquet(spath).iter_rows(named=True):
                self.status[_key(row)] = row

    def translate(
        self, topics: Sequence[str], payloads: Sequence[bytes], received_us: Sequence[int]
    ) -> Translated:
        out = Translated([], [], [], QUARANTINE_SCHEMA.to_frame())
        rejects: list[dict[str, Any]] = []
        for i, (topic, raw, us) in enumerate(zip(topics, payloads, received_us, strict=True)):
            if not topic.startswith(f"{NAMESPACE}/"):
                out.topics.append(topic)
                out.payloads.append(raw)
                out.received_us.append(us)
                continue
            now = datetime.fromtimestamp(us / 1e6, UTC)
            result = self.host.handle(topic, raw, now)
            for t, body in result.messages:
                out.topics.append(t)
                out.payloads.append(body)
                out.received_us.append(us)
            for reason, detail, payload in result.quarantine:
                rejects.append(
                    {
                        "received_at": now,
                        "topic": topic,
                        "reason": reason,
                        "detail": detail,
                        "payload": payload,
                        "quarantine_id": _quarantine_id(topic, payload, None, -1 - i, us),
                    }
                )
            out.commands += [rebirth_command(g, n) for g, n in result.rebirth]
            self._remember(topic, raw, result.quarantine, result.status)
        if rejects:
            out.quarantine = (
                pl.DataFrame(rejects)
                .with_columns(
                    site=pl.lit(None, pl.String),
                    device_id=pl.lit(None, pl.String),
                    reading_index=pl.lit(None, pl.Int32),
                )
                .select(QUARANTINE_SCHEMA.names())
                .cast(QUARANTINE_SCHEMA)
            )
        return out

    def _remember(
        self,
        topic: str,
        raw: bytes,
        rejected: list[tuple[str, str, bytes]],
        status: list[dict[str, Any]],
    ) -> None:
        parts = topic.split("/")
        kind = parts[2] if len(parts) > 2 else ""
        node_prefix = "/".join(parts[:2])  # spBv1.0/<group>
        if kind in ("NBIRTH", "DBIRTH") and not any(r[0] == "sparkplug_no_birth" for r in rejected):
            if kind == "NBIRTH":  # a node's rebirth: its devices will be born again
                node = parts[3]
                self.births = {
                    t: b
                    for t, b in self.births.items()
                    if not t.startswith(f"{node_prefix}/DBIRTH/{node}/")
                }
            self.births[topic] = raw
            self._dirty = True
        for row in status:
            if kind == "NDEATH" and not row["online"] and row["level"] == "node":
                group, node = row["group"], row["edge_node"]
                self.births = {
                    t: b for t, b in self.births.items() if t.split("/")[1:4:2] != [group, node]
                }
            if kind == "DDEATH":
                self.births.pop(topic.replace("/DDEATH/", "/DBIRTH/"), None)
            record = {
                "level": row["level"],
                "group_id": row["group"],
                "edge_node": row["edge_node"],
                "device": row["device"],
                "online": row["online"],
                "last_birth": row["last_birth"],
                "last_death": row["last_death"],
                "bd_seq": row["bd_seq"],
            }
            self.status[_key(record)] = record
            self._dirty = True

    def persist(self) -> None:
        """Durably write the births and the status table (before the batch's acks)."""
        if not self._dirty:
            return
        births = pl.DataFrame(
            {"topic": list(self.births), "payload": list(self.births.values())},
            schema=BIRTH_SCHEMA,
        )
        write_atomic(births, births_path(self.lake))
        status = pl.DataFrame(list(self.status.values()), schema=STATUS_SCHEMA, orient="row")
        write_atomic(
            status.sort("group_id", "edge_node", "device", nulls_last=False), status_path(self.lake)
        )
        self._dirty = False


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row["level"], row["group_id"], row["edge_node"], row["device"] or "")
