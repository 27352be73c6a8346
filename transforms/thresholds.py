"""Every threshold the load matching and waste rules use, with its default and source.

Configurable as the `[analytics]` section of the settings file (WATTLINE_ANALYTICS__*).
Sources are in /work/shared/reference/domain.md (section numbers below) and
cn_standards.md; "[inferred]" marks a default the references support but do not state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # --- time handling (domain §13) ---
    max_gap_s: float = 300.0  # a reading stands for at most this long; longer is a gap
    running_current_fraction: float = 0.05  # running if I > 5 % FLA (domain §13)
    running_power_fraction: float = 0.05  # or P > 5 % of rated input [inferred]
    min_running_hours: float = 1.0  # a day with less running time is not judged [inferred]
    chunk_days: int = 7  # days analysed together by `jobs run`
    # Devices analysed in one pass (a pass reads only its devices' row groups); peak memory
    # is about 0.4 GB + 0.8 GB per million readings in a pass. Results do not depend on it.
    devices_per_pass: int = 250

    # --- motor load zones (domain §2.4, recommended defaults) ---
    zone_overloaded: float = 1.0  # β >= 1.0; >= service factor is critical (Motors@Work FDD)
    zone_efficient: float = 0.60
    zone_acceptable: float = 0.40
    zone_underloaded: float = 0.20  # below: severely under-loaded / idle
    underload_warn: float = 0.50  # M2 warn when P75 β < 0.50 (Motors@Work, ITAC)
    underload_alarm: float = 0.40  # M2 alarm when P75 β < 0.40 (DOE MSMOA)
    idle_beta: float = 0.10  # M1 idle running: β < 0.10 or I <= 1.05 × no-load current
    idle_min_hours: float = 0.5  # M1 raised when idle running lasts this long in a day
    offshift_min_hours: float = 1.0  # M9/F4/C6 energised off shift this long in a day
    resize_margin: float = 0.15  # next standard size >= shaft × (1 + margin) (AMO)
    voltage_unbalance_pct: float = 1.0  # M4 NEMA: derating starts above 1 %
    voltage_unbalance_stop_pct: float = 5.0  # NEMA: do not operate above 5 %
    current_unbalance_pct: float = 10.0  # M5 Motors@Work FDD
    low_power_factor: float = 0.90  # M6/T4 China tariff line 0.90 (cn_standards §8);
    #                                  Motors@Work uses 0.95 as its alert default
    gb12497_kq: float = 0.04  # K_Q kW/kvar: LV motor on a compensated bus, GB 12497 §4.3
    #                           band 0.02-0.04 and its Appendix B (cn_standards §1)

    # --- pumps and fans (domain §3.3, ANSI/HI 9.6.3 via Pumps & Systems) ---
    por_low: float = 0.70
    por_high: float = 1.20
    por_min_share: float = 0.5  # P1 when more than half the running time is outside POR
    static_head_fraction: float = 0.3  # VFD saving: H_static / H_design [inferred, §3.2]
    vfd_efficiency: float = 0.95  # drive losses in the VFD saving estimate [inferred]

    # --- compressed air (domain §5.4, §5.5) ---
    leak_warn: float = 0.10  # C1 leakage > 10 % warn
    leak_alarm: float = 0.20  # > 20 % alarm
    leak_min_offshift_hours: float = 1.0  # need this much off-shift cycling to estimate
    unloaded_share: float = 0.20  # C3 unloaded running > 20 % of run hours
    loaded_power_fraction: float = 0.5  # loaded if P > unloaded + 50 % of (rated − unloaded)

    # --- transformers (domain §6.2, §6.3) ---
    transformer_overload: float = 1.0  # T2
    light_load_min_share: float = 0.5  # T1 when β < P0/Pk for more than half the day

    # --- energy management (transforms/tariff.py, transforms/demand.py) ---
    energy_management: bool = True  # false: no bill, demand, baselines, forecasts
    tariff_file: str = ""  # time-of-use tariffs per site (TOML); empty: flat registry price
    demand_window_min: int = 15  # demand meter window; must divide a day
    demand_alert_fraction: float = 0.9  # month's max demand >= 90 % of contracted [inferred]

    # --- baselines (transforms/baseline.py; ISO 50006, ASHRAE Guideline 14) ---
    baseline_from: str = ""  # YYYY-MM-DD; empty: each device's and site's first days
    baseline_to: str = ""  # YYYY-MM-DD, inclusive
    baseline_days: int = 28  # length of the default baseline period
    baseline_variables: str = "production_units,hdd,cdd,running_hours"  # those supplied
    baseline_limits: str = "hourly"  # GL14 limits for daily models: hourly or monthly
    baseline_dof: str = "n-p"  # CV(RMSE)/NMBE denominator: n-p (GL14) or n
    baseline_min_days: int = 12  # fewer baseline days: unfit
    baseline_t_min: float = 2.0  # drop a variable whose coefficient's |t| is below this
    degree_day_base_c: float = 18.0  # HDD/CDD base temperature

    # --- day-ahead forecasts (transforms/forecast.py) ---
    forecast_weeks: int = 4  # the seasonal mean's weeks
    forecast_backtest_days: int = 14  # rolling-origin backtest length

    # --- alert lifecycle (hysteresis) ---
    clear_margin: float = 0.10  # a threshold must be cleared by 10 % of its value
    clear_days: int = 2  # and stay clear this many evaluated days to resolve
    annualise_days: int = 7  # waste per year from the mean of the last N days open
