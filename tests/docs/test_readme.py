"""The README and docker-compose.yml stay true: SQL runs on a real catalog, commands exist."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from edge.devices import DEMO_DATA_DIR
from ingest.dedup import RecentKeys
from ingest.pipeline import Batch, process
from schemas.calendar import parse_shift_calendar
from warehouse.catalog import connect_readonly, ensure_catalog
from warehouse.lake import QUARANTINE, READINGS, Lake
from warehouse.registry import load_registry
from wattline.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def statements(markdown: str) -> list[str]:
    out = []
    for block in re.findall(r"```sql\n(.*?)```", markdown, re.S):
        for stmt in block.split(";"):
            code = "\n".join(
                line for line in stmt.splitlines() if not line.strip().startswith("--")
            )
            if code.strip():
                out.append(code)
    return out


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    lake = Lake(tmp_path / "lake")
    load_registry(
        lake, DEMO_DATA_DIR / "devices.csv", DEMO_DATA_DIR / "sites.csv", parse_shift_calendar
    )
    now = int(datetime.now(UTC).timestamp() * 1e6)
    payloads = [
        b'{"ts": 1795219200000, "power_kw": 5, "energy_kwh": 10}',
        b'{"ts": 1795219260000, "power_kw": 6, "energy_kwh": 10.1}',
        b'{"ts": 1, "x": 1',
    ]
    topic = "telemetry/plant-sh/motor-conveyor-01"
    landing = process(Batch([topic] * 3, payloads, [now] * 3), RecentKeys(100), 262144, 86400)
    lake.prepare()
    lake.write_partitioned(READINGS, landing.readings, "ts", "t", 1)
    lake.write_partitioned(QUARANTINE, landing.quarantine, "received_at", "t", 1)
    ensure_catalog(tmp_path / "c.duckdb", lake)
    return tmp_path / "c.duckdb"


def test_every_readme_query_runs(catalog: Path) -> None:
    sql = statements((ROOT / "README.md").read_text())
    assert len(sql) >= 6
    con = connect_readonly(catalog)
    try:
        for stmt in sql:
            con.execute(stmt).fetchall()
        kwh = con.execute(statements((ROOT / "README.md").read_text())[0]).fetchall()
    finally:
        con.close()
    assert kwh[0][0] == "motor-conveyor-01" and kwh[0][2] == pytest.approx(0.1)


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_compose_commands_exist_in_the_cli() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"broker", "consumer", "simulator"} <= set(services)
    parser = build_parser()
    commands = [s["command"] for s in services.values() if "command" in s]
    assert len(commands) >= 3
    for argv in commands:
        parser.parse_args(argv)  # SystemExit on an unknown command or option
    for name in ("broker", "consumer", "simulator"):
        assert "healthcheck" in services[name], name
    mount = services["broker"]["volumes"][0].split(":")[0]
    assert (ROOT / mount).exists()


def test_readme_documents_every_catalog_column(catalog: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    con = connect_readonly(catalog)
    try:
        for view in (
            "readings",
            "quarantine",
            "devices",
            "sites",
            "load_factor",
            "alerts",
            "rule_evaluations",
        ):
            columns = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
            missing = [c for c in columns if f"`{c}`" not in readme]
            assert not missing, (view, missing)
    finally:
        con.close()
    assert pl.__version__  # polars is what wrote the files above
