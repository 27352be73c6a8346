from datetime import UTC, datetime, timedelta

from wattline.demo import backfill_window


def test_backfill_window_lies_on_weekdays_for_every_day_of_a_week() -> None:
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    for offset in range(7):
        now = monday + timedelta(days=offset)
        start, end = backfill_window(now)
        assert end - start == timedelta(days=1)
        assert start.weekday() < 5 and end.weekday() < 5
        assert end <= now - timedelta(minutes=2)
        assert now - end < timedelta(days=4)


def test_backfill_window_is_the_last_day_on_a_wednesday() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert backfill_window(now) == (
        datetime(2026, 12, 1, 9, 58, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 58, tzinfo=UTC),
    )


def test_backfill_window_on_a_sunday_ends_on_friday() -> None:
    start, end = backfill_window(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    assert end == datetime(2026, 12, 4, 11, 58, tzinfo=UTC)
    assert start == datetime(2026, 12, 3, 11, 58, tzinfo=UTC)
