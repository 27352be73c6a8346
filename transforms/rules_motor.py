"""Waste rules for motor-driven machines: idle, off shift, under- and overloaded, unbalance.

Rule ids follow domain.md §2.6 (M1, M9, M2, M3, M4, M5); thresholds and their sources are
in transforms/thresholds.py.
"""

from __future__ import annotations

import polars as pl

from transforms.rule_kit import above, advice, below, enough_running, rounded
from transforms.thresholds import Thresholds


def idle_running(t: Thresholds) -> dict[str, pl.Expr]:
    """M1: energised with no useful load (β < 0.10 or at no-load current) (domain §2.6).

    Counted during production hours (or all day without a calendar): idling off shift is
    the off-shift rule's finding, so the same kWh is not reported twice.
    """
    hours = pl.col("idle_on_shift_hours")
    return {
        **above(hours, t.idle_min_hours, t, pl.col("observed_hours") > 0),
        "severity": pl.when(hours >= 4).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("idle_on_shift_energy_kwh"),
        **advice(
            "Idled {} h at no load during production using {} kWh: stop it when the "
            "process does not need it (process interlock or idle-stop timer).",
            "生产时段空载运行 {} 小时，耗电 {} kWh："
            "工艺不需要时停机（加工艺联锁或空载停机定时器）。",
            rounded(hours, 1),
            rounded(pl.col("idle_on_shift_energy_kwh"), 1),
        ),
    }


def off_shift_running(t: Thresholds) -> dict[str, pl.Expr]:
    """M9/F4: running outside the site's production calendar (Busroot, faradai; domain §7)."""
    hours = pl.col("off_shift_running_hours")
    return {
        **above(hours, t.offshift_min_hours, t, pl.col("observed_hours") > 0),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.col("off_shift_energy_kwh"),
        **advice(
            "Ran {} h outside production hours using {} kWh: switch it off with the "
            "shift (schedule or interlock).",
            "非生产时段运行 {} 小时，耗电 {} kWh：随班次停机（定时或联锁）。",
            rounded(hours, 1),
            rounded(pl.col("off_shift_energy_kwh"), 1),
        ),
    }


def under_loaded(t: Thresholds) -> dict[str, pl.Expr]:
    """M2 大马拉小车: P75 of running load below 0.50 (warn) / 0.40 (alarm) (domain §2.6)."""
    p75 = pl.col("p75_load_factor")
    return {
        **below(p75, t.underload_warn, t, enough_running(t)),
        "severity": pl.when(p75 < t.underload_alarm)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("resize_saving_kw").fill_null(0.0) * pl.col("running_hours"),
        **advice(
            "Oversized: 75 % of running time below {} of rated load (mean {}). Replace at "
            "the next overhaul with a {} kW motor, or add a VFD; saves about {} kW while "
            "running.",
            "大马拉小车：75% 运行时间负载率低于 {}（平均 {}）。大修时更换为 {} kW 电机或加变频器，"
            "运行时约节省 {} kW。",
            rounded(p75),
            rounded(pl.col("mean_load_factor")),
            pl.col("recommended_size_kw"),
            rounded(pl.col("resize_saving_kw"), 1),
        ),
    }


def overloaded(t: Thresholds) -> dict[str, pl.Expr]:
    """M3/T2: median running load at or above rated; critical above the service factor."""
    p50 = pl.col("p50_load_factor")
    sf = pl.col("service_factor").fill_null(1.0)
    return {
        **above(p50, t.zone_overloaded, t, enough_running(t)),
        "severity": pl.when(p50 >= sf).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        "waste_kwh": pl.lit(0.0),
        **advice(
            "Overloaded: median running load {} of rated. Check the driven load and "
            "cooling; resize before it fails.",
            "过载：运行负载率中位数 {}。检查负载与散热，及时更换合适容量设备。",
            rounded(p50),
        ),
    }


def voltage_unbalance(t: Thresholds) -> dict[str, pl.Expr]:
    """M4: NEMA voltage unbalance > 1 % (derate), > 5 % do not operate (domain §1).

    Waste: extra winding heating ≈ 2·VU² % of the motor's losses (voltdropcalc, domain §1).
    """
    vu = pl.col("voltage_unbalance_pct")
    losses_kw = pl.col("mean_power_kw") * (1 - pl.col("mean_efficiency").fill_null(0.9))
    return {
        **above(vu, t.voltage_unbalance_pct, t, enough_running(t)),
        "severity": pl.when(vu > t.voltage_unbalance_stop_pct)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": losses_kw * 2 * vu.pow(2) / 100 * pl.col("running_hours"),
        **advice(
            "Voltage unbalance {} % (NEMA): derate the motor to {} of rating and find the "
            "cause (single-phase loads, loose connections, tap settings).",
            "电压不平衡 {}%（NEMA）：电机需降额至 {}，排查单相负荷、接头松动或分接头。",
            rounded(vu),
            rounded(pl.col("derating_factor")),
        ),
    }


def current_unbalance(t: Thresholds) -> dict[str, pl.Expr]:
    """M5: current unbalance > 10 % (Motors@Work FDD).

    Not raised while the supply voltage is itself unbalanced beyond M4's threshold: a few
    percent of voltage unbalance drives several times that in current, and the voltage
    alert names the cause.
    """
    cu = pl.col("current_unbalance_pct")
    supply_ok = pl.col("voltage_unbalance_pct").fill_null(0.0) <= t.voltage_unbalance_pct
    return {
        **above(cu, t.current_unbalance_pct, t, enough_running(t) & supply_ok),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.lit(0.0),
        **advice(
            "Current unbalance {} %: check supply voltage balance, windings and connections.",
            "电流不平衡 {}%：检查供电电压平衡、绕组与接线。",
            rounded(cu, 1),
        ),
    }
