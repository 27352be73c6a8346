"""Two consumers in separate processes, as on two hosts, sharing one subscription and one
Delta table on S3-compatible storage (moto's S3 server on loopback); one is SIGKILLed
mid-stream and restarted: landed = published = distinct."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from tests.conftest import BUCKET, ConsumerProcess, Publisher, settings_for, write_toml
from tests.ingest.test_crash import _paced, stream
from wattline.broker import Broker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _options(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "wattline-test",
        "AWS_SECRET_ACCESS_KEY": "wattline-test",
    }


def landed_s3(uri: str, endpoint: str, site: str) -> tuple[int, int]:
    from deltalake.exceptions import TableNotFoundError

    options = _options(endpoint)
    try:
        table = DeltaTable(f"{uri}/delta/readings", storage_options=options)
    except TableNotFoundError:
        return 0, 0
    frame = pl.from_arrow(table.to_pyarrow_table(columns=["site", "device_id", "ts"]))
    assert isinstance(frame, pl.DataFrame)
    mine = frame.filter(pl.col("site") == site)
    return mine.height, mine.select("device_id", "ts").n_unique()


@pytest.mark.parametrize("commits", ["s3-conditional-put", "postgresql"])
def test_two_writers_on_s3_one_killed_lose_and_duplicate_nothing(
    broker: Broker,
    site: str,
    tmp_path: Path,
    s3_endpoint: str,
    commits: str,
    request: pytest.FixtureRequest,
) -> None:
    """`postgresql`: the scale-out set-up of issue 15, PostgreSQL ordering the commits
    (lake.catalog_url) and S3 holding the tables; `s3-conditional-put`: S3 alone."""
    uri = f"s3://{BUCKET}/wattline"
    catalog_url = request.getfixturevalue("pg_url") if commits == "postgresql" else ""
    base = settings_for(broker, tmp_path, site)
    lake = replace(
        base.lake,
        format="delta",
        uri=uri,
        s3_endpoint=s3_endpoint,
        s3_allow_http=True,
        catalog_url=catalog_url,
    )
    configs = []
    for host in ("host1", "host2"):
        mqtt = replace(
            base.mqtt, client_id=f"consumer-{site}-{host}", topic=f"$share/wl/telemetry/{site}/#"
        )
        catalog = replace(base.catalog, path=tmp_path / f"{host}.duckdb")  # one per host
        settings = replace(base, mqtt=mqtt, lake=lake, catalog=catalog).validate()
        configs.append(write_toml(settings, tmp_path / f"{host}.toml"))
    logs = [tmp_path / "host1.log", tmp_path / "host2.log"]
    consumers = [ConsumerProcess(c, log) for c, log in zip(configs, logs, strict=True)]
    for c in consumers:
        c.wait_connected()
    items = stream(site, messages=2000, per_message=10)
    publisher = Publisher(broker)
    sender = threading.Thread(target=_paced, args=(publisher, items, 6.0))
    sender.start()
    for _ in range(2):  # host2 dies hard twice while both land
        time.sleep(1.5)
        consumers[1].kill()
        time.sleep(0.5)
        consumers[1] = ConsumerProcess(configs[1], logs[1])
        consumers[1].wait_connected()
    sender.join()
    publisher.close()
    deadline = time.monotonic() + 90
    counts = (0, 0)
    while time.monotonic() < deadline and counts[0] < 20_000:
        counts = landed_s3(uri, s3_endpoint, site)
        time.sleep(0.5)
    assert [c.terminate() for c in consumers] == [0, 0]
    assert landed_s3(uri, s3_endpoint, site) == (20_000, 20_000)
    # both hosts landed part of the stream (the shared subscription split it)
    for log in logs:
        assert re.search(r"batch=\d+ .*landed=[1-9]", log.read_text()), log.read_text()[-2000:]
    assert not list(tmp_path.glob("lake/delta")), "nothing went to the local disk"
    if catalog_url:  # every version went through PostgreSQL, each exactly once, complete
        import psycopg

        with psycopg.connect(catalog_url) as con:
            rows = con.execute(
                "SELECT version, complete FROM wattline_delta_commits"
                " WHERE table_uri = %s ORDER BY version",
                (f"{uri}/delta/readings",),
            ).fetchall()
        newest = DeltaTable(f"{uri}/delta/readings", storage_options=_options(s3_endpoint))
        assert [v for v, _ in rows] == list(range(newest.version() + 1))
        assert all(done for _, done in rows)
