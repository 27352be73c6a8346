"""`wattline`: the command line. Settings are built once here and passed down."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from wattline.config import ConfigError, Settings, load_settings

log = logging.getLogger("wattline")
DATA = Path(__file__).parent / "data"

Handler = Callable[[argparse.Namespace, Settings], int]


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.consumer import Consumer, limit_malloc_arenas

    limit_malloc_arenas()
    consumer = Consumer(settings)
    consumer.install_signal_handlers()
    return consumer.run()


def _catalog_init(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.catalog import ensure_catalog

    ensure_catalog(settings.catalog.path, settings.lake.open())
    print(f"catalog ready: {settings.catalog.path}")
    return 0


def _registry_load(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.calendar import parse_shift_calendar
    from warehouse.catalog import ensure_catalog
    from warehouse.registry import RegistryError, load_registry
    from wattline.progress import Progress

    lake = settings.lake.open()
    progress = Progress("registry", 3)
    try:
        counts = load_registry(lake, args.devices, args.sites, parse_shift_calendar, progress.step)
    except RegistryError as exc:
        progress.close()
        print(exc, file=sys.stderr)
        return 2
    progress.close()
    ensure_catalog(settings.catalog.path, lake)
    print(f"registry loaded: {counts.devices} devices, {counts.sites} sites")
    return 0


def _drivers_load(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.catalog import ensure_catalog
    from warehouse.drivers import DriversError, load_production, load_weather

    lake = settings.lake.open()
    lake.prepare()
    try:
        if args.command == "production":
            rows = load_production(lake, args.file, args.lines)
        else:
            rows = load_weather(lake, args.file)
    except DriversError as exc:
        print(exc, file=sys.stderr)
        return 2
    ensure_catalog(settings.catalog.path, lake, strict=False)
    print(f"{args.command} loaded: {rows} rows from {args.file}; `wattline jobs run` uses them")
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    import time
    from datetime import date

    from report import ReportError, build

    started = time.perf_counter()
    try:
        html = build(
            settings.catalog.path,
            args.site,
            date.fromisoformat(args.first) if args.first else None,
            date.fromisoformat(args.last) if args.last else None,
            args.language,
            args.devices,
            settings.analytics,
            args.static,
        )
    except (ReportError, ValueError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    seconds = time.perf_counter() - started
    print(f"report: {args.out.resolve()} ({len(html) / 1e6:.1f} MB, {seconds:.1f} s)")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from report.serve import serve

    return serve(settings, args.host, args.port)


def _edge_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from edge.run import simulate_command

    return simulate_command(args, settings.mqtt)


def _jobs_run(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.cli import deliver
    from wattline.jobs import run_jobs

    stop = threading.Event()
    if args.every:  # a service: run, sleep, repeat until SIGTERM/SIGINT
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    while True:
        print(run_jobs(settings, full=args.full, compact=not args.no_compact).summary())
        code = 0 if args.no_deliver else deliver(settings.lake.root, args.config, dry_run=False)
        if not args.every or stop.wait(args.every):
            return code


def _lake_maintain(args: argparse.Namespace, settings: Settings) -> int:
    from wattline.jobs import maintain_lake

    print(maintain_lake(settings).summary())
    return 0


def _lake_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from warehouse.delta import DeltaTables
    from warehouse.lake import Lake
    from warehouse.migrate import MigrationError, migrate

    lake = settings.lake.open()
    target = lake.delta or DeltaTables(str(settings.lake.root))
    try:
        print(migrate(Lake(settings.lake.root), target).summary())
    except MigrationError as exc:
        print(f"migrate failed: {exc}", file=sys.stderr)
        return 1
    if lake.delta is None:
        print('now set [lake] format = "delta" to read and write the Delta tables')
    return 0


def _alerts_list(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.cli import list_alerts

    print(list_alerts(settings.lake.root, args.site, args.status, args.severity))
    return 0


def _alerts_deliver(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.cli import deliver

    return deliver(settings.lake.root, args.config, dry_run=args.dry_run)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from wattline.demo import run_demo

    return run_demo(settings, duration_s=args.duration, workdir=args.workdir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wattline", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (WATTLINE_* overrides)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a simulated plant end to end for about a minute")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds of simulation")
    demo.add_argument(
        "--workdir",
        type=Path,
        default=Path("data/demo"),
        help="where the demo's broker, lake and catalog live",
    )
    demo.set_defaults(handler=_demo)

    sub.add_parser("consume", help="subscribe and land readings until SIGTERM").set_defaults(
        handler=_consume
    )

    catalog = sub.add_parser("catalog", help="the DuckDB catalog").add_subparsers(
        dest="action", required=True
    )
    catalog.add_parser("init", help="create or update the catalog's views").set_defaults(
        handler=_catalog_init
    )

    registry = sub.add_parser("registry", help="device and site master data").add_subparsers(
        dest="action", required=True
    )
    load = registry.add_parser("load", help="validate and load devices.csv and sites.csv")
    load.add_argument("--devices", type=Path, required=True)
    load.add_argument("--sites", type=Path, required=True)
    load.set_defaults(handler=_registry_load)

    rep = sub.add_parser("report", help="write the energy report as one self-contained HTML file")
    rep.add_argument("--site", help="the site (default: the first in the registry)")
    rep.add_argument("--from", dest="first", help="first local day, YYYY-MM-DD")
    rep.add_argument("--to", dest="last", help="last local day, YYYY-MM-DD")
    rep.add_argument("--out", type=Path, default=Path("report.html"))
    rep.add_argument("--language", choices=["en", "zh"], default="en")
    rep.add_argument(
        "--devices", type=int, default=12, help="device pages: alerts first, then top energy"
    )
    rep.add_argument(
        "--static", action="store_true", help="charts as SVG, no script (mail clients, print)"
    )
    rep.set_defaults(handler=_report)
    srv = sub.add_parser("serve", help="serve the report live from the catalog, read-only")
    srv.add_argument("--host", help="default: [serve] host (127.0.0.1)")
    srv.add_argument("--port", type=int, help="default: [serve] port (8321)")
    srv.set_defaults(handler=_serve)

    production = sub.add_parser(
        "production", help="production counts per line and day (baselines, carbon per unit)"
    ).add_subparsers(dest="action", required=True)
    pload = production.add_parser("load", help="check and upsert production.csv")
    pload.add_argument("file", type=Path, help="site,line,day,units,unit")
    pload.add_argument("--lines", type=Path, help="site,line,device_id: replaces the line map")
    pload.set_defaults(handler=_drivers_load)
    weather = sub.add_parser(
        "weather", help="daily mean outdoor temperature per site (degree-days for baselines)"
    ).add_subparsers(dest="action", required=True)
    wload = weather.add_parser("load", help="check and upsert weather.csv")
    wload.add_argument("file", type=Path, help="site,day,mean_temp_c")
    wload.set_defaults(handler=_drivers_load)

    jobs = sub.add_parser("jobs", help="analytics jobs").add_subparsers(
        dest="action", required=True
    )
    run = jobs.add_parser("run", help="load matching and waste rules over new data")
    run.add_argument("--full", action="store_true", help="recompute every day, not only new data")
    run.add_argument(
        "--no-deliver",
        action="store_true",
        help="skip alert delivery (by default the last step of a run)",
    )
    run.add_argument(
        "--no-compact",
        action="store_true",
        help="skip lake compaction and retention (by default the first step of a run)",
    )
    run.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running: again every SECONDS until SIGTERM (for a container or service)",
    )
    run.set_defaults(handler=_jobs_run)

    lake = sub.add_parser("lake", help="the Parquet lake").add_subparsers(
        dest="action", required=True
    )
    lake.add_parser(
        "maintain",
        help="compact settled days into one file each; expire days past lake.retention_days",
    ).set_defaults(handler=_lake_maintain)
    lake.add_parser(
        "migrate",
        help="copy the Parquet lake's readings and quarantine into Delta tables, verified",
    ).set_defaults(handler=_lake_migrate)

    alerts = sub.add_parser("alerts", help="waste alerts").add_subparsers(
        dest="action", required=True
    )
    listing = alerts.add_parser("list", help="alerts, most costly first")
    listing.add_argument("--site")
    listing.add_argument("--status", choices=["open", "resolved"])
    listing.add_argument("--severity", choices=["info", "warning", "critical"])
    listing.set_defaults(handler=_alerts_list)
    send = alerts.add_parser("deliver", help="notify the [[alerts.endpoint]]s of the config")
    send.add_argument("--dry-run", action="store_true", help="print what would be sent")
    send.set_defaults(handler=_alerts_deliver)

    edge = sub.add_parser("edge", help="edge gateway").add_subparsers(dest="action", required=True)
    sim = edge.add_parser("simulate", help="publish a simulated plant's readings over MQTT")
    sim.add_argument("--devices", type=Path, default=DATA / "devices.csv")
    sim.add_argument("--sites", type=Path, default=DATA / "sites.csv")
    sim.add_argument(
        "--scenario",
        default="plant",
        help="'plant' (each device's own scenario from the demo plant), a scenario "
        "name for every device, or device=scenario pairs, comma separated",
    )
    sim.add_argument("--rate", type=float, default=1.0, help="readings per second per device")
    sim.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until stopped")
    sim.add_argument("--batch", type=int, default=1, help="readings per message")
    sim.add_argument("--client-id", default="wattline-sim")
    sim.set_defaults(handler=_edge_simulate)
    gw = edge.add_parser(
        "run",
        help="run a gateway: poll Modbus meters (or the simulator), "
        "spool to disk, publish over MQTT",
    )
    gw.add_argument(
        "--config",
        dest="gateway_config",
        type=Path,
        required=True,
        help="gateway TOML (see edge/gateway.example.toml)",
    )
    gw.set_defaults(handler=None, gateway=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if getattr(args, "gateway", False):
        # A gateway has its own config file and WATTLINE_* sections (edge/gateway_cli.py).
        from edge.gateway_cli import run_gateway_command

        return run_gateway_command(args.gateway_config)
    from alerts import AlertsConfigError
    from ingest.mqtt import MqttError

    try:
        settings = load_settings(args.config)
        handler: Handler = args.handler
        return handler(args, settings)
    except MqttError as exc:
        print(f"wattline {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, AlertsConfigError) as exc:
        print(f"wattline: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
