"""Per 1-minute bucket: is the machine running, and how loaded is it, by the best method.

Running state comes from the data: the `state` field where the device reports one,
otherwise current above 5 % of FLA or power above 5 % of rated input (domain.md §13),
so stopped time does not dilute load factors. Transformers are running whenever they
report (energised).

Load factor:
- motors, pumps, fans (motor-driven): the AMO motor model (transforms/amo_motor_frame.py):
  input power against the part-load efficiency curve; else line current with voltage
  correction and the no-load guard; else slip (domain.md §2.2);
- compressors: loaded or unloaded (state, or power between unloaded and rated input);
- transformers: beta = S / S_N with S = P / PF (domain.md §6.2).
"""

from __future__ import annotations

import polars as pl

from schemas.registry import MOTOR_DRIVEN
from transforms import amo_motor_frame, transformer
from transforms.electrical import unbalance_pct_expr
from transforms.thresholds import Thresholds

NAMEPLATE_USED = (
    "kind",
    "rated_power_kw",
    "rated_efficiency",
    "rated_current_a",
    "rated_voltage_v",
    "rated_speed_rpm",
    "unloaded_power_kw",
    "bep_flow_m3h",
    "rated_kva",
    "no_load_loss_kw",
    "load_loss_kw",
)


def rated_input_kw() -> pl.Expr:
    """Electrical input at rated output: P_N / η_N (DOE input-power method, domain §2.2a)."""
    return pl.col("rated_power_kw") / pl.col("rated_efficiency").fill_null(0.9)


def estimate_load(
    buckets: pl.LazyFrame, devices: pl.DataFrame, curves: pl.DataFrame, t: Thresholds
) -> pl.LazyFrame:
    """Add nameplate columns, `running_s`, `beta`, `efficiency`, `shaft_kw`, `load_method`,
    `idle`, `loaded_s`/`unloaded_s` (compressors), `flow_bep_ratio` (pumps, fans),
    `s_kva`/`transformer_loss_kw`/`light_load` (transformers), unbalance percentages."""
    frame = buckets.collect()
    nameplate = devices.select("device_id", *NAMEPLATE_USED)  # only what is read below
    kind = pl.col("kind")
    reported = (pl.col("state_running_s") + pl.col("stopped_s")) > 0
    by_level = (
        (pl.col("current_a") > t.running_current_fraction * pl.col("rated_current_a"))
        | (pl.col("power_kw") > t.running_power_fraction * rated_input_kw())
    ).fill_null(False)
    running_s = (
        pl.when(kind == "transformer")
        .then(pl.col("observed_s"))
        .when(reported)
        .then(pl.col("state_running_s"))
        .when(by_level)
        .then(pl.col("observed_s"))
        .otherwise(0.0)
    )
    with_running = _with_nameplate(frame, nameplate).with_columns(
        running_s=running_s,
        voltage_unbalance_pct=unbalance_pct_expr("voltage_ab_v", "voltage_bc_v", "voltage_ca_v"),
        current_unbalance_pct=unbalance_pct_expr("current_l1_a", "current_l2_a", "current_l3_a"),
    )
    # Only running motor-driven buckets need a load estimate; the AMO model gets just the
    # columns it reads, and its estimates are scattered back to their rows (no wide copy).
    judged = with_running.select(
        (kind.is_in(MOTOR_DRIVEN) & (pl.col("running_s") > 0)).fill_null(False)
    ).to_series()
    needed = ("device_id", *amo_motor_frame.MEASURED_COLUMNS, *amo_motor_frame.RATING_COLUMNS)
    estimates = amo_motor_frame.estimate_load(
        with_running.select(needed).filter(judged).lazy(), curves
    ).collect()
    idle = pl.col("idle_no_load").fill_null(False) | (pl.col("beta") < t.idle_beta)
    kinds = set(with_running.get_column("kind").unique().drop_nulls().to_list())
    with_loads = with_running.hstack(
        _scatter(estimates.select(amo_motor_frame.LOAD_COLUMNS), judged)
    ).with_columns(idle=pl.when(pl.lit(judged)).then(idle.fill_null(False)).otherwise(False))
    return with_loads.with_columns(  # each null on other kinds' rows
        *_for_kinds(with_loads, kinds & {"pump", "fan"}, [_rotodynamic()]),
        *_for_kinds(with_loads, kinds & {"compressor"}, [_compressor(t)]),
        *_for_kinds(with_loads, kinds & {"transformer"}, _transformer()),
    ).lazy()


def _for_kinds(frame: pl.DataFrame, present: set[str], exprs: list[pl.Expr]) -> list[pl.Expr]:
    """`exprs`, or, when no row is of the kinds they are for, the same columns as scalar
    nulls (a scalar column costs no memory, and later steps keep it scalar); a column
    they would only overwrite for those kinds is left as it is."""
    if present:
        return exprs
    schema = frame.lazy().select(exprs).collect_schema()
    return [pl.lit(None, t).alias(n) for n, t in schema.items() if n not in frame.columns]


def _with_nameplate(frame: pl.DataFrame, nameplate: pl.DataFrame) -> pl.DataFrame:
    """`frame` left-joined to its devices' nameplate columns, in `frame`'s row order.

    Only the row-to-registry-position lookup is a join; the nameplate columns are then
    gathered by position, so the wide `frame` is not copied through a join.
    """
    if nameplate["device_id"].is_duplicated().any():  # keep a join's fan-out, as it was
        return frame.join(nameplate, on="device_id", how="left", maintain_order="left")
    at = (
        frame.select("device_id")
        .join(
            nameplate.select("device_id").with_row_index("_at"),
            on="device_id",
            how="left",
            maintain_order="left",
        )
        .to_series(1)
    )
    return frame.hstack(nameplate.drop("device_id").select(pl.all().gather(at)))


def _scatter(values: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """`values`' rows at the positions where `mask` is true, in order; nulls elsewhere."""
    at = mask.arg_true()
    return pl.DataFrame(
        pl.repeat(None, len(mask), dtype=s.dtype, eager=True).alias(s.name).scatter(at, s)
        for s in values.iter_columns()
    )


def _compressor(t: Thresholds) -> pl.Expr:
    """Loaded when the state says so, else when power is above the load/unload midpoint."""
    unloaded_kw = pl.col("unloaded_power_kw")
    midpoint = unloaded_kw + t.loaded_power_fraction * (rated_input_kw() - unloaded_kw)
    by_power = pl.when(pl.col("power_kw") > midpoint).then(pl.col("running_s")).otherwise(0.0)
    loaded = (
        pl.when(pl.col("loaded_s") + pl.col("unloaded_s") > 0)
        .then(pl.col("loaded_s"))
        .otherwise(by_power)
    )
    return pl.when(pl.col("kind") == "compressor").then(loaded).alias("compressor_loaded_s")


def _rotodynamic() -> pl.Expr:
    return (
        pl.when(pl.col("kind").is_in(["pump", "fan"]) & (pl.col("running_s") > 0))
        .then(pl.col("flow_m3h") / pl.col("bep_flow_m3h"))
        .alias("flow_bep_ratio")
    )


def _transformer() -> list[pl.Expr]:
    """beta = S/S_N, losses P0 + beta^2 Pk, light load below P0/Pk (domain §6.2, §6.3 T1)."""
    is_tx = pl.col("kind") == "transformer"
    s_kva = pl.coalesce(
        pl.col("power_kw").abs() / pl.col("power_factor"),
        3**0.5 * pl.col("voltage_v") * pl.col("current_a") / 1000.0,
    )
    beta = s_kva / pl.col("rated_kva")
    p0, pk = pl.col("no_load_loss_kw"), pl.col("load_loss_kw")
    light = beta < transformer.light_load_boundary_expr(p0, pk)
    dt_h = pl.col("observed_s") / 3600.0
    return [
        pl.when(is_tx).then(s_kva).alias("s_kva"),
        pl.when(is_tx).then(beta).otherwise(pl.col("beta")).alias("beta"),
        pl.when(is_tx).then(transformer.losses_kw_expr(beta, p0, pk)).alias("transformer_loss_kw"),
        pl.when(is_tx).then(light).alias("light_load"),
        pl.when(is_tx & light)
        .then(_light_load_excess_kw(beta, p0, pk) * dt_h)
        .alias("light_load_waste_kwh"),
    ]


def _light_load_excess_kw(beta: pl.Expr, p0: pl.Expr, pk: pl.Expr) -> pl.Expr:
    """Loss above what the same load would cost at the rated loss rate (P0 + Pk per rated
    load): P0 + β²Pk − β(P0 + Pk) = (1 − β)(P0 − βPk), positive exactly when β < P0/Pk,
    the loss-rate boundary of domain.md §6.2 [derivation]."""
    return (1 - beta) * (p0 - beta * pk)
