"""The picture side of Wattline: a self-contained HTML report from the catalog
(`wattline report`) and the same pages served live, read-only (`wattline serve`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from report import data as report_data
from report.page import render
from transforms.thresholds import Thresholds
from warehouse.catalog import connect_readonly


class ReportError(Exception):
    """The report cannot be made; the message says why."""


def build(
    catalog: Path,
    site: str | None = None,
    first: date | None = None,
    last: date | None = None,
    language: str = "en",
    device_limit: int = 12,
    t: Thresholds | None = None,
    static: bool = False,
) -> str:
    """The report page as HTML text."""
    if language not in ("en", "zh"):
        raise ReportError(f"language must be en or zh, not {language!r}")
    con = connect_readonly(catalog)
    try:
        sites = report_data.sites(con)
        if not sites:
            raise ReportError("the sites registry is empty: load it with `wattline registry load`")
        site = site or sites[0]
        if site not in sites:
            raise ReportError(f"site {site!r} is not in the registry ({', '.join(sites)})")
        span = report_data.default_period(con, site)
        if span is None and (first is None or last is None):
            raise ReportError(f"no analysed days for {site}: run `wattline jobs run` first")
        lo = first or (span[0] if span else None)
        hi = last or (span[1] if span else None)
        assert lo is not None and hi is not None
        if lo > hi:
            raise ReportError(f"--from {lo} is after --to {hi}")
        content = report_data.load(con, site, lo, hi, device_limit, t)
    finally:
        con.close()
    return render(content, language, t, static)
