"""`wattline demo`: a simulated plant through the whole pipeline, on this machine, in a minute.

1. A private broker on a free loopback port (Mosquitto, or the embedded amqtt broker).
2. The demo plant's registry (wattline/data/*.csv) loaded into the lake.
3. The consumer, in this process, with its real MQTT session and manual acks.
4. The last weekday as a backfill (1-minute readings, 60 per message: the batch shape), then the
   plant live at 1 Hz (one reading per message), plus a misconfigured gateway whose
   messages the contract rejects, so the quarantine has something to show.
5. A summary from the DuckDB catalog, the analytics jobs (load matching, waste rules,
   alerts), and the SQL to look further.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.devices import DEMO_DATA_DIR, load_devices, load_sites
from edge.scenarios import load_scenario_assignments
from edge.simulate import generate_messages, publish_live
from ingest.consumer import Consumer
from schemas.calendar import parse_shift_calendar
from warehouse.catalog import connect_readonly
from warehouse.drivers import load_production
from warehouse.lake import Lake
from warehouse.registry import load_registry
from wattline.broker import make_broker
from wattline.config import CatalogSettings, LakeSettings, Settings
from wattline.jobs import run_jobs

HISTORY_DAYS = 27
FAULTY = [  # what a misconfigured gateway sends: each is quarantined with its reason
    b'{"ts": "2026-11-21T08:00:00", "power_kw": 12.5}',
    b'{"ts": 1795219200000, "power_factor": 1.7}',
    b'{"ts": 1795219200000, "power_kw": 3.2, "vibration_mm_s": 4.1}',
    b"power_kw=12.5",
]


def run_demo(settings: Settings, duration_s: float, workdir: Path) -> int:
    if workdir.exists():
        shutil.rmtree(workdir)
    broker = make_broker(workdir / "broker")
    broker.start()
    protocol = "5" if broker.kind == "mosquitto" else "3.1.1"
    print(
        f"broker: {broker.kind} on 127.0.0.1:{broker.port}"
        + ("" if broker.kind == "mosquitto" else " (Mosquitto not installed; MQTT 3.1.1)")
    )
    settings = replace(
        settings,
        mqtt=replace(
            settings.mqtt,
            host=broker.host,
            port=broker.port,
            protocol=protocol,
            client_id="wattline-demo",
            sparkplug_topic="spBv1.0/plant-sh/#" if protocol == "5" else "",
            host_id="wattline-demo",
        ),
        lake=LakeSettings(root=workdir / "lake"),
        catalog=CatalogSettings(path=workdir / "wattline.duckdb"),
        analytics=replace(
            settings.analytics,
            tariff_file=settings.analytics.tariff_file or str(DEMO_DATA_DIR / "tariffs.toml"),
            baseline_days=21,  # three weeks of history; the days after are the report
        ),
    ).validate()
    try:
        lake = settings.lake.open()
        counts = load_registry(
            lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
        )
        print(f"registry: {counts.devices} devices, {counts.sites} site(s)")
        consumer = Consumer(settings)
        thread = threading.Thread(target=consumer.run, name="consumer")
        thread.start()
        if not consumer.subscriber.connected.wait(15):
            raise RuntimeError("consumer could not connect to the demo broker")
        published = _feed(broker.port, duration_s)
        _wait_for(consumer, published)
        consumer.stop()
        thread.join(30)
        _report(settings, consumer, published)
        _report_sparkplug(settings)
        _load_production(lake, workdir)
        print("\n" + run_jobs(settings).summary())
        _report_alerts(settings)
        _report_bill(settings)
        _report_performance(settings)
        _deliver_to_local_receiver(settings)
        _write_reports(settings, workdir)
    finally:
        broker.stop()
    return 0


def backfill_window(now: datetime) -> tuple[datetime, datetime]:
    """The backfill's 24 hours: the day up to `now`, moved back to lie on two weekdays (UTC).

    The waste cases of the demo plant run on working days; a backfill over a weekend showed
    only three of the six. Saturday, Sunday and Monday move back to end on Friday.
    """
    end = now - timedelta(minutes=2)
    while end.weekday() not in (1, 2, 3, 4):  # Tuesday..Friday, so the start is Mon..Thu
        end -= timedelta(days=1)
    return end - timedelta(days=1), end


def _feed(port: int, duration_s: float) -> int:
    devices = load_devices(DEMO_DATA_DIR / "devices.csv")
    sites = load_sites(DEMO_DATA_DIR / "sites.csv")
    plan = load_scenario_assignments(DEMO_DATA_DIR / "scenarios.csv")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = backfill_window(now)
    # Four weeks of store-and-forward history at 5-minute readings (96 a message), so
    # baselines have days to fit on; then the last weekday at 1-minute readings.
    history = list(
        generate_messages(
            devices,
            sites,
            plan,
            start - timedelta(days=HISTORY_DAYS),
            start,
            300.0,
            96,
            seed=3,
        )
    )
    backfill = history + list(
        generate_messages(
            devices,
            sites,
            plan,
            start,
            end,
            60.0,
            60,
            seed=1,
        )
    )
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="wattline-demo-gateway",
        protocol=paho.MQTTv5,
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in backfill]
    infos += [client.publish("telemetry/plant-sh/motor-conveyor-01", p, qos=1) for p in FAULTY]
    sparkplug = _sparkplug_node(end)
    infos += [client.publish(topic, payload, qos=1) for topic, payload in sparkplug]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    old = sum(len(json.loads(p)["readings"]) for _, p in history)
    recent = sum(len(json.loads(p)["readings"]) for _, p in backfill[len(history) :])
    print(
        f"backfill: {old} readings of the {HISTORY_DAYS} days before (5-minute) and {recent} "
        f"of the last weekday (1-minute, 24 h) in {len(backfill)} messages; "
        f"{len(FAULTY)} messages from a misconfigured gateway; a Sparkplug B edge node "
        f"(spBv1.0/plant-sh, gw-sp-01) with one meter: births and {len(sparkplug) - 2} "
        "DDATA messages by alias"
    )
    history_count = old + recent + len(sparkplug) - 1  # NBIRTH carries no meter reading
    print(f"live: {len(devices)} devices at 1 Hz for {duration_s:.0f} s ...", flush=True)
    live = asyncio.run(
        publish_live(
            "127.0.0.1", port, devices, sites, plan, 1.0, duration_s, "wattline-demo-sim", seed=2
        )
    )
    return history_count + live + len(FAULTY)


SPARKPLUG_MINUTES: Final = 30


def _sparkplug_node(end: datetime) -> list[tuple[str, bytes]]:
    """A Sparkplug B 3.0 edge node with one meter (not in the registry: the report's data
    quality lists it as a device without a nameplate): NBIRTH, DBIRTH with aliases and
    engUnits, then one DDATA a minute for the last half hour, aliases only."""
    from ingest.sparkplug import DOUBLE, UINT64, Payload

    def message(seq: int, ts: int, metrics: Sequence[tuple[str | None, int, int, float]]) -> bytes:
        body = Payload()
        body.timestamp, body.seq = ts, seq
        for name, alias, datatype, value in metrics:
            m = body.metrics.add()
            if name:
                m.name = name
            m.alias, m.datatype, m.timestamp = alias, datatype, ts
            if datatype == UINT64:
                m.long_value = int(value)
            else:
                m.double_value = value
        return bytes(body.SerializeToString())

    first = int((end - timedelta(minutes=SPARKPLUG_MINUTES)).timestamp() * 1000)
    node = "spBv1.0/plant-sh/{}/gw-sp-01"
    out = [(node.format("NBIRTH"), message(0, first, [("bdSeq", 0, UINT64, 0)]))]
    birth = message(
        1, first, [("Energy/Import", 1, DOUBLE, 5_000_000.0), ("Power", 2, DOUBLE, 120.0)]
    )
    out.append((node.format("DBIRTH") + "/sp-meter-01", birth))
    for k in range(1, SPARKPLUG_MINUTES + 1):
        ts = first + 60_000 * k
        values = [(None, 1, DOUBLE, 5_000_000.0 + 2000.0 * k), (None, 2, DOUBLE, 118.0 + k % 5)]
        out.append((node.format("DDATA") + "/sp-meter-01", message((1 + k) % 256, ts, values)))
    return out


def _wait_for(consumer: Consumer, readings: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        t = consumer.totals
        if t.landed + t.readings_quarantined + t.messages_quarantined + t.duplicates >= readings:
            return
        time.sleep(0.1)


def _report(settings: Settings, consumer: Consumer, published: int) -> None:
    t = consumer.totals
    con = connect_readonly(settings.catalog.path)
    try:
        kinds = con.execute(
            "SELECT kind, count(*) AS devices, sum(n) AS readings, round(sum(kwh), 1) AS kwh "
            "FROM (SELECT device_id, count(*) AS n, max(energy_kwh) - min(energy_kwh) AS kwh "
            "      FROM readings GROUP BY device_id) LEFT JOIN devices USING (device_id) "
            "GROUP BY kind ORDER BY kwh DESC"
        ).fetchall()
        reasons = con.execute(
            "SELECT reason, count(*), any_value(detail) FROM quarantine GROUP BY ALL ORDER BY 1"
        ).fetchall()
        dups = con.execute(
            "SELECT count(*) - count(DISTINCT (device_id, ts)) FROM readings"
        ).fetchall()[0][0]
    finally:
        con.close()
    latency = sorted(t.landing_latency_s) or [0.0]
    print(
        f"\nreceived {t.messages} messages / {t.readings + t.messages_quarantined} records; "
        f"landed {t.landed}, quarantined {t.readings_quarantined + t.messages_quarantined}, "
        f"duplicates dropped {t.duplicates} (published {published}); "
        f"{t.batches} batches; landing latency (oldest message of a batch, received to "
        f"durable and acked) p50 {latency[len(latency) // 2]:.2f} s, "
        f"max {latency[-1]:.2f} s"
    )
    print("\nlanded by kind (kind, devices, readings, kWh metered over the period):")
    for row in kinds:
        print("  ", row)
    print("\nquarantined by reason (reason, count, example detail):")
    for row in reasons:
        print("  ", row)
    print(f"\nduplicates visible in readings: {dups}")
    print(
        f"\nLook further (read-only, while a consumer runs too):\n"
        f"  .venv/bin/duckdb -readonly {settings.catalog.path}\n"
        "  SELECT device_id, date_trunc('day', ts) AS day,\n"
        "         max(energy_kwh) - min(energy_kwh) AS kwh\n"
        "    FROM readings GROUP BY ALL ORDER BY kwh DESC;\n"
        "  SELECT reason, count(*), any_value(detail) FROM quarantine GROUP BY reason;"
    )


def _report_alerts(settings: Settings) -> None:
    con = connect_readonly(settings.catalog.path)
    try:
        rows = con.execute(
            "SELECT device_id, rule, severity, round(waste_kwh_per_year), currency, "
            "round(cost_per_year), round(co2_kg_per_year), recommendation "
            "FROM alerts WHERE status = 'open' ORDER BY waste_kwh_per_year DESC"
        ).fetchall()
        zones = con.execute(
            "SELECT device_id, zone, round(p75_load_factor, 2), method FROM load_factor "
            "WHERE zone IS NOT NULL QUALIFY row_number() OVER "
            "(PARTITION BY device_id ORDER BY running_hours DESC) = 1 ORDER BY device_id"
        ).fetchall()
    finally:
        con.close()
    print("\nload matching (device, zone, P75 load factor, method; busiest day):")
    for row in zones:
        print("  ", row)
    print("\nopen alerts, ranked by wasted kWh per year:")
    for device, rule, severity, kwh, currency, cost, co2, advice in rows:
        print(
            f"  {severity:8} {device:20} {rule:24} {kwh:>9,.0f} kWh/yr {cost:>9,.0f} "
            f"{currency}/yr {co2:>8,.0f} kg CO2/yr"
        )
        print(f"           {advice}")
    print("  SELECT * FROM alerts ORDER BY waste_kwh_per_year DESC;")


DEMO_LINE: Final = ("motor-mixer-02", "motor-extruder-04", "motor-grinder-03")


def _load_production(lake: Lake, workdir: Path) -> None:
    """The demo line's production counts, as a plant's MES would export them: tonnes per
    local day, 1.2 t an hour of the shift calendar (Mon-Fri 12 h, Sat 4 h) with 3 %
    scatter. Simulated, like the plant: the point is to show the tables."""
    first = datetime.now(UTC).date() - timedelta(days=HISTORY_DAYS + 5)
    rng = random.Random(4)
    rows = ["site,line,day,units,unit"]
    for k in range(HISTORY_DAYS + 6):
        day = first + timedelta(days=k)
        hours = (12, 12, 12, 12, 12, 4, 0)[day.weekday()]
        rows.append(f"plant-sh,extrusion,{day},{1.2 * hours * rng.gauss(1, 0.03):.2f},t")
    production = workdir / "production.csv"
    production.write_text("\n".join(rows) + "\n")
    lines = workdir / "lines.csv"
    lines.write_text(
        "site,line,device_id\n" + "".join(f"plant-sh,extrusion,{d}\n" for d in DEMO_LINE)
    )
    load_production(lake, production, lines)
    print(f"\nproduction: {len(rows) - 1} days of counts for line extrusion ({production})")


def _report_performance(settings: Settings) -> None:
    """Baselines with their fit, the site's CUSUM, and kWh and CO2 per tonne."""
    con = connect_readonly(settings.catalog.path)
    try:
        fits = con.execute(
            "SELECT coalesce(device_id, 'site ' || site), variables, round(r2, 3) + 0.0, "
            "round(cv_rmse * 100, 1), round(nmbe * 100, 2), status FROM baselines "
            "ORDER BY entity DESC, status = 'fit' DESC, device_id"
        ).fetchall()
        cusum = con.execute(
            "SELECT day, round(energy_kwh), round(expected_kwh), round(cusum_kwh), "
            "round(savings_cost) FROM baseline_daily "
            "WHERE entity = 'site' AND NOT in_baseline AND complete ORDER BY day"
        ).fetchall()
        intensity = con.execute(
            "SELECT coalesce(line, '(site)'), day, units, round(kwh_per_unit, 1), "
            "round(co2_kg_per_unit, 1) FROM production_intensity WHERE units > 0 AND complete "
            "QUALIFY row_number() OVER (PARTITION BY line ORDER BY day DESC) <= 3 "
            "ORDER BY line NULLS LAST, day"
        ).fetchall()
        forecast = con.execute(
            "SELECT meter, day, round(sum(energy_kwh)), round(max(demand_kw)), "
            "arg_max(local_hour, demand_kw), any_value(model), any_value(backtest_days), "
            "round(any_value(mape) * 100, 1), round(any_value(naive_mape) * 100, 1), "
            "any_value(beats_naive) FROM forecast GROUP BY meter, day "
            "ORDER BY meter <> 'site', meter"
        ).fetchall()
    finally:
        con.close()
    print("\nbaselines (ISO 50006; R², CV(RMSE) %, NMBE %, ASHRAE Guideline 14 verdict):")
    for name, variables, r2, cv, nmbe, status in fits:
        print(f"  {name:22} {variables or '-':34} R² {r2}  CV {cv} %  NMBE {nmbe} %  {status}")
    print("\nthe site's CUSUM after its baseline (day, kWh, expected, CUSUM kWh, savings):")
    for row in cusum:
        print("  ", row)
    print("\nkWh and kg CO2 per tonne (line extrusion and the whole site, last 3 days):")
    for row in intensity:
        print("  ", row)
    print("  SELECT * FROM baselines; SELECT * FROM baseline_daily;")
    print("  SELECT * FROM production_intensity WHERE complete;")
    print("\nday-ahead forecast (meter, day, kWh, peak kW at local hour; backtest MAPE vs naive):")
    for meter, day, kwh, kw, hour, model, days, mape, naive, beats in forecast:
        verdict = "beats" if beats else "does NOT beat"
        print(
            f"  {meter:20} {day} {kwh:>8,.0f} kWh, peak {kw:,.0f} kW at {hour:%H:%M}; {model} "
            f"over {days} days: MAPE {mape} % vs seasonal-naive {naive} % ({verdict} it)"
        )
    print("  SELECT * FROM forecast ORDER BY meter, local_hour;")


def _report_sparkplug(settings: Settings) -> None:
    if not settings.mqtt.sparkplug_topic:
        print("\nsparkplug: off (the embedded broker speaks MQTT 3.1.1 only)")
        return
    con = connect_readonly(settings.catalog.path)
    try:
        status = con.execute(
            "SELECT level, edge_node, device, online, bd_seq FROM device_status ORDER BY ALL"
        ).fetchall()
        landed = con.execute(
            "SELECT count(*), round(max(energy_kwh)) FROM readings WHERE device_id = 'sp-meter-01'"
        ).fetchall()[0]
    finally:
        con.close()
    print(
        f"\nsparkplug B: {landed[0]} readings of sp-meter-01 landed (energy {landed[1]} kWh, "
        "from Wh by the default mapping); device_status:"
    )
    for row in status:
        print("  ", row)
    print("  SELECT * FROM device_status;")


def _write_reports(settings: Settings, workdir: Path) -> None:
    """The energy manager's report, in English and Chinese, from the demo's catalog."""
    from report import build

    print()
    for language in ("en", "zh"):
        started = time.perf_counter()
        path = workdir / f"report-{language}.html"
        html = build(settings.catalog.path, language=language, t=settings.analytics)
        path.write_text(html, encoding="utf-8")
        seconds = time.perf_counter() - started
        print(f"report ({language}): {path.resolve()} ({len(html) / 1e6:.1f} MB, {seconds:.1f} s)")
    print("  open it in a browser; `wattline serve` serves the same pages live")


def _report_bill(settings: Settings) -> None:
    """The bill by time-of-use period and the month's maximum demand, from the catalog."""
    con = connect_readonly(settings.catalog.path)
    try:
        bill = con.execute(
            "SELECT site, period, round(sum(energy_kwh)), round(sum(cost)), any_value(currency) "
            "FROM energy_cost WHERE billing_meter GROUP BY site, period "
            "ORDER BY site, array_position(['critical', 'peak', 'flat', 'valley'], period)"
        ).fetchall()
        demand = con.execute(
            "SELECT site, month, round(max_demand_kw), window_start, top_device_id, "
            "round(top_device_kw), contracted_kw, approaching_contract, round(demand_charge) "
            "FROM demand_monthly ORDER BY site, month"
        ).fetchall()
    finally:
        con.close()
    print(f"\nthe bill by tariff period ({settings.analytics.tariff_file}):")
    for site, period, kwh, cost, currency in bill:
        print(f"  {site:10} {period:9} {kwh:>9,.0f} kWh {cost:>10,.0f} {currency}")
    print("  SELECT site, period, sum(energy_kwh), sum(cost) FROM energy_cost")
    print("  WHERE billing_meter GROUP BY ALL;")
    print("\nmaximum demand this month (15-minute windows):")
    for site, month, kw, start, top, top_kw, contract, near, charge in demand:
        warn = "  APPROACHING CONTRACT" if near else ""
        print(
            f"  {site:10} {month:%Y-%m} {kw:>6,.0f} kW at {start:%Y-%m-%d %H:%M} UTC "
            f"(largest load {top} {top_kw:,.0f} kW; contracted {contract or '-'} kW; "
            f"demand charge {charge or 0:,.0f}){warn}"
        )
    print("  SELECT * FROM demand_monthly; SELECT * FROM demand_peaks ORDER BY demand_kw DESC;")


def _deliver_to_local_receiver(settings: Settings) -> None:
    """The energy manager's side: a webhook receiver on loopback gets the new alerts."""
    from alerts.cli import deliver_with
    from alerts.settings import AlertSettings, Endpoint
    from alerts.sign import verify_wattline_signature

    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/wattline"
    endpoint = Endpoint(
        name="demo-receiver", url=url, secret="demo-secret", min_severity="warning", language="en"
    )
    deliver_with(settings.lake.root, AlertSettings(endpoints=(endpoint,)))
    server.shutdown()
    print(f"\nwebhook receiver at {url} got {len(received)} signed notification(s):")
    for headers, body in received:
        signed = verify_wattline_signature(
            "demo-secret", headers.get("X-Wattline-Signature", ""), body, time.time()
        )
        print(f"  [{'signature ok' if signed else 'BAD SIGNATURE'}] {json.loads(body)['title']}")
