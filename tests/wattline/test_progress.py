"""Progress lines appear on a terminal and nowhere else."""

from __future__ import annotations

import io

from wattline.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_updating_line() -> None:
    out = Terminal()
    progress = Progress("jobs", 4, out)
    progress.step("days 1..2", 2)
    progress.step("days 3..4", 2)
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and "4/4 (100 %)" in text and text.endswith("\n")


def test_a_pipe_gets_nothing() -> None:
    out = io.StringIO()
    progress = Progress("jobs", 4, out)
    progress.step("days 1..4", 4)
    progress.close()
    assert out.getvalue() == ""
