"""The report, opened in headless Chromium: every chart rendered, no console errors,
numbers equal to the same SQL on the catalog, both languages, file and served page."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from edge.devices import DEMO_DATA_DIR
from report import ReportError, build
from schemas.calendar import parse_shift_calendar
from tests.report.browser import Page, figures, marks, open_page, section_shots
from tests.wattline.test_jobs import MONDAY_LOCAL, land
from transforms.thresholds import Thresholds
from warehouse.catalog import connect_readonly
from warehouse.drivers import load_production
from warehouse.lake import Lake
from warehouse.registry import load_registry
from wattline.broker import free_port
from wattline.config import CatalogSettings, LakeSettings, Settings
from wattline.jobs import run_jobs

DAYS = 15


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Fifteen days of the demo plant with a production line, the demo tariff, and a
    one-week baseline (short, so the CUSUM has a reporting period)."""
    root = tmp_path_factory.mktemp("report")
    settings = Settings(
        lake=LakeSettings(root / "lake"),
        catalog=CatalogSettings(root / "wattline.duckdb"),
        analytics=Thresholds(
            tariff_file=str(DEMO_DATA_DIR / "tariffs.toml"), baseline_days=7, baseline_min_days=5
        ),
    )
    lake = Lake(settings.lake.root)
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    land(lake, MONDAY_LOCAL, MONDAY_LOCAL + timedelta(days=DAYS), batch=1)
    first = MONDAY_LOCAL.date() + timedelta(days=1)
    rows = "".join(
        f"plant-sh,extrusion,{first + timedelta(days=k)},{(14, 14, 14, 14, 14, 5, 0)[k % 7]},t\n"
        for k in range(DAYS)
    )
    (root / "p.csv").write_text("site,line,day,units,unit\n" + rows)
    (root / "l.csv").write_text(
        "site,line,device_id\nplant-sh,extrusion,motor-extruder-04\n"
        "plant-sh,extrusion,motor-grinder-03\n"
    )
    load_production(lake, root / "p.csv", root / "l.csv")
    run_jobs(settings)
    return settings


def _write(settings: Settings, tmp: Path, **kw: object) -> Path:
    out = tmp / f"report-{kw.get('language', 'en')}{'-static' if kw.get('static') else ''}.html"
    out.write_text(build(settings.catalog.path, t=settings.analytics, **kw), encoding="utf-8")  # type: ignore[arg-type]
    return out


def _check_rendered(page: Page, scripted: bool) -> list[str]:
    assert page.console_errors == []
    charts = figures(page.dom)
    assert len(charts) >= 8, [name for name, _ in charts]
    for name, inner in charts:
        assert "<svg" in inner, f"{name}: no SVG"
        assert marks(inner) > 0, f"{name}: no marks drawn"
    if scripted:
        assert 'data-chart-errors="0"' in page.dom
        assert f'data-charts-rendered="{len(charts)}"' in page.dom
    assert page.screenshot.stat().st_size > 50_000  # a real picture, not a blank page
    return [name for name, _ in charts]


def _figure(dom: str, name: str) -> float:
    m = re.search(rf'data-figure="{name}" data-value="([^"]*)"', dom)
    assert m, name
    return float(m.group(1))


def test_report_file_in_english_renders_every_chart(plant: Settings, tmp_path: Path) -> None:
    path = _write(plant, tmp_path, language="en")
    page = open_page(path.as_uri(), "report-en")
    names = _check_rendered(page, scripted=True)
    assert all(shot.stat().st_size > 20_000 for shot in section_shots(path, "report-en"))
    for wanted in ("energy_by_kind", "bill_by_period", "waste_ranking", "quality", "cusum"):
        assert wanted in names
    assert "forecast" in names
    assert sum(n.startswith("profile:") for n in names) >= 6  # the six waste cases' devices
    assert sum(n.startswith("histogram:") for n in names) >= 6
    for device in (
        "motor-mixer-02",
        "motor-grinder-03",
        "motor-extruder-04",
        "pump-process-02",
        "compressor-02",
        "transformer-aux-02",
    ):
        assert f'id="device-{device}"' in page.dom
    # A figure on the page against the same SQL on the catalog.
    con = connect_readonly(plant.catalog.path)
    try:
        kwh, cost = con.execute(
            "SELECT sum(energy_kwh), sum(cost) FROM energy_cost WHERE billing_meter"
        ).fetchall()[0]
        alerts = con.execute(
            "SELECT count(*), max(cost_per_year) FROM alerts WHERE status = 'open'"
        ).fetchall()[0]
    finally:
        con.close()
    assert _figure(page.dom, "energy_kwh") == pytest.approx(kwh)
    assert _figure(page.dom, "cost") == pytest.approx(cost)
    assert _figure(page.dom, "open_alerts") == alerts[0] == 6
    assert _figure(page.dom, "alert_cost") == pytest.approx(alerts[1])  # first = most costly


def test_report_in_chinese(plant: Settings, tmp_path: Path) -> None:
    path = _write(plant, tmp_path, language="zh")
    page = open_page(path.as_uri(), "report-zh")
    _check_rendered(page, scripted=True)
    assert all(shot.stat().st_size > 20_000 for shot in section_shots(path, "report-zh"))
    text = html.unescape(page.dom)
    for words in ("厂区概览", "浪费排名", "数据质量", "能源管理", "负载率分布", "处理建议"):
        assert words in text
    assert 'lang="zh-CN"' in page.dom


def test_static_report_has_no_script_and_still_draws(plant: Settings, tmp_path: Path) -> None:
    path = _write(plant, tmp_path, language="en", static=True)
    assert "<script" not in path.read_text(encoding="utf-8")
    _check_rendered(open_page(path.as_uri(), "report-en-static"), scripted=False)


def test_report_refuses_what_it_cannot_show(plant: Settings) -> None:
    with pytest.raises(ReportError, match="not in the registry"):
        build(plant.catalog.path, site="nowhere")
    with pytest.raises(ReportError, match="language"):
        build(plant.catalog.path, language="fr")


def _serve(plant: Settings, tmp_path: Path, extra: str = "") -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[lake]\nroot = "{plant.lake.root}"\n[catalog]\npath = "{plant.catalog.path}"\n'
        f'[analytics]\ntariff_file = "{plant.analytics.tariff_file}"\n'
        f'[serve]\nport = {port}\ntoken = "s3cret-token"\n{extra}'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattline.cli", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    return proc, port


def test_served_over_tls_with_the_token(plant: Settings, tmp_path: Path, pki: Path) -> None:
    import ssl

    proc, port = _serve(
        plant, tmp_path, f'cert_file = "{pki / "server.crt"}"\nkey_file = "{pki / "server.key"}"\n'
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", timeout=5, context=context
                ) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/", headers={"Authorization": "Bearer s3cret-token"}
        )
        with urllib.request.urlopen(request, timeout=60, context=context) as r:
            assert r.status == 200 and b"data-chart=" in r.read()
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP: refused
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def served(plant: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    token = "s3cret-token"
    proc, port = _serve(plant, tmp_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    else:
        proc.kill()
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        pytest.fail(f"serve did not start: {output}")
    yield url, token
    proc.terminate()
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def test_served_page_needs_the_token_renders_and_leaves_the_catalog_free(
    served: tuple[str, str], plant: Settings
) -> None:
    url, token = served
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/", timeout=30)
    assert refused.value.code == 401
    refused.value.close()
    page = open_page(f"{url}/?token={token}&language=zh", "served-zh")
    _check_rendered(page, scripted=True)
    # The server holds no DuckDB handle between requests: a writer can open the catalog.
    con = duckdb.connect(str(plant.catalog.path))
    con.close()
    request = urllib.request.Request(f"{url}/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200 and b"data-chart=" in response.read()
