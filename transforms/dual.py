"""One formula, two uses: the same function body on floats (tests, single values) and on
Polars expressions (the job runner, millions of rows). These helpers pick the float or the
expression form of each elementary operation."""

from __future__ import annotations

import math
from typing import TypeAlias, TypeVar

import polars as pl

ExprLike: TypeAlias = pl.Expr | str | float
T = TypeVar("T", float, pl.Expr)


def as_expr(value: ExprLike) -> pl.Expr:
    """A column name, an expression or a constant, as an expression."""
    if isinstance(value, pl.Expr):
        return value
    return pl.col(value) if isinstance(value, str) else pl.lit(value, dtype=pl.Float64)


def exp(value: T) -> T:
    return value.exp() if isinstance(value, pl.Expr) else math.exp(value)


def power(value: T, exponent: T | float) -> T:
    if isinstance(value, pl.Expr):
        return value.pow(exponent)
    return math.pow(value, float(exponent))


def sqrt(value: T) -> T:
    return value.sqrt() if isinstance(value, pl.Expr) else math.sqrt(value)


def log10(value: T) -> T:
    return value.log10() if isinstance(value, pl.Expr) else math.log10(value)
