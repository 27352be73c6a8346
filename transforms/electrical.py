"""Three-phase electrical formulas as Polars expression builders, each with a scalar twin.

Expression builders end in `_expr` and take column names or expressions; the scalar twin
of the same name without `_expr` takes floats, and tests check that the two agree. Units:
V line-to-line, A, kW, kvar, kVA, power factor as a fraction, unbalance in percent.

`pf_correction_kvar` follows AMO-Tools-Suite `src/electrical/PowerFactor.cpp`
(Copyright 2018, UT-Battelle, LLC; notice in `transforms/AMO-Tools-Suite-NOTICE.txt`),
modified by the Wattline authors: only the real-power + power-factor mode, vectorised in
Polars, and clamped at zero when the power factor already meets the target.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Final

import polars as pl

Col = str | pl.Expr

SQRT3: Final = math.sqrt(3)

NEMA_DERATING: Final[tuple[tuple[float, float], ...]] = (
    (0.0, 1.0),
    (1.0, 1.0),
    (1.5, 0.97),
    (2.0, 0.95),
    (2.5, 0.93),
    (3.0, 0.89),
    (3.5, 0.85),
    (4.0, 0.82),
    (4.5, 0.78),
    (5.0, 0.76),
)
"""(%VU, derating factor) read from NEMA MG-1 Fig. 14-1 by Engineering ToolBox (domain.md §1).

Secondary read-outs of the figure (MG-1 itself was not read); treat as ±0.01.
"""
NEMA_MAX_UNBALANCE_PCT: Final = 5.0
"""Above this NEMA recommends against operating the motor at all (eng-tips quoting NEMA)."""


def _c(x: Col) -> pl.Expr:
    return pl.col(x) if isinstance(x, str) else x


def three_phase_power_kw(voltage_v: float, current_a: float, power_factor: float) -> float:
    """P = √3·V_LL·I·PF / 1000 (AMO `MotorPower.cpp` L20; DOE fact sheet Eq. 1)."""
    return SQRT3 * voltage_v * current_a * power_factor / 1000


def three_phase_power_kw_expr(voltage_v: Col, current_a: Col, power_factor: Col) -> pl.Expr:
    return SQRT3 * _c(voltage_v) * _c(current_a) * _c(power_factor) / 1000


def unbalance_pct(a: float, b: float, c: float) -> float | None:
    """NEMA unbalance: 100 × max |x_i − mean| / mean, None for a zero mean.

    NEMA MG-1 (via eng-tips and industrialmonitordirect.com, domain.md §1) defines it on the
    three line voltages; Motors@Work applies the same definition to phase currents. It is
    not (max − min) / mean, which roughly doubles the figure.
    """
    mean = (a + b + c) / 3
    if mean == 0:
        return None
    return 100 * max(abs(a - mean), abs(b - mean), abs(c - mean)) / mean


def unbalance_pct_expr(a: Col, b: Col, c: Col) -> pl.Expr:
    """Vectorised `unbalance_pct`, for voltages (%VU) or currents; null where the mean is 0."""
    mean = (_c(a) + _c(b) + _c(c)) / 3
    deviation = pl.max_horizontal((_c(x) - mean).abs() for x in (a, b, c))
    return pl.when(mean != 0).then(100 * deviation / mean)


def nema_derating_factor(unbalance: float) -> float:
    """Motor derating for voltage unbalance: linear in the NEMA_DERATING table, 0 above 5 %.

    0 means "do not operate" (NEMA recommends against use above 5 %); 1 up to 1 %.
    """
    if unbalance > NEMA_MAX_UNBALANCE_PCT:
        return 0.0
    for (x1, y1), (x2, y2) in pairwise(NEMA_DERATING):
        if unbalance <= x2:
            return y1 + (max(unbalance, x1) - x1) * (y2 - y1) / (x2 - x1)
    return NEMA_DERATING[-1][1]


def nema_derating_factor_expr(unbalance: Col) -> pl.Expr:
    """Vectorised `nema_derating_factor`; null in, null out."""
    vu = _c(unbalance)
    out: pl.Expr = pl.lit(None, pl.Float64)
    for (x1, y1), (x2, y2) in reversed(list(pairwise(NEMA_DERATING))):
        line = y1 + (vu.clip(lower_bound=x1) - x1) * (y2 - y1) / (x2 - x1)
        out = pl.when(vu <= x2).then(line).otherwise(out)
    return pl.when(vu > NEMA_MAX_UNBALANCE_PCT).then(0.0).otherwise(out)


def nema_do_not_operate(unbalance: float) -> bool:
    return unbalance > NEMA_MAX_UNBALANCE_PCT


def nema_do_not_operate_expr(unbalance: Col) -> pl.Expr:
    return _c(unbalance) > NEMA_MAX_UNBALANCE_PCT


def apparent_power_kva(power_kw: float, power_factor: float) -> float:
    """S = P / PF (AMO `PowerFactor.cpp`, RealPower_PowerFactor mode)."""
    return power_kw / power_factor


def apparent_power_kva_expr(power_kw: Col, power_factor: Col) -> pl.Expr:
    return _c(power_kw) / _c(power_factor)


def reactive_power_kvar(power_kw: float, power_factor: float) -> float:
    """Q = P·tan(acos PF) (AMO `PowerFactor.cpp` L57–63)."""
    return power_kw * math.tan(math.acos(power_factor))


def reactive_power_kvar_expr(power_kw: Col, power_factor: Col) -> pl.Expr:
    return _c(power_kw) * _c(power_factor).arccos().tan()


def pf_correction_kvar(power_kw: float, power_factor: float, target_pf: float) -> float:
    """Capacitor kvar to raise PF to the target: P·tan(acos PF) − P·tan(acos PF_target).

    AMO `PowerFactor.cpp` L83–88 (proposedCapacitance); 0 when PF already meets the target
    (AMO returns a negative number there).
    """
    needed = reactive_power_kvar(power_kw, power_factor) - reactive_power_kvar(power_kw, target_pf)
    return max(needed, 0.0)


def pf_correction_kvar_expr(power_kw: Col, power_factor: Col, target_pf: Col | float) -> pl.Expr:
    target = pl.lit(target_pf) if isinstance(target_pf, float | int) else _c(target_pf)
    needed = reactive_power_kvar_expr(power_kw, power_factor) - reactive_power_kvar_expr(
        power_kw, target
    )
    return needed.clip(lower_bound=0.0)
