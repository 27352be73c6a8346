"""Named operating scenarios: what each simulated machine does, and what analytics must catch.

A scenario gives, per equipment kind, the load on shift and off shift (None = switched off)
and how far it wanders. The load means, per kind (edge.physics): motor shaft load factor
beta; pump and fan flow ratio Q/Q_BEP; compressor air demand as a fraction of its free air
delivery; transformer beta = S/S_N. Each waste scenario names the domain.md rule it feeds.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final


@dataclass(frozen=True)
class LoadProfile:
    on_shift: float
    off_shift: float | None
    spread: float = 0.05  # the load stays within ±spread (relative) of its mean


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    profiles: Mapping[str, LoadProfile] = field(hash=False)
    voltage_unbalance_pct: float = 0.3  # NEMA %VU of the supply (domain.md §1)

    def profile_for(self, kind: str) -> LoadProfile:
        """The load profile for a kind; ValueError when the scenario does not fit the kind."""
        if kind not in self.profiles:
            kinds = ", ".join(sorted(self.profiles))
            raise ValueError(f"scenario {self.name!r} applies to {kinds}, not to a {kind}")
        return self.profiles[kind]


_HEALTHY = {
    "motor": LoadProfile(0.75, None, 0.08),
    "pump": LoadProfile(1.0, None, 0.05),
    "fan": LoadProfile(0.9, None, 0.05),
    # A well-sized base-load compressor runs mostly loaded: under ~20 % unloaded (ITAC)
    "compressor": LoadProfile(0.88, None, 0.05),
    "transformer": LoadProfile(0.55, 0.2, 0.08),
}
_CONTINUOUS = {
    "motor": LoadProfile(0.7, 0.7, 0.08),
    "pump": LoadProfile(0.95, 0.9, 0.05),
    "fan": LoadProfile(0.85, 0.8, 0.05),
    "compressor": LoadProfile(0.65, 0.6, 0.1),
    "transformer": LoadProfile(0.5, 0.45, 0.08),
}

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "healthy",
            "Matched load in the efficient zone on shift, switched off outside it "
            "(transformers stay energised at light night load). Nothing to flag.",
            _HEALTHY,
        ),
        Scenario(
            "healthy_continuous",
            "A 24/7 process: loaded on and off shift. Off-shift running is production, "
            "not waste (M9 must not fire on load alone).",
            _CONTINUOUS,
        ),
        Scenario(
            "oversized_motor",
            "Motor at ~22 % load (20-25 %) while running: 大马拉小车, rule M2 (§2.6).",
            {"motor": LoadProfile(0.22, None, 0.1)},
        ),
        Scenario(
            "idle_off_shift",
            "Motor works at ~70 % on shift and is left energised at near no-load (~3 %) "
            "outside the site's shift calendar: rules M1 and M9 (§2.6).",
            {"motor": LoadProfile(0.7, 0.03, 0.1)},
        ),
        Scenario(
            "voltage_unbalance",
            "Matched motor fed with 3 % NEMA voltage unbalance: rule M4 (§2.6, derate ~0.89 "
            "per §1) and the resulting current unbalance, rule M5.",
            {"motor": LoadProfile(0.7, None, 0.08)},
            voltage_unbalance_pct=3.0,
        ),
        Scenario(
            "pump_throttled",
            "Pump held at ~40 % of BEP flow by a throttle valve: far left of the preferred "
            "operating region 70-120 % (§3.3), rules P1 and P3.",
            {"pump": LoadProfile(0.4, None, 0.05)},
        ),
        Scenario(
            "fan_throttled",
            "Fan damped to ~50 % of BEP flow at fixed speed: rule F3 (§4.3).",
            {"fan": LoadProfile(0.5, None, 0.05)},
        ),
        Scenario(
            "compressor_leak",
            "Load/unload compressor left on with no production: leaks of ~35 % of FAD keep "
            "it loaded ~35 % of the time off shift (§5.4 leak test, rules C1 and C6).",
            {"compressor": LoadProfile(0.85, 0.35, 0.05)},
        ),
        Scenario(
            "light_transformer",
            "Transformer at beta 0.04-0.06 around the clock, below P0/Pk (about 0.08 for "
            "GB 20052 losses), where the no-load loss dominates: rule T1 (§6.3).",
            {"transformer": LoadProfile(0.055, 0.045, 0.08)},
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`; ValueError listing the known names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def load_scenario_assignments(path: str | Path) -> dict[str, str]:
    """Read scenarios.csv (device_id,scenario) into device_id -> scenario name.

    Unknown scenario names and repeated devices raise ValueError with the line number."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"device_id", "scenario"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected columns device_id,scenario")
        assignments: dict[str, str] = {}
        for row in reader:
            device_id, name = (
                (row.get("device_id") or "").strip(),
                (row.get("scenario") or "").strip(),
            )
            where = f"{path}:{reader.line_num}"
            if not device_id or device_id in assignments:
                raise ValueError(f"{where}: device_id {device_id!r} is blank or repeated")
            if name not in SCENARIOS:
                raise ValueError(
                    f"{where}: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
                )
            assignments[device_id] = name
    return assignments
