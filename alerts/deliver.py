"""Send outbox rows: per endpoint in order, with retries, backoff and jitter.

Transient (retried): timeouts, connection errors, 429 (Retry-After honoured), 5xx, and a
robot's "sending too fast" error code. Permanent (marked failed with the response): any
other 4xx, a redirect, a robot error code. An endpoint's head row blocks the rows behind
it until it is delivered, fails permanently, or expires after `give_up_after_s`, so a
receiver that was down for an hour gets everything in order when it returns (Stripe and
GitHub webhook practice). Endpoints run in parallel threads so one slow receiver never
delays another. Errors are recorded as the exception type and reason, never the URL,
which can hold tokens (WeCom `key=`, DingTalk `access_token=`).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from alerts.formats import prepare
from alerts.outbox import Delivery, Outbox
from alerts.settings import AlertSettings, Endpoint

log = logging.getLogger(__name__)
# Robot error codes meaning "slow down", not "wrong": DingTalk 130101, Feishu 11232/9499,
# WeCom 45009 and -1 (system busy).
_ROBOT_RETRY_CODES: Final = frozenset({130101, 11232, 9499, 45009, -1})
_MAX_RESPONSE: Final = 2048


@dataclass(frozen=True)
class Outcome:
    """One attempt's verdict: `delivered`, `retry` (after `retry_after_s`, if given) or `failed`."""

    verdict: str
    status: int | None
    detail: str
    retry_after_s: float | None = None


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    pending: int = 0
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"alerts deliver: delivered {self.delivered}, failed {self.failed}, "
            f"retries {self.retried}, still pending {self.pending}"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following it would re-POST elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def send(endpoint: Endpoint, delivery: Delivery, timeout_s: float, now: float) -> Outcome:
    """One HTTP attempt for one row; never raises for network or HTTP trouble."""
    request = prepare(endpoint, delivery.body, delivery.delivery_id, now)
    context = ssl.create_default_context()
    if not endpoint.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
    http = urllib.request.Request(request.url, request.data, request.headers, method="POST")
    try:
        with opener.open(http, timeout=timeout_s) as response:
            text = response.read(_MAX_RESPONSE).decode("utf-8", "replace")
            return _robot_verdict(endpoint, response.status, text)
    except urllib.error.HTTPError as exc:
        text = _scrub(exc.read(_MAX_RESPONSE).decode("utf-8", "replace"), endpoint)
        detail = f"HTTP {exc.code}: {text}"
        if exc.code == 429 or exc.code >= 500:
            return Outcome("retry", exc.code, detail, _retry_after(exc.headers.get("Retry-After")))
        return Outcome("failed", exc.code, detail)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Outcome("retry", None, _scrub(f"{type(exc).__name__}: {reason}", endpoint))


def _robot_verdict(endpoint: Endpoint, status: int, text: str) -> Outcome:
    """Chat robots answer 200 with an error code in the body; read it."""
    if endpoint.format not in ("feishu", "dingtalk", "wecom"):
        return Outcome("delivered", status, "")
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        return Outcome("delivered", status, "")
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if not code:
        return Outcome("delivered", status, "")
    detail = f"robot error {code}: {_scrub(text, endpoint)}"
    return Outcome("retry" if code in _ROBOT_RETRY_CODES else "failed", status, detail)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return max(0.0, float(when) - time.time())
    except (TypeError, ValueError):
        return None


def _scrub(text: str, endpoint: Endpoint) -> str:
    return text.replace(endpoint.secret, "***") if endpoint.secret else text


def backoff(attempt: int, settings: AlertSettings, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter" (AWS architecture blog), capped."""
    ceiling = min(settings.backoff_max_s, settings.backoff_initial_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def deliver_pending(
    outbox_path: Path,
    settings: AlertSettings,
    clock: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send every due row, waiting for retries up to `max_run_s`; rows left stay pending."""
    stop = stop or threading.Event()
    deadline = clock() + settings.max_run_s
    report = DeliveryReport()
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_run_endpoint,
            args=(outbox_path, e, settings, clock, deadline, stop, report, lock),
            name=f"alerts-{e.name}",
        )
        for e in settings.endpoints
        if e.enabled
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outbox = Outbox(outbox_path)
    try:
        report.pending = len(outbox.pending())
    finally:
        outbox.close()
    log.info(report.summary())
    return report


def _run_endpoint(
    path: Path,
    endpoint: Endpoint,
    settings: AlertSettings,
    clock: Callable[[], float],
    deadline: float,
    stop: threading.Event,
    report: DeliveryReport,
    lock: threading.Lock,
) -> None:
    outbox = Outbox(path)
    rng = random.Random()
    counts = {"delivered": 0, "failed": 0, "retry": 0}
    try:
        while not stop.is_set():
            row = outbox.head(endpoint.name)
            if row is None:
                break
            wait = row.next_attempt_at - clock()
            if wait > 0:
                if clock() + wait > deadline:
                    break
                stop.wait(wait)
                continue
            if clock() - row.created_at > settings.give_up_after_s:
                outbox.mark_failed(row.seq, None, "expired: receiver unreachable too long")
                counts["failed"] += 1
                continue
            outcome = send(endpoint, row, settings.timeout_s, clock())
            counts[outcome.verdict] += 1
            _record(outbox, endpoint, row, outcome, settings, clock(), rng)
    finally:
        outbox.close()
    with lock:
        report.delivered += counts["delivered"]
        report.failed += counts["failed"]
        report.retried += counts["retry"]
        report.by_endpoint[endpoint.name] = counts
    if any(counts.values()):
        log.info(
            "alerts endpoint=%s delivered=%d failed=%d retries=%d",
            endpoint.name,
            counts["delivered"],
            counts["failed"],
            counts["retry"],
        )


def _record(
    outbox: Outbox,
    endpoint: Endpoint,
    row: Delivery,
    outcome: Outcome,
    settings: AlertSettings,
    now: float,
    rng: random.Random,
) -> None:
    if outcome.verdict == "delivered":
        outbox.mark_delivered(row.seq, outcome.status or 0, now)
        if row.attempts:
            log.info(
                "alerts endpoint=%s reachable again after %d attempts", endpoint.name, row.attempts
            )
    elif outcome.verdict == "failed":
        outbox.mark_failed(row.seq, outcome.status, outcome.detail)
        log.warning(
            "alerts endpoint=%s delivery %s failed permanently: %s",
            endpoint.name,
            row.delivery_id,
            outcome.detail[:200],
        )
    else:
        delay = backoff(row.attempts + 1, settings, rng)
        if outcome.retry_after_s is not None:
            delay = max(outcome.retry_after_s, settings.backoff_initial_s / 2)
        outbox.mark_retry(row.seq, now + delay, outcome.status, outcome.detail)
        if row.attempts == 0:
            log.warning(
                "alerts endpoint=%s unavailable (%s); retrying with backoff",
                endpoint.name,
                outcome.detail[:200],
            )
