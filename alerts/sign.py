"""Request signing: Wattline's own HMAC header, and the DingTalk and Feishu robot schemes.

Wattline signature (every request whose endpoint has a secret)::

    X-Wattline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A receiver verifies it by recomputing the HMAC over the decimal timestamp, a dot and
the raw request body bytes, comparing in constant time (``hmac.compare_digest``), and
rejecting a timestamp more than ``REPLAY_WINDOW_S`` (300 s) from its own clock. Within
the window a replayed request carries a delivery id already seen (the
``X-Wattline-Delivery`` / ``Idempotency-Key`` header): drop it. This is Stripe's
webhook scheme, so receivers can reuse its well-known verification code.

DingTalk custom robot: ``sign = urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{timestamp_ms}\\n{secret}")))`` sent as ``timestamp`` and ``sign`` query
parameters (open.dingtalk.com, "custom robot security settings").
Feishu/Lark custom bot: ``sign = base64(HMAC-SHA256(key=f"{timestamp_s}\\n{secret}",
msg=b""))`` sent as ``timestamp`` and ``sign`` in the JSON body (open.feishu.cn,
"custom bot, signature verification").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "X-Wattline-Signature"
REPLAY_WINDOW_S: Final = 300


def wattline_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the X-Wattline-Signature header for this body at this time."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_wattline_signature(
    secret: str, header: str, body: bytes, now: float, window_s: int = REPLAY_WINDOW_S
) -> bool:
    """What a receiver runs: the header matches the body and is inside the replay window."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > window_s:
        return False
    expected = wattline_signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64 signature for DingTalk's `sign` query parameter (URL-encode it when sending)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Base64 signature for Feishu's `sign` body field: the key is "<ts>\\n<secret>"."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
