"""Webhook bodies per receiver format, and the signed request for one delivery.

The body is rendered once, when the notification enters the outbox, so every retry
sends the same bytes; only the signature parts (timestamps) are added per attempt.

Generic JSON, schema ``wattline.alert.v1`` (additive changes keep the version)::

    {"schema": "wattline.alert.v1", "delivery_id": "...", "event": "opened|escalated|
     resolved|reminder", "event_key": "escalated:critical", "language": "en",
     "title": "...", "text": "...", "alert": {every `alerts` column; evidence as an
     object; days as YYYY-MM-DD; instants as RFC 3339 UTC}}

Slack incoming webhook: ``text`` plus header/section blocks. Feishu/Lark custom bot:
``msg_type=text`` (+ ``timestamp``/``sign``). DingTalk custom robot and WeCom group
robot: ``msgtype=markdown``.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Final

from alerts.settings import Endpoint
from alerts.sign import SIGNATURE_HEADER, dingtalk_sign, feishu_sign, wattline_signature
from alerts.text import kind_word, render

SCHEMA_VERSION: Final = "wattline.alert.v1"
DELIVERY_HEADER: Final = "X-Wattline-Delivery"


@dataclass(frozen=True)
class Request:
    """What goes on the wire; `url` may carry signing parameters, so never log it."""

    url: str
    headers: dict[str, str]
    data: bytes


def build_body(endpoint: Endpoint, alert: dict[str, Any], event: str, delivery_id: str) -> str:
    """The JSON text for this endpoint's format (unsigned)."""
    message = render(alert, event, endpoint.language)
    body: dict[str, Any]
    if endpoint.format == "generic":
        body = {
            "schema": SCHEMA_VERSION,
            "delivery_id": delivery_id,
            "event": kind_word(event),
            "event_key": event,
            "language": endpoint.language,
            "title": message.title,
            "text": "\n".join(message.lines),
            "alert": {**alert, "evidence": _evidence_object(alert.get("evidence"))},
        }
    elif endpoint.format == "slack":
        body = {
            "text": message.plain(),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(message.lines)}},
            ],
        }
    elif endpoint.format == "feishu":
        body = {"msg_type": "text", "content": {"text": message.plain()}}
    elif endpoint.format == "dingtalk":
        body = {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": message.markdown()},
        }
    else:
        body = {"msgtype": "markdown", "markdown": {"content": message.markdown()}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def prepare(endpoint: Endpoint, body: str, delivery_id: str, now: float) -> Request:
    """Sign one attempt: Wattline HMAC header always (with a secret), robot signing per format."""
    url = endpoint.url
    if endpoint.format == "feishu" and endpoint.secret:
        content = json.loads(body)
        content["timestamp"] = str(int(now))
        content["sign"] = feishu_sign(endpoint.secret, int(now))
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    if endpoint.format == "dingtalk" and endpoint.secret:
        ts_ms = int(now * 1000)
        query = urllib.parse.urlencode(
            {"timestamp": ts_ms, "sign": dingtalk_sign(endpoint.secret, ts_ms)}
        )
        url += ("&" if "?" in url else "?") + query
    data = body.encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "wattline-alerts/1",
        DELIVERY_HEADER: delivery_id,
        "Idempotency-Key": delivery_id,
    }
    if endpoint.secret:
        headers[SIGNATURE_HEADER] = wattline_signature(endpoint.secret, data, int(now))
    return Request(url, headers, data)


def _evidence_object(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
