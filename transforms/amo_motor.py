"""Induction-motor part-load model and load estimation (AMO-Tools-Suite port, kW/SI inputs).

Python port of ORNL-AMO/AMO-Tools-Suite (Copyright 2018, UT-Battelle, LLC; licence and
notice in `transforms/AMO-Tools-Suite-NOTICE.txt`) files `src/calculator/motor/`
`MotorEfficiency.cpp`, `EstimateFLA.cpp`, `MotorCurrent.cpp`, `MotorPowerFactor.cpp`,
`MotorShaftPower.cpp`, `Poles.cpp`, `OptimalMotorSize.cpp` and
`src/calculator/util/CurveFitVal.cpp`, modified by the Wattline project contributors:
vectorised in Polars (1 % curves per motor, join_asof brackets), SI inputs (kW nameplates,
hp = kW / 0.746, AMO's own factor, so β·P_N round-trips), and the changes listed below.

Behaviour is that of commit 1520832 as pinned by domain.md §2-§11 and its vectors: the
SPECIFIED efficiency is a fraction, EstimateFLA picks EE or SE by nearest full-load η,
and pole bands end at synchronous speed (later Poles.cpp widens them to +10 %; the
EstimateFLA vector at 1900 rpm tells the two apart).

Deliberate differences from AMO:
- kept for parity: the SPECIFIED/SE branch's 100 % anchor is SE[125 %]·C, so
  η(1.0) = 0.99·η_spec there (domain.md §11.1);
- pf(0) uses the rated voltage, not a fixed 460 V (`MotorPowerFactor.cpp` β = 0 branch), so
  input_kw(0) is the no-load loss at any voltage;
- POWER: at or below the no-load input the motor is idle; between it and the 1 % step the
  bracket starts at (0, kWloss0) rather than AMO's (0, 0);
- CURRENT: idle at or below (1 + margin) × the voltage-adjusted no-load current, where AMO
  returns β < 0 (domain.md §11.2);
- estimates saturate at β = 1.5, the end of the model, where AMO divides by ~0;
- PREMIUM uses the 6-pole FLA multipliers above 6 poles (AMO indexes past its 3 columns);
- right-sizing uses IEC/GB kW ratings and "≥" instead of AMO's hp list and "<".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import ClassVar, Final

import polars as pl

from transforms import amo_motor_data as data

HP_KW: Final = 0.746
"""kW per hp as used throughout AMO's motor code (`MotorEfficiency.cpp`, `MotorShaftPower.cpp`)."""
BASE_VOLTAGE_V: Final = 460.0
"""Voltage base of the EstimateFLA coefficient tables (`EstimateFLA.cpp`)."""
STEPS: Final = 150
"""Curve resolution: β = k / 100 for k = 0..150, as AMO's 1 % stepping (`MotorShaftPower.cpp`)."""
MAX_BETA: Final = 1.5
"""End of the AMO model; estimates saturate here instead of extrapolating (AMO divides by ~0)."""


class EfficiencyClass(StrEnum):
    ENERGY_EFFICIENT = "ENERGY_EFFICIENT"
    STANDARD = "STANDARD"
    PREMIUM = "PREMIUM"
    SPECIFIED = "SPECIFIED"


_BANDS: Final = {  # synchronous-speed bands, upper bound = synchronous speed (domain.md §2.1)
    60: (
        (3240, 3600, 2),
        (1620, 1800, 4),
        (1080, 1200, 6),
        (810, 900, 8),
        (648, 720, 10),
        (540, 600, 12),
    ),
    50: (
        (2700, 3000, 2),
        (1350, 1500, 4),
        (900, 1000, 6),
        (675, 750, 8),
        (540, 600, 10),
        (450, 500, 12),
    ),
}


def poles(rpm: float, line_frequency_hz: float = 50.0) -> int:
    """Pole count from rated speed (`Poles.cpp`): band lookup, else AMO's 60 Hz fallback.

    The fallback floor(floor(7200/rpm)/2)·2 is AMO's for both frequencies; > 3600 rpm is
    2 poles and the result is capped at 12.
    """
    for low, high, p in _BANDS[60 if line_frequency_hz > 55 else 50]:
        if low <= rpm <= high:
            return p
    if rpm > 3600:
        return 2
    return min(12, int(math.floor(math.floor(7200 / rpm) / 2) * 2))


def fit_coefficients(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    """Least-squares polynomial of degree len(xs) − 1 (`CurveFitVal.cpp`), op for op.

    Normal equations solved by AMO's Gaussian elimination, kept verbatim (rather than
    an exact Lagrange form) so results match upstream to rounding.
    """
    m = len(xs)
    sx = [sum(x**i for x in xs) for i in range(2 * m - 1)]
    sy = [sum(x**i * y for x, y in zip(xs, ys, strict=True)) for i in range(m)]
    aug = [[sx[i + j] for j in range(m)] + [sy[i]] for i in range(m)]
    for i in range(m):
        for k in range(i + 1, m):
            if aug[i][i] < aug[k][i]:
                aug[i], aug[k] = aug[k], aug[i]
    for i in range(m - 1):
        for k in range(i + 1, m):
            t = aug[k][i] / aug[i][i]
            aug[k] = [a - t * b for a, b in zip(aug[k], aug[i], strict=True)]
    coeff = [0.0] * m
    for i in range(m - 1, -1, -1):
        c = aug[i][m]
        for j in range(m):
            if j != i:
                c = c - aug[i][j] * coeff[j]
        coeff[i] = c / aug[i][i]
    return coeff


def _poly(coeff: Sequence[float], x: float) -> float:
    total = 0.0
    for power, c in enumerate(coeff):
        total += c * x**power
    return total


def _double_exp(table: data.Table, col: int, hp: float) -> float:
    a, b, c, d, e = (row[col] for row in table)
    return a + b * math.exp(-c * hp) + d * math.exp(-e * hp)


def class_anchors(hp: float, n_poles: int, cls: EfficiencyClass) -> tuple[float, ...]:
    """η at 25/50/75/100/125 % for a tabulated class (`MotorEfficiency::calculate25intervals`).

    η_125 = 0.99·η_100; PREMIUM has tables for 2-6 poles only, so larger counts use 6.
    """
    index = n_poles // 2 - 1
    if cls is EfficiencyClass.PREMIUM:
        index = min(index, 2)
    table = data.EFFICIENCY_TABLES[cls.value][0 if hp <= 125 else 1][index]
    eff = [_double_exp(table, i, hp) / 100 for i in range(4)]
    return (*eff, 0.99 * eff[3])


def efficiency_anchors(
    hp: float, n_poles: int, cls: EfficiencyClass, specified: float | None = None
) -> tuple[float, ...]:
    """Anchors for any class; SPECIFIED rescales the nearer of EE/SE (`MotorEfficiency.cpp` L28–51).

    The SE branch reproduces AMO's quirk of using SE[125 %] for the 100 % anchor.
    """
    if cls is not EfficiencyClass.SPECIFIED:
        return class_anchors(hp, n_poles, cls)
    if specified is None:
        raise ValueError("SPECIFIED efficiency class needs a rated efficiency")
    ee = class_anchors(hp, n_poles, EfficiencyClass.ENERGY_EFFICIENT)
    se = class_anchors(hp, n_poles, EfficiencyClass.STANDARD)
    if abs(ee[3] - specified) > abs(se[3] - specified):
        c = specified / se[3]
        return (se[0] * c, se[1] * c, se[2] * c, se[4] * c, se[4] * c)
    c = specified / ee[3]
    return tuple(e * c for e in ee)


def fla_anchors(
    hp: float, n_poles: int, cls: EfficiencyClass, specified: float | None = None
) -> tuple[tuple[float, ...], float]:
    """Current at 0..125 % on the 460 V base, and the estimated FLA (`EstimateFLA.cpp`).

    Returns (six anchors at 460 V, FLA at 460 V). SPECIFIED picks the class whose
    full-load η is nearer and scales FLA by η_class / η_spec, per the file's own comment.
    """
    p = n_poles // 2 - 1
    basic = hp * _double_exp(data.FLA_BASIC, p, hp)
    if cls is EfficiencyClass.SPECIFIED:
        if specified is None:
            raise ValueError("SPECIFIED efficiency class needs a rated efficiency")
        ee_fl = class_anchors(hp, n_poles, EfficiencyClass.ENERGY_EFFICIENT)[3]
        se_fl = class_anchors(hp, n_poles, EfficiencyClass.STANDARD)[3]
        use_se = abs(ee_fl - specified) > abs(se_fl - specified)
        table = data.FLA_SE_MULTIPLIERS if use_se else data.FLA_EE_MULTIPLIERS
        scale = (se_fl if use_se else ee_fl) / specified
    else:
        table = {
            EfficiencyClass.ENERGY_EFFICIENT: data.FLA_EE_MULTIPLIERS,
            EfficiencyClass.STANDARD: data.FLA_SE_MULTIPLIERS,
            EfficiencyClass.PREMIUM: data.FLA_PE_MULTIPLIERS,
        }[cls]
        scale = 1.0
    col = min(p, 2) if cls is EfficiencyClass.PREMIUM else p
    class_fla = _double_exp(table, col, hp) * basic
    part = data.CURRENT_PART_LOAD[p]
    anchors = tuple(class_fla * _double_exp(part, i, hp) for i in range(6))
    return anchors, anchors[4] * scale


@dataclass(frozen=True)
class MotorNameplate:
    """Registry nameplate of one motor in SI units (column names of schemas/registry.py)."""

    rated_power_kw: float
    rated_voltage_v: float
    rated_current_a: float
    rated_speed_rpm: float
    rated_efficiency: float | None = None
    rated_power_factor: float | None = None
    service_factor: float | None = None
    line_frequency_hz: float = 50.0
    efficiency_class: EfficiencyClass = EfficiencyClass.SPECIFIED

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "rated_power_kw",
        "rated_voltage_v",
        "rated_current_a",
        "rated_speed_rpm",
    )

    @classmethod
    def from_registry(
        cls,
        row: Mapping[str, object],
        *,
        line_frequency_hz: float = 50.0,
        efficiency_class: EfficiencyClass = EfficiencyClass.SPECIFIED,
    ) -> MotorNameplate | list[str]:
        """Build from a registry row, or return the names of the missing fields.

        SPECIFIED (nameplate η) is the default because that is how Chinese IE motors are
        configured (domain.md §11.7); it then needs `rated_efficiency`. Blank/NaN = missing.
        """
        get = {k: _number(row.get(k)) for k in (*cls.REQUIRED, *_OPTIONAL)}
        needed = cls.REQUIRED
        if efficiency_class is EfficiencyClass.SPECIFIED:
            needed += ("rated_efficiency",)
        missing = [k for k in needed if get[k] is None]
        power, volts, amps, rpm = (get[k] for k in cls.REQUIRED)
        if missing or power is None or volts is None or amps is None or rpm is None:
            return missing
        return cls(
            power,
            volts,
            amps,
            rpm,
            rated_efficiency=get["rated_efficiency"],
            rated_power_factor=get["rated_power_factor"],
            service_factor=get["service_factor"],
            line_frequency_hz=line_frequency_hz,
            efficiency_class=efficiency_class,
        )

    @property
    def rated_hp(self) -> float:
        return self.rated_power_kw / HP_KW

    @property
    def poles(self) -> int:
        return poles(self.rated_speed_rpm, self.line_frequency_hz)

    @cached_property
    def model(self) -> MotorModel:
        """AMO anchors: `MotorEfficiency`, and `MotorCurrent.cpp` L38–43 (460 V → V_r → FLA)."""
        hp, p, spec = self.rated_hp, self.poles, self.rated_efficiency
        raw, _ = fla_anchors(hp, p, self.efficiency_class, spec)
        at_v = [a * BASE_VOLTAGE_V / self.rated_voltage_v for a in raw]
        cur = tuple(a * self.rated_current_a / at_v[4] for a in at_v)
        eff = efficiency_anchors(hp, p, self.efficiency_class, spec)
        return MotorModel(hp, self.rated_voltage_v, eff, cur)


_OPTIONAL: Final = ("rated_efficiency", "rated_power_factor", "service_factor")


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not math.isnan(v) else None


@dataclass(frozen=True)
class MotorModel:
    """η, current, pf and input kW versus load β for one motor (AMO's 1 % model)."""

    hp: float
    voltage_v: float
    eff: tuple[float, ...]
    cur: tuple[float, ...] = ()

    @cached_property
    def _eff_fits(self) -> tuple[list[float], list[float]]:
        e = self.eff
        return fit_coefficients(_X5, e), fit_coefficients(_X5[2:], e[2:])

    @cached_property
    def _cur_fits(self) -> tuple[list[float], list[float], list[float]]:
        c = self.cur
        return (
            fit_coefficients((0.0, 0.25, 0.5), c[:3]),
            fit_coefficients(_X5, c[1:]),
            fit_coefficients(_X5[2:], c[3:]),
        )

    @property
    def kw_loss25(self) -> float:
        return ((1 / self.eff[0]) - 1) * self.hp * HP_KW * 0.25

    @property
    def kw_loss0(self) -> float:
        """No-load loss = 0.8 × loss at 25 % (`MotorEfficiency.cpp` L66–67)."""
        return 0.8 * self.kw_loss25

    def efficiency(self, beta: float) -> float:
        """Loss model below 25 %, quartic to 125 %, quadratic to 150 % (`MotorEfficiency.cpp`)."""
        if beta < 0.251:
            loss = self.kw_loss0 + beta * 100 * (self.kw_loss25 - self.kw_loss0) / 25
            shaft = self.hp * HP_KW * beta
            return shaft / (loss + shaft)
        if beta < 1.251:
            return _poly(self._eff_fits[0], beta)
        return _poly(self._eff_fits[1], min(beta, 1.5))

    def current(self, beta: float) -> float:
        """Line current at rated voltage (`MotorCurrent.cpp` L44–56, ±0.001 band edges)."""
        beta = min(beta, 1.5)
        if beta <= 0.25 or abs(beta - 0.25) < 0.001:
            return _poly(self._cur_fits[0], beta)
        if beta <= 1.25 or abs(beta - 1.25) < 0.001:
            return _poly(self._cur_fits[1], beta)
        return _poly(self._cur_fits[2], beta)

    def power_factor(self, beta: float) -> float:
        """pf = shaft / (I·η·V·√3) (`MotorPowerFactor.cpp` L35); at β = 0 no-load loss / kVA."""
        if abs(beta) < 0.001:
            return self.kw_loss0 / (self.voltage_v * math.sqrt(3) * self.current(0.0) / 1000)
        return (beta * self.hp * HP_KW) / (
            self.current(beta) * self.efficiency(beta) * self.voltage_v * math.sqrt(3) / 1000
        )

    def input_kw(self, beta: float) -> float:
        """Modelled electrical input √3·V·I·pf (`MotorPower.cpp`); = β·P_N/η for β > 0."""
        return math.sqrt(3) * self.voltage_v * self.current(beta) * self.power_factor(beta) / 1000

    @cached_property
    def rows(self) -> tuple[tuple[float, float, float, float, float], ...]:
        """(β, η, I, P_in, pf) at β = k/100, k = 0..150: the table every estimator reads."""
        return tuple(
            (b, self.efficiency(b), self.current(b), self.input_kw(b), self.power_factor(b))
            for b in (k / 100 for k in range(STEPS + 1))
        )


_X5: Final = (0.25, 0.5, 0.75, 1.0, 1.25)


@dataclass(frozen=True)
class LoadEstimate:
    """One estimate: β (fraction of rated output), η, kW; pf and A where the method yields them."""

    beta: float
    efficiency: float
    shaft_kw: float
    input_kw: float
    method: str
    idle_no_load: bool
    power_factor: float | None = None
    current_a: float | None = None


def _bracket(values: Sequence[float], x: float) -> int:
    """Last step k with running-max(values) ≤ x, within 0..149: AMO's "first step above x" − 1."""
    k, top = 0, -math.inf
    for i, v in enumerate(values):
        top = max(top, v)
        if top > x:
            break
        k = i
    return min(k, STEPS - 1)


def load_from_power(
    np: MotorNameplate, power_kw: float, voltage_v: float | None = None
) -> LoadEstimate:
    """AMO POWER method (`MotorShaftPower.cpp` L11–61), domain.md §2.2(b).

    β and η are interpolated between the 1 % steps bracketing the measured kW; field voltage
    only changes pf and so the current (L45–49, L56). At or below the modelled no-load input
    the motor is idle; β saturates at 1.5, the end of the model.
    """
    rows, vr = np.model.rows, np.rated_voltage_v
    if power_kw <= rows[0][3]:
        return LoadEstimate(0.0, 0.0, 0.0, power_kw, "power_curve", True)
    k = _bracket([r[3] for r in rows], power_kw)
    (b1, e1, _, p1, pf1), (b2, e2, _, p2, pf2) = rows[k], rows[k + 1]
    fi = min(b1 + ((power_kw - p1) / (p2 - p1)) / 100, MAX_BETA)
    w = 100 * (fi - b1)
    v = voltage_v or vr
    a1, a2 = (
        pf / (((v / vr - 1) * (-2 * b + 1) + 1) * (v / vr)) for pf, b in ((pf1, b1), (pf2, b2))
    )
    pf, eff = a1 + w * (a2 - a1), e1 + w * (e2 - e1)
    current = power_kw / (v * math.sqrt(3) * pf / 1000)
    return LoadEstimate(fi, eff, power_kw * eff, power_kw, "power_curve", False, pf, current)


def load_from_current(
    np: MotorNameplate, current_a: float, voltage_v: float, no_load_margin: float = 0.05
) -> LoadEstimate:
    """AMO CURRENT method (`MotorShaftPower.cpp` L62–120) with a no-load guard.

    Modelled currents are voltage-adjusted by (V/V_r − 1)(1 − 2β) + 1 (L106–107). At or below
    (1 + margin) × the adjusted no-load current the motor is idle, where AMO would return
    β < 0 (domain.md §2.2(c), §11.2: 60 A on FLA 225.8 A gives β = −0.086).
    """
    rows = np.model.rows
    a = voltage_v / np.rated_voltage_v - 1
    if current_a <= (1 + no_load_margin) * (a + 1) * rows[0][2]:
        return LoadEstimate(0.0, 0.0, 0.0, rows[0][3], "current", True, None, current_a)
    k = _bracket([r[2] for r in rows], current_a)
    (b1, e1, i1, p1, _), (b2, e2, i2, p2, _) = rows[k], rows[k + 1]
    adj1, adj2 = (a * (1 - 2 * b1) + 1) * i1, (a * (1 - 2 * b2) + 1) * i2
    fi = min(max(b1 + ((current_a - adj1) / (adj2 - adj1)) / 100, 0.0), MAX_BETA)
    w = 100 * (fi - b1)
    eff, p = e1 + w * (e2 - e1), p1 + w * (p2 - p1)
    pf = p / (current_a * voltage_v * math.sqrt(3) / 1000)
    return LoadEstimate(fi, eff, p * eff, p, "current", False, pf, current_a)


def load_from_slip(
    np: MotorNameplate,
    speed_rpm: float,
    voltage_v: float | None = None,
    frequency_hz: float | None = None,
) -> LoadEstimate:
    """Voltage-compensated slip (Motors@Work; domain.md §2.2(d)), n_s from measured frequency.

    β = (n_s − n) / (n_s,rated − n_fl) · (V/V_r)², η read from the 1 % curve. No slip
    (n ≥ n_s) means idle. DOE: use only when kW is not measured.
    """
    p, f = np.poles, np.line_frequency_hz
    slip_fl = 120 * f / p - np.rated_speed_rpm
    if slip_fl <= 0:
        raise ValueError(f"rated speed {np.rated_speed_rpm} rpm is not below synchronous speed")
    volts = (voltage_v / np.rated_voltage_v) ** 2 if voltage_v is not None else 1.0
    beta = min((120 * (frequency_hz or f) / p - speed_rpm) / slip_fl * volts, MAX_BETA)
    if beta <= 0:
        return LoadEstimate(0.0, 0.0, 0.0, np.model.kw_loss0, "slip", True)
    k = min(math.floor(beta * 100), STEPS - 1)
    (b1, e1, *_), (_, e2, *_) = np.model.rows[k], np.model.rows[k + 1]
    eff = e1 + 100 * (beta - b1) * (e2 - e1)
    shaft = beta * np.rated_power_kw
    return LoadEstimate(beta, eff, shaft, shaft / eff, "slip", False)


def load_from_power_ratio(power_kw: float, rated_power_kw: float, rated_efficiency: float) -> float:
    """DOE input-power ratio β = P_in / (P_N / η_N) (domain.md §2.2(a)); over-states β a little."""
    return power_kw * rated_efficiency / rated_power_kw


def estimate_load_scalar(
    np: MotorNameplate,
    *,
    power_kw: float | None = None,
    voltage_v: float | None = None,
    current_a: float | None = None,
    speed_rpm: float | None = None,
    frequency_hz: float | None = None,
    no_load_margin: float = 0.05,
) -> LoadEstimate | None:
    """Scalar twin of `estimate_load`: power → curve, else current + voltage, else slip."""
    if power_kw is not None:
        return load_from_power(np, power_kw, voltage_v)
    if current_a is not None and voltage_v is not None:
        return load_from_current(np, current_a, voltage_v, no_load_margin)
    if speed_rpm is not None:
        return load_from_slip(np, speed_rpm, voltage_v, frequency_hz)
    return None


def optimal_size_kw(
    shaft_kw: float, margin: float = 0.0, sizes: Sequence[float] = data.STANDARD_SIZES_KW
) -> float | None:
    """Smallest standard rating ≥ shaft × (1 + margin), None above the list.

    `OptimalMotorSize.cpp` L17–24 with its hp list replaced by IEC/GB kW ratings and its
    strict "<" by "≥" (a load exactly at a rating fits that rating).
    """
    required = shaft_kw * (1 + margin)
    return next((s for s in sizes if s >= required), None)


def resize_saving_kw(
    np: MotorNameplate,
    beta: float,
    *,
    margin: float = 0.0,
    size_kw: float | None = None,
    rated_efficiency: float | None = None,
    input_kw: float | None = None,
) -> float | None:
    """Input kW saved by serving today's shaft load with a right-sized motor (domain.md §2.6 M2).

    ΔP = P_in,now − β·P_N / η_new(β′) with β′ = β·P_N / P_N,new and η_new from the
    replacement's AMO curve. P_in,now is `input_kw` if measured, else the model's. The
    replacement keeps poles and class; a SPECIFIED motor keeps its η relative to EE
    (η_N · η_EE,100(new) / η_EE,100(old)) unless `rated_efficiency` is given [INFERRED].
    None when no standard size fits; ≤ 0 means no saving.
    """
    shaft = beta * np.rated_power_kw
    new_kw = size_kw if size_kw is not None else optimal_size_kw(shaft, margin)
    if new_kw is None:
        return None
    old = np.model
    if input_kw is None:
        input_kw = shaft / old.efficiency(beta) if beta > 0 else old.kw_loss0
    hp, p, cls = new_kw / HP_KW, np.poles, np.efficiency_class
    spec = rated_efficiency
    if spec is not None:
        cls = EfficiencyClass.SPECIFIED
    elif cls is EfficiencyClass.SPECIFIED and np.rated_efficiency is not None:
        ee = EfficiencyClass.ENERGY_EFFICIENT
        spec = np.rated_efficiency * class_anchors(hp, p, ee)[3] / class_anchors(old.hp, p, ee)[3]
    new = MotorModel(hp, np.rated_voltage_v, efficiency_anchors(hp, p, cls, spec))
    b_new = shaft / new_kw
    return input_kw - (shaft / new.efficiency(b_new) if b_new > 0 else new.kw_loss0)


CURVE_SCHEMA: Final = pl.Schema(
    {n: pl.Float64 for n in ("beta", "efficiency", "current_a", "input_kw", "power_factor")}
)
LOAD_COLUMNS: Final = ("beta", "efficiency", "shaft_kw", "load_method", "idle_no_load")
LOAD_METHODS: Final = ("power_curve", "power_ratio", "current", "slip")
MEASURED_COLUMNS: Final = ("power_kw", "voltage_v", "current_a", "speed_rpm", "frequency_hz")
RATING_COLUMNS: Final = ("rated_power_kw", "rated_voltage_v", "rated_speed_rpm", "rated_efficiency")
_VALUES: Final = ("beta", "efficiency", "current_a", "input_kw")


def motor_curve(np: MotorNameplate) -> pl.DataFrame:
    """β = 0 … 1.5 by 0.01 at rated voltage: beta, efficiency, current_a, input_kw, power_factor."""
    return pl.DataFrame(np.model.rows, schema=CURVE_SCHEMA, orient="row")


def motor_curves(nameplates: Mapping[str, MotorNameplate]) -> pl.DataFrame:
    """`motor_curve` of every device, with a leading device_id column.

    A plant has many identical motors, so each distinct nameplate is modelled once.
    """
    curves: dict[MotorNameplate, pl.DataFrame] = {}
    frames = []
    for device, np in nameplates.items():
        if np not in curves:
            curves[np] = motor_curve(np)
        frames.append(curves[np].select(pl.lit(device, pl.String).alias("device_id"), pl.all()))
    empty = pl.DataFrame(schema={"device_id": pl.String, **CURVE_SCHEMA})
    return pl.concat(frames) if frames else empty


def nameplates_from_registry(
    devices: pl.DataFrame,
    *,
    kinds: Sequence[str] = ("motor", "pump", "fan"),
    line_frequency_hz: float = 50.0,
) -> tuple[dict[str, MotorNameplate], dict[str, list[str]]]:
    """Nameplates of the registry's motor-driven devices, and the missing fields of the rest.

    The registry has no line-frequency or efficiency-class column: every device gets
    `line_frequency_hz` and class SPECIFIED (nameplate η), so η_N is required.
    """
    found: dict[str, MotorNameplate] = {}
    missing: dict[str, list[str]] = {}
    for row in devices.filter(pl.col("kind").is_in(list(kinds))).iter_rows(named=True):
        np = MotorNameplate.from_registry(row, line_frequency_hz=line_frequency_hz)
        if isinstance(np, MotorNameplate):
            found[row["device_id"]] = np
        else:
            missing[row["device_id"]] = np
    return found, missing


def motor_curves_for(devices: pl.DataFrame, *, line_frequency_hz: float = 50.0) -> pl.DataFrame:
    """`motor_curves` of every motor, pump and fan whose registry nameplate is complete."""
    return motor_curves(nameplates_from_registry(devices, line_frequency_hz=line_frequency_hz)[0])


def poles_expr(rpm: pl.Expr, line_frequency_hz: pl.Expr) -> pl.Expr:
    """Vectorised `poles` (`Poles.cpp`), as Float64."""
    fallback = ((7200 / rpm).floor() / 2).floor() * 2
    out = pl.when(rpm > 3600).then(2.0).otherwise(fallback.clip(upper_bound=12.0))
    for freq, bands in _BANDS.items():
        is_freq = line_frequency_hz > 55 if freq == 60 else line_frequency_hz <= 55
        for low, high, p in reversed(bands):
            out = pl.when(is_freq & rpm.is_between(low, high)).then(float(p)).otherwise(out)
    return out


def _step_index(beta: pl.Expr) -> pl.Expr:
    return (beta * 100).round().cast(pl.Int32)


def _steps(curves: pl.LazyFrame, tag: str) -> pl.LazyFrame:
    """Steps k = 0..149 with their upper neighbour: {tag}k, {tag}<value>1, {tag}<value>2."""
    upper = [pl.col(v).shift(-1).over("device_id").alias(f"{tag}{v}2") for v in _VALUES]
    return (
        curves.sort("device_id", "beta")
        .select(
            "device_id",
            _step_index(pl.col("beta")).alias(f"{tag}k"),
            *(pl.col(v).alias(f"{tag}{v}1") for v in _VALUES),
            *upper,
        )
        .filter(pl.col(f"{tag}k") < STEPS)
    )


def _join_bracket(
    rows: pl.LazyFrame,
    curves: pl.LazyFrame,
    measured: str,
    value: str,
    tag: str,
    values: Sequence[str] = _VALUES,
) -> pl.LazyFrame:
    """Add the steps bracketing `measured`: last k with running-max(`value`) ≤ it (`_bracket`).

    Written for millions of rows: only a narrow (row, device, measurement) frame is sorted
    for the as-of join, which returns each row's index into the flat, device-sorted curve
    table; the bracket's values are then gathered by index rather than joined. A sentinel
    key below every curve gives rows under the first step k = 0, as `_bracket` does.
    """
    flat = curves.sort("device_id", "beta").collect().with_row_index("_flat")
    frame = rows.collect()
    if flat.is_empty():
        nulls = [pl.lit(None, pl.Int32).alias(f"{tag}k")] + [
            pl.lit(None, pl.Float64).alias(f"{tag}{v}{n}") for v in _VALUES for n in (0, 1, 2)
        ]
        return frame.lazy().with_columns(nulls)
    first = flat.group_by("device_id").agg(pl.col("_flat").min())
    keys = (
        pl.concat(
            [
                flat.select(
                    "device_id",
                    pl.col(value).cum_max().over("device_id").alias("_key"),
                    "_flat",
                    pl.col("_flat").min().over("device_id").alias("_first"),
                ),
                first.select(
                    "device_id",
                    pl.lit(float("-inf")).alias("_key"),
                    "_flat",
                    pl.col("_flat").alias("_first"),
                ),
            ],
            how="vertical_relaxed",
        )
        .with_columns(_h=pl.col("device_id").hash())
        .drop("device_id")
        .sort("_key", "_flat")
    )
    hit = (  # sorted narrow: a row position, a 64-bit device key and the measurement
        frame.select(pl.col("device_id").hash().alias("_h"), measured)
        .with_row_index("_pos")
        .sort(measured, nulls_last=True)
        .join_asof(keys, left_on=measured, right_on="_key", by="_h", check_sortedness=False)
        .sort("_pos")
    )
    idx = hit["_flat"]
    step = flat["beta"].gather(idx)
    over = (_step_index_series(step) - (STEPS - 1)).clip(lower_bound=0)
    idx = idx - over.cast(idx.dtype)
    lower = idx.fill_null(0)
    present = idx.is_not_null()
    missing = ~present
    anything_missing = bool(missing.any())

    def pick(column: str, at: pl.Series, name: str) -> pl.Series:
        got = flat[column].gather(at).alias(name)
        return got.set(missing, None) if anything_missing else got

    k = _step_index_series(flat["beta"].gather(lower)).alias(f"{tag}k")
    cols = [k.set(missing, None) if anything_missing else k]
    zero = hit["_first"].fill_null(0)
    for v in values:
        cols.append(pick(v, lower, f"{tag}{v}1"))
        cols.append(pick(v, lower + 1, f"{tag}{v}2"))
        cols.append(pick(v, zero, f"{tag}{v}0"))
    return frame.hstack(cols).lazy()


def _step_index_series(beta: pl.Series) -> pl.Series:
    return (beta * 100).round().cast(pl.Int32)


def _with_constants(rows: pl.LazyFrame, curves: pl.LazyFrame, line_hz: float) -> pl.LazyFrame:
    """Nameplate constants per row (_pn, _vr, _nfl, _etan, _fline, _poles) and no-load I, P."""
    schema = rows.collect_schema()
    freq = pl.col("line_frequency_hz") if "line_frequency_hz" in schema else pl.lit(None)
    absent = [pl.lit(None, pl.Float64).alias(c) for c in RATING_COLUMNS if c not in schema]
    no_load = curves.filter(pl.col("beta") == 0).select(
        "device_id", pl.col("current_a").alias("_i0"), pl.col("input_kw").alias("_p0")
    )
    return (
        rows.with_columns(absent)
        .with_columns(
            _pn=pl.col("rated_power_kw"),
            _vr=pl.col("rated_voltage_v"),
            _nfl=pl.col("rated_speed_rpm"),
            _etan=pl.col("rated_efficiency"),
            _fline=freq.cast(pl.Float64).fill_null(line_hz),
        )
        .with_columns(_poles=poles_expr(pl.col("_nfl"), pl.col("_fline")))
        .join(no_load, on="device_id", how="left")
    )


def _slip_beta() -> pl.Expr:
    c = pl.col
    slip_fl = 120 * c("_fline") / c("_poles") - c("_nfl")
    both = c("voltage_v").is_not_null() & c("_vr").is_not_null()
    volts = pl.when(both).then((c("voltage_v") / c("_vr")) ** 2).otherwise(1.0)
    n_s = 120 * c("frequency_hz").fill_null(c("_fline")) / c("_poles")
    beta = ((n_s - c("speed_rpm")) / slip_fl * volts).clip(upper_bound=MAX_BETA)
    return pl.when(slip_fl > 0).then(beta)


def _lerp(tag: str, value: str, weight: pl.Expr) -> pl.Expr:
    lo = pl.col(f"{tag}{value}1")
    return lo + weight * (pl.col(f"{tag}{value}2") - lo)


def _branches(margin: float) -> dict[str, tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]]:
    """(β, η, shaft kW, idle) per method, op for op as the scalar `load_from_*` functions."""
    c = pl.col
    p, i, a = c("power_kw"), c("current_a"), c("voltage_v") / c("_vr") - 1
    p1, p2 = c("_p_input_kw1"), c("_p_input_kw2")
    fi_p = (c("_p_beta1") + ((p - p1) / (p2 - p1)) / 100).clip(upper_bound=MAX_BETA)
    eff_p = _lerp("_p_", "efficiency", 100 * (fi_p - c("_p_beta1")))
    adj1 = (a * (1 - 2 * c("_i_beta1")) + 1) * c("_i_current_a1")
    adj2 = (a * (1 - 2 * c("_i_beta2")) + 1) * c("_i_current_a2")
    fi_i = (c("_i_beta1") + ((i - adj1) / (adj2 - adj1)) / 100).clip(0.0, MAX_BETA)
    w_i = 100 * (fi_i - c("_i_beta1"))
    eff_i, p_i = _lerp("_i_", "efficiency", w_i), _lerp("_i_", "input_kw", w_i)
    beta_s = c("_beta_s")
    eff_s = _lerp("_s_", "efficiency", 100 * (beta_s - c("_s_beta1")))
    beta_r = p * c("_etan") / c("_pn")
    return {
        "power_curve": (fi_p, eff_p, p * eff_p, p <= c("_p0")),
        "power_ratio": (beta_r, c("_etan"), beta_r * c("_pn"), beta_r <= 0),
        "current": (fi_i, eff_i, p_i * eff_i, i <= (1 + margin) * (a + 1) * c("_i0")),
        "slip": (beta_s, eff_s, beta_s * c("_pn"), beta_s <= 0),
    }


def _method() -> pl.Expr:
    c = pl.col
    curve, power = c("_p0").is_not_null(), c("power_kw").is_not_null()
    rated = c("_pn").is_not_null() & c("_etan").is_not_null()
    current = c("current_a").is_not_null() & c("voltage_v").is_not_null() & c("_vr").is_not_null()
    return (
        pl.when(power & curve)
        .then(pl.lit("power_curve"))
        .when(power & rated)
        .then(pl.lit("power_ratio"))
        .when(current & curve)
        .then(pl.lit("current"))
        .when(c("_beta_s").is_not_null())
        .then(pl.lit("slip"))
        .otherwise(pl.lit(None, pl.String))
    )


def _outputs(margin: float) -> list[pl.Expr]:
    """Pick each row's method; idle rows get β = η = shaft = 0."""
    method, branches = pl.col("load_method"), _branches(margin)
    out: list[pl.Expr] = []
    for j, name in enumerate(("beta", "efficiency", "shaft_kw")):
        expr = pl.lit(None, pl.Float64)
        for m, b in branches.items():
            value = pl.when(b[3]).then(0.0).otherwise(b[j])
            expr = pl.when(method == m).then(value).otherwise(expr)
        out.append(expr.alias(name))
    idle = pl.lit(None, pl.Boolean)
    for m, b in branches.items():
        idle = pl.when(method == m).then(b[3]).otherwise(idle)
    return [*out, idle.alias("idle_no_load")]


def estimate_load(
    frame: pl.LazyFrame,
    curves: pl.LazyFrame | pl.DataFrame,
    devices: pl.LazyFrame | pl.DataFrame | None = None,
    *,
    line_frequency_hz: float = 50.0,
    no_load_margin: float = 0.05,
) -> pl.LazyFrame:
    """Add beta, efficiency, shaft_kw, load_method and idle_no_load to every row.

    Per row, the best method the data allows (domain.md §13; DOE prefers kW to slip):
    power_kw and a curve → "power_curve" (AMO POWER); power_kw, rated kW and η but no curve
    → "power_ratio" (DOE); current_a + voltage_v → "current" (AMO, no-load guard);
    speed_rpm → "slip" (n_s from frequency_hz when present); otherwise null. The bracketing
    1 % steps come from join_asof by device on the running max of input_kw / current_a,
    then linear interpolation, exactly as the scalar `load_from_*` functions.

    `frame`: device_id and any of MEASURED_COLUMNS (missing ones count as null), plus the
    RATING_COLUMNS (and optional line_frequency_hz) unless `devices` supplies them.
    `curves`: `motor_curves` output. `line_frequency_hz` fills blanks and should match the
    nameplates'. Idle rows get β = η = shaft = 0. Row order and columns are kept.
    """
    cur = curves.lazy()
    have = frame.collect_schema().names()
    frame = frame.with_row_index("__row")
    if devices is not None:
        wanted = (*RATING_COLUMNS, "line_frequency_hz")
        extra = [c for c in devices.collect_schema().names() if c in wanted and c not in have]
        frame = frame.join(devices.lazy().select("device_id", *extra), on="device_id", how="left")
    added = [pl.lit(None, pl.Float64).alias(m) for m in MEASURED_COLUMNS if m not in have]
    base = frame.with_columns(added).collect()
    curve_devices = cur.select(pl.col("device_id").unique()).collect()["device_id"]
    # A row with measured power and a curve uses the POWER method: it takes the fast path
    # (one bracket, no method choice); the rest go through every method.
    by_power = pl.col("power_kw").is_not_null() & pl.col("device_id").is_in(curve_devices.implode())
    powered = _power_curve_rows(base.filter(by_power).lazy(), cur)
    rest = _with_constants(base.filter(~by_power).lazy(), cur, line_frequency_hz).with_columns(
        _beta_s=_slip_beta()
    )
    rest = rest.with_columns(
        _s_k=(pl.col("_beta_s") * 100).floor().clip(0, STEPS - 1).cast(pl.Int32)
    ).join(_steps(cur, "_s_"), on=["device_id", "_s_k"], how="left")
    rest = _join_bracket(rest, cur, "current_a", "current_a", "_i_")
    rest = _join_bracket(rest, cur, "power_kw", "input_kw", "_p_")
    rest = rest.with_columns(load_method=_method()).with_columns(_outputs(no_load_margin))
    keep = [n for n in have if n not in LOAD_COLUMNS]
    columns = ("__row", *keep, *LOAD_COLUMNS)  # narrow before the sort that restores order
    return (
        pl.concat([powered.select(columns), rest.select(columns)], how="vertical_relaxed")
        .sort("__row")
        .drop("__row")
    )


def _power_curve_rows(rows: pl.LazyFrame, curves: pl.LazyFrame) -> pl.LazyFrame:
    """The POWER method alone, for rows known to have power and a curve (`_branches`)."""
    c = pl.col
    p, p1, p2 = c("power_kw"), c("_p_input_kw1"), c("_p_input_kw2")
    fi_p = (c("_p_beta1") + ((p - p1) / (p2 - p1)) / 100).clip(upper_bound=MAX_BETA)
    eff_p = _lerp("_p_", "efficiency", 100 * (fi_p - c("_p_beta1")))
    idle = p <= c("_p_input_kw0")
    picked = ("beta", "efficiency", "input_kw")
    return _join_bracket(rows, curves, "power_kw", "input_kw", "_p_", picked).with_columns(
        beta=pl.when(idle).then(0.0).otherwise(fi_p),
        efficiency=pl.when(idle).then(0.0).otherwise(eff_p),
        shaft_kw=pl.when(idle).then(0.0).otherwise(p * eff_p),
        load_method=pl.lit("power_curve"),
        idle_no_load=idle,
    )


def no_load_frame(curves: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """device_id, no_load_current_a, no_load_loss_kw from each curve's β = 0 row.

    The modelled no-load current at rated voltage and AMO's no-load loss (0.8 × loss at
    25 %): the fallback for GB 12497's I0 and P0 (transforms/gb12497.py) when the
    registry has no measured values.
    """
    return (
        curves.lazy()
        .filter(pl.col("beta") == 0)
        .select(
            "device_id",
            pl.col("current_a").alias("no_load_current_a"),
            pl.col("input_kw").alias("no_load_loss_kw"),
        )
    )


def add_right_sizing(
    frame: pl.DataFrame,
    margin: float,
    *,
    size_on: str = "p75_load_factor",
    load: str = "mean_load_factor",
    input_kw: str | None = "mean_power_kw",
    kinds: Sequence[str] = ("motor", "pump", "fan"),
    line_frequency_hz: float = 50.0,
) -> pl.DataFrame:
    """Add recommended_size_kw and resize_saving_kw to a device-day frame (domain.md §2.6 M2).

    The frame carries the registry columns and a load distribution: the size covers
    `size_on` × P_N × (1 + margin) (`optimal_size_kw`); the saving is `resize_saving_kw` at
    the `load` β with `input_kw` as today's input. Both are null when the nameplate is
    incomplete, the row's `kind` (if any) is not in `kinds`, or no smaller standard size
    fits. One Python call per row: meant for device-days (thousands), not 1-minute buckets.
    """
    sizes: list[float | None] = []
    savings: list[float | None] = []
    for row in frame.iter_rows(named=True):
        np = MotorNameplate.from_registry(row, line_frequency_hz=line_frequency_hz)
        top, beta = row.get(size_on), row.get(load)
        size = None
        wanted = row.get("kind", kinds[0]) in kinds
        if wanted and isinstance(np, MotorNameplate) and top is not None and beta is not None:
            size = optimal_size_kw(top * np.rated_power_kw, margin)
        if size is None or not isinstance(np, MotorNameplate) or size >= np.rated_power_kw:
            sizes.append(None)
            savings.append(None)
            continue
        measured = row.get(input_kw) if input_kw is not None else None
        sizes.append(size)
        savings.append(resize_saving_kw(np, beta or 0.0, size_kw=size, input_kw=measured))
    return frame.with_columns(
        recommended_size_kw=pl.Series(sizes, dtype=pl.Float64),
        resize_saving_kw=pl.Series(savings, dtype=pl.Float64),
    )
