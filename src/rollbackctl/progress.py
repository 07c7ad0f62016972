"""Progress of a run: a live line per phase on a terminal, plain lines otherwise (CI, AWX, pipes)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from .phases import Phase


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


def estimate_text(phase: Phase) -> str:
    if not phase.estimate:
        return "no Appendix C estimate"
    low, high = phase.estimate.min_minutes, phase.estimate.max_minutes
    span = f"{low:g} min" if low == high else f"{low:g}-{high:g} min"
    return f"Appendix C: {span}"


class Progress:
    """Prints phase progress. On a TTY one line per phase is redrawn every second with the elapsed
    time and the current task; elsewhere each phase gets a start line and an end line."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._phase: Phase | None = None
        self._started = 0.0
        self._task = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def message(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self.live and self._phase:
                self.stream.write("\r\033[K")
            self.stream.write(text + "\n")
            self.stream.flush()

    def _line(self) -> str:
        phase = self._phase
        elapsed = time.monotonic() - self._started
        task = f" - {self._task[:60]}" if self._task else ""
        return f"  {phase.name:<16} {clock(elapsed)}  ({estimate_text(phase)}){task}"

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._phase:
                    self.stream.write("\r\033[K" + self._line())
                    self.stream.flush()

    def phase_started(self, phase: Phase) -> None:
        self._phase, self._started, self._task = phase, time.monotonic(), ""
        if self.quiet:
            return
        if self.live:
            self._stop.clear()
            self.stream.write(self._line())
            self.stream.flush()
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        else:
            self.message(f"phase {phase.name}: started ({phase.title}; {estimate_text(phase)})")

    def task(self, name: str) -> None:
        self._task = name or ""

    def phase_finished(self, phase: Phase, status: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self._started
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            self._phase = None
        extra = f" - {detail}" if detail else ""
        if self.live and not self.quiet:
            self.stream.write("\r\033[K")
        self.message(f"phase {phase.name}: {status} in {clock(elapsed)} ({estimate_text(phase)}){extra}")

    def phase_skipped(self, phase: Phase, note: str) -> None:
        self.message(f"phase {phase.name}: skipped - {note}")
