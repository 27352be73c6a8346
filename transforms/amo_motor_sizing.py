"""Right-sizing: the next standard motor for today's load and the input power it saves.

Python port of ORNL-AMO/AMO-Tools-Suite `src/calculator/motor/OptimalMotorSize.cpp`
(Copyright 2018, UT-Battelle, LLC; licence and notice in
`transforms/AMO-Tools-Suite-NOTICE.txt`), modified by the Wattline project contributors:
SI inputs and the deliberate differences listed in `transforms/amo_motor.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from schemas.registry import MOTOR_DRIVEN
from transforms import amo_motor_data as data
from transforms.amo_motor import (
    HP_KW,
    EfficiencyClass,
    MotorModel,
    MotorNameplate,
    class_anchors,
    efficiency_anchors,
)


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


def add_right_sizing(
    frame: pl.DataFrame,
    margin: float,
    *,
    size_on: str = "p75_load_factor",
    load: str = "mean_load_factor",
    input_kw: str | None = "mean_power_kw",
    kinds: Sequence[str] = MOTOR_DRIVEN,
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
