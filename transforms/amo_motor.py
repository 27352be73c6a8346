"""Induction-motor part-load model (AMO-Tools-Suite port, kW/SI inputs): curves per motor.

Python port of ORNL-AMO/AMO-Tools-Suite (Copyright 2018, UT-Battelle, LLC; licence and
notice in `transforms/AMO-Tools-Suite-NOTICE.txt`) files `src/calculator/motor/`
`MotorEfficiency.cpp`, `EstimateFLA.cpp`, `MotorCurrent.cpp`, `MotorPowerFactor.cpp`,
`MotorShaftPower.cpp`, `Poles.cpp`, `OptimalMotorSize.cpp` and
`src/calculator/util/CurveFitVal.cpp`, modified by the Wattline project contributors:
vectorised in Polars (1 % curves per motor, binary-searched brackets), SI inputs (kW
nameplates, hp = kW / 0.746, AMO's own factor, so β·P_N round-trips), and the changes
listed below.

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

from schemas.registry import MOTOR_DRIVEN
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


CURVE_SCHEMA: Final = pl.Schema(
    {n: pl.Float64 for n in ("beta", "efficiency", "current_a", "input_kw", "power_factor")}
)


def motor_curve(np: MotorNameplate) -> pl.DataFrame:
    """β = 0 … 1.5 by 0.01 at rated voltage: beta, efficiency, current_a, input_kw, power_factor."""
    return pl.DataFrame(np.model.rows, schema=CURVE_SCHEMA, orient="row")


def motor_curves(nameplates: Mapping[str, MotorNameplate]) -> pl.DataFrame:
    """`motor_curve` of every device, with a leading device_id column.

    A plant has many identical motors, so each distinct nameplate is modelled once.
    """
    index: dict[MotorNameplate, int] = {}
    curves = []
    for np in nameplates.values():
        if np not in index:
            index[np] = len(index)
            curves.append(motor_curve(np).with_columns(_np=pl.lit(index[np], pl.UInt32)))
    if not curves:
        return pl.DataFrame(schema={"device_id": pl.String, **CURVE_SCHEMA})
    owners = pl.DataFrame(
        {
            "device_id": pl.Series(list(nameplates), dtype=pl.String),
            "_np": pl.Series([index[np] for np in nameplates.values()], dtype=pl.UInt32),
        }
    )
    return owners.join(pl.concat(curves), on="_np", maintain_order="left_right").drop("_np")


def nameplates_from_registry(
    devices: pl.DataFrame,
    *,
    kinds: Sequence[str] = MOTOR_DRIVEN,
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
