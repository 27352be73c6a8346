"""Charts as Vega-Lite specs built with altair. A page either carries the specs and the
Vega libraries inline and renders them in the browser (fast to build; tooltips), or, with
`static`, carries SVG rendered here by vl-convert (no script at all, for mail clients
that block scripts, and for print). Either way nothing is fetched: the page opens
offline, from disk or an e-mail attachment.

Colours: the Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008), which
stays distinguishable with the common colour-vision deficiencies. Every axis names its
quantity and unit.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Final

import altair as alt
import polars as pl
import vl_convert as vlc

OKABE_ITO: Final = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",
)
PERIOD_COLOURS: Final = {
    "critical": "#D55E00",
    "peak": "#E69F00",
    "flat": "#56B4E9",
    "valley": "#0072B2",
}
WIDTH: Final = 640
FONT: Final = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, sans-serif"


def _config(chart: Any) -> Any:
    return chart.configure(font=FONT).configure_range(category=list(OKABE_ITO))


def spec(chart: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's Vega-Lite spec with its rows as the named dataset "main". The rows go
    in after altair (which wraps every value in a schema object: 0.1 s for 700 points),
    and altair's JSON-schema validation is skipped (0.2 s a chart; the specs are ours,
    checked by the browser tests)."""
    out: dict[str, Any] = _config(chart).to_dict(validate=False)
    out["datasets"] = {**out.get("datasets", {}), "main": rows}
    return out


def svg(chart_spec: dict[str, Any]) -> str:
    """A spec rendered to an SVG element by vl-convert (without the XML declaration)."""
    out: str = vlc.vegalite_to_svg(chart_spec)
    return out[out.index("<svg") :] if "<svg" in out else out


@functools.cache
def javascript() -> str:
    """Vega, Vega-Lite and vega-embed as one script (about 0.9 MB), for pages that
    render their charts in the browser; offline, no CDN. vl-convert takes about 3 s to
    bundle it, so it is kept on disk per vl-convert version (~/.cache/wattline)."""
    version = getattr(vlc, "__version__", "unknown")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wattline"
    path = cache / f"vega-bundle-{version}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle: str = vlc.javascript_bundle()  # type: ignore[call-arg]
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(bundle, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: bundle each time
    return bundle


def _values(rows: list[dict[str, Any]]) -> Any:
    return alt.Data(values=rows)  # type: ignore[no-untyped-call]


MAIN: Final = alt.NamedData(name="main")


def _day_axis(labels: dict[str, str]) -> Any:
    return alt.X(
        "day:T", title=labels["day"], timeUnit="yearmonthdate", axis=alt.Axis(format="%m-%d")
    )


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.with_columns(
        pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t.is_temporal()
    ).to_dicts()


def stacked_daily(frame: pl.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
    """Energy per day by equipment kind (stacked bars)."""
    chart = (
        alt.Chart(MAIN, width=WIDTH, height=240)
        .mark_bar()
        .encode(
            x=_day_axis(labels),
            y=alt.Y("energy_kwh:Q", title=labels["energy_kwh_axis"], stack="zero"),
            color=alt.Color("kind:N", title=labels["kind"]),
            tooltip=["day:T", "kind:N", alt.Tooltip("energy_kwh:Q", format=",.0f")],
        )
    )
    return spec(chart, _rows(frame))


def bill_by_period(frame: pl.DataFrame, labels: dict[str, str], currency: str) -> dict[str, Any]:
    periods = [p for p in PERIOD_COLOURS if p in set(frame["period"].to_list())]
    chart = (
        alt.Chart(MAIN, width=WIDTH // 2, height=180)
        .mark_bar()
        .encode(
            y=alt.Y("period:N", title=labels["period"], sort=periods),
            x=alt.X("cost:Q", title=f"{labels['cost']} ({currency})"),
            color=alt.Color(
                "period:N",
                legend=None,
                scale=alt.Scale(domain=periods, range=[PERIOD_COLOURS[p] for p in periods]),
            ),
        )
    )
    return spec(chart, _rows(frame))


def ranking(frame: pl.DataFrame, labels: dict[str, str], currency: str) -> dict[str, Any]:
    """Open alerts by money per year (horizontal bars), worst on top."""
    data = frame.with_columns(label=pl.col("device_id") + " · " + pl.col("rule"))
    chart = (
        alt.Chart(MAIN, width=WIDTH // 2 + 80, height=max(60, 26 * data.height))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort="-x"),
            x=alt.X("cost_per_year:Q", title=f"{labels['cost_per_year']} ({currency})"),
            color=alt.Color(
                "severity:N",
                title=labels["severity"],
                scale=alt.Scale(
                    domain=["critical", "warning", "info"], range=["#D55E00", "#E69F00", "#56B4E9"]
                ),
            ),
        )
    )
    return spec(chart, _rows(data))


def profile(frame: pl.DataFrame, labels: dict[str, str], rated_kw: float | None) -> dict[str, Any]:
    """Mean power per local hour over the period."""
    line = (
        alt.Chart(MAIN, width=WIDTH, height=180)
        .mark_line(strokeWidth=1.2, color=OKABE_ITO[0])
        .encode(
            x=alt.X("hour:T", title=labels["local_time"], axis=alt.Axis(format="%m-%d")),
            y=alt.Y("kw:Q", title=labels["power_kw_axis"]),
        )
    )
    if rated_kw:
        rule = (
            alt.Chart(_values([{"kw": rated_kw}]))
            .mark_rule(strokeDash=[4, 3], color=OKABE_ITO[5])
            .encode(y="kw:Q")
        )
        return spec(alt.layer(line, rule), _rows(frame))
    return spec(line, _rows(frame))


def histogram(
    frame: pl.DataFrame,
    labels: dict[str, str],
    band: tuple[float, float] | None,
    bin_width: float,
    marker: float | None = None,
) -> dict[str, Any]:
    """Running hours per load-factor bin, with the efficient band shaded."""
    data = frame.with_columns(upper=pl.col("bin") + bin_width)
    bars = (
        alt.Chart(MAIN, width=WIDTH // 2 + 80, height=180)
        .mark_rect(color=OKABE_ITO[0], stroke="#ffffff", strokeWidth=0.5)
        .encode(
            x=alt.X("bin:Q", title=labels["load_factor_axis"], scale=alt.Scale(domain=[0, 1.5])),
            x2="upper:Q",
            y=alt.Y("hours:Q", title=labels["running_hours_axis"], scale=alt.Scale(zero=True)),
            y2=alt.datum(0),
        )
    )
    layers = []
    if band is not None:
        layers.append(
            alt.Chart(_values([{"lo": band[0], "hi": band[1]}]))
            .mark_rect(color=OKABE_ITO[2], opacity=0.18)
            .encode(x="lo:Q", x2="hi:Q")
        )
    layers.append(bars)
    if marker is not None:
        layers.append(
            alt.Chart(_values([{"b": marker}]))
            .mark_rule(strokeDash=[4, 3], color=OKABE_ITO[5])
            .encode(x="b:Q")
        )
    return spec(alt.layer(*layers), _rows(data))


def _daily_lines(frame: pl.DataFrame, labels: dict[str, str], y: Any, colour: str) -> Any:
    chart = (
        alt.Chart(MAIN, width=WIDTH, height=200)
        .mark_line(point=True)
        .encode(x=_day_axis(labels), y=y, color=alt.Color(colour, title=None))
    )
    return spec(chart, _rows(frame))


def quality(frame: pl.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
    """Readings landed and records quarantined per day (log scale: both show)."""
    y = alt.Y("n:Q", title=labels["records_axis"], scale=alt.Scale(type="symlog"))
    out: dict[str, Any] = _daily_lines(frame, labels, y, "what:N")
    return out


def cusum(frame: pl.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
    data = frame.with_columns(
        phase=pl.when("in_baseline")
        .then(pl.lit(labels["baseline"]))
        .otherwise(pl.lit(labels["reporting"]))
    )
    y = alt.Y("cusum_kwh:Q", title=labels["cusum_axis"])
    out: dict[str, Any] = _daily_lines(data, labels, y, "phase:N")
    return out


def forecast(frame: pl.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
    chart = (
        alt.Chart(MAIN, width=WIDTH, height=180)
        .mark_line(point=True, color=OKABE_ITO[1])
        .encode(
            x=alt.X("local_hour:T", title=labels["local_time"], axis=alt.Axis(format="%H:%M")),
            y=alt.Y("energy_kwh:Q", title=labels["energy_kwh_hour_axis"]),
        )
    )
    return spec(chart, _rows(frame))
