"""Electrical formulas against domain.md §9.7 (A31, A32) and §1, and expression == scalar.

A31 comes from AMO's PowerFactor.unit.cpp, which prints 4 decimals: checked to half a unit
of the last digit (5e-5). A32 are web examples: 0.5 % relative on the stated figure, plus the
exact NEMA value where the page rounded it.
"""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_series_equal

from transforms import electrical as el

HALF_4DP = 5e-5
WEB_REL = 0.005


def test_a31_power_factor_correction() -> None:
    """PowerFactor.unit.cpp L15-16: S 100 kVA, P 87 kW, target 0.95 (all nine modes agree)."""
    s_kva, p_kw, target = 100.0, 87.0, 0.95
    pf = p_kw / s_kva
    assert el.reactive_power_kvar(p_kw, pf) == pytest.approx(49.3052, abs=HALF_4DP)
    assert s_kva * math.sin(math.acos(pf)) == pytest.approx(el.reactive_power_kvar(p_kw, pf))
    assert math.degrees(math.acos(pf)) == pytest.approx(29.5413605, abs=5e-8)
    assert el.apparent_power_kva(p_kw, target) == pytest.approx(91.5789, abs=HALF_4DP)
    assert s_kva - el.apparent_power_kva(p_kw, target) == pytest.approx(8.4211, abs=HALF_4DP)
    assert el.reactive_power_kvar(p_kw, target) == pytest.approx(28.5955, abs=HALF_4DP)
    assert el.pf_correction_kvar(p_kw, pf, target) == pytest.approx(20.7097, abs=HALF_4DP)
    assert el.pf_correction_kvar(p_kw, 0.97, target) == 0.0


@pytest.mark.parametrize(
    ("volts", "stated", "exact"),
    [
        ((462.0, 463.0, 455.0), 1.1, 100 * (460 - 455) / 460),  # eng-tips
        ((480.0, 476.0, 472.0), 0.84, 100 * 4 / 476),  # industrialmonitordirect, not 1.68
        ((460.0, 467.0, 450.0), 1.96, 100 * 9 / 459),  # tools.gera.services
    ],
)
def test_a32_voltage_unbalance(
    volts: tuple[float, float, float], stated: float, exact: float
) -> None:
    got = el.unbalance_pct(*volts)
    assert got == pytest.approx(exact, rel=1e-12)
    assert got == pytest.approx(stated, abs=0.05 if stated == 1.1 else stated * WEB_REL)


def test_a32_hemmotor_negative_example() -> None:
    """hemmotor.com states 1.45 % for 400/395/388 V; the largest deviation is 388's: 1.606 %."""
    got = el.unbalance_pct(400.0, 395.0, 388.0)
    assert got == pytest.approx(1.606, abs=5e-4)
    assert got != pytest.approx(1.45, rel=WEB_REL)
    assert got != pytest.approx(100 * (400 - 388) / (1183 / 3), rel=WEB_REL)  # not max-min


def test_current_unbalance_uses_the_same_definition() -> None:
    assert el.unbalance_pct(100.0, 110.0, 90.0) == pytest.approx(10.0)
    assert el.unbalance_pct(0.0, 0.0, 0.0) is None


@pytest.mark.parametrize(
    ("vu", "factor"),
    [
        (0.0, 1.0),
        (0.5, 1.0),
        (1.0, 1.0),
        (1.5, 0.97),
        (2.0, 0.95),
        (2.25, 0.94),
        (3.0, 0.89),
        (4.0, 0.82),
        (5.0, 0.76),
        (5.01, 0.0),
        (12.0, 0.0),
    ],
)
def test_nema_derating(vu: float, factor: float) -> None:
    assert el.nema_derating_factor(vu) == pytest.approx(factor, abs=1e-12)
    assert el.nema_do_not_operate(vu) is (vu > 5)


def test_nema_derating_at_a32_gera_example() -> None:
    """tools.gera.services: 1.96 % → derate ≈ 0.95."""
    assert el.nema_derating_factor(el.unbalance_pct(460.0, 467.0, 450.0) or 0.0) == pytest.approx(
        0.95, rel=WEB_REL
    )


def test_three_phase_power() -> None:
    assert el.three_phase_power_kw(400.0, 100.0, 0.85) == pytest.approx(58.889727, rel=1e-7)


def test_expressions_equal_scalars() -> None:
    frame = pl.DataFrame(
        {
            "a": [462.0, 480.0, 460.0, 400.0, 0.0, None, 100.0],
            "b": [463.0, 476.0, 467.0, 395.0, 0.0, 1.0, 110.0],
            "c": [455.0, 472.0, 450.0, 388.0, 0.0, 1.0, 90.0],
            "vu": [0.0, 0.7, 1.2, 1.96, 3.3, 5.0, 6.0],
            "p": [87.0, 50.0, 10.0, 1.0, 30.0, 200.0, 5.0],
            "pf": [0.87, 0.5, 0.99, 0.95, 0.7, 0.8, 0.9],
        }
    )
    rows = frame.rows(named=True)

    def check(expr: pl.Expr, values: list[float | bool | None]) -> None:
        got = frame.select(expr.alias("x"))["x"]
        assert_series_equal(got, pl.Series("x", values, dtype=got.dtype), rel_tol=1e-12)

    check(
        el.unbalance_pct_expr("a", "b", "c"),
        [None if r["a"] is None else el.unbalance_pct(r["a"], r["b"], r["c"]) for r in rows],
    )
    check(el.nema_derating_factor_expr("vu"), [el.nema_derating_factor(r["vu"]) for r in rows])
    check(el.nema_do_not_operate_expr("vu"), [el.nema_do_not_operate(r["vu"]) for r in rows])
    check(
        el.three_phase_power_kw_expr("a", "p", "pf"),
        [
            None if r["a"] is None else el.three_phase_power_kw(r["a"], r["p"], r["pf"])
            for r in rows
        ],
    )
    check(el.apparent_power_kva_expr("p", "pf"), [r["p"] / r["pf"] for r in rows])
    check(
        el.reactive_power_kvar_expr("p", "pf"),
        [el.reactive_power_kvar(r["p"], r["pf"]) for r in rows],
    )
    check(
        el.pf_correction_kvar_expr("p", "pf", 0.95),
        [el.pf_correction_kvar(r["p"], r["pf"], 0.95) for r in rows],
    )
    null = pl.DataFrame({"vu": [None]}, schema={"vu": pl.Float64})
    assert null.select(el.nema_derating_factor_expr("vu")).item() is None
