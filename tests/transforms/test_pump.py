"""Pump formulas against domain.md §9.4 and §9.8 vectors, and scalar/expression agreement.

AMO vectors (A16–A18) are checked at 1e-6 relative; they are met to ~1e-10. AMO inputs in
hp are converted with AMO's own 0.746 kW/hp so that AMO's arithmetic is reproduced.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest

from transforms import pump as p

AMO_REL = 1e-6
HP = p.AMO_KW_PER_HP


def _col(frame: pl.DataFrame, expr: pl.Expr) -> list[Any]:
    return frame.select(expr.alias("out"))["out"].to_list()


# §9.4 A18, FluidPower.unit.cpp L5-10.
def test_a18_pump_fluid_power_amo() -> None:
    assert p.fluid_power_kw_amo(1000, 280, 1.02) == pytest.approx(53.7836814443, rel=AMO_REL)


def test_si_fluid_power_is_rho_g_q_h_and_close_to_amo() -> None:
    flow_m3h, head_m = 1000 * p.M3H_PER_GPM, 280 * p.M_PER_FT
    expected = 1.02 * 999.0 * 9.80665 * flow_m3h / 3600 * head_m / 1000  # SG vs water at 60 °F
    assert p.fluid_power_kw(flow_m3h, head_m, 1.02 * 999.0) == pytest.approx(expected, rel=1e-12)
    # AMO's rounded constants (0.746 kW/hp, 3961.38) put it ~0.04 % below rho·g·Q·H.
    assert expected == pytest.approx(53.7836814443, rel=1e-3)


# §9.4 A17, MoverEfficiency(SG, gpm, ft, shaft hp) L401-427; the third row is > 1 on purpose.
@pytest.mark.parametrize(
    ("sg", "gpm", "ft", "shaft_hp", "expected"),
    [
        (1.5, 1000, 125, 125, 0.3786559229),
        (0.5, 1000, 125, 125, 0.126218641),
        (1.5, 1000, 125, 25, 1.8932796147),
    ],
)
def test_a17_pump_efficiency(
    sg: float, gpm: float, ft: float, shaft_hp: float, expected: float
) -> None:
    fluid_kw = p.fluid_power_kw_amo(gpm, ft, sg)
    assert p.pump_efficiency(fluid_kw, shaft_hp * HP) == pytest.approx(expected, rel=AMO_REL)


# §9.4 A16, pump shaft hp from motor shaft hp, L367-384.
@pytest.mark.parametrize(
    ("motor_hp", "drive", "expected_hp"),
    [
        (50, p.Drive.V_BELT, 47.8740061612),
        (50, p.Drive.NOTCHED_V_BELT, 48.4814329723),
        (50, p.Drive.SYNCHRONOUS_BELT, 49.3925731889),
        (200, p.Drive.V_BELT, 191.981137556),
    ],
)
def test_a16_belt_drive_losses(motor_hp: float, drive: p.Drive, expected_hp: float) -> None:
    pump_kw = p.pump_shaft_power_kw(motor_hp * HP, drive)
    assert pump_kw / HP == pytest.approx(expected_hp, rel=AMO_REL)


def test_direct_and_specified_drives() -> None:
    assert p.pump_shaft_power_kw(37.0, p.Drive.DIRECT) == 37.0
    assert p.pump_shaft_power_kw(37.0, p.Drive.SPECIFIED, 0.95) == pytest.approx(35.15)
    with pytest.raises(ValueError, match="specified_efficiency"):
        p.pump_shaft_power_kw(37.0, p.Drive.SPECIFIED)
    with pytest.raises(ValueError, match="specified_efficiency"):
        p.pump_shaft_power_kw_expr("kw", p.Drive.SPECIFIED)
    frame = pl.DataFrame({"kw": [37.0, 37.0], "drive": ["specified", "chain"]})
    assert _col(frame, p.pump_shaft_power_kw_expr("kw", pl.col("drive"))) == [None, None]


# §9.8 A33, ITAC Affinity-Laws.md: 1200 -> 960 rpm at 50 kW -> 25.6 kW.
def test_a33_affinity_power() -> None:
    assert p.affinity_power_kw(50.0, 960 / 1200) == pytest.approx(25.6, rel=1e-12)


def test_vfd_power_without_static_head_is_the_cube_law() -> None:
    assert p.vfd_power_kw(80.0, 100.0, 50.0) == pytest.approx(p.affinity_power_kw(50.0, 0.8))


def test_vfd_power_with_static_head_follows_q_times_system_head() -> None:
    # H = 20 + 20·q² m through the design point 100 m3/h, 40 m, 50 kW: at q = 0.6 H = 27.2 m.
    expected = 50.0 * 0.6 * 27.2 / 40.0
    assert p.vfd_power_kw(60.0, 100.0, 50.0, static_head_fraction=0.5) == pytest.approx(expected)
    assert p.vfd_power_kw(60.0, 100.0, 50.0, 0.5) > p.vfd_power_kw(60.0, 100.0, 50.0)


def test_throttling_saving_is_throttled_minus_vfd_power_and_not_clamped() -> None:
    saving = p.throttling_saving_kw(45.0, 60.0, 100.0, 50.0, 0.5, vfd_efficiency=0.97)
    assert saving == pytest.approx(45.0 - 50.0 * 0.6 * 0.68 / 0.97)
    assert p.throttling_saving_kw(5.0, 60.0, 100.0, 50.0) < 0


def test_head_from_pressure_rise() -> None:
    assert p.head_m(300.0, 200.0, 1000.0) == pytest.approx(100_000 / (1000 * 9.80665))
    assert p.head_m(300.0, 200.0, 1000.0, elevation_rise_m=1.5) == pytest.approx(11.697, abs=1e-3)


def test_specific_speed_is_the_us_definition_on_si_inputs() -> None:
    ns = p.specific_speed_us(1780, 1840 * p.M3H_PER_GPM, 277 * p.M_PER_FT, stages=1)
    assert ns == pytest.approx(1780 * math.sqrt(1840) / 277**0.75, rel=1e-12)
    two_stage = p.specific_speed_us(1780, 1840 * p.M3H_PER_GPM, 554 * p.M_PER_FT, stages=2)
    assert two_stage == pytest.approx(ns, rel=1e-12)


# §3.3: 0.70-1.20 of BEP flow, 0.80-1.15 at N_s >= 4500; bounds are inside.
@pytest.mark.parametrize(
    ("ratio", "ns", "zone"),
    [
        (0.69, None, p.PorZone.BELOW),
        (0.70, None, p.PorZone.WITHIN),
        (1.20, 4499.0, p.PorZone.WITHIN),
        (1.21, None, p.PorZone.ABOVE),
        (0.79, 4500.0, p.PorZone.BELOW),
        (1.15, 6000.0, p.PorZone.WITHIN),
        (1.16, 4500.0, p.PorZone.ABOVE),
    ],
)
def test_por_classification(ratio: float, ns: float | None, zone: p.PorZone) -> None:
    assert p.classify_por(ratio * 200.0, 200.0, ns) is zone
    frame = pl.DataFrame({"q": [ratio * 200.0], "bep": [200.0], "ns": [ns]})
    assert _col(frame, p.classify_por_expr("q", "bep", "ns")) == [zone.value]


def test_por_thresholds_are_configurable_and_validated() -> None:
    summit = p.PorThresholds(high_ns_low=0.80, high_ns_high=1.10)  # Summit Pump, §3.3
    assert p.classify_por(1.12, 1.0, 5000.0, summit) is p.PorZone.ABOVE
    assert p.por_bounds(None) == (0.70, 1.20)
    with pytest.raises(ValueError, match="POR bounds"):
        p.PorThresholds(low=1.2, high=0.7)


def test_por_expr_keeps_nulls_and_defaults_missing_specific_speed() -> None:
    frame = pl.DataFrame({"q": [None, 230.0], "bep": [200.0, 200.0], "ns": [5000.0, None]})
    assert _col(frame, p.classify_por_expr("q", "bep", "ns")) == [None, "within_por"]


ROWS = pl.DataFrame(
    {
        "flow_m3h": [12.0, 150.0, 480.0],
        "head_m": [35.0, 52.0, 18.0],
        "density": [998.2, 1050.0, 1000.0],
        "p_d": [350.0, 600.0, 210.0],
        "p_s": [20.0, -15.0, 30.0],
        "shaft_kw": [2.2, 30.0, 37.0],
        "rpm": [2900.0, 1480.0, 980.0],
        "drive": ["v_belt", "specified", "synchronous_belt"],
        "eff": [None, 0.9, None],
        "ratio": [0.5, 0.8, 1.0],
        "throttled_kw": [2.0, 28.0, 30.0],
    }
)


def test_expressions_agree_with_scalars() -> None:
    rows = ROWS.to_dicts()
    checks = [
        (
            p.fluid_power_kw_expr("flow_m3h", "head_m", "density"),
            [p.fluid_power_kw(r["flow_m3h"], r["head_m"], r["density"]) for r in rows],
        ),
        (
            p.head_m_expr("p_d", "p_s", "density", 1.0),
            [p.head_m(r["p_d"], r["p_s"], r["density"], 1.0) for r in rows],
        ),
        (
            p.pump_efficiency_expr(pl.col("shaft_kw") * 0.7, "shaft_kw"),
            [p.pump_efficiency(r["shaft_kw"] * 0.7, r["shaft_kw"]) for r in rows],
        ),
        (
            p.pump_shaft_power_kw_expr("shaft_kw", pl.col("drive"), "eff"),
            [p.pump_shaft_power_kw(r["shaft_kw"], p.Drive(r["drive"]), r["eff"]) for r in rows],
        ),
        (
            p.pump_shaft_power_kw_expr("shaft_kw", p.Drive.NOTCHED_V_BELT),
            [p.pump_shaft_power_kw(r["shaft_kw"], p.Drive.NOTCHED_V_BELT) for r in rows],
        ),
        (
            p.specific_speed_us_expr("rpm", "flow_m3h", "head_m", 2.0),
            [p.specific_speed_us(r["rpm"], r["flow_m3h"], r["head_m"], 2) for r in rows],
        ),
        (
            p.affinity_power_kw_expr("shaft_kw", "ratio"),
            [p.affinity_power_kw(r["shaft_kw"], r["ratio"]) for r in rows],
        ),
        (
            p.vfd_power_kw_expr("flow_m3h", 500.0, 40.0, 0.3, 0.96),
            [p.vfd_power_kw(r["flow_m3h"], 500.0, 40.0, 0.3, 0.96) for r in rows],
        ),
        (
            p.throttling_saving_kw_expr("throttled_kw", "flow_m3h", 500.0, 40.0, 0.3),
            [
                p.throttling_saving_kw(r["throttled_kw"], r["flow_m3h"], 500.0, 40.0, 0.3)
                for r in rows
            ],
        ),
    ]
    for expr, expected in checks:
        assert _col(ROWS, expr) == pytest.approx(expected, rel=1e-12)
