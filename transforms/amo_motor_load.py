"""Load factor of one motor from one measurement: the scalar POWER, CURRENT and slip methods.

Python port of ORNL-AMO/AMO-Tools-Suite `src/calculator/motor/MotorShaftPower.cpp`
(Copyright 2018, UT-Battelle, LLC; licence and notice in
`transforms/AMO-Tools-Suite-NOTICE.txt`), modified by the Wattline project contributors:
SI inputs and the deliberate differences listed in `transforms/amo_motor.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from transforms.amo_motor import (
    MAX_BETA,
    STEPS,
    MotorNameplate,
)


@dataclass(frozen=True)
class LoadEstimate:
    """One estimate: β (fraction of rated output), η, kW; pf and A where the method yields them."""

    beta: float
    efficiency: float
    shaft_kw: float
    input_kw: float
    method: str
    idle_no_load: bool
    power_factor: float | None = None
    current_a: float | None = None


def _bracket(values: Sequence[float], x: float) -> int:
    """Last step k with running-max(values) ≤ x, within 0..149: AMO's "first step above x" − 1."""
    k, top = 0, -math.inf
    for i, v in enumerate(values):
        top = max(top, v)
        if top > x:
            break
        k = i
    return min(k, STEPS - 1)


def load_from_power(
    np: MotorNameplate, power_kw: float, voltage_v: float | None = None
) -> LoadEstimate:
    """AMO POWER method (`MotorShaftPower.cpp` L11–61), domain.md §2.2(b).

    β and η are interpolated between the 1 % steps bracketing the measured kW; field voltage
    only changes pf and so the current (L45–49, L56). At or below the modelled no-load input
    the motor is idle; β saturates at 1.5, the end of the model.
    """
    rows, vr = np.model.rows, np.rated_voltage_v
    if power_kw <= rows[0][3]:
        return LoadEstimate(0.0, 0.0, 0.0, power_kw, "power_curve", True)
    k = _bracket([r[3] for r in rows], power_kw)
    (b1, e1, _, p1, pf1), (b2, e2, _, p2, pf2) = rows[k], rows[k + 1]
    fi = min(b1 + ((power_kw - p1) / (p2 - p1)) / 100, MAX_BETA)
    w = 100 * (fi - b1)
    v = voltage_v or vr
    a1, a2 = (
        pf / (((v / vr - 1) * (-2 * b + 1) + 1) * (v / vr)) for pf, b in ((pf1, b1), (pf2, b2))
    )
    pf, eff = a1 + w * (a2 - a1), e1 + w * (e2 - e1)
    current = power_kw / (v * math.sqrt(3) * pf / 1000)
    return LoadEstimate(fi, eff, power_kw * eff, power_kw, "power_curve", False, pf, current)


def load_from_current(
    np: MotorNameplate, current_a: float, voltage_v: float, no_load_margin: float = 0.05
) -> LoadEstimate:
    """AMO CURRENT method (`MotorShaftPower.cpp` L62–120) with a no-load guard.

    Modelled currents are voltage-adjusted by (V/V_r − 1)(1 − 2β) + 1 (L106–107). At or below
    (1 + margin) × the adjusted no-load current the motor is idle, where AMO would return
    β < 0 (domain.md §2.2(c), §11.2: 60 A on FLA 225.8 A gives β = −0.086).
    """
    rows = np.model.rows
    a = voltage_v / np.rated_voltage_v - 1
    if current_a <= (1 + no_load_margin) * (a + 1) * rows[0][2]:
        return LoadEstimate(0.0, 0.0, 0.0, rows[0][3], "current", True, None, current_a)
    k = _bracket([r[2] for r in rows], current_a)
    (b1, e1, i1, p1, _), (b2, e2, i2, p2, _) = rows[k], rows[k + 1]
    adj1, adj2 = (a * (1 - 2 * b1) + 1) * i1, (a * (1 - 2 * b2) + 1) * i2
    fi = min(max(b1 + ((current_a - adj1) / (adj2 - adj1)) / 100, 0.0), MAX_BETA)
    w = 100 * (fi - b1)
    eff, p = e1 + w * (e2 - e1), p1 + w * (p2 - p1)
    pf = p / (current_a * voltage_v * math.sqrt(3) / 1000)
    return LoadEstimate(fi, eff, p * eff, p, "current", False, pf, current_a)


def load_from_slip(
    np: MotorNameplate,
    speed_rpm: float,
    voltage_v: float | None = None,
    frequency_hz: float | None = None,
) -> LoadEstimate:
    """Voltage-compensated slip (Motors@Work; domain.md §2.2(d)), n_s from measured frequency.

    β = (n_s − n) / (n_s,rated − n_fl) · (V/V_r)², η read from the 1 % curve. No slip
    (n ≥ n_s) means idle. DOE: use only when kW is not measured.
    """
    p, f = np.poles, np.line_frequency_hz
    slip_fl = 120 * f / p - np.rated_speed_rpm
    if slip_fl <= 0:
        raise ValueError(f"rated speed {np.rated_speed_rpm} rpm is not below synchronous speed")
    volts = (voltage_v / np.rated_voltage_v) ** 2 if voltage_v is not None else 1.0
    beta = min((120 * (frequency_hz or f) / p - speed_rpm) / slip_fl * volts, MAX_BETA)
    if beta <= 0:
        return LoadEstimate(0.0, 0.0, 0.0, np.model.kw_loss0, "slip", True)
    k = min(math.floor(beta * 100), STEPS - 1)
    (b1, e1, *_), (_, e2, *_) = np.model.rows[k], np.model.rows[k + 1]
    eff = e1 + 100 * (beta - b1) * (e2 - e1)
    shaft = beta * np.rated_power_kw
    return LoadEstimate(beta, eff, shaft, shaft / eff, "slip", False)


def load_from_power_ratio(power_kw: float, rated_power_kw: float, rated_efficiency: float) -> float:
    """DOE input-power ratio β = P_in / (P_N / η_N) (domain.md §2.2(a)); over-states β a little."""
    return power_kw * rated_efficiency / rated_power_kw


def estimate_load_scalar(
    np: MotorNameplate,
    *,
    power_kw: float | None = None,
    voltage_v: float | None = None,
    current_a: float | None = None,
    speed_rpm: float | None = None,
    frequency_hz: float | None = None,
    no_load_margin: float = 0.05,
) -> LoadEstimate | None:
    """Scalar twin of `estimate_load`: power → curve, else current + voltage, else slip."""
    if power_kw is not None:
        return load_from_power(np, power_kw, voltage_v)
    if current_a is not None and voltage_v is not None:
        return load_from_current(np, current_a, voltage_v, no_load_margin)
    if speed_rpm is not None:
        return load_from_slip(np, speed_rpm, voltage_v, frequency_hz)
    return None
