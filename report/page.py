"""One self-contained HTML page from ReportData: inline CSS, inline SVG charts, no
scripts, no external fetches. Key figures carry `data-figure` / `data-value` so tests
(and anyone scraping the page) can read the exact number behind the rounded text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

import polars as pl

from report import charts
from report.data import LF_BIN, DeviceData, ReportData
from report.i18n import LABELS
from schemas.registry import MOTOR_DRIVEN
from transforms.thresholds import Thresholds

CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC",system-ui,sans-serif;
margin:0;color:#1a1a1a;background:#fafafa}
header{background:#0b3d5c;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 24px;z-index:2}
nav a{margin-right:16px;color:#0b3d5c;text-decoration:none;font-weight:600}
main{padding:8px 24px 40px;max-width:1100px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 18px;
margin:16px 0}
h2{font-size:19px;margin:4px 0 10px;color:#0b3d5c} h3{font-size:16px;margin:14px 0 6px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px;background:#f5f8fa}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e6e6e6;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.critical{color:#b33c00;font-weight:700} .warning{color:#8a5a00;font-weight:700}
figure{margin:8px 0} figcaption{font-size:13px;color:#555;margin-bottom:4px}
.row{display:flex;gap:20px;flex-wrap:wrap} .muted{color:#666;font-size:13px}
@media print{nav{display:none} section{break-inside:avoid}}
"""


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return escape(str(value))


class Figures:
    """Places charts: as inline SVG (`static`) or as specs the page's script renders."""

    def __init__(self, static: bool) -> None:
        self.static = static
        self.count = 0

    def __call__(self, name: str, caption: str, chart_spec: dict[str, Any]) -> str:
        self.count += 1
        head = (
            f'<figure class="chart" data-chart="{escape(name)}"><figcaption>{escape(caption)}'
            "</figcaption>"
        )
        if self.static:
            return f"{head}{charts.svg(chart_spec)}</figure>"
        payload = json.dumps(chart_spec, separators=(",", ":"), default=str).replace("</", "<\\/")
        return (
            f'{head}<div class="vega" id="chart-{self.count}"></div>'
            f'<script type="application/json" data-for="chart-{self.count}">{payload}</script>'
            "</figure>"
        )

    def script(self) -> str:
        """The Vega bundle and the loop that renders every chart (none when static). A
        failure is written on the page (`data-chart-errors`), not only to the console."""
        if self.static or not self.count:
            return ""
        loop = (
            "(function(){var errors=[];var jobs=[];"
            "document.querySelectorAll('script[data-for]').forEach(function(s){"
            "var el=document.getElementById(s.dataset.for);"
            "jobs.push(vegaEmbed(el,JSON.parse(s.textContent),"
            "{renderer:'svg',actions:false}).catch(function(e){errors.push(String(e));}));});"
            "Promise.all(jobs).then(function(){document.body.dataset.chartErrors=errors.length;"
            "document.body.dataset.chartsRendered=jobs.length-errors.length;"
            "if(errors.length){console.error(errors.join('\\n'));}});})();"
        )
        return f"<script>{charts.javascript()}</script><script>{loop}</script>"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    numeric: set[int] | None = None,
    css: Callable[[Sequence[Any]], str] | None = None,
) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cls = f' class="{css(row)}"' if css else ""
        cells = "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(label: str, figure: str, value: float | None, unit: str, digits: int = 0) -> str:
    raw = "" if value is None else repr(float(value))
    return (
        f'<div class="card">{escape(label)}<b data-figure="{figure}" data-value="{raw}">'
        f"{_n(value, digits)} {escape(unit)}</b></div>"
    )


def render(
    data: ReportData, language: str = "en", t: Thresholds | None = None, static: bool = False
) -> str:
    """The page. `static`: charts as SVG rendered here, no script in the page."""
    t = t or Thresholds()
    fig = Figures(static)
    L = LABELS[language]
    p = data.period
    cur = p.currency
    sections = [
        _overview(data, L, cur, fig),
        _devices(data, L, cur, t, fig),
        _waste(data, L, cur, fig),
        _quality(data, L, fig),
        _energy_management(data, L, cur, fig),
    ]
    nav = "".join(
        f'<a href="#{key}">{escape(L[key])}</a>'
        for key in ("overview", "devices", "waste_ranking", "quality", "energy_management")
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html><html lang="{"zh-CN" if language == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{escape(L['title'])} · {escape(p.site)}</title><style>{CSS}</style></head>"
        f"<body><header><h1>{escape(L['title'])} · {escape(p.site)}</h1>"
        f"<p>{escape(L['period_label'])} {p.first} – {p.last} · {escape(L['generated'])} "
        f"{stamp}</p></header><nav>{nav}</nav><main>{''.join(sections)}</main>{fig.script()}"
        "</body></html>"
    )


def _overview(data: ReportData, L: dict[str, str], cur: str, fig: Figures) -> str:
    tot = data.totals
    cards = "".join(
        [
            _card(L["energy"], "energy_kwh", tot["energy_kwh"], "kWh"),
            _card(L["cost"], "cost", tot["cost"], cur),
            _card(L["co2"], "co2_kg", tot["co2_kg"], "kg"),
            _card(L["open_alerts"], "open_alerts", tot["open_alerts"], ""),
            _card(L["waste_per_year"], "waste_cost_per_year", tot["waste_cost_per_year"], cur),
        ]
    )
    parts = [
        f'<section id="overview"><h2>{escape(L["overview"])}</h2><div class="cards">{cards}</div>'
    ]
    if data.daily_by_kind.height:
        parts.append(
            fig(
                "energy_by_kind",
                L["energy_per_day_by_kind"],
                charts.stacked_daily(data.daily_by_kind, L),
            )
        )
    row = []
    if data.bill.height:
        table = _table(
            [L["period"], "kWh", f"{L['cost']} ({cur})"],
            (
                [escape(r["period"]), _n(r["energy_kwh"]), _n(r["cost"])]
                for r in data.bill.iter_rows(named=True)
            ),
            {1, 2},
        )
        row.append(
            f"<div>{fig('bill_by_period', L['bill'], charts.bill_by_period(data.bill, L, cur))}"
            f"{table}</div>"
        )
    if data.demand.height:
        demand = _table(
            [
                L["month"],
                L["max_demand_kw"],
                L["at"],
                L["largest_load"],
                L["contracted_kw"],
                L["ratio"],
                f"{L['demand_charge']} ({cur})",
            ],
            (
                [
                    str(r["month"])[:7],
                    _n(r["max_demand_kw"]),
                    escape(str(r["window_start"])[:16]),
                    f"{escape(str(r['top_device_id']))} ({_n(r['top_device_kw'])} kW)",
                    _n(r["contracted_kw"]),
                    _n(r["demand_ratio"], 2) + (" ⚠" if r["approaching_contract"] else ""),
                    _n(r["demand_charge"]),
                ]
                for r in data.demand.iter_rows(named=True)
            ),
            {1, 4, 5, 6},
        )
        row.append(f"<div><h3>{escape(L['max_demand'])}</h3>{demand}</div>")
    parts.append(f'<div class="row">{"".join(row)}</div>')
    parts.append(f"<h3>{escape(L['alerts_ranked'])}</h3>{_alerts_table(data.alerts, L, cur)}")
    parts.append("</section>")
    return "".join(parts)


def _advice(row: dict[str, Any], L: dict[str, str]) -> str:
    zh = L is LABELS["zh"]
    return escape(
        str(row["recommendation_zh"] if zh and row["recommendation_zh"] else row["recommendation"])
    )


def _alerts_table(alerts: pl.DataFrame, L: dict[str, str], cur: str) -> str:
    if alerts.is_empty():
        return f'<p class="muted">{escape(L["no_alerts"])}</p>'
    return _table(
        [
            L["device"],
            L["rule"],
            L["severity"],
            L["kwh_per_year"],
            f"{L['cost_per_year']} ({cur})",
            L["co2_per_year"],
            L["advice"],
        ],
        (
            [
                f'<a href="#device-{escape(r["device_id"])}">{escape(r["device_id"])}</a>',
                escape(r["rule"]),
                f'<span class="{escape(r["severity"])}">{escape(r["severity"])}</span>',
                _n(r["waste_kwh_per_year"]),
                f'<span data-figure="alert_cost" data-value="{r["cost_per_year"]!r}">'
                f"{_n(r['cost_per_year'])}</span>",
                _n(r["co2_kg_per_year"]),
                _advice(r, L),
            ]
            for r in alerts.iter_rows(named=True)
        ),
        {3, 4, 5},
    )


def _band(device: DeviceData, t: Thresholds) -> tuple[float, float] | None:
    if device.kind in MOTOR_DRIVEN or device.kind == "compressor":
        return (t.zone_efficient, t.zone_overloaded)
    return None


def _devices(data: ReportData, L: dict[str, str], cur: str, t: Thresholds, fig: Figures) -> str:
    table = _table(
        [
            L["device"],
            L["kind"],
            "kWh",
            L["running_h"],
            L["idle_h"],
            L["off_shift_h"],
            L["zone"],
            L["p75"],
        ],
        (
            [
                escape(r["device_id"]),
                escape(str(r["kind"])),
                _n(r["energy_kwh"]),
                _n(r["running_h"], 1),
                _n(r["idle_h"], 1),
                _n(r["off_shift_h"], 1),
                escape(str(r["zone"] or r["status"] or "")),
                _n(r["p75_load_factor"], 2),
            ]
            for r in data.devices_table.iter_rows(named=True)
        ),
        {2, 3, 4, 5, 7},
    )
    pages = [
        f'<section id="devices"><h2>{escape(L["devices"])}</h2>'
        f'<p class="muted">{escape(L["devices_note"])}</p>{table}</section>'
    ]
    for d in data.devices:
        pages.append(_device_page(d, L, cur, t, fig))
    return "".join(pages)


def _device_page(d: DeviceData, L: dict[str, str], cur: str, t: Thresholds, fig: Figures) -> str:
    tot = d.totals
    facts = (
        f"{escape(d.kind)} · {_n(tot.get('energy_kwh'))} kWh · {escape(L['running_h'])} "
        f"{_n(tot.get('running_h'), 1)} · {escape(L['idle_h'])} {_n(tot.get('idle_h'), 1)} · "
        f"{escape(L['off_shift_h'])} {_n(tot.get('off_shift_h'), 1)} · {escape(L['zone'])} "
        f"{escape(str(tot.get('zone') or '–'))}"
    )
    body = [
        f'<section id="device-{escape(d.device_id)}" class="device"><h2>{escape(d.device_id)}</h2>'
        f"<p>{facts}</p>"
    ]
    row = []
    if d.profile.height:
        row.append(
            fig(
                f"profile:{d.device_id}",
                L["load_profile"],
                charts.profile(d.profile, L, d.rated_kw),
            )
        )
    if d.histogram.height:
        marker = d.beta_opt if d.kind == "transformer" else None
        row.append(
            fig(
                f"histogram:{d.device_id}",
                L["lf_histogram"],
                charts.histogram(d.histogram, L, _band(d, t), LF_BIN, marker),
            )
        )
    body.append(f'<div class="row">{"".join(row)}</div>')
    if d.alerts.height:
        for r in d.alerts.iter_rows(named=True):
            evidence = json.loads(r["evidence"]) if r["evidence"] else {}
            facts_list = "".join(
                f"<li>{escape(str(k))}: {escape(_short(v))}</li>" for k, v in evidence.items()
            )
            body.append(
                f'<h3><span class="{escape(r["severity"])}">{escape(r["severity"])}</span> '
                f"{escape(r['rule'])} · {_n(r['waste_kwh_per_year'])} kWh/yr · "
                f"{_n(r['cost_per_year'])} {escape(cur)}/yr</h3><p>{_advice(r, L)}</p>"
                f"<details><summary>{escape(L['evidence'])}</summary><ul>{facts_list}</ul></details>"
            )
    else:
        body.append(f'<p class="muted">{escape(L["no_alerts"])}</p>')
    body.append("</section>")
    return "".join(body)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _waste(data: ReportData, L: dict[str, str], cur: str, fig: Figures) -> str:
    out = [
        f'<section id="waste_ranking"><h2>{escape(L["waste_ranking"])}</h2>'
        f'<p class="muted">{escape(L["waste_note"])}</p>'
    ]
    if data.alerts.height:
        out.append(fig("waste_ranking", L["alerts_ranked"], charts.ranking(data.alerts, L, cur)))
        out.append(_alerts_table(data.alerts, L, cur))
    else:
        out.append(f'<p class="muted">{escape(L["no_alerts"])}</p>')
    out.append("</section>")
    return "".join(out)


def _quality(data: ReportData, L: dict[str, str], fig: Figures) -> str:
    out = [
        f'<section id="quality"><h2>{escape(L["quality"])}</h2>'
        f'<p class="muted">{escape(L["quality_note"])}</p>'
    ]
    if data.quality.height:
        out.append(fig("quality", L["quality"], charts.quality(data.quality, L)))
        wide = data.quality.pivot("what", index="day", values="n").sort("day")
        cols = [c for c in wide.columns if c != "day"]
        out.append(
            _table(
                [L["day"], *cols],
                ([str(r[0]), *(_n(v) for v in r[1:])] for r in wide.iter_rows()),
                set(range(1, len(cols) + 1)),
            )
        )
    for title, frame, columns in (
        (L["silent"], data.silent, ("device_id", "kind", "last_reading")),
        (L["unmatched"], data.unmatched, ("device_id", "kind", "status")),
    ):
        out.append(f"<h3>{escape(title)}</h3>")
        if frame.is_empty():
            out.append(f'<p class="muted">{escape(L["none"])}</p>')
        else:
            heads = [
                L["device"],
                L["kind"],
                L["last_reading"] if "last_reading" in columns else L["status"],
            ]
            out.append(
                _table(
                    heads, ([escape(str(v)) for v in r] for r in frame.select(columns).iter_rows())
                )
            )
    out.append("</section>")
    return "".join(out)


def _energy_management(data: ReportData, L: dict[str, str], cur: str, fig: Figures) -> str:
    out = [f'<section id="energy_management"><h2>{escape(L["energy_management"])}</h2>']
    empty = True
    if data.cusum.height:
        empty = False
        out.append(fig("cusum", L["cusum"], charts.cusum(data.cusum, L)))
    if data.baselines.height:
        empty = False
        out.append(f"<h3>{escape(L['baselines'])}</h3>")
        out.append(
            _table(
                [L["meter"], L["variables"], L["model"], "R²", "CV(RMSE)", "NMBE", L["status"]],
                (
                    [
                        escape(r["meter"]),
                        escape(r["variables"] or "–"),
                        escape(r["model"]),
                        _n(r["r2"], 3),
                        _n(None if r["cv_rmse"] is None else 100 * r["cv_rmse"], 1) + " %",
                        _n(None if r["nmbe"] is None else 100 * r["nmbe"], 2) + " %",
                        escape(r["status"]),
                    ]
                    for r in data.baselines.iter_rows(named=True)
                ),
                {3, 4, 5},
            )
        )
    if data.intensity.height:
        empty = False
        out.append(f"<h3>{escape(L['intensity'])}</h3>")
        out.append(
            _table(
                [L["line"], L["day"], L["units"], L["kwh_per_unit"], L["co2_per_unit"]],
                (
                    [
                        escape(r["line"]),
                        str(r["day"]),
                        f"{_n(r['units'], 1)} {escape(r['unit'])}",
                        _n(r["kwh_per_unit"], 1),
                        _n(r["co2_kg_per_unit"], 1),
                    ]
                    for r in data.intensity.iter_rows(named=True)
                ),
                {2, 3, 4},
            )
        )
    if data.forecast.height:
        empty = False
        f = data.forecast.row(0, named=True)
        verdict = L["beats"] if f["beats_naive"] else L["does_not_beat"]
        backtest = (
            f"{escape(L['backtest'])} ({f['backtest_days']} d): MAPE {_n(100 * f['mape'], 1)} % "
            f"vs {_n(100 * f['naive_mape'], 1)} %, {escape(verdict)}"
            if f["mape"] is not None
            else escape(L["backtest"]) + ": –"
        )
        out.append(
            fig(
                "forecast",
                f"{L['forecast']} · {f['model']} · {backtest}",
                charts.forecast(data.forecast, L),
            )
        )
    if data.load_shift.height:
        empty = False
        out.append(f"<h3>{escape(L['load_shift'])}</h3>")
        out.append(
            _table(
                [L["device"], L["peak_kwh"], f"{L['saving']} ({cur})"],
                (
                    [escape(r["device_id"]), _n(r["peak_kwh"]), _n(r["saving"])]
                    for r in data.load_shift.iter_rows(named=True)
                ),
                {1, 2},
            )
        )
    if empty:
        out.append(f'<p class="muted">{escape(L["no_data"])}</p>')
    out.append("</section>")
    return "".join(out)
