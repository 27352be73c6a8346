"""`wattline edge simulate`: the simulated plant as a command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from edge.devices import DEMO_DATA_DIR, load_devices, load_sites
from edge.scenarios import SCENARIOS, load_scenario_assignments
from wattline.config import MqttSettings

log = logging.getLogger(__name__)


def resolve_assignments(spec: str, device_ids: list[str]) -> dict[str, str]:
    """'plant' (the demo plant's own mapping), one scenario for all, or device=scenario pairs."""
    if spec == "plant":
        return load_scenario_assignments(DEMO_DATA_DIR / "scenarios.csv")
    if "=" not in spec:
        if spec not in SCENARIOS:
            raise ValueError(f"unknown scenario '{spec}'; known: {', '.join(sorted(SCENARIOS))}")
        return dict.fromkeys(device_ids, spec)
    pairs = dict(item.split("=", 1) for item in spec.split(","))
    unknown = sorted(set(pairs.values()) - set(SCENARIOS))
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(SCENARIOS))}"
        )
    return pairs


def simulate_command(args: argparse.Namespace, mqtt: MqttSettings) -> int:
    from edge.simulate import publish_live

    devices = load_devices(Path(args.devices))
    sites = load_sites(Path(args.sites))
    try:
        assignments = resolve_assignments(args.scenario, [d.device_id for d in devices])
    except ValueError as exc:
        print(f"wattline edge simulate: {exc}")
        return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await publish_live(
            mqtt.host,
            mqtt.port,
            devices,
            sites,
            assignments,
            interval_s=1.0 / args.rate,
            duration_s=args.duration or None,
            client_id=args.client_id,
            readings_per_message=args.batch,
            stop_event=stop,
        )

    published = asyncio.run(main())
    print(f"published {published} readings")
    return 0
