"""Production shift calendars: "Mon-Fri 08:00-20:00; Sat 08:00-12:00" in a site's local time.

Waste rules judge off-shift running against this calendar (domain.md §2.6 M9, §5.5 C6), so
the parser is strict: a typo must fail at start-up with the bad token named, not silently
turn a working Saturday into an off-shift one.

Grammar: entries separated by ";"; each entry is a day list and a time list separated by
whitespace. Days are Mon..Sun, single or as a range ("Mon-Fri", "Sat-Mon" wraps), joined by
",". Times are "HH:MM-HH:MM" joined by ","; "24:00" may end a range; an end at or before the
start runs past midnight into the next day ("22:00-06:00").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class ShiftCalendar:
    """On-shift windows as [start, end) minutes from Monday 00:00 local time."""

    text: str
    windows: tuple[tuple[int, int], ...]

    def is_on_shift(self, when: datetime, tz: str | tzinfo) -> bool:
        """Whether the aware instant `when` falls in a shift, judged in the site's zone `tz`."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"is_on_shift needs an aware datetime, got naive {when.isoformat()}")
        local = when.astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)
        minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.windows)

    @property
    def minutes_per_week(self) -> int:
        """On-shift minutes in a week (overlapping entries counted once)."""
        covered = [False] * MINUTES_PER_WEEK
        for start, end in self.windows:
            covered[start:end] = [True] * (end - start)
        return sum(covered)


def parse_shift_calendar(text: str) -> ShiftCalendar:
    """Parse a calendar string; raise ValueError naming the offending token."""
    if not text.strip():
        raise ValueError("shift calendar is empty; expected e.g. 'Mon-Fri 08:00-20:00'")
    windows: list[tuple[int, int]] = []
    for entry in text.split(";"):
        windows.extend(_parse_entry(entry.strip(), text))
    return ShiftCalendar(text=text, windows=tuple(windows))


def _parse_entry(entry: str, text: str) -> list[tuple[int, int]]:
    parts = entry.split(None, 1)
    if len(parts) != 2:
        what = "an empty entry" if not entry else f"entry {entry!r} (needs days and times)"
        raise ValueError(f"shift calendar {text!r}: {what}; expected e.g. 'Mon-Fri 08:00-20:00'")
    days = _parse_days(parts[0])
    windows: list[tuple[int, int]] = []
    for token in parts[1].split(","):
        start, end = _parse_range(token.strip())
        for day in days:
            windows.extend(
                _week_windows(day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + end)
            )
    return windows


def _parse_days(token: str) -> list[int]:
    days: list[int] = []
    for item in token.split(","):
        ends = item.split("-")
        if len(ends) > 2 or not all(ends):
            raise ValueError(f"shift calendar: bad day range {item!r}; expected e.g. 'Mon-Fri'")
        first, last = (_day(e) for e in (ends[0], ends[-1]))
        days.extend((first + i) % 7 for i in range((last - first) % 7 + 1))
    return days


def _day(token: str) -> int:
    if token.lower() not in DAYS:
        raise ValueError(
            f"shift calendar: unknown day {token!r}; use Mon, Tue, Wed, Thu, Fri, Sat, Sun"
        )
    return DAYS.index(token.lower())


def _parse_range(token: str) -> tuple[int, int]:
    ends = token.split("-")
    if len(ends) != 2:
        raise ValueError(f"shift calendar: bad time range {token!r}; expected 'HH:MM-HH:MM'")
    start, end = _minute(ends[0], token), _minute(ends[1], token)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"shift calendar: time range {token!r} cannot start at 24:00")
    if start == end % MINUTES_PER_DAY and end != MINUTES_PER_DAY:
        raise ValueError(f"shift calendar: time range {token!r} is empty (start equals end)")
    return start, end if end > start else end + MINUTES_PER_DAY


def _minute(token: str, range_token: str) -> int:
    match = _TIME_RE.match(token)
    if match is None:
        raise ValueError(f"shift calendar: bad time {token!r} in {range_token!r}; expected HH:MM")
    hours, minutes = int(match[1]), int(match[2])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"shift calendar: time {token!r} in {range_token!r} is out of range")
    return hours * 60 + minutes


def _week_windows(start: int, end: int) -> list[tuple[int, int]]:
    """Split a window that runs past Sunday midnight into two within the week."""
    if end <= MINUTES_PER_WEEK:
        return [(start, end)]
    return [(start, MINUTES_PER_WEEK), (0, end - MINUTES_PER_WEEK)]
