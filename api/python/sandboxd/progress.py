"""A progress display on stderr for batches: done/total, rate, ETA and the
count of each verdict, through tqdm when it is installed, else one plain
line redrawn with a carriage return."""

from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Counts finished jobs by verdict and shows it. ``enabled=False`` shows
    nothing but still counts. ``total`` may be None when unknown."""

    def __init__(self, total: Optional[int], desc: str = "sandboxd", enabled: bool = True,
                 stream: Optional[TextIO] = None, min_interval: float = 0.2) -> None:
        self.total = total
        self.done = 0
        self.verdicts: Dict[str, int] = {}
        self._desc = desc
        self._enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._min_interval = min_interval
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = -1  # self.done when last drawn
        self._tqdm = None
        if enabled:
            try:
                from tqdm import tqdm  # optional
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._tqdm = tqdm(total=total, desc=desc, file=self._stream, unit="job",
                                  mininterval=min_interval, dynamic_ncols=True)

    def update(self, verdict: str, n: int = 1) -> None:
        """Counts n more finished jobs of that verdict."""
        self.done += n
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + n
        if not self._enabled:
            return
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(self._counts(), refresh=False)
            self._tqdm.update(n)
            return
        now = time.monotonic()
        if now - self._last_draw >= self._min_interval or self.done == self.total:
            self._last_draw = now
            self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        """The plain progress line, as drawn."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self._desc}: {self.done}/{self.total if self.total is not None else '?'}",
                 f"{rate:.1f}/s", f"elapsed {_clock(elapsed)}"]
        if self.total is not None and rate > 0:
            parts.append(f"ETA {_clock((self.total - self.done) / rate)}")
        if self.verdicts:
            parts.append(self._counts())
        return "  ".join(parts)

    def _counts(self) -> str:
        return " ".join(f"{v}={n}" for v, n in sorted(self.verdicts.items(), key=lambda kv: -kv[1]))

    def _draw(self, now: float) -> None:
        self._drawn = self.done
        self._stream.write("\r" + self.line(now) + "\x1b[K")
        self._stream.flush()

    def close(self) -> None:
        """Draws the last state and ends the line."""
        if not self._enabled:
            return
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(self._counts(), refresh=True)
            self._tqdm.close()
            self._tqdm = None
            return
        if self._drawn != self.done:
            self._draw(time.monotonic())
        if self._drawn >= 0:
            self._stream.write("\n")
        self._stream.flush()
        self._enabled = False
