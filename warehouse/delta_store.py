"""Where Wattline's own Delta commits go: a local disk, or S3 with PostgreSQL coordinating.

A Delta commit needs one thing from storage: creating ``_delta_log/{v:020d}.json`` only if
it does not exist (put-if-absent), so two writers never both get version *v*.

- ``FileStore``: a local disk. The commit is written to a temporary file, fsynced, and
  linked (``link(2)`` fails if the name exists); data files and directories are fsynced.
- ``S3PgStore``: S3-compatible storage, with a PostgreSQL table deciding who gets each
  version (``lake.catalog_url``). Many S3-compatible stores have no conditional PUT,
  and an object store alone cannot order writers then; Delta's answer for AWS is an
  external "log store" (the S3DynamoDBLogStore design, PROTOCOL.md and the Delta
  blog, "Multi-cluster writes to Delta Lake storage in S3"); this is the same design on
  PostgreSQL, which plants already run:

  1. the commit's text is PUT under a temporary key;
  2. ``INSERT (table_uri, version, temp_key, complete = false)``; the primary key makes
     this the put-if-absent: a writer whose insert finds the row lost version *v*;
  3. the text is PUT as ``{v:020d}.json``, then the row is marked complete.

  A writer killed between 2 and 3 leaves an incomplete row: whoever next needs version
  *v* (a writer going for *v* + 1 or losing *v*) copies the temporary object into place
  first. Readers (delta-rs, polars, DuckDB) read S3 alone and see *v* once it is there.
  Every commit to such a table must go through the coordinator: Wattline then does its
  own vacuum (delta-rs's writes VACUUM commits of its own).
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from warehouse.lake import fsync_dir as fsync  # opens read-only and fsyncs: files too

LOG: str = "_delta_log"


def commit_name(version: int) -> str:
    return f"{LOG}/{version:020d}.json"


class Store(Protocol):
    """What a Delta log needs from storage (names are relative to the table)."""

    @property
    def uri(self) -> str: ...  # for delta-rs and polars

    @property
    def options(self) -> dict[str, str] | None: ...

    def exists(self, name: str) -> bool: ...

    def read_text(self, name: str) -> str | None: ...

    def parquet_source(self, name: str) -> Any: ...

    def write_data(self, name: str, frame: pl.DataFrame) -> int: ...

    def data_written(self) -> None: ...

    def put_commit(self, version: int, text: str) -> bool: ...

    def commit_written(self) -> None: ...


@dataclass
class FileStore:
    """A table on a local disk."""

    table_dir: Path
    _new_dirs: bool = field(default=False, repr=False)

    @property
    def uri(self) -> str:
        return str(self.table_dir)

    @property
    def options(self) -> dict[str, str] | None:
        return None

    def exists(self, name: str) -> bool:
        return (self.table_dir / name).exists()

    def read_text(self, name: str) -> str | None:
        try:
            return (self.table_dir / name).read_text()
        except FileNotFoundError:
            return None

    def parquet_source(self, name: str) -> Any:
        return self.table_dir / name

    def write_data(self, name: str, frame: pl.DataFrame) -> int:
        path = self.table_dir / name
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._new_dirs = True
        frame.write_parquet(path, compression="zstd", statistics=True)
        fsync(path)
        fsync(path.parent)
        return path.stat().st_size

    def data_written(self) -> None:
        if self._new_dirs:  # a new partition directory's own entry
            fsync(self.table_dir)
            self._new_dirs = False

    def put_commit(self, version: int, text: str) -> bool:
        log_dir = self.table_dir / LOG
        tmp = log_dir / f".tmp-{uuid.uuid4().hex}.json"
        tmp.write_text(text)
        fsync(tmp)
        try:
            os.link(tmp, self.table_dir / commit_name(version))
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def commit_written(self) -> None:
        fsync(self.table_dir / LOG)


COMMITS_DDL = """
CREATE TABLE IF NOT EXISTS wattline_delta_commits (
    table_uri    text        NOT NULL,
    version      bigint      NOT NULL,
    temp_key     text        NOT NULL,
    complete     boolean     NOT NULL DEFAULT false,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_uri, version)
)"""


@dataclass
class S3PgStore:
    """A table on S3-compatible storage whose commits PostgreSQL orders."""

    uri: str  # s3://bucket/prefix/delta/<table>
    storage_options: dict[str, str]
    catalog_url: str  # postgresql://...
    _s3: Any = field(default=None, repr=False)
    _pg: Any = field(default=None, repr=False)

    @property
    def options(self) -> dict[str, str] | None:
        return self.storage_options

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    def key(self, name: str) -> str:
        prefix = self.uri.removeprefix("s3://").split("/", 1)[1].rstrip("/")
        return f"{prefix}/{name}"

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            opts = self.storage_options
            self._s3 = boto3.client(
                "s3",
                endpoint_url=opts.get("AWS_ENDPOINT_URL") or None,
                region_name=opts.get("AWS_REGION") or None,
            )
        return self._s3

    @property
    def pg(self) -> Any:
        if self._pg is None or self._pg.closed:
            import psycopg

            con = psycopg.connect(self.catalog_url, autocommit=True)
            with contextlib.suppress(psycopg.errors.UniqueViolation):  # created meanwhile
                con.execute(COMMITS_DDL)
            self._pg = con
        return self._pg

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def read_bytes(self, name: str) -> bytes | None:
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key(name))
        except self.s3.exceptions.NoSuchKey:
            return None
        return bytes(got["Body"].read())

    def read_text(self, name: str) -> str | None:
        data = self.read_bytes(name)
        return None if data is None else data.decode()

    def parquet_source(self, name: str) -> Any:
        data = self.read_bytes(name)
        if data is None:
            raise FileNotFoundError(f"{self.uri}/{name}")
        return io.BytesIO(data)

    def write_data(self, name: str, frame: pl.DataFrame) -> int:
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        body = buffer.getvalue()
        self.s3.put_object(Bucket=self.bucket, Key=self.key(name), Body=body)
        return len(body)

    def data_written(self) -> None:
        pass  # a PUT is durable when it returns

    def put_commit(self, version: int, text: str) -> bool:
        if version > 0:
            self.complete(version - 1)  # never leave a gap before this version
        temp = f"{LOG}/.tmp/{version:020d}.{uuid.uuid4().hex}.json"
        self.s3.put_object(Bucket=self.bucket, Key=self.key(temp), Body=text.encode())
        row = self.pg.execute(
            "INSERT INTO wattline_delta_commits (table_uri, version, temp_key)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING version",
            (self.uri, version, temp),
        ).fetchone()
        if row is None:  # another writer holds this version
            self.s3.delete_object(Bucket=self.bucket, Key=self.key(temp))
            self.complete(version)
            return False
        self._publish(version, temp, text.encode())
        return True

    def complete(self, version: int) -> None:
        """Make sure version `version`, if claimed, is in the log (recovering a writer
        that died after claiming it)."""
        row = self.pg.execute(
            "SELECT temp_key, complete FROM wattline_delta_commits"
            " WHERE table_uri = %s AND version = %s",
            (self.uri, version),
        ).fetchone()
        if row is None or row[1]:
            return
        data = self.read_bytes(row[0])
        if data is None:  # published and its temporary object deleted by now
            if not self.exists(commit_name(version)):
                raise RuntimeError(f"{self.uri}: version {version} claimed but lost")
        else:
            self._publish(version, row[0], data)

    def _publish(self, version: int, temp: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.key(commit_name(version)), Body=body)
        self.pg.execute(
            "UPDATE wattline_delta_commits SET complete = true"
            " WHERE table_uri = %s AND version = %s",
            (self.uri, version),
        )
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(temp))

    def commit_written(self) -> None:
        pass

    def list_data(self) -> list[tuple[str, float]]:
        """Every object of the table outside the log: (name, last-modified epoch s)."""
        prefix = self.key("")
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if not name.startswith(LOG + "/"):
                    out.append((name, obj["LastModified"].timestamp()))
        return out

    def delete(self, names: list[str]) -> None:
        for i in range(0, len(names), 1000):
            objects = [{"Key": self.key(n)} for n in names[i : i + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
