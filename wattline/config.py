"""Settings: one typed object per process, built once from a TOML file and the environment.

Every key can be overridden by ``WATTLINE_<SECTION>__<KEY>`` (for example
``WATTLINE_MQTT__PORT=1884``). Unknown sections or keys and values of the wrong
type fail at start-up with a ``ConfigError`` that names the key and what to fix;
nothing is silently ignored (Telegraf's ``Init()`` returns an error, it does not log).
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from transforms.thresholds import Thresholds
from warehouse.lake import Lake

ENV_PREFIX = "WATTLINE_"
# Sections other packages read from the same file with their own loaders.
FOREIGN_SECTIONS = frozenset({"alerts"})


class ConfigError(ValueError):
    """A setting is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "wattline-consumer"
    topic: str = "telemetry/#"
    # Sparkplug B 3.0 host (README "Sparkplug B"): also subscribe to this filter, e.g.
    # "spBv1.0/#" or "spBv1.0/<group>/#"; empty: off. host_id names our STATE topic.
    sparkplug_topic: str = ""
    host_id: str = "wattline"
    sparkplug_mapping: str = ""  # TOML: metric -> site, device_id, quantity, scale
    qos: int = 1
    # MQTT 5 keeps the session (and the broker's queue of QoS 1 messages) this long
    # after the consumer disconnects: a week covers a long weekend outage.
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    # MQTT 5 Receive Maximum: how many unacked QoS 1 messages the broker may send us.
    # Acks are held until the batch is durable, so this must be >= ingest.batch_max_messages.
    receive_maximum: int = 65535
    protocol: str = "5"
    username: str = ""
    password: str = field(default="", repr=False)  # a secret: never in a repr, log or error
    reconnect_max_s: float = 30.0
    # TLS to the broker: the broker's certificate is verified against ca_file (the system
    # store when empty) and, unless tls_insecure, its name against `host`. cert_file and
    # key_file add a client certificate for brokers that require one (mutual TLS).
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False


@dataclass(frozen=True)
class ServeSettings:
    """`wattline serve`: the report live from the catalog, read-only; loopback by default.

    Off loopback, set a token (clients send `Authorization: Bearer <token>`, or open
    `/?token=<token>` once, which sets a cookie) and TLS (`cert_file`, `key_file`)."""

    host: str = "127.0.0.1"
    port: int = 8321  # 0: any free port (tests)
    token: str = ""
    cert_file: str = ""
    key_file: str = ""
    language: str = "en"
    devices: int = 12  # device pages per report
    cache_s: float = 60.0  # a page is rebuilt at most this often per (site, period, language)


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus text on http://host:port/metrics and /healthz; loopback only by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9108  # 0: any free port (tests)
    # /healthz says 503 when the broker has been away, or messages have waited without a
    # flush, for longer than this.
    unhealthy_after_s: float = 60.0


@dataclass(frozen=True)
class IngestSettings:
    # Flush when this many messages are buffered, or when the oldest has waited
    # flush_interval_s, whichever comes first (landing latency ~ flush_interval_s).
    batch_max_messages: int = 20_000
    batch_max_readings: int = 200_000
    # ... or when its payloads reach this many bytes (a batch of 100-reading messages
    # lands while the next one is received, instead of after the whole burst).
    batch_max_bytes: int = 8 * 1024 * 1024
    # Payload bytes held unacknowledged (buffered + being landed). At the bound the
    # network thread stops reading, so TCP pushes back on the broker instead of RSS growing.
    max_inflight_bytes: int = 24 * 1024 * 1024
    # "thread": paho in a thread of the consumer; "process": in a child process, so its
    # Python receive loop does not hold the landing thread's GIL (ingest/receiver.py).
    receiver: str = "thread"
    flush_interval_s: float = 1.0
    max_payload_bytes: int = 256 * 1024
    # Readings further than this in the future of their receive time are rejected.
    max_future_s: int = 24 * 3600
    # Exact dedup index of recently landed (device_id, ts) keys; rebuilt from the
    # newest files at start-up. Must cover the broker's in-flight window many times.
    dedup_keys: int = 2_000_000


@dataclass(frozen=True)
class LakeSettings:
    root: Path = Path("data/lake")
    # Compaction (warehouse/compact.py) merges a day's files once they are this old
    # (today's too); `wattline lake maintain` and `wattline jobs run` run it.
    compact_settle_s: float = 600.0
    # Delete readings and quarantine partitions older than this many days; 0 keeps all.
    retention_days: int = 0
    # Replaced or expired directories stay this long for queries already reading them.
    trash_grace_s: float = 600.0
    # "parquet": readings and quarantine as hive-partitioned Parquet under `root` (one
    # machine). "delta": as Delta Lake tables (snapshot reads, many writers, S3).
    format: str = "parquet"
    # With format = "delta": where the tables live; empty means `root` on this disk,
    # or "s3://bucket/prefix" (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
    uri: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_allow_http: bool = False
    # With an s3:// uri: "postgresql://user@host/db" makes PostgreSQL order the commits
    # (for stores without conditional PUT; warehouse/delta_store.py). Empty: the store's
    # conditional PUT does (delta-rs, `conditional_put = "etag"`).
    catalog_url: str = ""

    def open(self) -> Lake:
        options = {}
        if self.uri.startswith("s3://"):
            options = {
                "AWS_ENDPOINT_URL": self.s3_endpoint,
                "AWS_REGION": self.s3_region or "us-east-1",
                "AWS_ALLOW_HTTP": "true" if self.s3_allow_http else "",
                # commits by conditional PUT: safe for many writers without a lock service
                "conditional_put": "etag",
            }
        if self.catalog_url:
            options.pop("conditional_put")  # every commit goes through PostgreSQL
        return Lake.from_settings(
            self.root, self.format, self.uri, catalog_url=self.catalog_url, **options
        )


@dataclass(frozen=True)
class CatalogSettings:
    path: Path = Path("data/wattline.duckdb")


@dataclass(frozen=True)
class Settings:
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    lake: LakeSettings = field(default_factory=LakeSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    analytics: Thresholds = field(default_factory=Thresholds)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    def validate(self) -> Settings:
        m, i = self.mqtt, self.ingest
        _require(self.lake.format in ("parquet", "delta"), "lake.format must be parquet or delta")
        _require(
            not self.lake.uri or self.lake.format == "delta",
            'lake.uri needs lake.format = "delta"',
        )
        _require(
            not self.lake.catalog_url
            or (self.lake.uri.startswith("s3://") and self.lake.catalog_url.startswith("postgres")),
            'lake.catalog_url ("postgresql://...") needs an s3:// lake.uri',
        )
        _require(1 <= m.port <= 65535, "mqtt.port must be 1..65535")
        _require(m.qos in (0, 1), "mqtt.qos must be 0 or 1 (1 for the no-loss guarantee)")
        _require(m.protocol in ("5", "3.1.1"), "mqtt.protocol must be '5' or '3.1.1'")
        _require(1 <= m.receive_maximum <= 65535, "mqtt.receive_maximum must be 1..65535")
        _require(bool(m.client_id), "mqtt.client_id must be set: a persistent session needs it")
        _require(i.batch_max_messages >= 1, "ingest.batch_max_messages must be >= 1")
        _require(
            not m.sparkplug_topic or m.sparkplug_topic.startswith("spBv1.0/"),
            "mqtt.sparkplug_topic must start with spBv1.0/ (e.g. spBv1.0/#)",
        )
        if m.sparkplug_mapping:
            from ingest.sparkplug_host import MappingError, load_mapping

            try:
                load_mapping(m.sparkplug_mapping)
            except MappingError as exc:
                raise ConfigError(str(exc)) from exc
        _require(
            not m.sparkplug_topic or i.receiver == "thread",
            'mqtt.sparkplug_topic needs ingest.receiver = "thread" (the host publishes STATE '
            "and rebirth commands on the consumer's own connection)",
        )
        _require(
            m.protocol != "5" or i.batch_max_messages <= m.receive_maximum,
            "ingest.batch_max_messages must be <= mqtt.receive_maximum, or the broker stops "
            "sending before a batch fills and every flush waits for the timer",
        )
        _require(i.flush_interval_s > 0, "ingest.flush_interval_s must be > 0")
        _require(
            i.receiver in ("thread", "process"), "ingest.receiver must be 'thread' or 'process'"
        )
        _require(
            i.max_payload_bytes <= i.batch_max_bytes,
            "ingest.batch_max_bytes must be >= ingest.max_payload_bytes",
        )
        _require(
            i.max_inflight_bytes >= 2 * i.batch_max_bytes,
            "ingest.max_inflight_bytes must be >= 2 x ingest.batch_max_bytes, so the next "
            "batch is received while one lands",
        )
        _require(
            i.dedup_keys >= 2 * i.batch_max_readings,
            "ingest.dedup_keys must be >= 2 x ingest.batch_max_readings so a redelivered "
            "batch is still in the dedup index",
        )
        check_tls("mqtt", m.tls, m.ca_file, m.cert_file, m.key_file, m.tls_insecure)
        _require(0 <= self.metrics.port <= 65535, "metrics.port must be 0..65535")
        _require(self.metrics.unhealthy_after_s > 0, "metrics.unhealthy_after_s must be > 0")
        v = self.serve
        _require(0 <= v.port <= 65535, "serve.port must be 0..65535")
        _require(v.language in ("en", "zh"), "serve.language must be en or zh")
        _require(bool(v.cert_file) == bool(v.key_file), "serve.cert_file and key_file go together")
        for key, value in (("cert_file", v.cert_file), ("key_file", v.key_file)):
            _require(not value or Path(value).is_file(), f"serve.{key}: no file {value}")
        loopback = v.host in ("127.0.0.1", "::1", "localhost")
        _require(
            loopback or bool(v.token),
            f"serve.host {v.host} is not loopback: set serve.token (and TLS) first",
        )
        lake = self.lake
        _require(lake.retention_days >= 0, "lake.retention_days must be >= 0 (0 keeps every day)")
        _require(lake.compact_settle_s >= 0, "lake.compact_settle_s must be >= 0")
        _require(lake.trash_grace_s >= 0, "lake.trash_grace_s must be >= 0")
        a = self.analytics
        _require(
            a.demand_window_min > 0 and 1440 % a.demand_window_min == 0,
            "analytics.demand_window_min must divide a day (1, 5, 15, 30, 60 ...)",
        )
        _require(
            0 < a.demand_alert_fraction <= 1, "analytics.demand_alert_fraction must be in (0, 1]"
        )
        _require(
            a.baseline_limits in ("hourly", "monthly"),
            "analytics.baseline_limits must be hourly or monthly",
        )
        _require(a.baseline_dof in ("n-p", "n"), "analytics.baseline_dof must be 'n-p' or 'n'")
        _require(a.baseline_days >= 1, "analytics.baseline_days must be >= 1")
        _require(a.forecast_weeks >= 1, "analytics.forecast_weeks must be >= 1")
        _require(a.forecast_backtest_days >= 1, "analytics.forecast_backtest_days must be >= 1")
        _require(
            bool(a.baseline_from) == bool(a.baseline_to),
            "analytics.baseline_from and baseline_to go together (or both empty)",
        )
        if a.baseline_from:
            try:
                first, last = date.fromisoformat(a.baseline_from), date.fromisoformat(a.baseline_to)
            except ValueError as exc:
                raise ConfigError(f"analytics.baseline_from/to must be YYYY-MM-DD: {exc}") from exc
            _require(first <= last, "analytics.baseline_from must not be after baseline_to")
        from transforms.baseline import VARIABLES

        unknown = set(a.baseline_variables.split(",")) - set(VARIABLES) - {""}
        _require(
            not unknown,
            f"analytics.baseline_variables: unknown {sorted(unknown)}; "
            f"known: {', '.join(VARIABLES)}",
        )
        if a.tariff_file:
            from transforms.tariff import TariffError, load_tariffs

            no_file = f"analytics.tariff_file: no file {a.tariff_file}"
            _require(Path(a.tariff_file).is_file(), no_file)
            try:
                load_tariffs(a.tariff_file)
            except TariffError as exc:
                raise ConfigError(f"analytics.tariff_file {a.tariff_file}: {exc}") from exc
        return self


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_tls(section: str, tls: bool, ca: str, cert: str, key: str, insecure: bool) -> None:
    """TLS keys only make sense together: say which one is set without ``tls = true``."""
    for key_name, value in (("ca_file", ca), ("cert_file", cert), ("key_file", key)):
        _require(tls or not value, f"{section}.{key_name} is set but {section}.tls is false")
        _require(not value or Path(value).is_file(), f"{section}.{key_name}: no file {value}")
    _require(tls or not insecure, f"{section}.tls_insecure is set but {section}.tls is false")
    _require(not key or bool(cert), f"{section}.key_file needs {section}.cert_file")


class _RecordingSocket(ssl.SSLSocket):
    """Records TLS failures (not the want-read/write retries of a non-blocking socket)."""

    def _record(self, exc: ssl.SSLError) -> None:
        if isinstance(self.context, TlsContext) and not isinstance(exc, _RETRY):
            self.context.failure = exc

    def do_handshake(self, block: bool = False) -> None:
        """On failure also close: paho drops the socket without closing it (an fd per retry)."""
        try:
            super().do_handshake(block)
        except ssl.SSLError as exc:
            self._record(exc)
            if not isinstance(exc, _RETRY):
                self.close()
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """TLS 1.3 servers reject a client certificate after the handshake, on first read."""
        try:
            return super().recv(buflen, flags)
        except ssl.SSLError as exc:
            self._record(exc)
            raise


_RETRY = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TlsContext(ssl.SSLContext):
    """An SSLContext that remembers why the last TLS handshake failed.

    paho runs the handshake on its network thread and reports a failure only as "connect
    failed" (``on_connect_fail`` has no exception), so its socket class records it here
    for the caller to turn into an error that names the cause.
    """

    failure: ssl.SSLError | None = None
    sslsocket_class = _RecordingSocket


def tls_context(section: str, ca: str, cert: str, key: str, insecure: bool) -> TlsContext:
    """Load the CA bundle and client certificate now, so a bad file fails at start-up.

    The chain is always verified (CERT_REQUIRED); ``insecure`` only skips the host-name
    check, for brokers reached by an address their certificate does not name.
    """
    ctx = TlsContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if ca:
            ctx.load_verify_locations(cafile=ca)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{section}.ca_file {ca}: not a readable PEM CA bundle ({exc})") from None
    if cert:
        try:  # an encrypted key gets an empty password instead of a terminal prompt
            ctx.load_cert_chain(cert, key or None, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{section}.cert_file/key_file: not a readable PEM certificate and matching "
                f"unencrypted key ({exc})"
            ) from None
    ctx.check_hostname = not insecure
    return ctx


def describe_tls_failure(section: str, exc: ssl.SSLError) -> str:
    """A failed handshake in words an operator can act on, naming the key to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or str(exc)
        if "hostname" in why.lower() or "ip address mismatch" in why.lower():
            return f"the broker's certificate does not name {section}.host ({why})"
        return f"the broker's certificate is not trusted by {section}.ca_file ({why})"
    reason = exc.reason or str(exc)
    if "CERTIFICATE_REQUIRED" in reason or "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
        return f"the broker rejected the client certificate ({reason}; check {section}.cert_file)"
    if "WRONG_VERSION_NUMBER" in reason:
        return f"TLS handshake failed ({reason}): is {section}.port a TLS listener?"
    return f"TLS handshake failed ({reason})"


_REFUSAL_HINTS = {
    0x86: "check {s}.username and {s}.password",
    # Mosquitto 2.0 answers a wrong password with Not authorized too, not 0x86
    0x87: "check {s}.username and {s}.password; or the broker's ACL denies this client",
    0x85: "check {s}.client_id",
    0x8C: "the broker wants another authentication method",
}


def refusal_hint(code: int, section: str) -> str:
    """What to fix for an MQTT refusal reason code (MQTT 5 §3.2.2.2, §3.9.3)."""
    return _REFUSAL_HINTS.get(code, "see the broker's log").format(s=section)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if any), then WATTLINE_* variables."""
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section in FOREIGN_SECTIONS:
            continue
        raw.setdefault(section, {})[key] = _EnvValue(value, name)
    return _build(raw).validate()


@dataclass(frozen=True)
class _EnvValue:
    text: str
    name: str


def _build(raw: Mapping[str, Any]) -> Settings:
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for section, values in raw.items():
        if section in FOREIGN_SECTIONS:
            continue  # [alerts]: alerts/settings.py validates it
        if section not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"unknown config section [{section}]; known sections: {known}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table of keys")
        sections[section] = _build_section(section, hints[section], values)
    return Settings(**sections)


def _build_section(section: str, cls: type[Any], values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"unknown key {section}.{key}; [{section}] has: {known}")
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    return cls(**kwargs)


def _coerce(where: str, kind: Any, value: Any) -> Any:
    source = f" (from {value.name})" if isinstance(value, _EnvValue) else ""
    if isinstance(kind, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if isinstance(value, _EnvValue):
            return _from_text(kind, value.text)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is Path and isinstance(value, str):
            return Path(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{where}{source} must be {kind.__name__}, got {value!r}")


def _from_text(kind: Any, text: str) -> Any:
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    return kind(text)
