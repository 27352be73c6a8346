"""GB 12497 formulas against cn_standards.md §1 and domain.md §2.2(e); expression == scalar.

The §2.2(e) example is printed to 4 decimals (checked to half a unit). Appendix B of GB
12497-1995 prints ηcN and ηc′ to 0.1 point; the Y-series nameplates used to reproduce it
(Y132M-4: 7.5 kW, η 87 %, cos φ 0.85; Y160L-4: 15 kW, 88.5 %, 0.85) are catalogue values
not quoted in cn_standards.md, so those rows check formulas (9)-(13) at the table's rounding.
"""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import gb12497 as gb


def test_domain_2_2e_loss_model_example() -> None:
    """P_N 55 kW, η_N 0.946, ΔP0 1.0 kW, P1 30 kW → ΔP_N 3.1395 kW, β 0.5169 (DOE ratio 0.516)."""
    assert gb.rated_loss_kw(55.0, 0.946) == pytest.approx(3.1395, abs=5e-5)
    beta = gb.load_factor_from_input(30.0, 55.0, 0.946, 1.0)
    assert beta == pytest.approx(0.5169, abs=5e-5)
    loss = gb.rated_loss_kw(55.0, 0.946)
    assert beta * 55 + 1.0 + beta**2 * (loss - 1.0) == pytest.approx(30.0)  # formula (7) inverts P1


@pytest.mark.parametrize(
    ("p_n", "eta_n", "cos_phi", "eta_cn_pct", "eta_c_allowed_pct"),
    [(7.5, 0.87, 0.85, 84.9, 82.8), (15.0, 0.885, 0.85, 86.4, 84.4)],
)
def test_appendix_b_k_q_0_04(
    p_n: float, eta_n: float, cos_phi: float, eta_cn_pct: float, eta_c_allowed_pct: float
) -> None:
    eta_cn = gb.rated_comprehensive_efficiency(p_n, eta_n, cos_phi, 0.04)
    allowed = gb.allowable_comprehensive_efficiency(p_n, eta_n, cos_phi, 0.04)
    assert eta_cn * 100 == pytest.approx(eta_cn_pct, abs=0.05)
    assert allowed * 100 == pytest.approx(eta_c_allowed_pct, abs=0.05)


def test_rule_13_keeps_allowable_two_points_below_rated() -> None:
    """15 kW: (12) gives ηcN − 0.019, so (13) sets ηc′ = ηcN − 0.02."""
    eta_cn = gb.rated_comprehensive_efficiency(15.0, 0.885, 0.85, 0.04)
    assert gb.allowable_comprehensive_efficiency(15.0, 0.885, 0.85, 0.04) == eta_cn - 0.02


def test_direct_method_drop_is_at_least_0_007() -> None:
    high = gb.allowable_comprehensive_efficiency(200.0, 0.97, 0.9, 0.02, method="direct")
    indirect = gb.allowable_comprehensive_efficiency(200.0, 0.97, 0.9, 0.02)
    cos_p = 0.9 - 0.02
    tan_p = (1 - cos_p**2) ** 0.5 / cos_p
    eta_cn = gb.rated_comprehensive_efficiency(200.0, 0.97, 0.9, 0.02)
    assert high == pytest.approx(min((0.97 - 0.007) / (1 + tan_p * 0.02), eta_cn - 0.02))
    assert high <= indirect


# a 7.5 kW motor with made-up no-load data: U 380 V, I0 5.4 A, P0 0.35 kW
MOTOR = {"p_n": 7.5, "eta_n": 0.87, "cos_phi": 0.85, "u": 380.0, "i0": 5.4, "p0": 0.35}


def _state(beta: float) -> str:
    eta_c = gb.comprehensive_efficiency(beta, **MOTOR, k_q=0.04)
    eta_cn = gb.rated_comprehensive_efficiency(7.5, 0.87, 0.85, 0.04)
    return gb.operating_state(
        eta_c, eta_cn, gb.allowable_comprehensive_efficiency(7.5, 0.87, 0.85, 0.04)
    )


def test_economic_zone_is_beta_cm_squared_to_one() -> None:
    """cn_standards.md §1 [derived]: ηc ≥ ηcN ⇔ β_cm² ≤ β ≤ 1."""
    low = gb.economic_load_factor(**MOTOR, k_q=0.04) ** 2
    assert [_state(b) for b in (low + 1e-6, 0.8, 1.0)] == [gb.ECONOMIC] * 3
    assert _state(low - 1e-6) == gb.ALLOWABLE and _state(1.001) == gb.ALLOWABLE
    assert _state(0.1) == gb.NON_ECONOMIC and _state(0.0) == gb.NON_ECONOMIC


def test_k_q_default_is_in_the_compensated_bus_range() -> None:
    low, high = gb.K_Q_RANGES["compensated_bus"]
    assert low <= gb.DEFAULT_K_Q <= high


@pytest.mark.parametrize(
    ("volts", "unbalance", "hz", "thd", "ok"),
    [
        (400.0, 1.5, 50.5, 5.0, True),
        (402.8, None, None, None, True),  # +6 % exactly
        (403.0, None, None, None, False),
        (342.0, None, None, None, True),  # -10 % exactly
        (341.0, None, None, None, False),
        (380.0, 1.6, None, None, False),
        (380.0, None, 49.4, None, False),
        (380.0, None, None, 5.1, False),
        (None, None, None, None, None),
        (None, 2.0, None, None, False),
    ],
)
def test_supply_preconditions(
    volts: float | None,
    unbalance: float | None,
    hz: float | None,
    thd: float | None,
    ok: bool | None,
) -> None:
    """§5.1 against a 380 V, 50 Hz rating: voltage +6/−10 %, ≤ 1.5 %, ±1 %, THD ≤ 5 %."""
    assert gb.supply_ok(volts, 380.0, unbalance, hz, 50.0, thd) is ok
    frame = pl.DataFrame(
        {"v": [volts], "u": [unbalance], "f": [hz], "t": [thd]},
        schema={c: pl.Float64 for c in "vuft"},
    )
    expr = gb.supply_ok_expr("v", pl.lit(380.0), "u", "f", 50.0, "t")
    unknown_optional = unbalance is None or hz is None or thd is None
    if not unknown_optional or ok is False:
        assert frame.select(expr).item() is ok


def test_classify_matches_scalars() -> None:
    betas = [0.0, 0.1, 0.3, 0.6, 1.0, 1.2, None]
    frame = pl.DataFrame(
        {
            "device_id": [f"m{i}" for i in range(len(betas))],
            "beta": betas,
            "rated_power_kw": 7.5,
            "rated_efficiency": 0.87,
            "rated_power_factor": 0.85,
            "rated_voltage_v": 380.0,
            "no_load_current_a": 5.4,
            "no_load_loss_kw": 0.35,
            "voltage_v": [380.0, 380.0, 450.0, None, 380.0, 380.0, 380.0],
        }
    )
    supply = gb.supply_ok_expr("voltage_v", "rated_voltage_v")
    got = gb.classify_operating_state(frame.lazy(), supply=supply).collect()
    eta_cn = gb.rated_comprehensive_efficiency(7.5, 0.87, 0.85)
    allowed = gb.allowable_comprehensive_efficiency(7.5, 0.87, 0.85)
    eta_c = [None if b is None else gb.comprehensive_efficiency(b, **MOTOR) for b in betas]
    state = [None if e is None else gb.operating_state(e, eta_cn, allowed) for e in eta_c]
    state[2] = None  # 450 V is +18 %: not classifiable (§5.1)
    want = frame.with_columns(
        comprehensive_efficiency=pl.Series(eta_c, dtype=pl.Float64),
        rated_comprehensive_efficiency=pl.lit(eta_cn),
        allowable_comprehensive_efficiency=pl.lit(allowed),
        economic_load_factor=pl.lit(gb.economic_load_factor(**MOTOR)),
        operating_state=pl.Series(state, dtype=pl.String),
    )
    assert_frame_equal(got, want, rel_tol=1e-12)
    assert state[:2] == [gb.NON_ECONOMIC] * 2
    assert state[3:6] == [gb.ECONOMIC, gb.ECONOMIC, gb.ALLOWABLE]  # above β = 1 ηc < ηcN again


def test_load_factor_expression_equals_scalar() -> None:
    frame = pl.DataFrame({"p1": [30.0, 5.0, 58.0], "pn": 55.0, "eta": 0.946, "p0": 1.0})
    expr = gb.load_factor_from_input_expr("p1", "pn", "eta", "p0").alias("beta")
    got = frame.select(expr)["beta"].to_list()
    want = [gb.load_factor_from_input(p, 55.0, 0.946, 1.0) for p in (30.0, 5.0, 58.0)]
    assert got == pytest.approx(want, rel=1e-12)


def test_classify_takes_the_load_column_by_name() -> None:
    frame = pl.DataFrame(
        {
            "mean_load_factor": [0.8],
            "rated_power_kw": 7.5,
            "rated_efficiency": 0.87,
            "rated_power_factor": 0.85,
            "rated_voltage_v": 380.0,
            "no_load_current_a": 5.4,
            "no_load_loss_kw": 0.35,
        }
    )
    out = gb.classify_operating_state(frame.lazy(), beta="mean_load_factor", k_q=0.04).collect()
    assert out["operating_state"].item() == gb.ECONOMIC
    assert out["comprehensive_efficiency"].item() == pytest.approx(
        gb.comprehensive_efficiency(0.8, **MOTOR, k_q=0.04)
    )
