"""Waste rules for the rest of the plant: transformer PF and load, pump/fan operating
region, compressed-air leaks and unloaded running.

Rule ids follow domain.md (T4, P1, C1, C3, T1); thresholds and sources in
transforms/thresholds.py.
"""

from __future__ import annotations

import polars as pl

from transforms.rule_kit import above, advice, below, enough_running, fraction_of, percent, rounded
from transforms.thresholds import Thresholds


def low_power_factor(t: Thresholds) -> dict[str, pl.Expr]:
    """T4: site power factor below the tariff line 0.90 (cn_standards §8)."""
    pf = pl.col("mean_power_factor")
    return {
        **below(pf, t.low_power_factor, t, pl.col("observed_hours") > 0),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.lit(0.0),
        **advice(
            "Power factor {} at the transformer is below {}: add or repair capacitor "
            "compensation to avoid the tariff penalty.",
            "变压器功率因数 {} 低于 {}：增加或检修无功补偿电容，避免力调电费。",
            rounded(pf),
            pl.lit(t.low_power_factor),
        ),
    }


def outside_por(t: Thresholds) -> dict[str, pl.Expr]:
    """P1: more than half the running time outside 70–120 % of BEP flow (ANSI/HI 9.6.3)."""
    share = fraction_of("outside_por_hours", "running_hours")
    return {
        **above(
            share,
            t.por_min_share,
            t,
            enough_running(t) & pl.col("flow_bep_ratio_p50").is_not_null(),
        ),
        "severity": pl.when(pl.col("flow_bep_ratio_p50") < 0.5)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": pl.col("throttle_saving_kw").fill_null(0.0) * pl.col("running_hours"),
        **advice(
            "Runs at {} % of BEP flow (outside the preferred 70-120 %): throttled. Trim the "
            "impeller or fit a VFD; saves about {} kW.",
            "运行流量为最佳效率点的 {}%（偏离 70-120% 优先区）："
            "节流运行。切削叶轮或加变频器，约节省 {} kW。",
            percent(pl.col("flow_bep_ratio_p50")),
            rounded(pl.col("throttle_saving_kw"), 1),
        ),
    }


def compressor_leak(t: Thresholds) -> dict[str, pl.Expr]:
    """C1: leakage T/(T+t) from off-shift load/unload cycling > 10 % / 20 % (domain §5.4)."""
    leak = pl.col("leak_fraction")
    lost_kw = leak * pl.col("loaded_power_kw")
    return {
        **above(leak, t.leak_warn, t, leak.is_not_null()),
        "severity": pl.when(leak > t.leak_alarm)
        .then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        "waste_kwh": lost_kw * 24.0,
        **advice(
            "Leaks: loaded {} % of the time with the plant idle (≈{} kW lost around the clock). "
            "Run an ultrasonic leak survey and fix the largest leaks.",
            "泄漏：停产时加载率 {}%（全天约损失 {} kW）。进行超声波检漏并修复大漏点。",
            percent(leak),
            rounded(lost_kw, 1),
        ),
    }


def compressor_unloaded(t: Thresholds) -> dict[str, pl.Expr]:
    """C3: unloaded running above 20 % of run hours (ITAC; domain §5.5).

    Judged on production hours: off-shift load/unload cycling is what the leak rule (C1)
    measures, and its energy is counted there.
    """
    share = fraction_of("on_shift_unloaded_hours", "on_shift_running_hours")
    kwh = pl.col("on_shift_unloaded_hours") * pl.col("unloaded_power_kw")
    return {
        **above(
            share, t.unloaded_share, t, pl.col("on_shift_running_hours") >= t.min_running_hours
        ),
        "severity": pl.lit("warning"),
        "waste_kwh": kwh,
        **advice(
            "Unloaded {} % of production running time ({} kWh): shorten the unload timer, "
            "add storage or a VSD trim compressor.",
            "生产时段空载运行占 {}%（{} kWh）：缩短空载停机时间、增加储气罐或配变频机。",
            percent(share),
            rounded(kwh, 1),
        ),
    }


def transformer_light_load(t: Thresholds) -> dict[str, pl.Expr]:
    """T1: β below P0/Pk (no-load loss dominates) most of the day (domain §6.2 derivation)."""
    share = fraction_of("light_load_hours", "observed_hours")
    return {
        **above(share, t.light_load_min_share, t, pl.col("observed_hours") >= t.min_running_hours),
        "severity": pl.lit("warning"),
        "waste_kwh": pl.col("light_load_waste_kwh"),
        **advice(
            "Lightly loaded (mean β {}, economic above {}) {} % of the day: move loads onto "
            "it, switch it off with a parallel unit, or right-size.",
            "轻载运行（平均负载率 {}，经济运行下限 {}）占全天 {}%："
            "转移负荷、与并列变压器切换停运或更换小容量。",
            rounded(pl.col("mean_load_factor"), 3),
            rounded(pl.col("no_load_loss_kw") / pl.col("load_loss_kw"), 3),
            percent(share),
        ),
    }
