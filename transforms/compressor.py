"""Compressed-air formulas: specific power, part-load models, leaks, receivers, GB 19153.

Parts are a modified Python port of ORNL-AMO/AMO-Tools-Suite (Copyright 2018 UT-Battelle,
LLC; licence and disclaimer in transforms/AMO-Tools-Suite-NOTICE.txt), files cited per
function. Changes by the Wattline project, 2026: rewritten in Python, SI units (m3/h, kPa,
kW), polars expression builders, the duty-cycle leak test and the GB 19153 lookup, which
are not AMO code. § numbers refer to /work/shared/reference/domain.md.

Flows are free-air delivery in m3/h, as in the readings table; capacity and power
"fractions" are of full load (AMO's C% and P%, as fractions, not percent). What the job
runner applies per row (specific power, capacity from measured power, leak test, unloaded
energy) has an `*_expr` twin taking column names or expressions; the what-if direction
(power from capacity), annual costs and the GB 19153 lookup are scalar.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple

import polars as pl

from transforms.dual import ExprLike, T
from transforms.dual import as_expr as _x
from transforms.dual import power as _pow

M3H_PER_CFM = 0.028316846592 * 60.0
KW_PER_100CFM_TO_KW_PER_M3MIN = 0.01 / 0.028316846592  # 0.3531 (§5.2)
P_ATM_KPA = 101.325


def specific_power_kw_per_m3min(input_power_kw: float, flow_m3h: float) -> float:
    """Package specific power kW/(m³/min) = input power / FAD (§5.2; GB 19153-2019 §3.3).

    Written P·60/Q, not P/(Q/60): Polars' optimiser rewrites the latter into the former
    in some runs and not in others, which changed the last bit between reruns.
    """
    return input_power_kw * 60.0 / flow_m3h


def specific_power_kw_per_m3min_expr(input_power_kw: ExprLike, flow_m3h: ExprLike) -> pl.Expr:
    return _x(input_power_kw) * 60.0 / _x(flow_m3h)


def kw_per_100cfm(specific_power_kw_per_m3min: float) -> float:
    """US benchmark unit: 1 kW/100 cfm = 0.3531 kW/(m³/min) (§5.2 [COMPUTED])."""
    return specific_power_kw_per_m3min / KW_PER_100CFM_TO_KW_PER_M3MIN


def kw_per_m3min_from_kw_per_100cfm(specific_power_kw_per_100cfm: float) -> float:
    return specific_power_kw_per_100cfm * KW_PER_100CFM_TO_KW_PER_M3MIN


def _centrifugal_capacity(power_fraction: T, no_load_power_fraction: T) -> T:
    return (power_fraction - no_load_power_fraction) / (1.0 - no_load_power_fraction)


def centrifugal_load_unload_capacity_fraction(
    power_fraction: float, no_load_power_fraction: float
) -> float:
    """C% = (P% − P%_nl)/(1 − P%_nl): centrifugal load/unload (AMO `Compressors.cpp` L61–88).

    Linear between no-load power (`no_load_power_fraction` = kW_nl/kW_fl) and full load.
    """
    return _centrifugal_capacity(power_fraction, no_load_power_fraction)


def centrifugal_load_unload_capacity_fraction_expr(
    power_fraction: ExprLike, no_load_power_fraction: ExprLike
) -> pl.Expr:
    return _centrifugal_capacity(_x(power_fraction), _x(no_load_power_fraction))


def centrifugal_load_unload_power_fraction(
    capacity_fraction: float, no_load_power_fraction: float
) -> float:
    """Inverse of `centrifugal_load_unload_capacity_fraction`: P% = (1 − P%_nl)·C% + P%_nl."""
    return (1.0 - no_load_power_fraction) * capacity_fraction + no_load_power_fraction


def _start_stop_mean(max_pressure_power_fraction: T, full_load_power_fraction: T) -> T:
    return (full_load_power_fraction + max_pressure_power_fraction) / 2.0


def start_stop_power_fraction(
    capacity_fraction: float,
    max_pressure_power_fraction: float,
    full_load_power_fraction: float = 1.0,
) -> float:
    """P% = ((kW%_fl + kW_max/kW_fl)/2)·C% (AMO `Compressors.cpp` L199–234).

    Running time is proportional to demand and the running power is the mean of the power
    at the cut-in (full-load) and cut-out (maximum) pressures.
    """
    mean = _start_stop_mean(max_pressure_power_fraction, full_load_power_fraction)
    return mean * capacity_fraction


def start_stop_capacity_fraction(
    power_fraction: float, max_pressure_power_fraction: float, full_load_power_fraction: float = 1.0
) -> float:
    """Inverse of `start_stop_power_fraction`."""
    return power_fraction / _start_stop_mean(max_pressure_power_fraction, full_load_power_fraction)


def start_stop_capacity_fraction_expr(
    power_fraction: ExprLike,
    max_pressure_power_fraction: ExprLike,
    full_load_power_fraction: ExprLike = 1.0,
) -> pl.Expr:
    mean = _start_stop_mean(_x(max_pressure_power_fraction), _x(full_load_power_fraction))
    return _x(power_fraction) / mean


def modulation_power_kw(
    capacity_fraction: float,
    full_load_power_kw: float,
    no_load_power_kw: float,
    exponent: float = 1.0,
) -> float:
    """kW = (kW_fl − kW_nl)·C%^m + kW_nl: modulation without unloading (`Compressors.cpp`).

    m = 1 for inlet throttling, 2 for variable displacement (§5.3, L129–197).
    """
    span = full_load_power_kw - no_load_power_kw
    return span * math.pow(capacity_fraction, exponent) + no_load_power_kw


def _modulation_capacity(power_kw: T, full_kw: T, no_load_kw: T, exponent: T) -> T:
    ratio = (power_kw - no_load_kw) / (full_kw - no_load_kw)
    if isinstance(ratio, pl.Expr):
        return pl.when(ratio < 0.0).then(0.0).otherwise(ratio.pow(1.0 / exponent))
    return 0.0 if ratio < 0.0 else _pow(ratio, 1.0 / exponent)


def modulation_capacity_fraction(
    power_kw: float, full_load_power_kw: float, no_load_power_kw: float, exponent: float = 1.0
) -> float:
    """C% = ((P − kW_nl)/(kW_fl − kW_nl))^(1/m); 0 below no-load power, as AMO returns."""
    return _modulation_capacity(power_kw, full_load_power_kw, no_load_power_kw, exponent)


def modulation_capacity_fraction_expr(
    power_kw: ExprLike,
    full_load_power_kw: ExprLike,
    no_load_power_kw: ExprLike,
    exponent: ExprLike = 1.0,
) -> pl.Expr:
    args = power_kw, full_load_power_kw, no_load_power_kw, exponent
    return _modulation_capacity(*map(_x, args))


class LoadUnloadCost(NamedTuple):
    loaded: float
    unloaded: float

    @property
    def total(self) -> float:
        return self.loaded + self.unloaded


def load_unload_annual_cost(
    shaft_power_kw: float,
    unloaded_power_fraction: float,
    annual_hours_h: float,
    loaded_time_fraction: float,
    motor_efficiency_loaded: float,
    motor_efficiency_unloaded: float,
    price_per_kwh: float,
) -> LoadUnloadCost:
    """Annual electricity cost split loaded/unloaded (AMO `CompressedAir.cpp` L97–104).

    AMO takes bhp and percentages; here shaft kW (AMO's bhp·0.746) and fractions.
    """
    energy_basis = shaft_power_kw * annual_hours_h * price_per_kwh
    loaded = energy_basis * loaded_time_fraction / motor_efficiency_loaded
    idle = energy_basis * unloaded_power_fraction * (1.0 - loaded_time_fraction)
    return LoadUnloadCost(loaded, idle / motor_efficiency_unloaded)


def _leak_fraction(loaded_s: T, unloaded_s: T) -> T:
    return loaded_s / (loaded_s + unloaded_s)


def leak_fraction(loaded_s: float, unloaded_s: float) -> float:
    """Leak share T/(T + t) from a load/unload cycle with no production running (§5.4).

    T = loaded time, t = unloaded plus off time (§5.4 [INFERRED] for the split). Sources:
    EXAIR blog, leaksrepair.com, augustcompressor.com; < 10 % is well maintained (rule C1).
    """
    return _leak_fraction(loaded_s, unloaded_s)


def leak_fraction_expr(loaded_s: ExprLike, unloaded_s: ExprLike) -> pl.Expr:
    return _leak_fraction(_x(loaded_s), _x(unloaded_s))


def leak_flow_m3h(fad_m3h: float, leak_fraction: float) -> float:
    """Leak flow ≈ FAD·T/(T + t) (§5.4)."""
    return fad_m3h * leak_fraction


def leak_flow_m3h_expr(fad_m3h: ExprLike, leak_fraction: ExprLike) -> pl.Expr:
    return _x(fad_m3h) * _x(leak_fraction)


def leak_power_kw(loaded_power_kw: float, leak_fraction: float) -> float:
    """Power spent on leaks = loaded kW·T/(T + t), i.e. leak flow / (FAD per kW) (§9.6 A30)."""
    return loaded_power_kw * leak_fraction


def leak_power_kw_expr(loaded_power_kw: ExprLike, leak_fraction: ExprLike) -> pl.Expr:
    return _x(loaded_power_kw) * _x(leak_fraction)


def leak_annual_volume_m3(leak_flow_m3h: float, annual_hours_h: float, count: int = 1) -> float:
    """Free air lost per year = flow·hours·count (AMO `CompressedAirLeakSurvey.cpp` estimate)."""
    return leak_flow_m3h * annual_hours_h * count


def leak_annual_energy_kwh(annual_volume_m3: float, specific_power_kw_per_m3min: float) -> float:
    """kWh = volume·SP/60 (AMO `CompressorElectricityData`; SP in kW/(m³/min)).

    AMO's `compressorControlAdjustment` argument is unused there (§11.5), so not ported.
    """
    return annual_volume_m3 * specific_power_kw_per_m3min / 60.0


def receiver_usable_capacity_m3(
    tank_volume_m3: float,
    high_pressure_kpa: float,
    low_pressure_kpa: float,
    atmospheric_pressure_kpa: float = P_ATM_KPA,
) -> float:
    """Free air stored between two gauge pressures: V·(p₁ − p₂)/p_atm (§5.4).

    SI form of AMO `CompressedAir.h` L144–146, (V[gal]/7.48)·(P₁ − P₂)/14.7 scf, which is
    ~0.04 % apart because of its rounded 7.48 gal/ft³ and 14.7 psia.
    """
    return tank_volume_m3 * (high_pressure_kpa - low_pressure_kpa) / atmospheric_pressure_kpa


def receiver_usable_capacity_scf_amo(
    tank_volume_gal: float, high_pressure_psig: float, low_pressure_psig: float
) -> float:
    """AMO's US form, kept for parity with its vector (§9.6 A29)."""
    return (tank_volume_gal / 7.48) * (high_pressure_psig - low_pressure_psig) / 14.7


def bleed_down_leak_flow_m3h(usable_capacity_m3: float, bleed_time_s: float) -> float:
    """Leak flow ≈ usable receiver air / bleed-down time (§5.4 [INFERRED]).

    accurateair.com corrects this by 1.12 at 20 psid and 1.25 at 50 psid; not applied.
    """
    return usable_capacity_m3 / (bleed_time_s / 3600.0)


def unloaded_energy_kwh(unloaded_hours_h: float, unloaded_power_kw: float) -> float:
    """Energy spent running unloaded = hours × unloaded kW (rule C3, §5.5)."""
    return unloaded_hours_h * unloaded_power_kw


def unloaded_energy_kwh_expr(unloaded_hours_h: ExprLike, unloaded_power_kw: ExprLike) -> pl.Expr:
    return _x(unloaded_hours_h) * _x(unloaded_power_kw)


class Cooling(StrEnum):
    AIR = "air"  # 风冷
    LIQUID = "liquid"  # 液冷


# GB 19153-2019 grade 1/2/3 limits, kW/(m³/min), keyed (variable speed, motor kW, MPa,
# cooling). Only rows read in cn_standards.md §4 (adgo07/EquipEffi transcription @a1643ed3):
# Table 1 "一般用喷油回转（工频）" and one Table 2 "一般用变转速喷油回转" row. None = not read.
_GB19153: dict[tuple[bool, float, float, Cooling], tuple[float | None, ...]] = {
    (False, 90.0, 0.8, Cooling.AIR): (6.2, 6.7, 7.4),
    (False, 90.0, 0.8, Cooling.LIQUID): (6.0, 6.4, 7.1),
    (False, 90.0, 0.7, Cooling.AIR): (5.8, 6.3, 6.9),
    (False, 75.0, 0.8, Cooling.AIR): (None, None, 7.5),
    (False, 75.0, 0.8, Cooling.LIQUID): (None, 6.5, 7.2),
    (False, 1.5, 0.7, Cooling.AIR): (8.8, 9.7, 11.0),
    (True, 3.0, 0.8, Cooling.AIR): (None, 10.7, 12.3),
}


def gb19153_specific_power_limit(
    motor_rated_power_kw: float,
    discharge_pressure_mpa: float,
    cooling: Cooling,
    grade: int,
    variable_speed: bool = False,
) -> float | None:
    """Maximum specific power of a GB 19153-2019 grade for an oil-injected rotary unit.

    Grade 3 is the energy-efficiency limit (限定值), grade 1 the best (rule C2, §5.5). The
    standard indexes by motor rated power, rated discharge pressure and cooling, not flow
    (cn_standards.md §4). Returns None for any row or cell not in `_GB19153`: 90 kW at
    0.8 MPa (air, liquid) and 0.7 MPa (air); 75 kW 0.8 MPa (air grade 3; liquid grades
    2–3); 1.5 kW 0.7 MPa air; VSD 3 kW 0.8 MPa air (grades 2–3, weighted SP of §5.2).
    """
    if grade not in (1, 2, 3):
        raise ValueError(f"GB 19153 grades are 1, 2 and 3, not {grade}")
    key = (variable_speed, float(motor_rated_power_kw), float(discharge_pressure_mpa), cooling)
    row = _GB19153.get(key)
    return None if row is None else row[grade - 1]
