"""Alert delivery: lifecycle notifications from the `alerts` table to webhooks.

The analytics job rewrites `alerts/alerts.parquet` on every run; this package turns the
*changes* in that table (opened, escalated, resolved, optional reminders) into
notifications, records each one in a durable SQLite outbox before it is sent, and
delivers them per endpoint in order with retries, backoff and signing.

Exceptions::

    AlertsError                  base of everything raised here
    ├── AlertsConfigError        bad [alerts] settings; the message says what to fix
    └── OutboxBusyError          another deliverer holds the outbox lock

Delivery failures are not exceptions: they are outbox states (pending with a next
attempt time, or failed with the receiver's response).
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base of the alerts package's exceptions."""


class AlertsConfigError(AlertsError, ValueError):
    """An [alerts] setting is wrong; the message names the key (never a secret)."""


class OutboxBusyError(AlertsError):
    """Another deliverer holds the outbox lock: two would break per-endpoint order."""
