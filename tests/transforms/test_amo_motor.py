"""AMO motor model against domain.md §9.1-9.3 and AMO's own unit tests; vectorised == scalar.

AMO vectors are checked at 1e-6 relative (met to ~1e-9; AMO prints 10 digits). The engine
load factors of §9.3 are printed to 4-5 digits and are checked to half a unit of the last.
Nameplates are built in hp through AMO's 0.746 kW/hp, so hp round-trips exactly.
"""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import amo_motor as am
from transforms import amo_motor_frame as amf
from transforms import amo_motor_load as aml
from transforms import amo_motor_sizing as ams
from transforms.amo_motor import EfficiencyClass as E
from transforms.amo_motor import MotorNameplate

AMO_REL = 1e-6


def motor(
    hp: float,
    rpm: float,
    cls: E,
    spec: float | None = None,
    volts: float = 460.0,
    fla: float = 100.0,
    hz: float = 60.0,
) -> MotorNameplate:
    return MotorNameplate(
        hp * am.HP_KW, volts, fla, rpm, spec, line_frequency_hz=hz, efficiency_class=cls
    )


# §9.1 A1-A3, A5 (MotorEfficiency.unit.cpp L4-36, L96-102) and A6 (wasm-motor-test.js L1-12).
@pytest.mark.parametrize(
    ("hp", "rpm", "cls", "load", "eta"),
    [
        *(
            (200, 1785, E.ENERGY_EFFICIENT, b, e)
            for b, e in zip(
                (0, 0.25, 0.5, 0.75, 1, 1.25),
                (0, 0.930393384, 0.949504131, 0.9569034, 0.956259245, 0.946696653),
                strict=True,
            )
        ),
        *(
            (100, 1785, E.ENERGY_EFFICIENT, b, e)
            for b, e in zip(
                (0.25, 0.5, 0.75, 1, 1.25),
                (0.921519665, 0.946047805, 0.951033931, 0.949413679, 0.939919542),
                strict=True,
            )
        ),
        *(
            (150, 1600, E.STANDARD, b, e)
            for b, e in zip(
                (0.1, 0.2, 0.25, 0.9),
                (0.780716097, 0.8671487126, 0.8867837736, 0.9350877877),
                strict=True,
            )
        ),
        *(
            (200, 1780, E.PREMIUM, b, e)
            for b, e in zip(
                (0.25, 0.5, 0.75, 1, 1.25),
                (0.9351618364, 0.9635434578, 0.9645106139, 0.9612112999, 0.9515991869),
                strict=True,
            )
        ),
        (200, 1200, E.ENERGY_EFFICIENT, 1.0, 0.9533208465291122),
        # MotorEfficiency.unit.cpp "Calculate Motor Efficiencies" (pole fallbacks 1985-2885 rpm)
        (100, 1985, E.ENERGY_EFFICIENT, 0.5, 0.936657639),
        (110, 2285, E.ENERGY_EFFICIENT, 0.5, 0.9382004043),
        (120, 2585, E.ENERGY_EFFICIENT, 0.5, 0.9395868071),
        (150, 2885, E.ENERGY_EFFICIENT, 0.5, 0.9404486692),
        (100, 1285, E.STANDARD, 0.5, 0.9184557213),
        (120, 1600, E.STANDARD, 0.5, 0.9213249265),
    ],
)
def test_efficiency_versus_load(hp: float, rpm: float, cls: E, load: float, eta: float) -> None:
    assert motor(hp, rpm, cls).model.efficiency(load) == pytest.approx(eta, rel=AMO_REL, abs=1e-12)


# §9.1 A4: SPECIFIED, 150 hp, 1600 rpm (MotorEfficiency.unit.cpp L38-52 at commit 1520832).
@pytest.mark.parametrize(
    ("load", "spec", "eta"),
    [
        (1.0, 0.95, 0.95),
        (1.25, 0.95, 0.9405),
        (1.5, 0.95, 0.9223230289),
        (0.75, 0.95, 0.95082302895),
        (0.25, 0.85, 0.8063520435),
        (0.05, 0.25, 0.0689209016),
    ],
)
def test_specified_efficiency(load: float, spec: float, eta: float) -> None:
    assert motor(150, 1600, E.SPECIFIED, spec).model.efficiency(load) == pytest.approx(
        eta, rel=AMO_REL
    )


def test_specified_se_branch_keeps_amo_quirk() -> None:
    """domain.md §11.1: nearer to SE, the 100 % anchor is SE[125 %]·C, so η(1) = 0.99·η_spec."""
    assert motor(150, 1600, E.SPECIFIED, 0.85).model.efficiency(1.0) == pytest.approx(0.99 * 0.85)


# MotorEfficiency.unit.cpp "Calculate Motor25 Efficiencies" and "MotorEfficiency25 Premium".
@pytest.mark.parametrize(
    ("rpm", "cls", "hp", "anchors"),
    [
        (
            1780,
            E.ENERGY_EFFICIENT,
            120,
            (0.9241840076, 0.9475057386, 0.9529291531, 0.9518554564, 0.9423369019),
        ),
        (
            1780,
            E.ENERGY_EFFICIENT,
            290,
            (0.9353383999, 0.9516372151, 0.9584322705, 0.9578040944, 0.9482260535),
        ),
        (
            3880,
            E.ENERGY_EFFICIENT,
            100,
            (0.9045636369, 0.9366576390, 0.9445673713, 0.9436768567, 0.9342400881),
        ),
        (
            1780,
            E.STANDARD,
            50,
            (0.8509115247, 0.9036358682, 0.9142885586, 0.9138935683, 0.9047546326),
        ),
        (
            1780,
            E.STANDARD,
            250,
            (0.9071879002, 0.9326659464, 0.9416871700, 0.9424751293, 0.933050378),
        ),
        (
            3200,
            E.STANDARD,
            125,
            (0.8476517473, 0.9070133723, 0.9196222911, 0.9189355966, 0.9097462406),
        ),
        (
            1780,
            E.PREMIUM,
            7.5,
            (0.8630684058, 0.9145841785, 0.921334108, 0.9153351555, 0.9061818039),
        ),
        (
            1780,
            E.PREMIUM,
            8.75,
            (0.867531194, 0.9173686836, 0.9233015806, 0.9170659857, 0.9078953258),
        ),
    ],
)
def test_class_anchors(rpm: float, cls: E, hp: float, anchors: tuple[float, ...]) -> None:
    assert am.class_anchors(hp, am.poles(rpm, 60), cls) == pytest.approx(anchors, rel=AMO_REL)


# §9.2 A7 (MotorCurrent.unit.cpp L9-12): EE, 60 Hz.
@pytest.mark.parametrize(
    ("hp", "rpm", "load", "volts", "fla", "amps"),
    [
        (100, 1500, 0.25, 460, 113.8, 42.72830),
        (500, 1785, 0.25, 2300, 557.9, 197.4057226065),
        (500, 1785, 0.50, 2300, 557.9, 304.6652143255),
        (500, 1785, 0.75, 2300, 557.9, 426.5420335857),
    ],
)
def test_current(hp: float, rpm: float, load: float, volts: float, fla: float, amps: float) -> None:
    np = motor(hp, rpm, E.ENERGY_EFFICIENT, volts=volts, fla=fla)
    assert np.model.current(load) == pytest.approx(amps, rel=AMO_REL)


# §9.2 A8 and Results.unit.cpp "EstimateFLA" L503-541: (hp, rpm, Hz, class, η_spec, V, FLA).
@pytest.mark.parametrize(
    ("hp", "rpm", "hz", "cls", "spec", "volts", "fla"),
    [
        (200, 1780, 60, E.SPECIFIED, 0.95, 460, 227.288340026),
        (200, 1780, 60, E.SPECIFIED, 0.94, 460, 228.3902237064),
        (50, 1800, 60, E.STANDARD, None, 100, 277.7547835326),
        (200, 1780, 50, E.ENERGY_EFFICIENT, None, 460, 225.800612262395),
        (150, 2400, 60, E.STANDARD, None, 110, 707.6948056564),
        (175, 900, 60, E.ENERGY_EFFICIENT, None, 220, 460.3700518143),
        (100, 900, 60, E.SPECIFIED, 0.80, 220, 312.5479443728),
        (125, 1900, 60, E.SPECIFIED, 0.90, 220, 302.2156478756),  # 1900 rpm → 2 poles
        (150, 2900, 60, E.SPECIFIED, 0.55, 600, 218.1935995715),
    ],
)
def test_estimated_fla(
    hp: float, rpm: float, hz: float, cls: E, spec: float | None, volts: float, fla: float
) -> None:
    _, at_460 = am.fla_anchors(hp, am.poles(rpm, hz), cls, spec)
    assert at_460 * 460 / volts == pytest.approx(fla, rel=AMO_REL)


def test_motor_performance_a9() -> None:
    """§9.2 A9 (wasm-motor-test.js L28-60): EE 200 hp 1780 rpm at 25 %, FLA 225.8 A."""
    m = motor(200, 1780, E.ENERGY_EFFICIENT, fla=225.8).model
    assert m.current(0.25) / 225.8 * 100 == pytest.approx(36.1065805, rel=AMO_REL)
    assert m.efficiency(0.25) * 100 == pytest.approx(93.0393384, rel=AMO_REL)
    assert m.power_factor(0.25) * 100 == pytest.approx(61.7182298, rel=AMO_REL)


# §9.3 A10-A14 motor parts and Results.unit.cpp "Fan Output existing" (POWER unless noted):
# nameplate, field kW or A, field V -> shaft hp, η %, pf %, A, engine β (digits, or None).
FIELD = [
    (
        "A10",
        motor(200, 1780, E.SPECIFIED, 0.95, fla=225),
        80.0,
        None,
        480,
        (101.18747791246317, 94.35732315337191, 76.45602656178534, 125.85671685040634),
        0.50594,
    ),
    (
        "A11 current",
        motor(350, 1185, E.STANDARD, volts=2300, fla=83),
        None,
        80.5,
        2300,
        (338.9835681041, 94.518008321, 83.4292940632, 80.5),
        0.96852,
    ),
    (
        "A12",
        motor(30, 1780, E.ENERGY_EFFICIENT, volts=230, fla=71),
        30.0,
        None,
        236,
        (37.06710939, 92.1735453498, 86.9792780871, 84.3786991404),
        1.2356,
    ),
    (
        "A13",
        motor(200, 1780, E.PREMIUM, fla=225),
        80.0,
        None,
        480,
        (103.385910304, 96.4073613585, 75.3340317395, 127.7311762599),
        None,
    ),
    (
        "A14",
        motor(200, 1780, E.SPECIFIED, 0.95, fla=227.29),
        150.0,
        None,
        480,
        (191.1541214642, 95.0673164082, 86.3561411197, 208.9277690995),
        None,
    ),
    (
        "fan",
        motor(600, 1180, E.ENERGY_EFFICIENT, fla=683.2505707137),
        460.0,
        None,
        460,
        (590.622186263, 95.78351108, 85.77466651, 673.1011529439),
        None,
    ),
]


@pytest.mark.parametrize(("name", "np", "kw", "amps", "volts", "expected", "beta"), FIELD)
def test_field_load_estimation(
    name: str,
    np: MotorNameplate,
    kw: float | None,
    amps: float | None,
    volts: float,
    expected: tuple[float, float, float, float],
    beta: float | None,
) -> None:
    est = (
        aml.load_from_power(np, kw, volts)
        if kw is not None
        else aml.load_from_current(np, amps or 0.0, volts)
    )
    assert est.power_factor is not None and est.current_a is not None
    got = (est.shaft_kw / am.HP_KW, est.efficiency * 100, est.power_factor * 100, est.current_a)
    assert got == pytest.approx(expected, rel=AMO_REL)
    if name == "A11 current":
        assert est.input_kw == pytest.approx(267.548741554, rel=AMO_REL)
    if beta is not None:
        digits = len(str(beta).split(".")[1])
        assert est.beta == pytest.approx(beta, abs=0.5 * 10**-digits)


def test_no_load_guard_flags_idle_instead_of_negative_beta() -> None:
    """domain.md §2.2(c): 60 A on FLA 225.8 A is below no-load current (AMO: β = −0.086)."""
    np = motor(200, 1780, E.ENERGY_EFFICIENT, fla=225.8)
    assert np.model.current(0) / 225.8 == pytest.approx(0.276, abs=5e-4)
    est = aml.load_from_current(np, 60.0, 460.0)
    assert est.idle_no_load and est.beta == 0.0 and est.efficiency == 0.0
    above = aml.load_from_current(np, np.model.current(0) * 1.06, 460.0)
    assert not above.idle_no_load and 0 < above.beta < 0.2


def test_power_at_no_load_input_is_idle_and_saturates_at_model_end() -> None:
    np = motor(200, 1780, E.ENERGY_EFFICIENT, fla=225.8)
    assert aml.load_from_power(np, np.model.kw_loss0, 460).idle_no_load
    assert aml.load_from_power(np, 500.0, 460).beta == am.MAX_BETA
    assert aml.load_from_current(np, 900.0, 460).beta == am.MAX_BETA


@pytest.mark.parametrize(
    ("rpm", "hz", "poles"),
    [
        (3560, 60, 2),
        (1780, 60, 4),
        (1185, 60, 6),
        (880, 60, 8),
        (700, 60, 10),
        (590, 60, 12),
        (2960, 50, 2),
        (1480, 50, 4),
        (980, 50, 6),
        (740, 50, 8),
        (590, 50, 10),
        (490, 50, 12),
        (1900, 60, 2),
        (1600, 60, 4),
        (4000, 60, 2),
        (300, 50, 12),
    ],
)
def test_poles_scalar_and_expression(rpm: float, hz: float, poles: int) -> None:
    assert am.poles(rpm, hz) == poles
    frame = pl.DataFrame({"rpm": [float(rpm)], "hz": [float(hz)]})
    assert frame.select(amf.poles_expr(pl.col("rpm"), pl.col("hz"))).item() == poles


def test_nameplate_from_registry() -> None:
    row: dict[str, object] = {
        "rated_power_kw": 55.0,
        "rated_voltage_v": 380.0,
        "rated_current_a": 102.0,
        "rated_speed_rpm": 1480.0,
        "rated_efficiency": 0.946,
        "service_factor": None,
    }
    np = MotorNameplate.from_registry(row)
    assert isinstance(np, MotorNameplate)
    assert (np.poles, np.efficiency_class, np.line_frequency_hz) == (4, E.SPECIFIED, 50.0)
    no_eff = row | {"rated_efficiency": math.nan, "rated_current_a": None}
    assert MotorNameplate.from_registry(no_eff) == ["rated_current_a", "rated_efficiency"]
    by_class = MotorNameplate.from_registry(
        row | {"rated_efficiency": None}, efficiency_class=E.ENERGY_EFFICIENT
    )
    assert isinstance(by_class, MotorNameplate)


def test_motor_curve_rows() -> None:
    np = motor(200, 1780, E.SPECIFIED, 0.95, fla=225.0)
    curve = am.motor_curve(np)
    assert curve.columns == ["beta", "efficiency", "current_a", "input_kw", "power_factor"]
    assert curve.height == 151 and curve["beta"][150] == 1.5
    zero, full = curve.row(0, named=True), curve.row(100, named=True)
    assert zero["efficiency"] == 0.0 and zero["input_kw"] == pytest.approx(np.model.kw_loss0)
    assert math.isfinite(zero["power_factor"])
    assert full["current_a"] == pytest.approx(225.0) and full["efficiency"] == pytest.approx(0.95)
    beta = curve["beta"].to_list()
    shaft = [b * np.rated_power_kw for b in beta[1:]]
    input_from_eta = [s / e for s, e in zip(shaft, curve["efficiency"][1:], strict=True)]
    assert curve["input_kw"][1:].to_list() == pytest.approx(input_from_eta, rel=1e-12)
    both = am.motor_curves({"a": np, "b": motor(30, 1480, E.STANDARD, hz=50, fla=55)})
    assert both.columns[0] == "device_id" and both.height == 302
    assert amf.no_load_frame(both).collect()["no_load_loss_kw"][0] == pytest.approx(
        zero["input_kw"]
    )


NAMEPLATES = {
    "spec": motor(200, 1780, E.SPECIFIED, 0.95, fla=225.0),
    "std": motor(350, 1185, E.STANDARD, volts=2300, fla=83.0),
    "ee50": MotorNameplate(55.0, 380.0, 102.0, 1480.0, 0.946),
}
# device, power_kw, voltage_v, current_a, speed_rpm, frequency_hz; all methods and guards
ROWS = [
    ("spec", 80.0, 480.0, None, None, None),
    ("ee50", None, 390.0, 60.0, None, None),
    ("std", None, 2300.0, 80.5, 1190.0, None),
    ("ee50", None, None, None, 1490.0, 49.9),
    ("ee50", None, 370.0, None, 1492.0, None),
    ("spec", 1.0, None, None, None, None),
    ("std", None, 2300.0, 20.0, None, None),
    ("ee50", None, None, None, 1500.5, 50.0),
    ("spec", 400.0, 460.0, None, None, None),
    ("ee50", None, 380.0, 30.0, None, None),
    ("spec", None, None, None, None, None),
]


def _readings() -> pl.DataFrame:
    cols = ("device_id", "power_kw", "voltage_v", "current_a", "speed_rpm", "frequency_hz")
    return pl.DataFrame(ROWS, schema=[cols[0], *((c, pl.Float64) for c in cols[1:])], orient="row")


def _devices() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "device_id": d,
                "rated_power_kw": n.rated_power_kw,
                "rated_voltage_v": n.rated_voltage_v,
                "rated_speed_rpm": n.rated_speed_rpm,
                "rated_efficiency": n.rated_efficiency,
                "line_frequency_hz": n.line_frequency_hz,
            }
            for d, n in NAMEPLATES.items()
        ]
    )


def test_vectorised_equals_scalar() -> None:
    got = amf.estimate_load(_readings().lazy(), am.motor_curves(NAMEPLATES), _devices()).collect()
    expected = []
    for device, kw, volts, amps, rpm, hz in ROWS:
        est = aml.estimate_load_scalar(
            NAMEPLATES[device],
            power_kw=kw,
            voltage_v=volts,
            current_a=amps,
            speed_rpm=rpm,
            frequency_hz=hz,
        )
        expected.append(
            (None, None, None, None, None)
            if est is None
            else (est.beta, est.efficiency, est.shaft_kw, est.method, est.idle_no_load)
        )
    want = _readings().hstack(
        pl.DataFrame(
            expected,
            orient="row",
            schema={
                "beta": pl.Float64,
                "efficiency": pl.Float64,
                "shaft_kw": pl.Float64,
                "load_method": pl.String,
                "idle_no_load": pl.Boolean,
            },
        )
    )
    assert_frame_equal(got, want, rel_tol=1e-9, abs_tol=1e-12)
    assert got["load_method"].to_list() == [
        "power_curve",
        "current",
        "current",
        "slip",
        "slip",
        "power_curve",
        "current",
        "slip",
        "power_curve",
        "current",
        None,
    ]
    assert got["idle_no_load"].to_list()[5:8] == [True, True, True]


def test_rated_columns_on_the_frame_and_power_ratio_without_curve() -> None:
    frame = _readings().join(_devices(), on="device_id", how="left", maintain_order="left")
    via_frame = amf.estimate_load(frame.lazy(), am.motor_curves(NAMEPLATES)).collect()
    via_devices = amf.estimate_load(_readings().lazy(), am.motor_curves(NAMEPLATES), _devices())
    assert_frame_equal(
        via_frame.select(amf.LOAD_COLUMNS), via_devices.collect().select(amf.LOAD_COLUMNS)
    )
    # domain.md §2.2(e): 55 kW, η_N 0.946, 30 kW in: the DOE ratio gives 0.516
    no_curve = pl.DataFrame({"device_id": ["ee50"], "power_kw": [30.0]})
    out = amf.estimate_load(no_curve.lazy(), am.motor_curves({}), _devices()).collect()
    assert out["load_method"].item() == "power_ratio"
    assert out["beta"].item() == pytest.approx(aml.load_from_power_ratio(30.0, 55.0, 0.946))
    assert out["beta"].item() == pytest.approx(0.516, abs=5e-4)


@pytest.mark.parametrize(
    ("shaft", "margin", "size"),
    [
        (40.1, 0.0, 45.0),
        (37.0, 0.0, 37.0),
        (30.0, 0.15, 37.0),
        (0.5, 0.0, 0.75),
        (320.0, 0.0, None),
    ],
)
def test_optimal_size(shaft: float, margin: float, size: float | None) -> None:
    assert ams.optimal_size_kw(shaft, margin) == size


def test_resize_saving() -> None:
    np = NAMEPLATES["ee50"]
    assert ams.resize_saving_kw(np, 0.5, size_kw=55.0) == pytest.approx(0.0, abs=1e-9)
    modelled_input = 0.25 * 55.0 / np.model.efficiency(0.25)
    saving = ams.resize_saving_kw(np, 0.25, margin=0.1)  # 13.75 kW x 1.1 -> an 18.5 kW motor
    assert saving is not None and 0 < saving < 0.02 * modelled_input
    measured = ams.resize_saving_kw(np, 0.25, margin=0.1, input_kw=16.0)
    assert measured == pytest.approx(saving + 16.0 - modelled_input)
    savings = [ams.resize_saving_kw(np, b, margin=0.1) or 0.0 for b in (0.25, 0.3, 0.5)]
    assert savings == sorted(savings, reverse=True)
    assert ams.resize_saving_kw(MotorNameplate(315.0, 380.0, 560.0, 1485.0, 0.96), 1.2) is None


def _registry() -> pl.DataFrame:
    rows = [
        ("m1", "motor", 55.0, 380.0, 102.0, 1480.0, 0.946),
        ("p1", "pump", 15.0, 380.0, 29.0, 2940.0, 0.92),
        ("m2", "motor", 30.0, 380.0, None, 1470.0, None),
        ("c1", "compressor", 90.0, 380.0, 160.0, 2970.0, 0.95),
    ]
    cols = [
        "device_id",
        "kind",
        "rated_power_kw",
        "rated_voltage_v",
        "rated_current_a",
        "rated_speed_rpm",
        "rated_efficiency",
    ]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_nameplates_and_curves_from_registry() -> None:
    found, missing = am.nameplates_from_registry(_registry())
    assert sorted(found) == ["m1", "p1"]
    assert missing == {"m2": ["rated_current_a", "rated_efficiency"]}
    curves = am.motor_curves_for(_registry())
    assert curves["device_id"].unique().sort().to_list() == ["m1", "p1"]


def test_add_right_sizing_matches_scalars() -> None:
    days = _registry().with_columns(
        p75_load_factor=pl.Series([0.3, 0.9, 0.3, 0.3]),
        mean_load_factor=pl.Series([0.25, 0.8, 0.25, 0.25]),
        mean_power_kw=pl.Series([15.5, None, 8.0, 30.0]),
    )
    got = ams.add_right_sizing(days, 0.1)
    np = MotorNameplate(55.0, 380.0, 102.0, 1480.0, 0.946)
    size = ams.optimal_size_kw(0.3 * 55.0, 0.1)
    assert size == 18.5
    saving = ams.resize_saving_kw(np, 0.25, size_kw=size, input_kw=15.5)
    assert got["recommended_size_kw"].to_list() == [18.5, None, None, None]  # m2: no η; c1: kind
    assert got["resize_saving_kw"][0] == pytest.approx(saving, rel=1e-12)
    assert got["resize_saving_kw"][1] is None  # 0.9 x 15 kW x 1.1 needs 15 kW: nothing smaller


def test_last_at_most_is_the_scalar_bracket_for_every_row() -> None:
    """The vectorised search agrees with `_bracket` on ties, flat runs and both ends."""
    curves = {"a": [1.0, 2.0, 2.0, 2.0, 5.0, 9.0], "b": [3.0, 1.0, 4.0, 4.0], "c": [7.0]}
    keys: list[float] = []
    first, n = [], []
    for values in curves.values():
        first.append(len(keys))
        n.append(len(values))
        keys.extend(max(values[: i + 1]) for i in range(len(values)))  # the running max
    xs = [-1.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.99, 9.0, 100.0]
    rows = [(d, x) for d in range(len(curves)) for x in xs]
    got = amf._last_at_most(
        pl.Series(keys),
        pl.Series([first[d] for d, _ in rows], dtype=pl.UInt32),
        pl.Series([n[d] for d, _ in rows], dtype=pl.UInt32),
        pl.Series([x for _, x in rows]),
    ).to_list()
    per_device = list(curves.values())
    want = [first[d] + aml._bracket(per_device[d], x) for d, x in rows]
    assert got == want
    nulls = amf._last_at_most(
        pl.Series(keys),
        pl.Series([0, None], dtype=pl.UInt32),
        pl.Series([6, None], dtype=pl.UInt32),
        pl.Series([None, 1.0], dtype=pl.Float64),
    )
    assert nulls.to_list() == [None, None]
