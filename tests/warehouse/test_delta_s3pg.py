"""Delta tables on S3 (moto's server) with PostgreSQL ordering the commits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from deltalake import DeltaTable

from tests.conftest import BUCKET
from tests.warehouse.test_delta import PAST, TODAY, readings
from warehouse.delta import DeltaTables
from warehouse.delta_maintain import maintain_delta
from warehouse.delta_store import S3PgStore, commit_name
from warehouse.lake import READINGS

OPENED: list[DeltaTables] = []


@pytest.fixture(autouse=True)
def _close_tables() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def s3_tables(endpoint: str, pg_url: str) -> DeltaTables:
    options = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    tables = DeltaTables(f"s3://{BUCKET}/wattline", options, catalog_url=pg_url)
    OPENED.append(tables)
    return tables


def rows_of(tables: DeltaTables) -> int:
    dt = DeltaTable(tables.uri(READINGS), storage_options=tables.storage_options)
    return int(dt.to_pyarrow_dataset().count_rows())


def claims(pg_url: str, uri: str) -> list[tuple[int, bool]]:
    with psycopg.connect(pg_url) as con:
        return [
            (int(v), bool(c))
            for v, c in con.execute(
                "SELECT version, complete FROM wattline_delta_commits"
                " WHERE table_uri = %s ORDER BY version",
                (uri,),
            ).fetchall()
        ]


def test_writers_race_through_postgresql_and_get_one_version_each(
    s3_endpoint: str, pg_url: str
) -> None:
    first = s3_tables(s3_endpoint, pg_url)
    assert first.append(READINGS, readings(PAST, 0, 1), "ts", "seed", 0) == 1  # 0 = create
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        tables = s3_tables(s3_endpoint, pg_url)  # its own S3 client and PG connection
        try:
            for k in range(15):
                tables.append(READINGS, readings(TODAY, k * 10, 10, device=name), "ts", name, k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    uri = first.uri(READINGS)
    assert claims(pg_url, uri) == [(v, True) for v in range(47)]
    dt = DeltaTable(uri, storage_options=first.storage_options)
    assert dt.version() == 46
    assert rows_of(first) == 1 + 3 * 15 * 10
    assert dt.history(1)[0]["clientVersion"] == "wattline"


def test_a_writer_dead_after_its_claim_is_published_by_the_next(
    s3_endpoint: str, pg_url: str
) -> None:
    """Claimed in PostgreSQL, temporary object written, killed before the log file: the
    commit counts (the batch could have been acked), so the next writer publishes it."""
    tables = s3_tables(s3_endpoint, pg_url)
    tables.append(READINGS, readings(PAST, 0, 10), "ts", "w", 1)
    log = tables.log(READINGS)
    assert log is not None and isinstance(log.store, S3PgStore)
    store = log.store
    added = log.write_files(readings(PAST, 100, 10, device="dead"), "ts")
    store.put_commit = lambda version, text: _claim_only(store, version, text)  # type: ignore[method-assign]
    log.commit({"operation": "WRITE", "isBlindAppend": True}, added)
    assert not store.exists(commit_name(2)), "claimed, never published"
    assert claims(pg_url, store.uri)[-1] == (2, False)

    other = s3_tables(s3_endpoint, pg_url)  # another host
    assert other.append(READINGS, readings(PAST, 200, 10, device="next"), "ts", "n", 1) == 3
    assert claims(pg_url, store.uri) == [(v, True) for v in range(4)]
    assert rows_of(other) == 30
    assert not [k for k in _keys(store) if "/.tmp/" in k], "temporary objects cleaned up"


def _claim_only(store: S3PgStore, version: int, text: str) -> bool:
    temp = f"_delta_log/.tmp/{version:020d}.dead.json"
    store.s3.put_object(Bucket=store.bucket, Key=store.key(temp), Body=text.encode())
    store.pg.execute(
        "INSERT INTO wattline_delta_commits (table_uri, version, temp_key) VALUES (%s, %s, %s)",
        (store.uri, version, temp),
    )
    return True


def _keys(store: S3PgStore) -> list[str]:
    got = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=store.key(""))
    return [o["Key"] for o in got.get("Contents", [])]


def test_maintenance_on_s3_rewrites_expires_and_vacuums_through_postgresql(
    s3_endpoint: str, pg_url: str, tmp_path: Path
) -> None:
    tables = s3_tables(s3_endpoint, pg_url)
    tables.append(READINGS, readings(PAST, 0, 100), "ts", "w", 1)
    tables.append(READINGS, readings(PAST, 50, 100), "ts", "w", 2)  # 50 doubled
    report = maintain_delta(
        tables, today=TODAY, now=time.time(), settle_s=0, retention_days=0, grace_s=3600
    )
    assert [(p.rows_in, p.rows_out) for p in report.compacted] == [(200, 150)]
    assert report.purged == 0, "the replaced files stay for the grace"
    own = tables.log(READINGS)
    assert own is not None and isinstance(own.store, S3PgStore)
    before = len([k for k in _keys(own.store) if k.endswith(".parquet")])
    report = maintain_delta(
        tables, today=TODAY, now=time.time(), settle_s=0, retention_days=0, grace_s=0
    )
    assert report.purged == 2 and before == 3
    assert rows_of(tables) == 150
    uri = tables.uri(READINGS)
    ops = [
        h.get("operation")
        for h in DeltaTable(uri, storage_options=tables.storage_options).history()
    ]
    assert "VACUUM START" not in ops, "no delta-rs commit bypassed PostgreSQL"
    assert all(done for _, done in claims(pg_url, uri))
    assert len(claims(pg_url, uri)) == len(ops)


def test_catalog_url_needs_an_s3_lake() -> None:
    from wattline.config import ConfigError, LakeSettings, Settings

    bad = Settings(lake=LakeSettings(format="delta", catalog_url="postgresql://x/y"))
    with pytest.raises(ConfigError, match="catalog_url"):
        bad.validate()
