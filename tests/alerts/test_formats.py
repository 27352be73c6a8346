"""Each webhook format's body and headers, as a real loopback receiver gets them.

Signatures are checked with an independent implementation written here from the
vendors' documentation, not with alerts.sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.cli import deliver_with
from alerts.settings import AlertSettings, Endpoint
from alerts.sign import verify_wattline_signature, wattline_signature
from tests.alerts import Received, Receiver, alert, write_alerts

SECRET = "s3cr3t-test-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _deliver_one(tmp_path: Path, receiver: Receiver, fmt: str, language: str = "en") -> Received:
    write_alerts(tmp_path, [alert("a1", severity="critical")])
    endpoint = Endpoint(
        name=fmt,
        url=f"{receiver.url}/{fmt}?access_token=tok",
        format=fmt,
        secret=SECRET,
        language=language,
    )
    settings = AlertSettings(endpoints=(endpoint,), max_run_s=5.0, timeout_s=2.0)
    assert deliver_with(tmp_path, settings) == 0
    (got,) = receiver.wait_for(1)
    return got


def _independent_wattline_check(got: Received) -> None:
    header = got.headers["X-Wattline-Signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    message = fields["t"].encode() + b"." + got.body
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    assert abs(time.time() - int(fields["t"])) < 60


def test_generic_json_is_versioned_signed_and_complete(tmp_path: Path, receiver: Receiver) -> None:
    got = _deliver_one(tmp_path, receiver, "generic")
    body = got.json()
    assert body["schema"] == "wattline.alert.v1"
    assert body["event"] == "opened" and body["event_key"] == "opened"
    assert (
        body["delivery_id"] == got.headers["X-Wattline-Delivery"] == got.headers["Idempotency-Key"]
    )
    assert body["alert"]["alert_id"] == "a1"
    assert body["alert"]["evidence"]["running_hours"] == 16.9
    assert body["alert"]["opened_at"] == "2026-11-19T16:00:00Z"
    assert body["alert"]["cost_per_year"] == 18000.0
    assert "Oversized for its load" in body["title"] and "pump-01" in body["title"]
    assert "24,000 kWh · 18,000 CNY · 12.7 t CO2" in body["text"]
    assert got.headers["Content-Type"].startswith("application/json")
    _independent_wattline_check(got)


def test_slack_has_text_and_blocks(tmp_path: Path, receiver: Receiver) -> None:
    got = _deliver_one(tmp_path, receiver, "slack")
    body = got.json()
    assert body["text"].startswith("[CRITICAL] New alert: Oversized for its load")
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    assert "Fit the next smaller motor" in body["blocks"][1]["text"]["text"]
    _independent_wattline_check(got)


def test_feishu_signs_in_body_and_speaks_chinese(tmp_path: Path, receiver: Receiver) -> None:
    got = _deliver_one(tmp_path, receiver, "feishu", language="zh")
    body = got.json()
    assert body["msg_type"] == "text"
    text = body["content"]["text"]
    assert "大马拉小车" in text and "更换为小一号电机" in text and "严重" in text
    key = f"{body['timestamp']}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected


def test_dingtalk_signs_in_query(tmp_path: Path, receiver: Receiver) -> None:
    got = _deliver_one(tmp_path, receiver, "dingtalk", language="zh")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(got.path).query)
    assert query["access_token"] == ["tok"]
    timestamp, sign = query["timestamp"][0], query["sign"][0]
    message = f"{timestamp}\n{SECRET}".encode()
    digest = hmac.new(SECRET.encode(), message, hashlib.sha256).digest()
    assert sign == base64.b64encode(digest).decode()
    assert abs(time.time() * 1000 - int(timestamp)) < 60_000
    body = got.json()
    assert body["msgtype"] == "markdown"
    assert "压缩" not in body["markdown"]["title"] and "大马拉小车" in body["markdown"]["title"]
    assert "每年浪费" in body["markdown"]["text"]


def test_wecom_markdown(tmp_path: Path, receiver: Receiver) -> None:
    got = _deliver_one(tmp_path, receiver, "wecom")
    body = got.json()
    assert body["msgtype"] == "markdown"
    assert "**[CRITICAL] New alert" in body["markdown"]["content"]
    assert "Action: Fit the next smaller motor" in body["markdown"]["content"]
    _independent_wattline_check(got)


def test_signature_verification_and_replay_window() -> None:
    body = b'{"a":1}'
    header = wattline_signature(SECRET, body, 1_000_000)
    assert verify_wattline_signature(SECRET, header, body, now=1_000_100)
    assert not verify_wattline_signature(SECRET, header, body, now=1_000_301)
    assert not verify_wattline_signature(SECRET, header, b'{"a":2}', now=1_000_000)
    assert not verify_wattline_signature("other", header, body, now=1_000_000)
    assert not verify_wattline_signature(SECRET, "garbage", body, now=1_000_000)
