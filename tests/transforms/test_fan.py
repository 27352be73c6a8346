"""Fan formulas against domain.md §9.4-9.5 and §9.8 vectors, and scalar/expression agreement.

AMO vectors are checked at 1e-6 relative (met to ~1e-10); the ITAC example at 0.5 %.
"""

from __future__ import annotations

import polars as pl
import pytest

from transforms import fan as f

AMO_REL = 1e-6
AMO_KW_PER_HP = 0.746
A18_FAN = (129_691.0, -16.36, 1.1, 0.988)  # cfm, p_in and p_out in. w.g., K_p


def _col(frame: pl.DataFrame, expr: pl.Expr) -> list[float]:
    return frame.select(expr.alias("out"))["out"].to_list()


def _si(cfm: float, p_in: float, p_out: float) -> tuple[float, float, float]:
    return cfm * f.M3H_PER_CFM, p_in * f.KPA_PER_INWG, p_out * f.KPA_PER_INWG


# §9.4 A18 (fan row), FluidPower.unit.cpp L5-10.
def test_a18_fan_fluid_power_amo() -> None:
    assert f.fan_fluid_power_kw_amo(*A18_FAN) == pytest.approx(262.3349690747, rel=AMO_REL)


def test_si_fan_fluid_power_is_q_dp_kp_and_close_to_amo() -> None:
    flow_m3h, p_in, p_out = _si(*A18_FAN[:3])
    si = f.fan_fluid_power_kw(flow_m3h, p_in, p_out, 0.988)
    assert si == pytest.approx(flow_m3h / 3600 * (p_out - p_in) * 0.988, rel=1e-12)
    # AMO's 0.746 kW/hp and 6362 cfm·in.wg/hp put it 0.25 % below the exact SI value.
    assert si == pytest.approx(262.3349690747, rel=3e-3)


# §9.5 A21 (fan existing case): fan efficiency from fluid power and the shaft power it gives.
def test_a21_fan_efficiency() -> None:
    fluid_kw = f.fan_fluid_power_kw_amo(*A18_FAN)
    shaft_kw = 590.622186263 * AMO_KW_PER_HP
    assert f.fan_efficiency(fluid_kw, shaft_kw) == pytest.approx(0.595398315, rel=AMO_REL)


# §9.5 A21 (FEI of the existing case, 460 kW measured) and A22 (Fan.unit.cpp L6-9).
FEI_VECTORS = [
    (129_691.0, -16.36, 1.1, 0.07024, 460.0, 0.9718906186),
    (129_691.0, -16.0, 1.0, 0.07024, 450.0, 0.9678686743),
    (80_364.0, -9.0, 1.0, 0.07024, 150.0, 1.0776769184),
]


@pytest.mark.parametrize(("cfm", "p_in", "p_out", "rho", "kw", "expected"), FEI_VECTORS)
def test_a21_a22_fan_energy_index(
    cfm: float, p_in: float, p_out: float, rho: float, kw: float, expected: float
) -> None:
    assert f.fan_energy_index_us(cfm, p_in, p_out, rho, kw) == pytest.approx(expected, rel=AMO_REL)
    si_rho = rho * f.KG_M3_PER_LB_FT3
    si = f.fan_energy_index(*_si(cfm, p_in, p_out), si_rho, kw)
    assert si == pytest.approx(expected, rel=1e-9)  # conversion round-trips


# §9.5 A23, OptimalFanEfficiency.unit.cpp L5-16: 1180 rpm, 40,000 cfm, -9 / 1 in. w.g., 0.995.
OPTIMAL_VECTORS = [
    (f.FanType.AIRFOIL_SISW, 0.8056103029),
    (f.FanType.RADIAL_SISW, 0.3474991977),
    (f.FanType.VANE_AXIAL, 0.620617052),
    # Same test file at upstream commit d78b0183 (not in domain.md):
    (f.FanType.BACKWARD_CURVED_SISW, 0.7953321519),
    (f.FanType.RADIAL_TIP_SISW, 0.7312425577),
]


@pytest.mark.parametrize(("fan_type", "expected"), OPTIMAL_VECTORS)
def test_a23_optimal_fan_efficiency(fan_type: f.FanType, expected: float) -> None:
    us = f.optimal_fan_efficiency_us(fan_type, 1180, 40_000, -9, 1, 0.995)
    assert us == pytest.approx(expected, rel=AMO_REL)
    si = f.optimal_fan_efficiency(fan_type, 1180, *_si(40_000, -9, 1), 0.995)
    assert si == pytest.approx(expected, rel=1e-9)


# The same file's commented-out checks give the other types to 2-3 truncated digits. Too
# coarse as vectors, but they catch a mistyped coefficient in a table row no vector covers.
@pytest.mark.parametrize(
    ("fan_type", "approximately"),
    [
        (f.FanType.BACKWARD_INCLINED_SISW, 0.79),
        (f.FanType.AIRFOIL_DIDW, 0.76),
        (f.FanType.BACKWARD_CURVED_DIDW, 0.74),
        (f.FanType.BACKWARD_INCLINED_DIDW, 0.729),
        (f.FanType.AIR_HANDLING, 0.46),
        (f.FanType.MATERIAL_HANDLING, 0.39),
        (f.FanType.LONG_SHAVINGS, 0.36),
    ],
)
def test_optimal_fan_efficiency_other_types(fan_type: f.FanType, approximately: float) -> None:
    value = f.optimal_fan_efficiency_us(fan_type, 1180, 40_000, -9, 1, 0.995)
    assert value == pytest.approx(approximately, abs=0.01)


# §9.8 A33, ITAC: 10,000 -> 6,000 cfm at 40 kW -> 8.6 kW (8.64 exactly).
def test_a33_fan_law_power() -> None:
    assert f.fan_law_power_kw(40.0, 6_000 / 10_000) == pytest.approx(8.64, rel=1e-12)
    assert f.fan_law_power_kw(40.0, 0.6) == pytest.approx(8.6, rel=5e-3)


def test_fan_laws_with_density_and_compressibility() -> None:
    assert f.fan_law_flow_m3h(1000.0, 0.8, kp_ratio=1.01) == pytest.approx(808.0)
    assert f.fan_law_pressure_kpa(2.0, 0.8, density_ratio=0.9) == pytest.approx(1.152)
    assert f.fan_law_power_kw(100.0, 0.8, 0.9, 1.01) == pytest.approx(46.5408)


# FEI reference power below and above 185 kW; N_s from 3e4 to 1.4e6, so the optimal-efficiency
# rows cover the polynomial and exponential branches and both clamps.
ROWS = pl.DataFrame(
    {
        "flow_m3h": [3_000.0, 68_000.0, 220_000.0, 100_000.0],
        "p_in": [-0.2, -2.2, -4.0, 0.0],
        "p_out": [0.5, 0.25, 0.3, 0.1],
        "kp": [1.0, 0.995, 0.988, 1.0],
        "rho": [1.2, 1.15, 1.125, 1.2],
        "motor_kw": [1.5, 55.0, 450.0, 5.0],
        "rpm": [2900.0, 1480.0, 740.0, 3000.0],
        "ratio": [0.5, 0.8, 1.1, 0.6],
    }
)


def test_expressions_agree_with_scalars() -> None:
    rows = [(r["flow_m3h"], r["p_in"], r["p_out"]) for r in ROWS.to_dicts()]
    extra = ROWS.select("kp", "rho", "motor_kw", "rpm", "ratio").rows()
    checks = [
        (
            f.fan_fluid_power_kw_expr("flow_m3h", "p_in", "p_out", "kp"),
            [f.fan_fluid_power_kw(*r, e[0]) for r, e in zip(rows, extra, strict=True)],
        ),
        (
            f.fan_efficiency_expr("p_out", "motor_kw"),
            [f.fan_efficiency(r[2], e[2]) for r, e in zip(rows, extra, strict=True)],
        ),
        (
            f.fan_energy_index_expr("flow_m3h", "p_in", "p_out", "rho", "motor_kw"),
            [f.fan_energy_index(*r, e[1], e[2]) for r, e in zip(rows, extra, strict=True)],
        ),
        (
            f.fan_law_power_kw_expr("motor_kw", "ratio", 0.95, 1.01),
            [f.fan_law_power_kw(e[2], e[4], 0.95, 1.01) for e in extra],
        ),
    ]
    for fan_type in f.FanType:
        checks.append(
            (
                f.optimal_fan_efficiency_expr(fan_type, "rpm", "flow_m3h", "p_in", "p_out", "kp"),
                [
                    f.optimal_fan_efficiency(fan_type, e[3], *r, e[0])
                    for r, e in zip(rows, extra, strict=True)
                ],
            )
        )
    for expr, expected in checks:
        assert _col(ROWS, expr) == pytest.approx(expected, rel=1e-12)
