"""Fan formulas: fluid power, efficiency, Fan Energy Index, fan laws, optimal efficiency.

A modified Python port of ORNL-AMO/AMO-Tools-Suite (Copyright 2018 UT-Battelle, LLC;
licence and disclaimer in transforms/AMO-Tools-Suite-NOTICE.txt), files cited per function.
Changes by the Wattline project, 2026: rewritten in Python, SI wrappers (m3/h, kPa, kg/m3,
kW) around the US-unit formulas, polars expression builders. § numbers refer to
/work/shared/reference/domain.md.

Every formula is written once over `float | pl.Expr`; each scalar function has an `*_expr`
twin taking column names or expressions. Pressures are gauge, inlet and outlet on the same
basis (static or total) as the fan curve they are compared with; inputs are not guarded.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TypeAlias

import polars as pl

from transforms.dual import ExprLike, T
from transforms.dual import as_expr as _x
from transforms.dual import exp as _exp
from transforms.dual import log10 as _log10
from transforms.dual import power as _pow

M3H_PER_CFM = 0.028316846592 * 60.0
KPA_PER_INWG = 0.24908891  # conventional inch of water: 1000 kg/m3 · 9.80665 · 0.0254 m
KG_M3_PER_LB_FT3 = 16.018463373960142


def _poly(coefficients: tuple[float, ...], x: T) -> T:
    """c0 + c1·x + c2·x² + …, by Horner's rule."""
    acc = x * 0.0 + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * x + c
    return acc


def _fan_fluid_power(flow_m3h: T, inlet_kpa: T, outlet_kpa: T, compressibility: T) -> T:
    return flow_m3h / 3600.0 * (outlet_kpa - inlet_kpa) * compressibility


def fan_fluid_power_kw(
    flow_m3h: float, inlet_pressure_kpa: float, outlet_pressure_kpa: float, compressibility: float
) -> float:
    """Air power P = Q·(p_out − p_in)·K_p, SI form of AMO `FluidPower.h` (§4.2).

    K_p is the compressibility factor (about 0.99 at typical fan pressure ratios; AMO
    `CompressibilityFactor.h`). AMO's US form is ~0.25 % lower because of its rounded
    constants (0.746 kW/hp, 6362 cfm·in.wg/hp): see `fan_fluid_power_kw_amo`.
    """
    return _fan_fluid_power(flow_m3h, inlet_pressure_kpa, outlet_pressure_kpa, compressibility)


def fan_fluid_power_kw_expr(
    flow_m3h: ExprLike,
    inlet_pressure_kpa: ExprLike,
    outlet_pressure_kpa: ExprLike,
    compressibility: ExprLike,
) -> pl.Expr:
    args = flow_m3h, inlet_pressure_kpa, outlet_pressure_kpa, compressibility
    return _fan_fluid_power(*map(_x, args))


def fan_fluid_power_kw_amo(
    flow_cfm: float, inlet_pressure_inwg: float, outlet_pressure_inwg: float, compressibility: float
) -> float:
    """AMO 0.746·Q[cfm]·(p_out − p_in)[in. w.g.]·K_p/6362 (`FluidPower.h`), for parity."""
    return 0.746 * flow_cfm * (outlet_pressure_inwg - inlet_pressure_inwg) * compressibility / 6362


def fan_efficiency(fluid_power_kw: float, fan_shaft_power_kw: float) -> float:
    """η_fan = P_air/P_shaft (AMO `MoverEfficiency.cpp` L10–12, kW instead of hp).

    AMO divides air hp (kW/0.746) by shaft hp, so shaft kW = hp·0.746 reproduces it.
    """
    return fluid_power_kw / fan_shaft_power_kw


def fan_efficiency_expr(fluid_power_kw: ExprLike, fan_shaft_power_kw: ExprLike) -> pl.Expr:
    return _x(fluid_power_kw) / _x(fan_shaft_power_kw)


def _fei(flow_cfm: T, pressure_rise_inwg: T, density_lb_ft3: T, motor_kw: T) -> T:
    air = (flow_cfm + 250.0) * (pressure_rise_inwg + 0.4 * (density_lb_ft3 / 0.075))
    ref_hp = air / (6343.0 * 0.66)
    ref_kw = ref_hp * 0.7457
    eta_transmission = 0.96 * _pow(ref_hp / (ref_hp + 2.2), 0.05)
    eta_motor_fit = _poly((0.850274, 0.125559, -0.072577, 0.025834, -0.003812), _log10(ref_kw))
    if isinstance(ref_kw, pl.Expr):
        eta_motor = pl.when(ref_kw < 185.0).then(eta_motor_fit).otherwise(0.962)
    else:
        eta_motor = eta_motor_fit if ref_kw < 185.0 else 0.962
    return ref_kw / (eta_transmission * eta_motor) / motor_kw


def fan_energy_index_us(
    flow_cfm: float,
    inlet_pressure_inwg: float,
    outlet_pressure_inwg: float,
    density_lb_ft3: float,
    motor_input_power_kw: float,
) -> float:
    """FEI = reference electrical input power / actual (AMO `FanEnergyIndex.h` L42–56, §4.2).

    The reference fan: (Q + 250)·(Δp + 0.4·ρ/0.075)/(6343·0.66) hp, with a 0.96·(P/(P+2.2))^0.05
    transmission and a log10 polynomial motor (0.962 from 185 kW). That it follows AMCA 208
    is [INFERRED]: the file does not say. FEI < 1 is worse than the reference fan (rule F1).
    """
    pressure_rise = outlet_pressure_inwg - inlet_pressure_inwg
    return _fei(flow_cfm, pressure_rise, density_lb_ft3, motor_input_power_kw)


def _fei_si(flow_m3h: T, inlet_kpa: T, outlet_kpa: T, density_kg_m3: T, motor_kw: T) -> T:
    flow_cfm, rise_inwg = flow_m3h / M3H_PER_CFM, (outlet_kpa - inlet_kpa) / KPA_PER_INWG
    return _fei(flow_cfm, rise_inwg, density_kg_m3 / KG_M3_PER_LB_FT3, motor_kw)


def fan_energy_index(
    flow_m3h: float,
    inlet_pressure_kpa: float,
    outlet_pressure_kpa: float,
    density_kg_m3: float,
    motor_input_power_kw: float,
) -> float:
    """`fan_energy_index_us` on SI inputs (converted at the AMO boundary, §13)."""
    args = flow_m3h, inlet_pressure_kpa, outlet_pressure_kpa, density_kg_m3, motor_input_power_kw
    return _fei_si(*args)


def fan_energy_index_expr(
    flow_m3h: ExprLike,
    inlet_pressure_kpa: ExprLike,
    outlet_pressure_kpa: ExprLike,
    density_kg_m3: ExprLike,
    motor_input_power_kw: ExprLike,
) -> pl.Expr:
    args = flow_m3h, inlet_pressure_kpa, outlet_pressure_kpa, density_kg_m3, motor_input_power_kw
    return _fei_si(*map(_x, args))


def fan_law_flow_m3h(flow_m3h: float, speed_ratio: float, kp_ratio: float = 1.0) -> float:
    """Q_c = Q·(N_c/N)·(K_p/K_pc) (AMO `FanCurve.cpp` eq. 17, AMCA 203 style, §4.2).

    `kp_ratio` is K_p/K_pc; leave 1 when the compressibility barely changes.
    """
    return flow_m3h * speed_ratio * kp_ratio


def fan_law_pressure_kpa(
    pressure_kpa: float, speed_ratio: float, density_ratio: float = 1.0, kp_ratio: float = 1.0
) -> float:
    """p_c = p·(N_c/N)²·(ρ_c/ρ)·(K_p/K_pc) (`FanCurve.cpp` eq. 18–19)."""
    return pressure_kpa * speed_ratio**2 * density_ratio * kp_ratio


def fan_law_power_kw(
    power_kw: float, speed_ratio: float, density_ratio: float = 1.0, kp_ratio: float = 1.0
) -> float:
    """H_c = H·(N_c/N)³·(ρ_c/ρ)·(K_p/K_pc) (`FanCurve.cpp` eq. 20); ITAC's P ∝ N³ (§9.8)."""
    return power_kw * speed_ratio**3 * density_ratio * kp_ratio


def fan_law_power_kw_expr(
    power_kw: ExprLike,
    speed_ratio: ExprLike,
    density_ratio: ExprLike = 1.0,
    kp_ratio: ExprLike = 1.0,
) -> pl.Expr:
    return _x(power_kw) * _x(speed_ratio) ** 3 * _x(density_ratio) * _x(kp_ratio)


class FanType(StrEnum):
    """Fan types of AMO `OptimalFanEfficiency.h`, in its order."""

    AIRFOIL_SISW = "airfoil_sisw"
    BACKWARD_CURVED_SISW = "backward_curved_sisw"
    RADIAL_SISW = "radial_sisw"
    RADIAL_TIP_SISW = "radial_tip_sisw"
    BACKWARD_INCLINED_SISW = "backward_inclined_sisw"
    AIRFOIL_DIDW = "airfoil_didw"
    BACKWARD_CURVED_DIDW = "backward_curved_didw"
    BACKWARD_INCLINED_DIDW = "backward_inclined_didw"
    VANE_AXIAL = "vane_axial"
    AIR_HANDLING = "air_handling"
    MATERIAL_HANDLING = "material_handling"
    LONG_SHAVINGS = "long_shavings"


# (transition N_s, min N_s, max N_s, exponential (a, b, c, d, e) meaning a + b·exp(c·n) +
# d·exp(e·n) or None where AMO has no exponential branch, polynomial c0..cn), from
# `OptimalFanEfficiency.h`; coefficients are AMO's, printed as Python floats.
_Fit: TypeAlias = tuple[
    float, float, float, tuple[float, float, float, float, float] | None, tuple[float, ...]
]
_INF = math.inf
_OPTIMAL_FITS: dict[FanType, _Fit] = {
    FanType.AIRFOIL_SISW: (40500, 25000, 1200100,
        (0.0028841, 0.27192, -2.2547e-06, 0.86849, -1.064e-05),
        (-80.126838, 0.014126667, -1.0177155e-06, 3.8587782e-11, -8.1056442e-16, 8.9381481e-21,
        -4.0433292e-26)),
    FanType.BACKWARD_CURVED_SISW: (_INF, 27900, 102000, None,
        (-3.3858306, 0.00041209144, -1.6548201e-08, 3.5761249e-13, -4.5693281e-18, 3.4555013e-23,
        -1.4316102e-28, 2.5065191e-34)),
    FanType.RADIAL_SISW: (37900, 14000, 135800,
        (0.056999916, 0.67916774, -2.18789e-05, 5.1126555, -0.000132336),
        (-1.9069988, 0.00073713948, -1.0257832e-07, 8.3624959e-12, -4.1052861e-16, 1.1767564e-20,
        -1.8050575e-25, 1.1417504e-30)),
    FanType.RADIAL_TIP_SISW: (64000, 19400, 213400,
        (0.053287, 0.47705, -7.7713e-06, 0.93414, -2.3195e-05),
        (0.52461, 1.1922e-05, 3.1851e-11, -7.0532e-15, 4.8891e-20, 1.5505e-25)),
    FanType.BACKWARD_INCLINED_SISW: (_INF, 32100, 150100, None,
        (-3.8748275, 0.00057599797, -3.4547599e-08, 1.3031136e-12, -3.2700894e-17, 5.4984885e-22,
        -6.1792981e-27, 4.5680803e-32, -2.129409e-37, 5.6703436e-43, -6.5731157e-49)),
    FanType.AIRFOIL_DIDW: (78000, 39000, 1800000,
        (0.019737, 0.37398, -2.682e-06, 0.8666, -1.0656e-05),
        (-7.7454, 0.00053186, -1.1335e-08, 7.1361e-14, 6.9345e-19, -1.1607e-23, 4.3954e-29)),
    FanType.BACKWARD_CURVED_DIDW: (148900, 38000, 270800,
        (0.11242, 1.5789, -9.2707e-06, -0.55707, -9.9734e-06),
        (-8.641, 0.00081273, -2.9882e-08, 6.1531e-13, -7.7968e-18, 6.2161e-23, -3.0415e-28,
        8.3466e-34, -9.8355e-40)),
    FanType.BACKWARD_INCLINED_DIDW: (132600, 46000, 622500,
        (0.036754527, 0.50694842, -4.70913e-06, 1.0416177, -1.79781e-05),
        (-254.49389, 0.027852726, -1.3284246e-06, 3.6371269e-11, -6.3036202e-16, 7.1757531e-21,
        -5.3686875e-26, 2.5473585e-31, -6.9602675e-37, 8.3493931e-43)),
    FanType.VANE_AXIAL: (179670, 60375, 348620,
        (0.1704079, 1.968828, -7.24616e-06, -1.782739, -1.32444e-05),
        (-5.48135, 0.0005038752, -1.83043e-08, 3.743983e-13, -4.653122e-18, 3.582916e-23,
        -1.669909e-28, 4.315865e-34, -4.747164e-40)),
    FanType.AIR_HANDLING: (_INF, 15100, 67600, None,
        (0.19237, 8.0744e-05, -4.3274e-09, 9.5885e-14, -1.005e-18, 4.0941e-24)),
    FanType.MATERIAL_HANDLING: (28600, 10100, 65600,
        (0.046254578, 0.44481692, -2.74877e-05, 0.61800978, -2.56071e-05),
        (-140.85021, 0.069753242, -1.4963605e-05, 1.8305766e-09, -1.4075805e-13, 7.0623637e-18,
        -2.315468e-22, 4.7905555e-27, -5.6833385e-32, 2.9495463e-37)),
    FanType.LONG_SHAVINGS: (38500, 12400, 180500,
        (0.026213128, 0.31783591, -1.22334e-05, 0.90262955, -4.33422e-05),
        (-4.9068901, 0.0011742587, -9.8831999e-08, 4.2747034e-12, -1.013992e-16, 1.2507408e-21,
        -6.2553192e-27)),
}  # fmt: skip


def _optimal(fan_type: FanType, rpm: T, cfm: T, rise_inwg: T, compressibility: T) -> T:
    transition, ns_min, ns_max, expo, poly = _OPTIMAL_FITS[fan_type]
    ns = rpm * _pow(cfm, 0.5) / (_pow(rise_inwg, 0.75) * _pow(compressibility, 0.25))
    ns = ns.clip(ns_min, ns_max) if isinstance(ns, pl.Expr) else min(max(ns, ns_min), ns_max)
    polynomial = _poly(poly, ns)
    if expo is None:
        return polynomial
    a, b, c, d, e = expo
    exponential = a + b * _exp(ns * c) + d * _exp(ns * e)
    if isinstance(ns, pl.Expr):
        return pl.when(ns < transition).then(polynomial).otherwise(exponential)
    return polynomial if ns < transition else exponential


def optimal_fan_efficiency_us(
    fan_type: FanType,
    speed_rpm: float,
    flow_cfm: float,
    inlet_pressure_inwg: float,
    outlet_pressure_inwg: float,
    compressibility: float,
) -> float:
    """Achievable fan efficiency by type (AMO `include/fans/OptimalFanEfficiency.h`, §4.2).

    N_s = N·√Q/((p_out − p_in)^0.75·K_p^0.25), clamped to the type's range; a polynomial
    below the type's transition N_s, a double exponential above it. Used by rule F2.
    """
    rise = outlet_pressure_inwg - inlet_pressure_inwg
    return _optimal(fan_type, speed_rpm, flow_cfm, rise, compressibility)


def optimal_fan_efficiency(
    fan_type: FanType,
    speed_rpm: float,
    flow_m3h: float,
    inlet_pressure_kpa: float,
    outlet_pressure_kpa: float,
    compressibility: float,
) -> float:
    """`optimal_fan_efficiency_us` on SI inputs."""
    rise = (outlet_pressure_kpa - inlet_pressure_kpa) / KPA_PER_INWG
    return _optimal(fan_type, speed_rpm, flow_m3h / M3H_PER_CFM, rise, compressibility)


def optimal_fan_efficiency_expr(
    fan_type: FanType,
    speed_rpm: ExprLike,
    flow_m3h: ExprLike,
    inlet_pressure_kpa: ExprLike,
    outlet_pressure_kpa: ExprLike,
    compressibility: ExprLike,
) -> pl.Expr:
    """One fan type for all rows: filter or group by type before calling."""
    rise = (_x(outlet_pressure_kpa) - _x(inlet_pressure_kpa)) / KPA_PER_INWG
    cfm = _x(flow_m3h) / M3H_PER_CFM
    return _optimal(fan_type, _x(speed_rpm), cfm, rise, _x(compressibility))
