"""Load estimation on frames: the AMO motor model applied to millions of 1-minute buckets.

Python port of ORNL-AMO/AMO-Tools-Suite `src/calculator/motor/MotorShaftPower.cpp` (POWER
and CURRENT methods) and `Poles.cpp` (Copyright 2018, UT-Battelle, LLC; licence and notice
in `transforms/AMO-Tools-Suite-NOTICE.txt`), modified by the Wattline project contributors:
vectorised in Polars over the 1 % curves of `transforms/amo_motor.py` (brackets by binary
search, gathered by index, linear interpolation), with the deliberate differences listed there.
The scalar twins (`amo_motor_load.load_from_*`) are the reference the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from transforms.amo_motor import _BANDS, MAX_BETA, STEPS

LOAD_COLUMNS: Final = ("beta", "efficiency", "shaft_kw", "load_method", "idle_no_load")
LOAD_METHODS: Final = ("power_curve", "power_ratio", "current", "slip")
MEASURED_COLUMNS: Final = ("power_kw", "voltage_v", "current_a", "speed_rpm", "frequency_hz")
RATING_COLUMNS: Final = ("rated_power_kw", "rated_voltage_v", "rated_speed_rpm", "rated_efficiency")
_VALUES: Final = ("beta", "efficiency", "current_a", "input_kw")


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

    Written for millions of rows: nothing is sorted; a vectorised binary search
    (`_last_at_most`) returns each row's index into the flat, device-sorted curve table,
    and the bracket's values are then gathered by index rather than joined. Rows under a
    device's first key get the first step k = 0, as `_bracket` does.
    """
    flat = curves.sort("device_id", "beta").collect().with_row_index("_flat")
    frame = rows.collect()
    if flat.is_empty():
        nulls = [pl.lit(None, pl.Int32).alias(f"{tag}k")] + [
            pl.lit(None, pl.Float64).alias(f"{tag}{v}{n}") for v in _VALUES for n in (0, 1, 2)
        ]
        return frame.lazy().with_columns(nulls)
    spans = flat.group_by("device_id").agg(
        _first=pl.col("_flat").min(), _n=pl.len().cast(pl.UInt32)
    )
    keys = flat.select(pl.col(value).cum_max().over("device_id"))[value]
    span = frame.select("device_id").join(spans, on="device_id", how="left", maintain_order="left")
    first = span["_first"]
    idx = _last_at_most(keys, first, span["_n"], frame[measured])
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
    zero = first.fill_null(0)
    for v in values:
        cols.append(pick(v, lower, f"{tag}{v}1"))
        cols.append(pick(v, lower + 1, f"{tag}{v}2"))
        cols.append(pick(v, zero, f"{tag}{v}0"))
    return frame.hstack(cols).lazy()


def _last_at_most(keys: pl.Series, first: pl.Series, n: pl.Series, x: pl.Series) -> pl.Series:
    """Per row, the position of the last of its device's keys `keys[first : first + n]`
    that is ≤ `x`, or `first` when none is (the as-of bracket of `_bracket`).

    Each device's keys are non-decreasing (a running max), so this is a binary search
    run for all rows at once: one gather and one comparison per halving, eight for a
    151-step curve, instead of sorting millions of rows for an as-of join. Null where `x`
    or the device's curve is missing.
    """
    first, end = first.cast(pl.UInt32), (first + n).cast(pl.UInt32)
    found = first  # one past the last key found ≤ x, so far
    longest = n.max()
    step = 1 << max(longest.bit_length() - 1, 0) if isinstance(longest, int) else 0
    while step:
        probe = found + step
        inside = probe <= end
        below = keys.gather(probe.zip_with(inside, end) - 1) <= x
        found = probe.zip_with(inside & below, found)
        step >>= 1
    at = (found - 1).zip_with(found > first, first)
    return at.set(x.is_null(), None)


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
    1 % steps are found by device on the running max of input_kw / current_a,
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
    by_power = base.select(
        pl.col("power_kw").is_not_null() & pl.col("device_id").is_in(curve_devices.implode())
    ).to_series()
    keep = [n for n in have if n not in LOAD_COLUMNS]
    columns = ("__row", *keep, *LOAD_COLUMNS)  # narrow before the sort that restores order
    if by_power.all() and not base.is_empty():  # the POWER path keeps the row order
        return _power_curve_rows(base.lazy(), cur).select(columns).drop("__row")
    powered = _power_curve_rows(base.filter(by_power).lazy(), cur)
    rest = _other_methods(base.filter(~by_power).lazy(), cur, line_frequency_hz, no_load_margin)
    return (
        pl.concat([powered.select(columns), rest.select(columns)], how="vertical_relaxed")
        .sort("__row")
        .drop("__row")
    )


def _other_methods(
    rows: pl.LazyFrame, curves: pl.LazyFrame, line_hz: float, margin: float
) -> pl.LazyFrame:
    """Every method, the best one the row's data allows (`_method`); row order not kept."""
    rest = _with_constants(rows, curves, line_hz).with_columns(_beta_s=_slip_beta())
    rest = rest.with_columns(
        _s_k=(pl.col("_beta_s") * 100).floor().clip(0, STEPS - 1).cast(pl.Int32)
    ).join(_steps(curves, "_s_"), on=["device_id", "_s_k"], how="left")
    rest = _join_bracket(rest, curves, "current_a", "current_a", "_i_")
    rest = _join_bracket(rest, curves, "power_kw", "input_kw", "_p_")
    return rest.with_columns(load_method=_method()).with_columns(_outputs(margin))


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
