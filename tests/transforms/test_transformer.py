"""Transformer formulas against the domain.md §6.3 table, the §6.2 derivations and the
GB 20052-2024 rows of cn_standards.md §6, plus scalar/expression agreement."""

from __future__ import annotations

import math

import polars as pl
import pytest

from transforms import transformer as t

P0, PK, SN, PF = 1.0, 10.0, 1000.0, 0.9


def _col(frame: pl.DataFrame, expr: pl.Expr) -> list[float]:
    return frame.select(expr.alias("out"))["out"].to_list()


# §6.3 illustrative case, P0 1 kW, Pk 10 kW, 1000 kVA, PF 0.9; the table prints beta_opt as
# 0.3162 and its loss as 2.00, so that row uses the exact sqrt(0.1). Efficiencies are printed
# to 6 decimals: checked to half a unit of the last digit.
@pytest.mark.parametrize(
    ("beta", "loss_kw", "eta"),
    [
        (0.10, 1.10, 0.987925),
        (math.sqrt(0.1), 2.00, 0.993022),
        (0.50, 3.50, 0.992282),
        (1.00, 11.00, 0.987925),
    ],
)
def test_section_6_3_table(beta: float, loss_kw: float, eta: float) -> None:
    assert t.losses_kw(beta, P0, PK) == pytest.approx(loss_kw, rel=1e-12)
    assert t.efficiency(beta, SN, PF, P0, PK) == pytest.approx(eta, abs=5e-7)


def test_optimal_load_factor_is_the_efficiency_peak() -> None:
    beta_opt = t.optimal_load_factor(P0, PK)
    assert beta_opt == pytest.approx(0.3162, abs=5e-5)
    peak = t.efficiency(beta_opt, SN, PF, P0, PK)
    for beta in (beta_opt - 0.01, beta_opt + 0.01):
        assert t.efficiency(beta, SN, PF, P0, PK) < peak


def test_light_load_boundary_is_where_the_loss_rate_equals_rated_load() -> None:
    boundary = t.light_load_boundary(P0, PK)
    assert boundary == pytest.approx(t.optimal_load_factor(P0, PK) ** 2)
    rate = t.losses_kw(boundary, P0, PK) / boundary
    assert rate == pytest.approx(t.losses_kw(1.0, P0, PK) / 1.0)
    assert t.is_light_load(0.099, P0, PK)
    assert not t.is_light_load(0.1, P0, PK)


def test_overload() -> None:
    assert t.is_overloaded(1.01)
    assert not t.is_overloaded(1.0)
    assert t.is_overloaded(0.95, limit=0.9)


@pytest.mark.parametrize("units", [2, 3])
def test_parallel_threshold_is_where_n_and_n_minus_1_units_lose_the_same(units: int) -> None:
    s = t.parallel_threshold_kva(SN, P0, PK, units)
    fewer = (units - 1) * t.losses_kw(s / ((units - 1) * SN), P0, PK)
    more = units * t.losses_kw(s / (units * SN), P0, PK)
    assert fewer == pytest.approx(more, rel=1e-12)
    if units == 2:
        assert s == pytest.approx(SN * math.sqrt(2 * P0 / PK))  # §6.2, rule T3
    with pytest.raises(ValueError, match="at least 2"):
        t.parallel_threshold_kva(SN, P0, PK, 1)


def test_excess_loss_against_the_optimum_loss_rate() -> None:
    beta_opt = t.optimal_load_factor(P0, PK)
    assert t.excess_loss_kw(beta_opt, P0, PK) == pytest.approx(0.0, abs=1e-12)
    for beta in (0.05, 0.6, 1.2):
        at_optimum_rate = beta * t.losses_kw(beta_opt, P0, PK) / beta_opt
        expected = t.losses_kw(beta, P0, PK) - at_optimum_rate
        assert t.excess_loss_kw(beta, P0, PK) == pytest.approx(expected, rel=1e-12)
    assert t.annual_loss_saving_kwh(0.05, P0, PK, 8760) == pytest.approx(
        (1.0 - 0.05 * math.sqrt(10.0)) ** 2 * 8760
    )


def test_comprehensive_losses_reduce_to_nameplate_without_reactive_terms() -> None:
    plain = t.comprehensive_losses_kw(SN, P0, PK, 0.5, 4.5, k_q=0.0, k_t=1.0)
    assert plain == (P0, PK)
    full = t.comprehensive_losses_kw(SN, P0, PK, 0.5, 4.5)  # K_Q 0.1, K_T 1.05
    assert full.no_load_kw == pytest.approx(1.0 + 0.1 * 5.0)
    assert full.load_kw == pytest.approx(1.05 * (10.0 + 0.1 * 45.0))
    beta_jz = t.optimal_load_factor(*full)
    assert beta_jz == pytest.approx(math.sqrt(1.5 / 15.225))
    assert t.light_load_boundary(*full) == pytest.approx(beta_jz**2)


# cn_standards.md §6: GB 20052-2024 Table 1 rows (10 kV oil-immersed), grade 1/2/3.
@pytest.mark.parametrize(
    ("kva", "core", "grade", "expected"),
    [
        (1000, t.Core.ELECTRICAL_STEEL, 1, (0.665, 7.415)),
        (1000, t.Core.ELECTRICAL_STEEL, 2, (0.745, 8.24)),
        (1000, t.Core.ELECTRICAL_STEEL, 3, (0.83, 10.3)),
        (1000, t.Core.AMORPHOUS, 1, (0.36, 8.34)),
        (1000, t.Core.AMORPHOUS, 3, (0.45, 10.3)),
        (630, t.Core.ELECTRICAL_STEEL, 2, (0.51, 4.96)),
        (630, t.Core.AMORPHOUS, 2, None),
        (800, t.Core.ELECTRICAL_STEEL, 3, None),
    ],
)
def test_gb20052_rows(
    kva: float, core: t.Core, grade: int, expected: tuple[float, float] | None
) -> None:
    assert t.gb20052_losses_kw(kva, core, grade) == expected


def test_gb20052_rejects_unknown_grade() -> None:
    with pytest.raises(ValueError, match="grades"):
        t.gb20052_losses_kw(1000, t.Core.AMORPHOUS, 0)


ROWS = pl.DataFrame(
    {
        "s_kva": [40.0, 316.0, 800.0, 1250.0],
        "sn": [1000.0, 1000.0, 630.0, 1000.0],
        "pf": [0.85, 0.9, 0.95, 0.8],
        "p0": [1.0, 0.745, 0.51, 0.36],
        "pk": [10.0, 8.24, 4.96, 8.34],
        "i0": [0.5, 0.4, 0.3, 0.6],
        "uk": [4.5, 4.5, 4.5, 4.5],
    }
)


def test_expressions_agree_with_scalars() -> None:
    rows = ROWS.to_dicts()
    beta = [t.load_factor(r["s_kva"], r["sn"]) for r in rows]
    beta_expr = t.load_factor_expr("s_kva", "sn")
    no_load_expr, load_expr = t.comprehensive_losses_kw_expr("sn", "p0", "pk", "i0", "uk", 0.05)
    comprehensive = [
        t.comprehensive_losses_kw(r["sn"], r["p0"], r["pk"], r["i0"], r["uk"], 0.05) for r in rows
    ]
    checks = [
        (beta_expr, beta),
        (
            t.losses_kw_expr(beta_expr, "p0", "pk"),
            [t.losses_kw(b, r["p0"], r["pk"]) for b, r in zip(beta, rows, strict=True)],
        ),
        (
            t.efficiency_expr(beta_expr, "sn", "pf", "p0", "pk"),
            [
                t.efficiency(b, r["sn"], r["pf"], r["p0"], r["pk"])
                for b, r in zip(beta, rows, strict=True)
            ],
        ),
        (
            t.optimal_load_factor_expr("p0", "pk"),
            [t.optimal_load_factor(r["p0"], r["pk"]) for r in rows],
        ),
        (
            t.light_load_boundary_expr("p0", "pk"),
            [t.light_load_boundary(r["p0"], r["pk"]) for r in rows],
        ),
        (
            t.excess_loss_kw_expr(beta_expr, "p0", "pk"),
            [t.excess_loss_kw(b, r["p0"], r["pk"]) for b, r in zip(beta, rows, strict=True)],
        ),
        (no_load_expr, [c.no_load_kw for c in comprehensive]),
        (load_expr, [c.load_kw for c in comprehensive]),
    ]
    for expr, expected in checks:
        assert _col(ROWS, expr) == pytest.approx(expected, rel=1e-12)
    flags = ROWS.select(
        light=t.is_light_load_expr(beta_expr, "p0", "pk"), over=t.is_overloaded_expr(beta_expr)
    )
    assert flags["light"].to_list() == [
        t.is_light_load(b, r["p0"], r["pk"]) for b, r in zip(beta, rows, strict=True)
    ]
    assert flags["over"].to_list() == [t.is_overloaded(b) for b in beta]
    assert flags["light"].to_list() == [True, False, False, False]
    assert flags["over"].to_list() == [False, False, True, True]
