"""Progress for ``map``: a tqdm bar on a terminal, a few plain lines anywhere else.

Logs and CI output get at most one line every ``LOG_EVERY_S`` seconds plus a summary,
never a stream of carriage returns.
"""
from __future__ import annotations

import sys
import time

LOG_EVERY_S = 10.0


class Progress:
    """Counts finished instances and shows throughput and ETA."""

    def __init__(self, total: int | None, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar = None
        self.enabled = enabled
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="inst", file=self.stream, dynamic_ncols=True)

    def update(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
        elif time.monotonic() - self._last_line >= LOG_EVERY_S:
            self._line()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._line(final=True)

    def _line(self, final: bool = False) -> None:
        now = time.monotonic()
        self._last_line = now
        rate = self.done / max(now - self.started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        eta = ""
        if self.total is not None and rate > 0 and not final:
            eta = f", ETA {max(0.0, (self.total - self.done) / rate):.0f}s"
        word = "done:" if final else "progress:"
        print(f"{word} {self.done}{of} instances, {rate:.1f}/s{eta}", file=self.stream, flush=True)
