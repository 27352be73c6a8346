"""Transformer loss formulas: load factor, losses, efficiency, economic load, GB 20052 rows.

§ numbers refer to /work/shared/reference/domain.md, cn_standards.md is
/work/shared/reference/cn_standards.md. No AMO code here. Losses are in kW, ratings in
kVA, the load factor β = S/S_N is a fraction. Each scalar function applied per row has an
`*_expr` twin taking column names or expressions; inputs are not guarded.

The optional comprehensive (reactive-equivalent) form of GB/T 13462-2008 is corroborated
by secondary sources only (cn_standards.md §2): `comprehensive_losses_kw` turns nameplate
losses into active-equivalent ones, which then go through the same functions, so every
threshold below has both an active-only and a comprehensive variant.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple

import polars as pl

from transforms.dual import ExprLike, T
from transforms.dual import as_expr as _x
from transforms.dual import sqrt as _sqrt


def load_factor(apparent_power_kva: float, rated_power_kva: float) -> float:
    """β = S/S_N (§6.2). For thermal checks use the most loaded phase's I/I_N instead."""
    return apparent_power_kva / rated_power_kva


def load_factor_expr(apparent_power_kva: ExprLike, rated_power_kva: ExprLike) -> pl.Expr:
    return _x(apparent_power_kva) / _x(rated_power_kva)


def _losses(beta: T, no_load_kw: T, load_kw: T) -> T:
    return no_load_kw + beta * beta * load_kw


def losses_kw(load_factor: float, no_load_loss_kw: float, load_loss_kw: float) -> float:
    """P_loss = P₀ + β²·P_k (§6.2): core loss plus copper loss scaled from rated current."""
    return _losses(load_factor, no_load_loss_kw, load_loss_kw)


def losses_kw_expr(
    load_factor: ExprLike, no_load_loss_kw: ExprLike, load_loss_kw: ExprLike
) -> pl.Expr:
    return _losses(_x(load_factor), _x(no_load_loss_kw), _x(load_loss_kw))


def _efficiency(beta: T, rated_kva: T, pf: T, no_load_kw: T, load_kw: T) -> T:
    output = beta * rated_kva * pf
    return output / (output + _losses(beta, no_load_kw, load_kw))


def efficiency(
    load_factor: float,
    rated_power_kva: float,
    power_factor: float,
    no_load_loss_kw: float,
    load_loss_kw: float,
) -> float:
    """η = β·S_N·cos φ/(β·S_N·cos φ + P₀ + β²·P_k) (§6.2)."""
    args = load_factor, rated_power_kva, power_factor, no_load_loss_kw, load_loss_kw
    return _efficiency(*args)


def efficiency_expr(
    load_factor: ExprLike,
    rated_power_kva: ExprLike,
    power_factor: ExprLike,
    no_load_loss_kw: ExprLike,
    load_loss_kw: ExprLike,
) -> pl.Expr:
    args = load_factor, rated_power_kva, power_factor, no_load_loss_kw, load_loss_kw
    return _efficiency(*map(_x, args))


def optimal_load_factor(no_load_loss_kw: float, load_loss_kw: float) -> float:
    """β_opt = √(P₀/P_k), where dη/dβ = 0, i.e. P₀ = β²·P_k (§6.2 derivation).

    Preferred over fixed "economic" bands (50–70 %, 191i.com) because it uses the
    nameplate (§6.2 [INFERRED]). With comprehensive losses this is GB/T 13462's β_JZ.
    """
    return math.sqrt(no_load_loss_kw / load_loss_kw)


def optimal_load_factor_expr(no_load_loss_kw: ExprLike, load_loss_kw: ExprLike) -> pl.Expr:
    return (_x(no_load_loss_kw) / _x(load_loss_kw)).sqrt()


def light_load_boundary(no_load_loss_kw: float, load_loss_kw: float) -> float:
    """β below which losses per unit of load exceed those at rated load: P₀/P_k = β_opt².

    (P₀ + β²P_k)/β equals its β = 1 value at β = P₀/P_k (§6.2 loss-rate derivation), rule
    T1 (§6.3). With comprehensive losses it is β_JZ², GB/T 13462's reported lower limit of
    the economic zone; that boundary is unconfirmed (cn_standards.md §2: NOT FOUND in any
    text, only shown self-consistent), the derivation holds either way.
    """
    return no_load_loss_kw / load_loss_kw


def light_load_boundary_expr(no_load_loss_kw: ExprLike, load_loss_kw: ExprLike) -> pl.Expr:
    return _x(no_load_loss_kw) / _x(load_loss_kw)


def is_light_load(load_factor: float, no_load_loss_kw: float, load_loss_kw: float) -> bool:
    """β < P₀/P_k (rule T1, §6.3); sustained over nights and weekends in the rule."""
    return load_factor < light_load_boundary(no_load_loss_kw, load_loss_kw)


def is_light_load_expr(
    load_factor: ExprLike, no_load_loss_kw: ExprLike, load_loss_kw: ExprLike
) -> pl.Expr:
    return _x(load_factor) < light_load_boundary_expr(no_load_loss_kw, load_loss_kw)


def is_overloaded(load_factor: float, limit: float = 1.0) -> bool:
    """β > 1 (rule T2, §6.3 [INFERRED]); thermal limits (IEC 60076-7) are out of scope."""
    return load_factor > limit


def is_overloaded_expr(load_factor: ExprLike, limit: float = 1.0) -> pl.Expr:
    return _x(load_factor) > limit


def parallel_threshold_kva(
    rated_power_kva: float, no_load_loss_kw: float, load_loss_kw: float, units: int = 2
) -> float:
    """Load above which n identical units lose less than n − 1: S_N·√(n(n−1)·P₀/P_k).

    For n = 2, S_N·√(2P₀/P_k) (§6.2 derivation, rule T3). The n-unit form is the design
    handbook's S_cr (cn_standards.md §2, 《工业与民用供配电设计手册》 via the exam guide).
    """
    if units < 2:
        raise ValueError(f"a switching threshold needs at least 2 units, not {units}")
    return rated_power_kva * math.sqrt(units * (units - 1) * no_load_loss_kw / load_loss_kw)


def _excess_loss(beta: T, no_load_kw: T, load_kw: T) -> T:
    root = _sqrt(no_load_kw) - beta * _sqrt(load_kw)
    return root * root


def excess_loss_kw(load_factor: float, no_load_loss_kw: float, load_loss_kw: float) -> float:
    """Loss above carrying the same load at β_opt's loss rate: (√P₀ − β·√P_k)² [INFERRED].

    P₀ + β²P_k − β·(P₀ + β_opt²P_k)/β_opt, i.e. the saving if the load ran on a unit rated
    S/β_opt whose losses scale with its rating (real losses scale less than linearly, so
    this is an upper bound). Zero at β_opt, grows on both sides. Sum it over time (§13).
    """
    return _excess_loss(load_factor, no_load_loss_kw, load_loss_kw)


def excess_loss_kw_expr(
    load_factor: ExprLike, no_load_loss_kw: ExprLike, load_loss_kw: ExprLike
) -> pl.Expr:
    return _excess_loss(_x(load_factor), _x(no_load_loss_kw), _x(load_loss_kw))


def annual_loss_saving_kwh(
    load_factor: float, no_load_loss_kw: float, load_loss_kw: float, annual_hours_h: float
) -> float:
    """`excess_loss_kw` at a constant β over a year's energised hours."""
    return excess_loss_kw(load_factor, no_load_loss_kw, load_loss_kw) * annual_hours_h


class LossPair(NamedTuple):
    """No-load loss P₀ and rated load loss P_k, kW."""

    no_load_kw: float
    load_kw: float


def _comprehensive(rated_kva: T, p0: T, pk: T, i0_pct: T, uk_pct: T, k_q: T, k_t: T) -> tuple[T, T]:
    q0_kvar, qk_kvar = i0_pct * rated_kva / 100.0, uk_pct * rated_kva / 100.0
    return p0 + k_q * q0_kvar, k_t * (pk + k_q * qk_kvar)


def comprehensive_losses_kw(
    rated_power_kva: float,
    no_load_loss_kw: float,
    load_loss_kw: float,
    no_load_current_pct: float,
    impedance_pct: float,
    k_q: float = 0.1,
    k_t: float = 1.05,
) -> LossPair:
    """Active-equivalent losses P₀ + K_Q·Q₀ and K_T·(P_k + K_Q·Q_k) (GB/T 13462-2008 form).

    UNCONFIRMED: the standard's text was not found; the formula is corroborated by
    360docs, msthinker and the design-handbook exam guide (cn_standards.md §2). Q₀ ≈
    I₀%·S_N/100, Q_k ≈ u_k%·S_N/100. K_Q (kW/kvar): 0.02–0.04 one transformation stage,
    0.05–0.07 two, 0.08–0.10 three; handbook default 0.1. K_T ≈ 1.05 is the load-
    fluctuation coefficient of the secondary sources; the handbooks omit it (K_T = 1).
    Feed the result to `optimal_load_factor` (→ β_JZ), `light_load_boundary` (→ β_JZ²),
    `losses_kw` (→ ΔP_Z) and `parallel_threshold_kva`.
    """
    args = rated_power_kva, no_load_loss_kw, load_loss_kw, no_load_current_pct, impedance_pct
    return LossPair(*_comprehensive(*args, k_q, k_t))


def comprehensive_losses_kw_expr(
    rated_power_kva: ExprLike,
    no_load_loss_kw: ExprLike,
    load_loss_kw: ExprLike,
    no_load_current_pct: ExprLike,
    impedance_pct: ExprLike,
    k_q: ExprLike = 0.1,
    k_t: ExprLike = 1.05,
) -> tuple[pl.Expr, pl.Expr]:
    """(no-load, load) active-equivalent loss expressions, as `comprehensive_losses_kw`."""
    args = rated_power_kva, no_load_loss_kw, load_loss_kw, no_load_current_pct, impedance_pct
    return _comprehensive(*map(_x, (*args, k_q, k_t)))


class Core(StrEnum):
    ELECTRICAL_STEEL = "electrical_steel"  # 电工钢带
    AMORPHOUS = "amorphous"  # 非晶合金


# GB 20052-2024 Table 1, 10 kV oil-immersed three-phase two-winding off-circuit tap-changing
# (Yyn0 at >= 630 kVA), grade 1/2/3 (P0, Pk) in kW. Only the rows cn_standards.md §6 gives
# (adgo07/EquipEffi transcription, source page 7; unchanged from the 2020 edition).
_GB20052: dict[tuple[float, Core], tuple[tuple[float, float], ...]] = {
    (1000.0, Core.ELECTRICAL_STEEL): ((0.665, 7.415), (0.745, 8.24), (0.83, 10.3)),
    (1000.0, Core.AMORPHOUS): ((0.36, 8.34), (0.45, 8.8), (0.45, 10.3)),
    (630.0, Core.ELECTRICAL_STEEL): ((0.46, 4.46), (0.51, 4.96), (0.57, 6.2)),
}


def gb20052_losses_kw(rated_power_kva: float, core: Core, grade: int) -> LossPair | None:
    """Maximum (P₀, P_k) of a GB 20052-2024 grade; grade 3 is the limit value (限定值).

    Returns None outside the rows read: 1000 kVA electrical steel and amorphous, 630 kVA
    electrical steel, all 10 kV oil-immersed. Use it as a benchmark when the nameplate
    lacks losses, and to judge whether a unit is below grade 3.
    """
    if grade not in (1, 2, 3):
        raise ValueError(f"GB 20052 grades are 1, 2 and 3, not {grade}")
    row = _GB20052.get((float(rated_power_kva), core))
    return None if row is None else LossPair(*row[grade - 1])
