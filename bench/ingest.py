"""Ingest benchmark: Wattline's consumer against the broker's own ceiling, in one run.

    .venv/bin/python bench/ingest.py [--messages 100000] [--batch-messages 10000]

Starts a private Mosquitto on a free loopback port and, for two payload shapes (one
reading per message, 100 readings per message), measures:

(a) the ceiling: a bare paho-mqtt QoS 1 subscriber process that only collects payloads
    (`--ceiling buffered`: the same with the consumer's own buffered reception client);
(b) Wattline: `wattline consume` as its own process, from the first publish until the
    last reading is durable in Parquet, acked, and counted through the DuckDB catalog
    (`wait_landed`: the consumer's batch log says when, one catalog count confirms).

Both consume the same pre-built stream from the same publisher. Then the latency run:
Wattline at half of its measured rate for ~10 s, each reading's `ts` set at publish time,
the catalog polled every 100 ms; latency = poll time - ts (so it includes up to 0.1 s of
polling resolution). Prints readings/s, the ratio (b)/(a), latency p50/p99 and the
consumer's peak RSS (VmHWM). Not a test: it asserts nothing, it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wattline.broker import Broker, make_broker  # noqa: E402

T0_MS = 1_795_219_200_000
BARE = """
import sys, time, paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port, expected, topic = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = []
done = __import__("threading").Event()
buffered = len(sys.argv) > 4
def collect(payload, mid):
    got.append(payload)
    if buffered:  # manual acks: the fast path sends none
        c._send_puback(mid)
    if len(got) >= expected:
        done.set()
def on_message(c, u, m):
    collect(m.payload, m.mid)
def on_connect(c, u, f, rc, p):
    c.subscribe(topic, qos=1)
Client = paho.Client
if buffered:  # --ceiling buffered: the consumer's own reception, each message acked at once
    sys.path.insert(0, sys.argv[4])
    from ingest.mqtt import BufferedClient as Client
c = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bare",
           protocol=paho.MQTTv5, manual_ack=buffered)
c.on_message, c.on_connect = on_message, on_connect
if buffered:
    c.on_publish_fast = lambda topic, payload, mid, qos: collect(payload, mid)
c.connect("127.0.0.1", port)
c.loop_start()
print("ready", flush=True)
done.wait()
print(f"done {time.time():.6f}", flush=True)
c.loop_stop()
"""


def stream(
    site: str, messages: int, per_message: int, devices: int = 1000
) -> list[tuple[str, bytes]]:
    out = []
    for m in range(messages):
        device = f"d{m % devices}"
        base = T0_MS + (m // devices) * per_message * 1000
        if per_message == 1:
            body: dict[str, object] = {
                "ts": base,
                "power_kw": 12.5,
                "current_a": 20.1,
                "voltage_v": 400.2,
                "power_factor": 0.86,
            }
        else:
            body = {
                "device_id": device,
                "seq": m,
                "readings": [
                    {
                        "ts": base + i * 1000,
                        "power_kw": 12.5,
                        "current_a": 20.1,
                        "voltage_v": 400.2,
                        "power_factor": 0.86,
                    }
                    for i in range(per_message)
                ],
            }
        out.append((f"telemetry/{site}/{device}", json.dumps(body, separators=(",", ":")).encode()))
    return out


def publisher(port: int, client_id: str) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_all(port: int, items: list[tuple[str, bytes]]) -> float:
    client = publisher(port, f"bench-pub-{time.time_ns()}")
    started = time.time()
    infos = [client.publish(t, p, qos=1) for t, p in items]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()
    return started


def publish_mosquitto_pub(port: int, items: list[tuple[str, bytes]]) -> float:
    """Publish with Mosquitto's own C client, one `mosquitto_pub -l` process per topic.

    A publisher nobody on the team wrote, and one that costs far less CPU than a Python
    client, so the consumer gets the share of the 2 cores a plant's broker host gives it.
    """
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in items:
        by_topic.setdefault(topic, []).append(payload)
    files = []
    for n, lines in enumerate(by_topic.values()):
        path = Path(tempfile.gettempdir()) / f"wattline-bench-pub-{os.getpid()}-{n}.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append(path)
    started = time.time()
    procs = []
    for topic, path in zip(by_topic, files, strict=True):
        with open(path, "rb") as stdin:
            procs.append(
                subprocess.Popen(
                    [
                        "mosquitto_pub",
                        "-p",
                        str(port),
                        "-q",
                        "1",
                        "-M",
                        "1000",
                        "-V",
                        "mqttv5",
                        "-t",
                        topic,
                        "-l",
                    ],
                    stdin=stdin,
                )
            )
    for proc in procs:
        if proc.wait(300) != 0:
            raise RuntimeError(f"mosquitto_pub exited {proc.returncode}")
    for path in files:
        path.unlink()
    return started


PUBLISH = {"paho": publish_all, "mosquitto_pub": publish_mosquitto_pub}
PUBLISHER = "paho"  # --publisher
CEILING = "paho"  # --ceiling


def bare_ceiling(broker: Broker, site: str, items: list[tuple[str, bytes]]) -> float:
    extra = [str(ROOT)] if CEILING == "buffered" else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BARE,
            str(broker.port),
            str(len(items)),
            f"telemetry/{site}/#",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # subscription settles
    started = PUBLISH[PUBLISHER](broker.port, items)
    line = proc.stdout.readline().split()
    proc.wait(30)
    proc.stdout.close()
    return float(line[1]) - started


BATCH_READINGS = 200_000  # --batch-readings
RECEIVER = "thread"  # --receiver


def write_config(path: Path, broker: Broker, work: Path, site: str, batch_messages: int) -> Path:
    path.write_text(
        f'[mqtt]\nport = {broker.port}\nclient_id = "bench-{site}"\ntopic = "telemetry/{site}/#"\n'
        f"[ingest]\nbatch_max_messages = {batch_messages}\nbatch_max_readings = {BATCH_READINGS}\n"
        f'receiver = "{RECEIVER}"\n'
        f'flush_interval_s = 0.5\n[lake]\nroot = "{work / "lake"}"\n'
        f'[catalog]\npath = "{work / "catalog.duckdb"}"\n'
    )
    return path


class Consumer:
    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLINE_")}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wattline.cli", "--config", str(config), "consume"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 30
        while "mqtt subscribed" not in log.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.05)

    def peak_rss_mb(self) -> float:
        """VmHWM of the consumer plus its children (the reception process, if any)."""
        pids = [self.proc.pid]
        for children in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            pids += [int(pid) for pid in children.read_text().split()]
        total = 0.0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def count(catalog: Path, site: str) -> int:
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return int(
            con.execute("SELECT count(*) FROM readings WHERE site = ?", [site]).fetchall()[0][0]
        )
    finally:
        con.close()


_LANDED = re.compile(rb"ingest\.consumer batch=\d+ .*? landed=(\d+) ")


def wait_landed(log: Path, catalog: Path, site: str, readings: int, end: str) -> float:
    """When the last reading was durable, acked and queryable (epoch seconds).

    `end="log"` (`--end`, default): the consumer's batch log, read every 20 ms, says when the
    landed readings add up (a batch line is written after fsync, rename and ack), then
    one count through the DuckDB catalog confirms it; if the count falls short, the time
    the catalog shows them all is used instead. `catalog`: the count alone, every
    100 ms. A count costs 50-70 ms of CPU against 30 files of readings, so polling it
    took ~40 % of a core from the consumer on this 2-core machine (the ceiling has no
    poller).
    """
    give_up = time.monotonic() + 600
    if end == "log":
        offset = landed = 0
        while landed < readings:
            if time.monotonic() > give_up:
                raise RuntimeError(f"{site}: {landed:,} of {readings:,} readings in {log}")
            with open(log, "rb") as out:
                out.seek(offset)
                chunk = out.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(whole)
            landed += sum(int(n) for n in _LANDED.findall(whole))
            if landed < readings:
                time.sleep(0.02)
        seen = time.time()
        if count(catalog, site) >= readings:
            return seen
        print(f"   {site}: the log says landed, the catalog does not yet", flush=True)
    while (counted := count(catalog, site)) < readings:
        if time.monotonic() > give_up:
            raise RuntimeError(f"{site}: the catalog counts {counted:,} of {readings:,}")
        time.sleep(0.1)
    return time.time()


def wattline_run(
    broker: Broker,
    work: Path,
    site: str,
    items: list[tuple[str, bytes]],
    readings: int,
    batch_messages: int,
    end: str,
) -> tuple[float, float]:
    config = write_config(work / f"{site}.toml", broker, work / site, site, batch_messages)
    consumer = Consumer(config, work / f"{site}.log")
    catalog = work / site / "catalog.duckdb"
    started = PUBLISH[PUBLISHER](broker.port, items)
    elapsed = wait_landed(work / f"{site}.log", catalog, site, readings, end) - started
    rss = consumer.peak_rss_mb()
    consumer.stop()
    return elapsed, rss


def latency_run(
    broker: Broker,
    work: Path,
    rate_msgs: float,
    per_message: int,
    batch_messages: int,
    seconds: float = 10.0,
) -> tuple[list[float], float]:
    site = f"lat{per_message}"
    config = write_config(work / f"{site}.toml", broker, work / site, site, batch_messages)
    consumer = Consumer(config, work / f"{site}.log")
    catalog = work / site / "catalog.duckdb"
    client = publisher(broker.port, "bench-latency")
    total = int(rate_msgs * seconds)
    latencies: list[float] = []
    stop = threading.Event()
    give_up = time.monotonic() + seconds + 60

    def poll() -> None:
        """Messages land in publish order, batch by batch, so new rows have seq > last seen."""
        last_seq = -1
        con = duckdb.connect(str(catalog), read_only=True)
        while last_seq < total - 1:
            now = time.time()
            rows = con.execute(
                "SELECT seq, epoch_ms(ts) FROM readings WHERE site = ? AND seq > ?",
                [site, last_seq],
            ).fetchall()
            if rows:
                latencies.extend(now - ms / 1000 for _, ms in rows)
                last_seq = max(seq for seq, _ in rows)
            if stop.is_set() and not rows and time.monotonic() > give_up:
                break
            time.sleep(0.1)
        con.close()

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.monotonic()
    for m in range(total):
        due = started + m / rate_msgs
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now_ms = int(time.time() * 1000)
        device = f"d{m % 1000}"
        if per_message == 1:
            body: dict[str, object] = {"ts": now_ms, "power_kw": 1.0, "seq": m}
        else:
            # distinct ts per reading, all at or before the publish instant (conservative)
            body = {
                "seq": m,
                "readings": [{"ts": now_ms - i, "power_kw": 1.0} for i in range(per_message)],
            }
        client.publish(f"telemetry/{site}/{device}", json.dumps(body), qos=1)
    stop.set()
    poller.join(120)
    client.disconnect()
    client.loop_stop()
    rss = consumer.peak_rss_mb()
    consumer.stop()
    return latencies, rss


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages, 1-reading shape")
    parser.add_argument("--batch-messages", type=int, default=20_000)
    parser.add_argument(
        "--batch-readings", type=int, default=200_000, help="ingest.batch_max_readings"
    )
    parser.add_argument(
        "--publisher",
        choices=sorted(PUBLISH),
        default="paho",
        help="paho: our Python publisher, 1,000 devices; mosquitto_pub: Mosquitto's C client, "
        "one process per device (--devices)",
    )
    parser.add_argument("--devices", type=int, default=0, help="default 1000 (paho) or 8")
    parser.add_argument("--repeat", type=int, default=1, help="runs per shape; medians printed")
    parser.add_argument("--no-latency", action="store_true", help="skip the half-rate run")
    parser.add_argument(
        "--ceiling",
        choices=["paho", "buffered"],
        default="paho",
        help="bare collector: paho's own client, or with the consumer's buffered reception",
    )
    parser.add_argument(
        "--shapes", default="1,100", help="readings per message, comma-separated (1,100)"
    )
    parser.add_argument(
        "--receiver",
        choices=["thread", "process", "both"],
        default="thread",
        help="ingest.receiver; both: each run measures the two side by side",
    )
    parser.add_argument(
        "--end",
        choices=["log", "catalog", "both"],
        default="log",
        help="how the end of a Wattline run is seen: the batch log, confirmed by one catalog "
        "count; or catalog counts every 100 ms (they cost CPU the consumer needs); "
        "both: side by side",
    )
    args = parser.parse_args()
    global BATCH_READINGS, CEILING, PUBLISHER, RECEIVER
    CEILING = args.ceiling
    BATCH_READINGS = args.batch_readings
    PUBLISHER = args.publisher
    devices = args.devices or (1000 if args.publisher == "paho" else 8)
    work = Path(tempfile.mkdtemp(prefix="wattline-bench-"))
    broker = make_broker(work / "broker")
    broker.start()
    print(
        f"broker: {broker.kind}; python {sys.version.split()[0]}; cores {os.cpu_count()}; "
        f"publisher {args.publisher} ({devices} devices); ceiling {args.ceiling}; end {args.end}; "
        f"repeat {args.repeat}; "
        f"batch_max_messages {args.batch_messages}, batch_max_readings {args.batch_readings}; "
        f"work dir {work}"
    )
    try:
        for per_message in [int(n) for n in args.shapes.split(",")]:
            messages = args.messages if per_message == 1 else args.messages // 10
            readings = messages * per_message
            receivers = ["thread", "process"] if args.receiver == "both" else [args.receiver]
            ends = ["log", "catalog"] if args.end == "both" else [args.end]
            variants = [(r, e) for r in receivers for e in ends]
            bares: list[float] = []
            mines: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
            rsss: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
            for run in range(args.repeat):
                name = f"{per_message}r{run}"
                bares.append(
                    bare_ceiling(
                        broker, f"bare{name}", stream(f"bare{name}", messages, per_message, devices)
                    )
                )
                for receiver, end in variants:
                    RECEIVER = receiver
                    tag = f"w{name}{receiver[0]}{end[0]}"
                    mine, rss = wattline_run(
                        broker,
                        work,
                        tag,
                        stream(tag, messages, per_message, devices),
                        readings,
                        args.batch_messages,
                        end,
                    )
                    mines[receiver, end].append(mine)
                    rsss[receiver, end].append(rss)
                    print(
                        f"   run {run} receiver={receiver} end={end}: "
                        f"ceiling {readings / bares[-1]:,.0f} readings/s, "
                        f"wattline {readings / mine:,.0f} readings/s, "
                        f"ratio {bares[-1] / mine:.2f}, RSS {rss:.0f} MB",
                        flush=True,
                    )
            bare = median(bares)
            for receiver, end in variants:
                mine = median(mines[receiver, end])
                print(
                    f"shape {per_message:>3} reading(s)/msg, {messages} msgs, receiver={receiver}, "
                    f"end={end}, "
                    f"median of {args.repeat}: ceiling {readings / bare:,.0f} readings/s "
                    f"({messages / bare:,.0f} msg/s); wattline {readings / mine:,.0f} readings/s "
                    f"({messages / mine:,.0f} msg/s); ratio {bare / mine:.2f}; "
                    f"consumer peak RSS max {max(rsss[receiver, end]):.0f} MB",
                    flush=True,
                )
            if args.no_latency:
                continue
            half = messages / mine / 2
            lat, rss = latency_run(broker, work, half, per_message, args.batch_messages)
            print(
                f"   at half rate ({half:,.0f} msg/s for 10 s): publish -> queryable "
                f"p50 {pct(lat, 0.5):.2f} s, p99 {pct(lat, 0.99):.2f} s "
                f"({len(lat)} readings); consumer peak RSS {rss:.0f} MB",
                flush=True,
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
