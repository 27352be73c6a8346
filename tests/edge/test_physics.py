"""Physics of the simulated plant against the published vectors in domain.md."""

from __future__ import annotations

import math

import pytest

from edge import physics as ph

# domain.md §9.1 A2: AMO EE 100 hp motor, efficiency at 25/50/75/100/125 % load.
A2 = {0.25: 0.921519665, 0.5: 0.946047805, 0.75: 0.951033931, 1.0: 0.949413679, 1.25: 0.939919542}
MOTOR = ph.MotorNameplate(
    rated_kw=75.0, rated_voltage_v=380.0, rated_speed_rpm=1480.0, efficiency=0.95, power_factor=0.86
)


@pytest.mark.parametrize("beta", sorted(A2))
def test_efficiency_is_the_amo_curve_scaled_to_the_nameplate(beta: float) -> None:
    expected = A2[beta] * 0.95 / A2[1.0]
    assert ph.motor_efficiency(beta, MOTOR) == pytest.approx(expected, rel=1e-9)
    assert ph.motor_input_kw(beta, MOTOR) == pytest.approx(beta * 75.0 / expected, rel=1e-9)


def test_full_load_efficiency_is_the_nameplate_value() -> None:
    assert ph.motor_efficiency(1.0, MOTOR) == pytest.approx(0.95, abs=1e-12)
    assert ph.motor_input_kw(1.0, MOTOR) == pytest.approx(75.0 / 0.95, rel=1e-9)


@pytest.mark.parametrize("beta", [0.02, 0.1, 0.3, 0.6, 0.9, 1.1, 1.4])
def test_input_power_is_shaft_power_over_efficiency(beta: float) -> None:
    eta = ph.motor_efficiency(beta, MOTOR)
    assert ph.motor_input_kw(beta, MOTOR) == pytest.approx(beta * 75.0 / eta, rel=1e-9)


def test_light_load_follows_the_amo_loss_model() -> None:
    loss25 = (1 / (A2[0.25] * 0.95 / A2[1.0]) - 1) * 75.0 * 0.25
    assert ph.motor_losses_kw(0.0, MOTOR) == pytest.approx(0.8 * loss25, rel=1e-9)
    assert ph.motor_losses_kw(0.125, MOTOR) == pytest.approx(0.9 * loss25, rel=1e-9)
    assert ph.motor_input_kw(0.0, MOTOR) == pytest.approx(0.8 * loss25, rel=1e-9)
    assert ph.motor_efficiency(0.0, MOTOR) == 0.0


def test_efficiency_peaks_between_half_and_full_load() -> None:
    betas = [i / 100 for i in range(5, 150)]
    best = max(betas, key=lambda b: ph.motor_efficiency(b, MOTOR))
    assert 0.6 <= best <= 0.9  # DOE: "Maximum efficiency is usually near 75% of rated load"
    assert ph.motor_efficiency(0.1, MOTOR) < ph.motor_efficiency(0.5, MOTOR) - 0.02


@pytest.mark.parametrize("beta", [0.0, 0.22, 0.5, 0.75, 1.0, 1.15])
@pytest.mark.parametrize("volts", [370.0, 380.0, 395.0])
def test_current_obeys_the_three_phase_power_formula(beta: float, volts: float) -> None:
    pt = ph.motor_point(beta, MOTOR, volts, 50.0)
    assert pt.input_kw == pytest.approx(
        math.sqrt(3) * volts * pt.current_a * pt.power_factor / 1000
    )
    assert 0.0 < pt.power_factor <= 1.0


def test_rated_point_reproduces_nameplate_pf_and_current() -> None:
    pt = ph.motor_point(1.0, MOTOR, 380.0, 50.0)
    assert pt.power_factor == pytest.approx(0.86, abs=1e-9)
    assert pt.current_a == pytest.approx(75_000 / (0.95 * math.sqrt(3) * 380 * 0.86), rel=1e-9)
    assert pt.speed_rpm == pytest.approx(1480.0)


def test_quarter_load_matches_amo_motor_performance_vector() -> None:
    """§9.2 A9: AMO at 25 % load gives current 36.1 % of FLA and PF 0.617."""
    pt = ph.motor_point(0.25, MOTOR, 380.0, 50.0)
    assert pt.current_a / MOTOR.full_load_current_a == pytest.approx(0.361, abs=0.015)
    assert pt.power_factor == pytest.approx(0.617, abs=0.02)


def test_no_load_current_is_the_amo_fraction_of_fla() -> None:
    pt = ph.motor_point(0.0, MOTOR, 380.0, 50.0)
    assert pt.current_a / MOTOR.full_load_current_a == pytest.approx(0.276, rel=0.01)
    assert pt.power_factor < 0.1


def test_power_factor_falls_with_load() -> None:
    pfs = [ph.motor_point(b / 10, MOTOR, 380.0, 50.0).power_factor for b in range(1, 11)]
    assert pfs == sorted(pfs)


@pytest.mark.parametrize(("rpm", "poles"), [(2970.0, 2), (1480.0, 4), (985.0, 6), (740.0, 8)])
def test_poles_from_rated_speed(rpm: float, poles: int) -> None:
    assert ph.poles(ph.MotorNameplate(10.0, 380.0, rpm, 0.9, 0.85)) == poles


def test_speed_runs_from_synchronous_to_rated_with_load() -> None:
    assert ph.motor_speed_rpm(0.0, MOTOR, 380.0, 50.0) == pytest.approx(1500.0)
    assert ph.motor_speed_rpm(0.5, MOTOR, 380.0, 50.0) == pytest.approx(1490.0)
    assert ph.motor_speed_rpm(1.0, MOTOR, 380.0, 50.0) == pytest.approx(1480.0)
    # slip ∝ 1/V² (§2.2d): lower voltage, more slip
    assert ph.motor_speed_rpm(1.0, MOTOR, 342.0, 50.0) == pytest.approx(1500 - 20 / 0.81)


@pytest.mark.parametrize("beta", [0.03, 0.22, 0.6, 1.0, 1.3])
def test_beta_from_input_power_round_trips(beta: float) -> None:
    kw = ph.motor_input_kw(beta, MOTOR)
    assert ph.motor_beta_for_input(kw, MOTOR) == pytest.approx(beta, abs=1e-9)


@pytest.mark.parametrize(
    ("volts", "expected"),
    [
        ((462, 463, 455), 1.087),
        ((480, 476, 472), 0.84),
        ((460, 467, 450), 1.96),
        ((400, 395, 388), 1.606),
    ],
)
def test_nema_unbalance_matches_published_examples(
    volts: tuple[int, int, int], expected: float
) -> None:
    """§9.7 A32, including the hemmotor.com negative example (1.606 %, not 1.45 %)."""
    assert ph.nema_unbalance_pct(*volts) == pytest.approx(expected, abs=0.006)


@pytest.mark.parametrize("pct", [0.0, 0.3, 1.5, 3.0, 5.0])
def test_three_phase_keeps_means_and_sets_unbalance(pct: float) -> None:
    (vab, vbc, vca), amps = ph.three_phase(380.0, 100.0, pct, 6.0)
    assert (vab + vbc + vca) / 3 == pytest.approx(380.0)
    assert sum(amps) / 3 == pytest.approx(100.0)
    assert ph.nema_unbalance_pct(vab, vbc, vca) == pytest.approx(pct, abs=1e-9)
    assert 100 * max(abs(a - 100.0) for a in amps) / 100.0 == pytest.approx(6.0 * pct)


def test_unbalance_heats_the_winding() -> None:
    losses = ph.motor_losses_kw(0.7, MOTOR)
    balanced = ph.motor_winding_temp_c(losses, MOTOR, 0.0)
    assert ph.motor_winding_temp_c(losses, MOTOR, 3.0) - ph.AMBIENT_C == pytest.approx(
        (balanced - ph.AMBIENT_C) * 1.18
    )


def test_rotodynamic_curve_has_its_best_efficiency_at_bep() -> None:
    at = [ph.rotodynamic_point(q / 100, 300.0, 46.75, 0.80, 1.25) for q in range(20, 141)]
    best = max(at, key=lambda p: p.efficiency)
    assert best.flow_m3h == pytest.approx(300.0)
    assert best.efficiency == pytest.approx(0.80)
    bep = ph.rotodynamic_point(1.0, 300.0, 46.75, 0.80, 1.25)
    fluid_kw = bep.flow_m3h / 3600 * bep.pressure_rise_kpa
    assert fluid_kw == pytest.approx(0.80 * 46.75)  # P_fluid = Q·dp = eta·P_shaft (§3.2)
    assert ph.head_m(bep.pressure_rise_kpa) == pytest.approx(
        fluid_kw * 1000 / (998 * 9.80665 * 300 / 3600)
    )


def test_throttled_pump_runs_up_its_curve_at_lower_efficiency() -> None:
    bep = ph.rotodynamic_point(1.0, 250.0, 38.25, 0.80, 1.25)
    throttled = ph.rotodynamic_point(0.4, 250.0, 38.25, 0.80, 1.25)
    assert throttled.flow_m3h / 250.0 == pytest.approx(0.4)
    assert throttled.pressure_rise_kpa / bep.pressure_rise_kpa == pytest.approx(1.25 - 0.25 * 0.16)
    assert throttled.shaft_kw / bep.shaft_kw == pytest.approx(0.7)
    assert throttled.efficiency < 0.75 * bep.efficiency
    shutoff = ph.rotodynamic_point(0.0, 250.0, 38.25, 0.80, 1.25)
    assert shutoff.pressure_rise_kpa / bep.pressure_rise_kpa == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("beta", "eta"), [(0.10, 0.987925), (0.3162, 0.993022), (0.50, 0.992282), (1.00, 0.987925)]
)
def test_transformer_losses_and_efficiency_match_the_reference_table(
    beta: float, eta: float
) -> None:
    """§6.3 computed case: P0 = 1 kW, Pk = 10 kW, S_N = 1000 kVA, cos(phi) = 0.9."""
    tx = ph.TransformerNameplate(1000.0, 1.0, 10.0, 400.0)
    pt = ph.transformer_point(beta, 0.9, tx)
    assert pt.losses_kw == pytest.approx(1.0 + beta * beta * 10.0)
    assert pt.input_kw == pytest.approx(pt.output_kw + pt.losses_kw)
    assert pt.efficiency == pytest.approx(eta, abs=2e-6)


def test_transformer_secondary_current_and_voltage() -> None:
    tx = ph.TransformerNameplate(2000.0, 1.225, 14.64, 400.0)  # GB 20052-2024 grade 2 row
    pt = ph.transformer_point(0.5, 0.92, tx)
    assert pt.apparent_kva == pytest.approx(1000.0)
    assert pt.current_a == pytest.approx(1000e3 / (math.sqrt(3) * pt.voltage_v))
    assert 390.0 < pt.voltage_v < 400.0  # a loaded LV bus sags by a few volts
    assert ph.transformer_point(0.0, 0.92, tx).voltage_v == pytest.approx(400.0)
    assert ph.transformer_oil_temp_c(1.0, tx) == pytest.approx(ph.AMBIENT_C + 55.0)


def _duty(demand_m3h: float, hours: float = 6.0) -> float:
    state = ph.Receiver(700.0, loaded=False)
    state, loaded_s = ph.advance_receiver(
        state, hours * 3600, demand_m3h, 720.0, 4.8, (650.0, 750.0)
    )
    assert 650.0 <= state.pressure_kpa <= 750.0
    return loaded_s / (hours * 3600)


@pytest.mark.parametrize("leak", [0.1, 0.35, 0.6])
def test_load_unload_duty_equals_leak_over_fad(leak: float) -> None:
    """§5.4 leak test: with no production, loaded share T/(T + t) = leak flow / FAD."""
    assert _duty(leak * 720.0) == pytest.approx(leak, abs=0.005)


def test_receiver_without_demand_stays_unloaded_and_stopped_one_bleeds_down() -> None:
    state, loaded_s = ph.advance_receiver(
        ph.Receiver(700.0, False), 600.0, 0.0, 720.0, 4.8, (650.0, 750.0)
    )
    assert (state.pressure_kpa, loaded_s) == (700.0, 0.0)
    state, loaded_s = ph.advance_receiver(
        ph.Receiver(700.0, True), 60.0, 21.6, 720.0, 4.8, (650.0, 750.0), running=False
    )
    assert loaded_s == 0.0 and not state.loaded
    assert state.pressure_kpa == pytest.approx(700.0 - 21.6 / 3600 * 101.325 / 4.8 * 60)
