"""Baselines against published and independent figures: Anscombe's quartet, numpy, a
known step change."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from transforms.baseline import BaselineSettings, acceptance, degree_days, fit_baselines, ols

# Anscombe (1973), "Graphs in Statistical Analysis", data set I: every published summary
# is y = 3.00 + 0.500 x, R² = 0.67 (0.6665 to four places).
ANSCOMBE_X = [10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5]
ANSCOMBE_Y1 = [8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68]


def test_anscombe_quartet_one() -> None:
    fit = ols(np.array(ANSCOMBE_X, float)[:, None], np.array(ANSCOMBE_Y1), ("x",))
    assert fit.coefficients[0] == pytest.approx(3.0001, abs=1e-4)
    assert fit.coefficients[1] == pytest.approx(0.5001, abs=1e-4)
    assert fit.r2 == pytest.approx(0.6665, abs=1e-4)
    assert acceptance(fit).startswith("unfit: 11 days < 12; R² 0.67 < 0.75")


def test_two_variables_match_numpy_and_the_statistics_formulas() -> None:
    rng = np.random.default_rng(7)
    n = 60
    x = np.column_stack([rng.uniform(100, 500, n), rng.uniform(8, 24, n)])
    y = 200 + 1.8 * x[:, 0] + 35 * x[:, 1] + rng.normal(0, 40, n)
    fit = ols(x, y, ("production_units", "running_hours"))
    design = np.column_stack([np.ones(n), x])
    expected = np.linalg.solve(design.T @ design, design.T @ y)  # the normal equations
    assert fit.coefficients == pytest.approx(tuple(expected), rel=1e-9)
    e = design @ expected - y
    assert fit.r2 == pytest.approx(1 - (e**2).sum() / ((y - y.mean()) ** 2).sum())
    assert fit.cv_rmse == pytest.approx(np.sqrt((e**2).sum() / (n - 3)) / y.mean())
    assert fit.nmbe == pytest.approx(e.sum() / (n - 3) / y.mean(), abs=1e-12)
    by_n = ols(x, y, ("production_units", "running_hours"), dof="n")
    assert by_n.cv_rmse == pytest.approx(np.sqrt((e**2).mean()) / y.mean())
    assert acceptance(fit) == "fit"


def test_guideline_14_limits_are_applied_by_name() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 40)
    y = 50 + 20 * x + rng.normal(0, 18, 40)  # CV(RMSE) about 12 %: passes both
    fit = ols(x[:, None], y, ("x",))
    assert 0.10 < (fit.cv_rmse or 0) < 0.15
    assert acceptance(fit, "hourly") == "fit" == acceptance(fit, "monthly")
    noisy = ols(x[:, None], 50 + 20 * x + rng.normal(0, 30, 40), ("x",))
    assert 0.15 < (noisy.cv_rmse or 0) < 0.30
    assert "CV(RMSE)" in acceptance(noisy, "monthly") and "(monthly)" in acceptance(
        noisy, "monthly"
    )


def _days(n: int, start: date = date(2026, 9, 1)) -> list[date]:
    return [start + timedelta(days=k) for k in range(n)]


def test_cusum_finds_a_known_step_change() -> None:
    # 30 baseline days: E = 50 + 20 × hours exactly, plus a ±5 kWh alternation (mean 0).
    # From day 31 the device uses 40 kWh a day more for the same hours: after k days the
    # CUSUM is 40 k; at the end of the baseline it is 0.
    rng = np.random.default_rng(11)
    hours = rng.uniform(8, 20, 50)
    noise = np.where(np.arange(50) % 2 == 0, 5.0, -5.0)
    energy = 50 + 20 * hours + noise + np.where(np.arange(50) >= 30, 40.0, 0.0)
    daily = pl.DataFrame(
        {
            "entity": "device",
            "site": "plant",
            "device_id": "motor-1",
            "day": _days(50),
            "energy_kwh": energy,
            "running_hours": hours,
            "price_per_kwh": 0.5,
            "emission_kg_per_kwh": 0.6,
        }
    )
    settings = BaselineSettings(variables=("running_hours",), days=30)
    baselines, out = fit_baselines(daily, settings)
    b = baselines.row(0, named=True)
    assert b["status"] == "fit" and b["variables"] == "running_hours"
    assert b["baseline_to"] == date(2026, 9, 30) and b["n_days"] == 30
    cusum = out["cusum_kwh"].to_numpy()
    assert cusum[29] == pytest.approx(0.0, abs=1e-6)  # OLS residuals sum to zero
    steps = cusum[30:] - cusum[29]
    # Each reporting day adds 40 kWh plus its noise and the fit's small error there.
    assert steps[-1] == pytest.approx(40 * 20, rel=0.05)
    assert np.all(np.diff(cusum[30:]) > 25)
    last = out.row(-1, named=True)
    assert last["savings_kwh"] == pytest.approx(-last["cusum_kwh"])
    assert last["savings_co2_kg"] == pytest.approx(-0.6 * last["cusum_kwh"])
    assert last["savings_cost"] == pytest.approx(-0.5 * last["cusum_kwh"])
    assert out.filter(~pl.col("in_baseline")).height == 20


def test_an_unfit_baseline_says_why_and_gives_no_expected_values() -> None:
    rng = np.random.default_rng(5)
    daily = pl.DataFrame(
        {
            "entity": "site",
            "site": "plant",
            "device_id": None,
            "day": _days(20),
            "energy_kwh": rng.uniform(900, 1100, 20),  # unrelated to the hours
            "running_hours": rng.uniform(8, 20, 20),
            "production_units": [100.0] * 20,  # constant: not a relevant variable
            "price_per_kwh": 0.5,
            "emission_kg_per_kwh": 0.6,
        }
    )
    baselines, out = fit_baselines(daily, BaselineSettings(days=14))
    b = baselines.row(0, named=True)
    assert b["status"].startswith("unfit: ") and "R²" in b["status"]
    # Production is constant (not a variable); the hours do not explain the energy (|t| < 2).
    assert b["variables"] == "" and "no relevant variable" in b["status"]
    assert out["expected_kwh"].null_count() == 20 and out["cusum_kwh"].null_count() == 20


def test_degree_days() -> None:
    frame = pl.DataFrame({"t": [10.0, 18.0, 25.5]})
    hdd, cdd = degree_days(pl.col("t"))
    assert frame.select(hdd=hdd, cdd=cdd).rows() == [(8.0, 0.0), (0.0, 0.0), (0.0, 7.5)]


def test_a_variable_that_does_not_matter_is_eliminated() -> None:
    rng = np.random.default_rng(21)
    n = 40
    hours = rng.uniform(8, 20, n)
    temperature = rng.uniform(2, 16, n)  # the load ignores the weather
    daily = pl.DataFrame(
        {
            "entity": "device",
            "site": "plant",
            "device_id": "motor-1",
            "day": _days(n),
            "energy_kwh": 30 + 25 * hours + rng.normal(0, 8, n),
            "running_hours": hours,
            "hdd": 18 - temperature,
            "price_per_kwh": 0.5,
            "emission_kg_per_kwh": 0.6,
        }
    )
    baselines, _ = fit_baselines(daily, BaselineSettings(days=n))
    b = baselines.row(0, named=True)
    assert b["variables"] == "running_hours" and b["status"] == "fit"
    kept = fit_baselines(daily, BaselineSettings(days=n, t_min=0.0))[0].row(0, named=True)
    assert kept["variables"] == "hdd,running_hours"  # in VARIABLES order when not tested


def test_t_values_match_the_textbook_standard_errors() -> None:
    # Anscombe I: slope 0.5001, its standard error 0.1179, t = 4.24 (published regression).
    fit = ols(np.array(ANSCOMBE_X, float)[:, None], np.array(ANSCOMBE_Y1), ("x",))
    assert fit.t_values[0] == pytest.approx(4.24, abs=0.01)
