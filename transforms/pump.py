"""Centrifugal pump formulas: fluid power, head, efficiency, belt drives, POR, VFD savings.

Parts are a modified Python port of ORNL-AMO/AMO-Tools-Suite (Copyright 2018 UT-Battelle,
LLC; licence and disclaimer in transforms/AMO-Tools-Suite-NOTICE.txt), files cited per
function. Changes by the Wattline project, 2026: rewritten in Python, SI wrappers (m3/h,
m, kPa, kW) around the US-unit fits, polars expression builders. The POR, head and
VFD-saving helpers are not AMO code. § numbers refer to /work/shared/reference/domain.md.

Every formula is written once over `float | pl.Expr`; each scalar function has an `*_expr`
twin that takes column names or expressions, for the job runner. Inputs are not guarded
(AMO does not guard either, §9.4 A17): filter running rows first (§13), and treat an
efficiency above 1 as inconsistent telemetry, not as something to clamp.

Not ported: AMO's achievable pump efficiency (`OptimalPumpEfficiency.cpp` and its style
fits, §9.4 A19–A20), which rule P2 needs; it would take this module well past 300 lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from transforms.dual import ExprLike, T
from transforms.dual import as_expr as _x
from transforms.dual import exp as _exp
from transforms.dual import power as _pow

G_M_S2 = 9.80665
WATER_DENSITY_KG_M3 = 998.2  # 20 °C
AMO_KW_PER_HP = 0.746  # AMO's hp factor (as in amo_motor.py), so hp inputs round-trip
M3H_PER_GPM = 0.003785411784 * 60.0
M_PER_FT = 0.3048


def _fluid_power(flow_m3h: T, head_m: T, density_kg_m3: T) -> T:
    return density_kg_m3 * G_M_S2 * flow_m3h / 3600.0 * head_m / 1000.0


def fluid_power_kw(
    flow_m3h: float, head_m: float, density_kg_m3: float = WATER_DENSITY_KG_M3
) -> float:
    """Hydraulic power P = ρ·g·Q·H (§3.2, SI form of AMO `FluidPower.h`)."""
    return _fluid_power(flow_m3h, head_m, density_kg_m3)


def fluid_power_kw_expr(flow_m3h: ExprLike, head_m: ExprLike, density_kg_m3: ExprLike) -> pl.Expr:
    return _fluid_power(_x(flow_m3h), _x(head_m), _x(density_kg_m3))


def fluid_power_kw_amo(flow_gpm: float, head_ft: float, specific_gravity: float) -> float:
    """AMO US form 0.746·Q[gpm]·H[ft]·SG/3961.38 (`include/calculator/pump/FluidPower.h`).

    Kept for parity with the AMO vectors; it is ~0.1 % off ρgQH because of AMO's rounded
    constants (0.746 kW/hp, 3961.38 gpm·ft/hp). Use `fluid_power_kw` on SI telemetry.
    """
    return 0.746 * flow_gpm * head_ft * specific_gravity / 3961.38


def _head(discharge_kpa: T, suction_kpa: T, density_kg_m3: T, elevation_rise_m: T) -> T:
    return (discharge_kpa - suction_kpa) * 1000.0 / (density_kg_m3 * G_M_S2) + elevation_rise_m


def head_m(
    discharge_pressure_kpa: float,
    suction_pressure_kpa: float,
    density_kg_m3: float = WATER_DENSITY_KG_M3,
    elevation_rise_m: float = 0.0,
) -> float:
    """Pump head from the gauge pressure rise: H = Δp/(ρ·g) + Δz (Bernoulli).

    The differential-pressure and elevation terms of AMO `HeadTool.cpp`; its velocity-head
    and pipe-friction terms need pipe diameters that telemetry does not carry, so they are
    left out (they are small when suction and discharge pipes are alike).
    """
    return _head(discharge_pressure_kpa, suction_pressure_kpa, density_kg_m3, elevation_rise_m)


def head_m_expr(
    discharge_pressure_kpa: ExprLike,
    suction_pressure_kpa: ExprLike,
    density_kg_m3: ExprLike,
    elevation_rise_m: ExprLike = 0.0,
) -> pl.Expr:
    pressures = _x(discharge_pressure_kpa), _x(suction_pressure_kpa)
    return _head(*pressures, _x(density_kg_m3), _x(elevation_rise_m))


def pump_efficiency(fluid_power_kw: float, pump_shaft_power_kw: float) -> float:
    """η_pump = P_fluid/P_shaft (AMO `MoverEfficiency.cpp` L3–7, in kW instead of hp).

    AMO divides fluid hp (kW/0.746) by shaft hp, so passing shaft kW = hp·0.746 gives AMO's
    number exactly. With electrical input power instead of shaft power this is the
    wire-to-water efficiency [INFERRED, §3.2].
    """
    return fluid_power_kw / pump_shaft_power_kw


def pump_efficiency_expr(fluid_power_kw: ExprLike, pump_shaft_power_kw: ExprLike) -> pl.Expr:
    return _x(fluid_power_kw) / _x(pump_shaft_power_kw)


class Drive(StrEnum):
    """Drive between motor and pump (AMO `Motor::Drive`)."""

    DIRECT = "direct"
    V_BELT = "v_belt"
    NOTCHED_V_BELT = "notched_v_belt"
    SYNCHRONOUS_BELT = "synchronous_belt"
    SPECIFIED = "specified"


# Belt loss relative to a V-belt: AMO belt-drive tip sheet, V-belt ~93 %, notched ~95 %,
# synchronous ~98 % efficient, so losses scale 7 : 5 : 2 (`PumpShaftPower.cpp` L81–112).
_BELT_LOSS_SCALE = {
    Drive.DIRECT: 0.0,
    Drive.V_BELT: 1.0,
    Drive.NOTCHED_V_BELT: 0.05 / 0.07,
    Drive.SYNCHRONOUS_BELT: 0.02 / 0.07,
}


def _v_belt_loss(motor_shaft_kw: T) -> T:
    """V-belt loss in kW; the AMCA 203-90 App. L fit takes motor shaft power in hp."""
    hp = motor_shaft_kw / AMO_KW_PER_HP
    fit = 0.68759 * _exp(hp * -0.019791) + 3.7558 * _exp(hp * -0.21507) + 3.9963
    return motor_shaft_kw * fit / 100.0


def pump_shaft_power_kw(
    motor_shaft_power_kw: float, drive: Drive, specified_efficiency: float | None = None
) -> float:
    """Pump shaft power after the drive (AMO `PumpShaftPower.cpp` L81–112).

    Belt losses follow the AMCA 203-90 V-belt fit scaled by `_BELT_LOSS_SCALE`;
    `Drive.SPECIFIED` multiplies by `specified_efficiency` instead.
    """
    if drive is Drive.SPECIFIED:
        if specified_efficiency is None:
            raise ValueError("Drive.SPECIFIED needs specified_efficiency")
        return motor_shaft_power_kw * specified_efficiency
    return motor_shaft_power_kw - _BELT_LOSS_SCALE[drive] * _v_belt_loss(motor_shaft_power_kw)


def pump_shaft_power_kw_expr(
    motor_shaft_power_kw: ExprLike,
    drive: Drive | pl.Expr,
    specified_efficiency: ExprLike | None = None,
) -> pl.Expr:
    """`drive` is one Drive for all rows, or an expression of Drive values per row.

    Rows with an unknown drive, or SPECIFIED without an efficiency, give null.
    """
    kw = _x(motor_shaft_power_kw)
    efficiency = (
        pl.lit(None, pl.Float64) if specified_efficiency is None else _x(specified_efficiency)
    )
    if isinstance(drive, Drive):
        if drive is Drive.SPECIFIED and specified_efficiency is None:
            raise ValueError("Drive.SPECIFIED needs specified_efficiency")
        if drive is Drive.SPECIFIED:
            return kw * efficiency
        return kw - _BELT_LOSS_SCALE[drive] * _v_belt_loss(kw)
    scale = drive.replace_strict({d.value: s for d, s in _BELT_LOSS_SCALE.items()}, default=None)
    return (
        pl.when(drive == Drive.SPECIFIED.value)
        .then(kw * efficiency)
        .otherwise(kw - scale.cast(pl.Float64) * _v_belt_loss(kw))
    )


@dataclass(frozen=True)
class PorThresholds:
    """Preferred operating region as fractions of BEP flow (§3.3).

    ANSI/HI 9.6.3-2012 via Pumps & Systems ("Pump Selection: Understanding Manufacturer
    Family Performance Charts, Part 1"): 70–120 % of BEP for most pumps, 80–120 % above
    N_s 4500 (US). Sources disagree for high N_s (introtopumps.com 80–115 %, Summit Pump
    80–110 %); §3.3 [INFERRED] defaults to 80–115 %. Configure per pump.
    """

    low: float = 0.70
    high: float = 1.20
    high_ns_low: float = 0.80
    high_ns_high: float = 1.15
    high_specific_speed_us: float = 4500.0

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high and 0 < self.high_ns_low < self.high_ns_high):
            raise ValueError(f"POR bounds must satisfy 0 < low < high: {self}")


class PorZone(StrEnum):
    BELOW = "below_por"
    WITHIN = "within_por"
    ABOVE = "above_por"


def por_bounds(
    specific_speed_us: float | None, thresholds: PorThresholds = PorThresholds()
) -> tuple[float, float]:
    """(low, high) fraction of BEP flow; the high-N_s band applies at N_s >= the threshold."""
    if specific_speed_us is not None and specific_speed_us >= thresholds.high_specific_speed_us:
        return thresholds.high_ns_low, thresholds.high_ns_high
    return thresholds.low, thresholds.high


def classify_por(
    flow_m3h: float,
    bep_flow_m3h: float,
    specific_speed_us: float | None = None,
    thresholds: PorThresholds = PorThresholds(),
) -> PorZone:
    """Zone of Q/Q_BEP against the POR (rule P1, §3.4); the bounds count as inside."""
    low, high = por_bounds(specific_speed_us, thresholds)
    ratio = flow_m3h / bep_flow_m3h
    return PorZone.BELOW if ratio < low else PorZone.ABOVE if ratio > high else PorZone.WITHIN


def classify_por_expr(
    flow_m3h: ExprLike,
    bep_flow_m3h: ExprLike,
    specific_speed_us: ExprLike | None = None,
    thresholds: PorThresholds = PorThresholds(),
) -> pl.Expr:
    """String column of PorZone values; null where flow or BEP flow is null."""
    ratio = _x(flow_m3h) / _x(bep_flow_m3h)
    high_ns = (
        pl.lit(False)
        if specific_speed_us is None
        else _x(specific_speed_us).fill_null(0.0) >= thresholds.high_specific_speed_us
    )
    low = pl.when(high_ns).then(thresholds.high_ns_low).otherwise(thresholds.low)
    high = pl.when(high_ns).then(thresholds.high_ns_high).otherwise(thresholds.high)
    return (
        pl.when(ratio < low)
        .then(pl.lit(PorZone.BELOW.value))
        .when(ratio > high)
        .then(pl.lit(PorZone.ABOVE.value))
        .when(ratio.is_not_null())
        .then(pl.lit(PorZone.WITHIN.value))
    )


def _ns_us(speed_rpm: T, flow_m3h: T, head_m: T, stages: T) -> T:
    gpm, ft_per_stage = flow_m3h / M3H_PER_GPM, head_m / M_PER_FT / stages
    return speed_rpm * _pow(gpm, 0.5) / _pow(ft_per_stage, 0.75)


def specific_speed_us(speed_rpm: float, flow_m3h: float, head_m: float, stages: int = 1) -> float:
    """N_s = rpm·√Q[gpm]/(H[ft]/stages)^0.75 (AMO `OptimalSpecificSpeed.cpp`), SI inputs.

    US units on purpose: the POR split at 4500 and the AMO fits use them (n_q ≈ N_s/51.6).
    For the POR band pass the pump's BEP flow and head (a design constant), not each row.
    """
    return _ns_us(speed_rpm, flow_m3h, head_m, float(stages))


def specific_speed_us_expr(
    speed_rpm: ExprLike, flow_m3h: ExprLike, head_m: ExprLike, stages: ExprLike = 1.0
) -> pl.Expr:
    return _ns_us(_x(speed_rpm), _x(flow_m3h), _x(head_m), _x(stages))


def affinity_power_kw(power_kw: float, speed_ratio: float) -> float:
    """P₂ = P₁·(N₂/N₁)³ (ITAC `Affinity-Laws.md`, §3.2); also Q ∝ N, H ∝ N².

    Same system, fluid and efficiency assumed; ITAC warns real savings are 5–15 % lower.
    """
    return power_kw * speed_ratio**3


def affinity_power_kw_expr(power_kw: ExprLike, speed_ratio: ExprLike) -> pl.Expr:
    return _x(power_kw) * _x(speed_ratio) ** 3


def _vfd_power(flow: T, design_flow: T, design_kw: T, static_fraction: T, vfd_eff: T) -> T:
    q = flow / design_flow
    return design_kw * q * (static_fraction + (1.0 - static_fraction) * q * q) / vfd_eff


def vfd_power_kw(
    flow_m3h: float,
    design_flow_m3h: float,
    design_power_kw: float,
    static_head_fraction: float = 0.0,
    vfd_efficiency: float = 1.0,
) -> float:
    """Power to deliver `flow_m3h` by speed control instead of a throttle [INFERRED].

    System curve H = H_static + k·Q² through the valve-open design point (Q_d, H_d, P_d),
    with `static_head_fraction` = H_static/H_d (§3.2 [INFERRED]). At equal pump, motor and
    drive efficiency the power scales with Q·H: P = P_d·q·(s + (1 − s)·q²), q = Q/Q_d. With
    s = 0 this is the pure affinity cube law; with static head it avoids applying the cube
    law to the whole curve, which §3.2 warns against. Efficiency drift at low speed is
    ignored, so treat the result as an upper bound on savings (ITAC: 5–15 % optimistic).
    """
    args = flow_m3h, design_flow_m3h, design_power_kw, static_head_fraction, vfd_efficiency
    return _vfd_power(*args)


def vfd_power_kw_expr(
    flow_m3h: ExprLike,
    design_flow_m3h: ExprLike,
    design_power_kw: ExprLike,
    static_head_fraction: ExprLike = 0.0,
    vfd_efficiency: ExprLike = 1.0,
) -> pl.Expr:
    args = flow_m3h, design_flow_m3h, design_power_kw, static_head_fraction, vfd_efficiency
    return _vfd_power(*map(_x, args))


def throttling_saving_kw(
    throttled_power_kw: float,
    flow_m3h: float,
    design_flow_m3h: float,
    design_power_kw: float,
    static_head_fraction: float = 0.0,
    vfd_efficiency: float = 1.0,
) -> float:
    """Measured throttled power minus `vfd_power_kw` (rules P3/P4, §3.4) [INFERRED].

    Negative means speed control would not save at this point; it is not clamped.
    """
    args = flow_m3h, design_flow_m3h, design_power_kw, static_head_fraction, vfd_efficiency
    return throttled_power_kw - _vfd_power(*args)


def throttling_saving_kw_expr(
    throttled_power_kw: ExprLike,
    flow_m3h: ExprLike,
    design_flow_m3h: ExprLike,
    design_power_kw: ExprLike,
    static_head_fraction: ExprLike = 0.0,
    vfd_efficiency: ExprLike = 1.0,
) -> pl.Expr:
    args = flow_m3h, design_flow_m3h, design_power_kw, static_head_fraction, vfd_efficiency
    return _x(throttled_power_kw) - _vfd_power(*map(_x, args))
