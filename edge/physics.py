"""Steady-state physics of simulated plant equipment: one load point in, consistent readings out.

Pure functions over floats (stdlib only) so the simulator and its tests agree on one model.
Section numbers (§) refer to /work/shared/reference/domain.md unless another file is named;
constants marked [INFERRED] are typical engineering values that the reference does not give.
AMO-Tools-Suite is used for its published method and test values only; no AMO code is ported.

The load point per kind: motor shaft load factor beta = P_shaft/P_N; pump and fan flow ratio
q = Q/Q_BEP; compressor air demand against its free air delivery; transformer beta = S/S_N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

SQRT3 = math.sqrt(3.0)
G = 9.80665
P_ATM_KPA = 101.325
AMBIENT_C = 30.0
# AMO MotorEfficiency, ENERGY_EFFICIENT 100 hp 4-pole anchors at 25..125 % load (§9.1 A2).
_EE_LOADS = (0.25, 0.5, 0.75, 1.0, 1.25)
_EE_ETAS = (0.921519665, 0.946047805, 0.951033931, 0.949413679, 0.939919542)
NO_LOAD_CURRENT_FRACTION = 0.276  # of FLA: AMO 200 hp 4-pole EE motor (§2.2c, §2.6 M1)
LOCKED_ROTOR_RATIO = 6.5  # I_LR/I_N of an IE3 cage motor [INFERRED]
RATED_WINDING_RISE_K = 80.0  # class B rise on class F insulation [INFERRED]


@dataclass(frozen=True)
class MotorNameplate:
    """Rated values of a 3-phase induction motor (§2.1); efficiency and PF as fractions."""

    rated_kw: float
    rated_voltage_v: float
    rated_speed_rpm: float
    efficiency: float
    power_factor: float
    rated_current_a: float | None = None
    frequency_hz: float = 50.0

    @property
    def full_load_current_a(self) -> float:
        """Nameplate FLA, or the one implied by P_N/(sqrt(3)·V·eta·PF) (§1)."""
        if self.rated_current_a:
            return self.rated_current_a
        return (
            self.rated_kw
            * 1000.0
            / (self.efficiency * SQRT3 * self.rated_voltage_v * self.power_factor)
        )


@dataclass(frozen=True)
class MotorPoint:
    beta: float
    input_kw: float
    losses_kw: float
    efficiency: float
    power_factor: float
    current_a: float
    speed_rpm: float


def _lagrange(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    """Exact polynomial through the points: AMO CurveFitVal uses degree = points - 1 (§2.3)."""
    total = 0.0
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        term = yi
        for j, xj in enumerate(xs):
            if j != i:
                term *= (x - xj) / (xi - xj)
        total += term
    return total


def _anchors(np: MotorNameplate) -> tuple[float, ...]:
    """AMO class SPECIFIED: the EE anchors scaled so eta(1.0) is the nameplate value (§2.3)."""
    scale = np.efficiency / _EE_ETAS[3]
    return tuple(eta * scale for eta in _EE_ETAS)


def motor_losses_kw(beta: float, np: MotorNameplate) -> float:
    """Motor losses: AMO loss model below 25 % load (kWloss0 = 0.8·kWloss25, linear), else
    shaft·(1/eta - 1) on the part-load efficiency curve (§2.3)."""
    etas = _anchors(np)
    if beta <= 0.25:
        loss25 = (1.0 / etas[0] - 1.0) * np.rated_kw * 0.25
        return 0.8 * loss25 + 0.2 * loss25 * max(beta, 0.0) / 0.25
    return beta * np.rated_kw * (1.0 / motor_efficiency(beta, np) - 1.0)


def motor_efficiency(beta: float, np: MotorNameplate) -> float:
    """Part-load efficiency, AMO MotorEfficiency (§2.3): quartic through the 25..125 % anchors,
    quadratic through 75/100/125 % above that (capped at 150 %), loss model below 25 %."""
    if beta <= 0.0:
        return 0.0
    etas = _anchors(np)
    if beta <= 0.25:
        shaft = beta * np.rated_kw
        return shaft / (shaft + motor_losses_kw(beta, np))
    if beta <= 1.25:
        return _lagrange(beta, _EE_LOADS, etas)
    return _lagrange(min(beta, 1.5), _EE_LOADS[2:], etas[2:])


def motor_input_kw(beta: float, np: MotorNameplate) -> float:
    """Electrical input P = beta·P_N + losses; equals beta·P_N/eta(beta) (§2.2b P_mod)."""
    return max(beta, 0.0) * np.rated_kw + motor_losses_kw(beta, np)


def motor_reactive_kvar(beta: float, np: MotorNameplate) -> float:
    """Q = Q0 + beta²·(Q_N - Q0), GB 12497-1995 formula (2) (cn_standards.md §1), with
    Q_N = (P_N/eta_N)·tan(phi_N) and Q0 from the no-load current I0 (AMO ~27.6 % FLA)."""
    p0 = motor_losses_kw(0.0, np)
    s0 = SQRT3 * np.rated_voltage_v * NO_LOAD_CURRENT_FRACTION * np.full_load_current_a / 1000.0
    q0 = math.sqrt(max(s0 * s0 - p0 * p0, 0.0))
    qn = np.rated_kw / np.efficiency * math.tan(math.acos(np.power_factor))
    return q0 + beta * beta * (qn - q0)


def poles(np: MotorNameplate) -> int:
    """Pole count from rated speed: AMO Poles.cpp fallback floor(floor(120f/rpm)/2)·2 (§2.1)."""
    return max(2, int(int(120.0 * np.frequency_hz / np.rated_speed_rpm) / 2) * 2)


def motor_speed_rpm(
    beta: float, np: MotorNameplate, voltage_v: float, frequency_hz: float
) -> float:
    """Slip method inverted: slip ∝ load·(V_r/V)², n_s = 120·f/p (§2.2d)."""
    p = poles(np)
    rated_slip = 120.0 * np.frequency_hz / p - np.rated_speed_rpm
    return 120.0 * frequency_hz / p - rated_slip * beta * (np.rated_voltage_v / voltage_v) ** 2


def motor_point(
    beta: float, np: MotorNameplate, voltage_v: float, frequency_hz: float
) -> MotorPoint:
    """Everything a meter on a running motor sees at shaft load factor beta.

    Current from P = sqrt(3)·V·I·PF (§1), PF = P/sqrt(P² + Q²)."""
    p = motor_input_kw(beta, np)
    q = motor_reactive_kvar(beta, np)
    pf = p / math.hypot(p, q)
    return MotorPoint(
        beta=beta,
        input_kw=p,
        losses_kw=motor_losses_kw(beta, np),
        efficiency=motor_efficiency(beta, np),
        power_factor=pf,
        current_a=p * 1000.0 / (SQRT3 * voltage_v * pf),
        speed_rpm=motor_speed_rpm(beta, np, voltage_v, frequency_hz),
    )


def motor_beta_for_input(input_kw: float, np: MotorNameplate) -> float:
    """beta whose modelled input equals input_kw: the AMO POWER method (§2.2b), by bisection."""
    lo, hi = 0.0, 1.5
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if motor_input_kw(mid, np) < input_kw else (lo, mid)
    return (lo + hi) / 2.0


def motor_winding_temp_c(losses_kw: float, np: MotorNameplate, unbalance_pct: float) -> float:
    """Steady winding temperature: rise ∝ losses, plus ~2·(%VU)² % extra heating (§1)."""
    rise = RATED_WINDING_RISE_K * losses_kw / motor_losses_kw(1.0, np)
    return AMBIENT_C + rise * (1.0 + 0.02 * unbalance_pct**2)


def nema_unbalance_pct(a: float, b: float, c: float) -> float:
    """NEMA %VU = 100·max|V_i - mean|/mean (§1, not (max - min)/mean)."""
    mean = (a + b + c) / 3.0
    return 100.0 * max(abs(a - mean), abs(b - mean), abs(c - mean)) / mean


def three_phase(
    mean_v: float, mean_i: float, unbalance_pct: float, current_gain: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Line voltages (ab, bc, ca) with NEMA unbalance `unbalance_pct`, and phase currents whose
    deviations are `current_gain` times larger; both keep their means."""
    u = unbalance_pct / 100.0
    pattern = (0.5, 0.5, -1.0)
    volts = tuple(mean_v * (1.0 + u * d) for d in pattern)
    amps = tuple(mean_i * max(1.0 - current_gain * u * d, 0.0) for d in pattern)
    return (volts[0], volts[1], volts[2]), (amps[0], amps[1], amps[2])


def current_unbalance_gain(current_a: float, np: MotorNameplate) -> float:
    """I2/I ≈ (V2/V)·I_LR/I: the negative-sequence impedance is about the locked-rotor one, so a
    lightly loaded motor shows a larger current unbalance for the same voltage unbalance."""
    return min(LOCKED_ROTOR_RATIO * np.full_load_current_a / max(current_a, 1e-9), 15.0)


@dataclass(frozen=True)
class RotodynamicPoint:
    flow_m3h: float
    pressure_rise_kpa: float
    shaft_kw: float
    efficiency: float


def rotodynamic_point(
    flow_ratio: float,
    bep_flow_m3h: float,
    bep_shaft_kw: float,
    bep_efficiency: float,
    shutoff_ratio: float,
) -> RotodynamicPoint:
    """Fixed-speed pump or fan on its curve at q = Q/Q_BEP (left of 1 = throttled).

    Pressure rise dp = dp_BEP·(h0 - (h0 - 1)·q²) with shut-off ratio h0, shaft power
    P = P_BEP·(p0 + (1 - p0)·q) with p0 = 2·h0 - 2, the value that puts the efficiency
    maximum exactly at q = 1 [INFERRED curve shapes]. dp_BEP follows from fluid power
    P_fluid = Q·dp = eta·P_shaft (SI form of AMO FluidPower, §3.2 and §4.2)."""
    q = min(max(flow_ratio, 0.0), 1.4)
    flow_m3s = q * bep_flow_m3h / 3600.0
    dp_bep_pa = bep_efficiency * bep_shaft_kw * 1000.0 / (bep_flow_m3h / 3600.0)
    dp_pa = dp_bep_pa * (shutoff_ratio - (shutoff_ratio - 1.0) * q * q)
    p0 = 2.0 * shutoff_ratio - 2.0
    shaft_kw = bep_shaft_kw * (p0 + (1.0 - p0) * q)
    return RotodynamicPoint(
        q * bep_flow_m3h, dp_pa / 1000.0, shaft_kw, flow_m3s * dp_pa / (shaft_kw * 1000.0)
    )


def head_m(pressure_rise_kpa: float, density_kg_m3: float = 998.0) -> float:
    """Pump head from pressure rise: H = dp/(rho·g) (§3.2 SI fluid power)."""
    return pressure_rise_kpa * 1000.0 / (density_kg_m3 * G)


@dataclass(frozen=True)
class Receiver:
    """Compressed-air header state of a load/unload compressor (§5.3)."""

    pressure_kpa: float
    loaded: bool


def advance_receiver(
    state: Receiver,
    dt_s: float,
    demand_m3h: float,
    fad_m3h: float,
    storage_m3: float,
    band_kpa: tuple[float, float],
    running: bool = True,
) -> tuple[Receiver, float]:
    """Advance a load/unload compressor by dt_s; return the new state and the seconds loaded.

    Isothermal receiver: dp/dt = (Q_in - demand)·p_atm/V, the storage relation of AMO
    CompressedAir.h (§5.4). The compressor loads at the cut-in pressure and unloads at
    cut-out, so with no production demand the loaded share is leak/FAD (§5.4 T/(T + t))."""
    cut_in, cut_out = band_kpa
    p, loaded, left, loaded_s = state.pressure_kpa, state.loaded and running, dt_s, 0.0
    while left > 1e-9:
        if running and (p >= cut_out or p <= cut_in):
            loaded = p <= cut_in
        rate = ((fad_m3h if loaded else 0.0) - demand_m3h) * P_ATM_KPA / (3600.0 * storage_m3)
        target = cut_out if loaded else cut_in
        towards_band_edge = running and rate != 0.0 and (rate > 0.0) == loaded
        crossing = (target - p) / rate if towards_band_edge else math.inf
        step = min(left, crossing)
        p = target if step == crossing else max(p + rate * step, 0.0)
        loaded_s += step if loaded else 0.0
        left -= step
    return replace(state, pressure_kpa=p, loaded=loaded), loaded_s


@dataclass(frozen=True)
class TransformerNameplate:
    rated_kva: float
    no_load_loss_kw: float
    load_loss_kw: float
    secondary_voltage_v: float
    impedance_pct: float = 4.5  # u_k of a 10 kV distribution transformer [INFERRED]


@dataclass(frozen=True)
class TransformerPoint:
    beta: float
    apparent_kva: float
    output_kw: float
    losses_kw: float
    input_kw: float
    efficiency: float
    voltage_v: float
    current_a: float


def transformer_point(
    beta: float, power_factor: float, np: TransformerNameplate
) -> TransformerPoint:
    """Losses P0 + beta²·Pk and efficiency (§6.2); secondary voltage after the usual regulation
    estimate dV% = beta·(u_r·cos(phi) + u_x·sin(phi)) [INFERRED]; I = S/(sqrt(3)·V)."""
    s = beta * np.rated_kva
    out = s * power_factor
    losses = np.no_load_loss_kw + beta * beta * np.load_loss_kw
    u_r = 100.0 * np.load_loss_kw / np.rated_kva
    u_x = math.sqrt(max(np.impedance_pct**2 - u_r**2, 0.0))
    sin_phi = math.sqrt(max(1.0 - power_factor**2, 0.0))
    volts = np.secondary_voltage_v * (1.0 - beta * (u_r * power_factor + u_x * sin_phi) / 100.0)
    eta = out / (out + losses) if out > 0 else 0.0
    return TransformerPoint(
        beta, s, out, losses, out + losses, eta, volts, s * 1000 / (SQRT3 * volts)
    )


def transformer_oil_temp_c(beta: float, np: TransformerNameplate) -> float:
    """Steady top-oil temperature, IEC 60076-7 ONAN: 55 K·((1 + R·beta²)/(1 + R))^0.8 with
    R = Pk/P0 [INFERRED: the thermal model is outside domain.md §6]."""
    r = np.load_loss_kw / np.no_load_loss_kw
    return AMBIENT_C + 55.0 * math.pow((1.0 + r * beta * beta) / (1.0 + r), 0.8)
