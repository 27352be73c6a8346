"""Progress for long commands: one updating line on a terminal, nothing otherwise.

Logs stay one line per step whatever the output is; this is only the interactive cue
(issue 7: quiet when not on a terminal, so cron jobs and pipes get clean output).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.done = 0

    def step(self, what: str, amount: int = 1) -> None:
        self.done += amount
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        pct = 100 * self.done / self.total
        self.stream.write(
            f"\r{self.label}: {self.done}/{self.total} ({pct:.0f} %) {what}, {elapsed:.0f} s\033[K"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
