"""GB 12497 motor economic operation: comprehensive efficiency and operating state.

Formulas and clause numbers are those of GB 12497-1995 as read in cn_standards.md §1; the
2006 edition (GB/T 12497-2006, which superseded it) was not found, so treat them as the
1995 text. The standard classifies by comprehensive efficiency ηc (active losses plus
K_Q × reactive power), not by fixed load-factor bands: the "70-100 % / 40-70 %" split often
quoted is not in it. Scalar functions, `_expr` twins for the per-row ones, and
`classify_operating_state` for frames; tests check they agree. Efficiencies are fractions
(the standard writes ×100), powers kW / kvar, voltages V, currents A.

Inputs per motor: P_N rated output, η_N, cos φ_N, U_N, no-load current I0 and no-load loss
P0. The registry has `no_load_loss_kw` but no no-load current; `amo_motor.no_load_frame`
gives both from the AMO model (I at β = 0; P0 = AMO's 0.8 × loss at 25 %) as a fallback.
"""

from __future__ import annotations

import math
from typing import Final, Literal

import polars as pl

Col = str | pl.Expr

K_Q_RANGES: Final = {
    "compensated_bus": (0.02, 0.04),
    "two_transformations": (0.05, 0.07),
    "three_transformations": (0.08, 0.10),
}
"""K_Q (无功经济当量, kW/kvar) by supply, GB 12497-1995 §4.3: on a generator bus or a bus with
reactive compensation 0.02-0.04; two transformations 0.05-0.07; three 0.08-0.1. Count
transformations from the compensation point when the network is compensated."""
DEFAULT_K_Q: Final = 0.04
"""The common plant case: an LV motor on a bus with capacitor compensation (plants keep PF
≥ 0.9 for the tariff), upper end of 0.02-0.04; also Appendix B's first table's value."""
ECONOMIC: Final = "economic"
ALLOWABLE: Final = "allowable"
NON_ECONOMIC: Final = "non_economic"
OPERATING_COLUMNS: Final = (
    "comprehensive_efficiency",
    "rated_comprehensive_efficiency",
    "allowable_comprehensive_efficiency",
    "economic_load_factor",
    "operating_state",
)
_EDGE: Final = 1e-9
"""Slack so that a value exactly on a §5.1 limit ("不超过") passes despite float rounding."""
NAMEPLATE_COLUMNS: Final = (
    "rated_power_kw",
    "rated_efficiency",
    "rated_power_factor",
    "rated_voltage_v",
    "no_load_current_a",
    "no_load_loss_kw",
)


def _c(x: Col) -> pl.Expr:
    return pl.col(x) if isinstance(x, str) else x


def load_factor_from_input(
    input_kw: float, rated_power_kw: float, rated_efficiency: float, no_load_loss_kw: float
) -> float:
    """β from measured input power, formula (7); the quadratic loss model of domain.md §2.2(e).

    P1 = βP_N + P0 + β²(ΣP_N − P0) solved for β, with ΣP_N = (1/η_N − 1)·P_N. Negative
    when P1 < P0: the motor is idle.
    """
    k = rated_loss_kw(rated_power_kw, rated_efficiency) - no_load_loss_kw
    root = math.sqrt(rated_power_kw**2 / 4 + k * (input_kw - no_load_loss_kw))
    return (-rated_power_kw / 2 + root) / k


def load_factor_from_input_expr(input_kw: Col, p_n: Col, eta_n: Col, p0: Col) -> pl.Expr:
    k = rated_loss_kw_expr(p_n, eta_n) - _c(p0)
    root = (_c(p_n) ** 2 / 4 + k * (_c(input_kw) - _c(p0))).sqrt()
    return (-_c(p_n) / 2 + root) / k


def rated_loss_kw(rated_power_kw: float, rated_efficiency: float) -> float:
    """ΣP_N = (1/η_N − 1)·P_N, formula (1)."""
    return (1 / rated_efficiency - 1) * rated_power_kw


def rated_loss_kw_expr(p_n: Col, eta_n: Col) -> pl.Expr:
    return (1 / _c(eta_n) - 1) * _c(p_n)


def no_load_reactive_kvar(voltage_v: float, no_load_current_a: float, p0_kw: float) -> float:
    """Q0 = √(3U²I0²×10⁻⁶ − P0²), formula (2); NaN when P0 exceeds the no-load kVA."""
    inner = 3 * voltage_v**2 * no_load_current_a**2 * 1e-6 - p0_kw**2
    return math.sqrt(inner) if inner >= 0 else math.nan


def no_load_reactive_kvar_expr(voltage_v: Col, i0: Col, p0: Col) -> pl.Expr:
    return (3 * _c(voltage_v) ** 2 * _c(i0) ** 2 * 1e-6 - _c(p0) ** 2).sqrt()


def rated_reactive_kvar(rated_power_kw: float, rated_efficiency: float, cos_phi: float) -> float:
    """Q_N = (P_N/η_N)·tan φ_N, formula (2)."""
    return rated_power_kw / rated_efficiency * math.tan(math.acos(cos_phi))


def rated_reactive_kvar_expr(p_n: Col, eta_n: Col, cos_phi: Col) -> pl.Expr:
    return _c(p_n) / _c(eta_n) * _c(cos_phi).arccos().tan()


def _terms(
    p_n: float, eta_n: float, cos_phi: float, u: float, i0: float, p0: float, k_q: float
) -> tuple[float, float]:
    """A, B of ΣPc = A + B·β² (cn_standards.md §1 [derived])."""
    q0 = no_load_reactive_kvar(u, i0, p0)
    qn = rated_reactive_kvar(p_n, eta_n, cos_phi)
    return p0 + k_q * q0, rated_loss_kw(p_n, eta_n) - p0 + k_q * (qn - q0)


def comprehensive_efficiency(
    beta: float,
    p_n: float,
    eta_n: float,
    cos_phi: float,
    u: float,
    i0: float,
    p0: float,
    k_q: float = DEFAULT_K_Q,
) -> float:
    """ηc = βP_N / (βP_N + ΣPc), formulas (3) and (8), with
    ΣPc = P0 + β²(ΣP_N − P0) + K_Q[Q0 + β²(Q_N − Q0)]."""
    a, b = _terms(p_n, eta_n, cos_phi, u, i0, p0, k_q)
    return beta * p_n / (beta * p_n + a + b * beta**2)


def rated_comprehensive_efficiency(
    p_n: float, eta_n: float, cos_phi: float, k_q: float = DEFAULT_K_Q
) -> float:
    """ηcN = P_N / (P_N + ΣP_N + K_Q·Q_N), formulas (4) and (9)."""
    return p_n / (p_n + rated_loss_kw(p_n, eta_n) + k_q * rated_reactive_kvar(p_n, eta_n, cos_phi))


def allowable_comprehensive_efficiency(
    p_n: float,
    eta_n: float,
    cos_phi: float,
    k_q: float = DEFAULT_K_Q,
    method: Literal["indirect", "direct"] = "indirect",
) -> float:
    """ηc′, the floor of the allowable state, formulas (10)-(13).

    η′ = η_N + Δη with Δη = −0.15(1 − η_N) (P_N ≤ 50 kW) or −0.1(1 − η_N) (indirect), or
    −0.15(1 − η_N) but at least 0.007 (direct); cos φ′ = cos φ_N − (1 − cos φ_N)/6 with the
    drop held to 0.02-0.07; ηc′ = η′/(1 + tan φ′·K_Q), and at most ηcN − 0.02 (13).
    """
    if method == "direct":
        d_eta = max(0.15 * (1 - eta_n), 0.007)
    else:
        d_eta = (0.15 if p_n <= 50 else 0.1) * (1 - eta_n)
    cos_p = cos_phi - min(max((1 - cos_phi) / 6, 0.02), 0.07)
    eta_c = (eta_n - d_eta) / (1 + math.tan(math.acos(cos_p)) * k_q)
    return min(eta_c, rated_comprehensive_efficiency(p_n, eta_n, cos_phi, k_q) - 0.02)


def economic_load_factor(
    p_n: float,
    eta_n: float,
    cos_phi: float,
    u: float,
    i0: float,
    p0: float,
    k_q: float = DEFAULT_K_Q,
) -> float:
    """β_cm, the load of maximum ηc, formula (19): √(A / B). The economic state spans
    [β_cm², 1] (cn_standards.md §1 [derived]), not a fixed 70-100 %."""
    a, b = _terms(p_n, eta_n, cos_phi, u, i0, p0, k_q)
    return math.sqrt(a / b)


def operating_state(eta_c: float, eta_cn: float, eta_c_allowed: float) -> str:
    """§5.2: economic ηc ≥ ηcN; allowable ηcN > ηc ≥ ηc′; otherwise non-economic.

    A 1e-12 tolerance keeps β = 1 (ηc = ηcN exactly) economic despite rounding.
    """
    if eta_c >= eta_cn - 1e-12:
        return ECONOMIC
    return ALLOWABLE if eta_c >= eta_c_allowed else NON_ECONOMIC


def supply_ok(
    voltage_v: float | None,
    rated_voltage_v: float,
    unbalance_pct: float | None = None,
    frequency_hz: float | None = None,
    rated_frequency_hz: float = 50.0,
    thd_pct: float | None = None,
) -> bool | None:
    """§5.1 preconditions for classifying: voltage +6/−10 %, unbalance ≤ 1.5 %,
    frequency ±1 %, waveform distortion ≤ 5 %.

    Checks whose argument is None are skipped, except voltage, which is required: an unknown
    voltage gives None unless another check already fails (Kleene logic, as the expression).
    """
    f_r, v_r = rated_frequency_hz, rated_voltage_v
    checks = [
        None if unbalance_pct is None else unbalance_pct <= 1.5 + _EDGE,
        None if frequency_hz is None else abs(frequency_hz - f_r) <= (0.01 + _EDGE) * f_r,
        None if thd_pct is None else thd_pct <= 5.0 + _EDGE,
        None if voltage_v is None else -0.10 - _EDGE <= voltage_v / v_r - 1 <= 0.06 + _EDGE,
    ]
    if any(c is False for c in checks):
        return False
    return None if voltage_v is None else True


def supply_ok_expr(
    voltage_v: Col,
    rated_voltage_v: Col,
    unbalance_pct: Col | None = None,
    frequency_hz: Col | None = None,
    rated_frequency_hz: float = 50.0,
    thd_pct: Col | None = None,
) -> pl.Expr:
    """Vectorised `supply_ok` (Kleene logic: false wins, then null); omitted checks are skipped."""
    deviation = _c(voltage_v) / _c(rated_voltage_v) - 1
    checks = [deviation.is_between(-0.10 - _EDGE, 0.06 + _EDGE)]
    if unbalance_pct is not None:
        checks.append(_c(unbalance_pct) <= 1.5 + _EDGE)
    if frequency_hz is not None:
        f_r = rated_frequency_hz
        checks.append((_c(frequency_hz) - f_r).abs() <= (0.01 + _EDGE) * f_r)
    if thd_pct is not None:
        checks.append(_c(thd_pct) <= 5.0 + _EDGE)
    return pl.all_horizontal(checks)


def classify_operating_state(
    frame: pl.LazyFrame,
    *,
    k_q: float | Col = DEFAULT_K_Q,
    method: Literal["indirect", "direct"] = "indirect",
    supply: pl.Expr | None = None,
    beta: Col = "beta",
) -> pl.LazyFrame:
    """Add OPERATING_COLUMNS to a frame with a load factor and NAMEPLATE_COLUMNS.

    `beta` (column or expression, default "beta") should be the equivalent load of §5.6, i.e.
    energy-weighted over the device-day. `k_q`: a number or a column. `supply`: a
    `supply_ok_expr`; where it is false the state is null (§5.1: not classifiable), where it
    is null the state is still given. For I0 / P0 see the module docstring.
    """
    c = pl.col
    kq = pl.lit(k_q) if isinstance(k_q, float | int) else _c(k_q)
    p_n, eta, cos_phi = c("rated_power_kw"), c("rated_efficiency"), c("rated_power_factor")
    p0, beta = c("no_load_loss_kw"), _c(beta)
    q0 = no_load_reactive_kvar_expr("rated_voltage_v", "no_load_current_a", "no_load_loss_kw")
    qn = rated_reactive_kvar_expr(p_n, eta, cos_phi)
    loss_n = rated_loss_kw_expr(p_n, eta)
    a, b = p0 + kq * q0, loss_n - p0 + kq * (qn - q0)
    eta_cn = p_n / (p_n + loss_n + kq * qn)
    small = (p_n <= 50).cast(pl.Float64)
    if method == "direct":
        d_eta = (0.15 * (1 - eta)).clip(lower_bound=0.007)
    else:
        d_eta = (0.15 * small + 0.1 * (1 - small)) * (1 - eta)
    cos_p = cos_phi - ((1 - cos_phi) / 6).clip(0.02, 0.07)
    allowed = pl.min_horizontal((eta - d_eta) / (1 + cos_p.arccos().tan() * kq), eta_cn - 0.02)
    eta_c = beta * p_n / (beta * p_n + a + b * beta**2)
    state: pl.Expr = (
        pl.when(eta_c >= eta_cn - 1e-12)
        .then(pl.lit(ECONOMIC))
        .when(eta_c >= allowed)
        .then(pl.lit(ALLOWABLE))
        .when(eta_c.is_not_null())
        .then(pl.lit(NON_ECONOMIC))
    )
    if supply is not None:
        state = pl.when(supply.fill_null(True)).then(state).otherwise(pl.lit(None, pl.String))
    return frame.with_columns(
        comprehensive_efficiency=eta_c,
        rated_comprehensive_efficiency=eta_cn,
        allowable_comprehensive_efficiency=allowed,
        economic_load_factor=(a / b).sqrt(),
        operating_state=state,
    )
