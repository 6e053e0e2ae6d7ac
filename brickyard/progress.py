"""brickyard's progress on the console: the `brickyard` logger's lines, plus a live status line on a
terminal.

Every stage logs one line when it starts and one when it ends (`pipelines.stages.base`), and its
job logs a few lines of what it found. Printed as they come, those are the whole output in a log
file or a pipe. On a terminal, the stage in progress also gets a status line at the bottom that
redraws itself ten times a second (`⠹ curate  12.3s`), cleared before each logged line, so the
two never interleave. Spark's own console progress bar is off by default (`spark.progress`).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STARTED = re.compile(r"^(\w+): started$")
ENDED = re.compile(r"^(\w+): (succeeded|noop|failed|skipped)\b")


class ConsoleProgress(logging.Handler):
    def __init__(self, stream=None, live: bool | None = None):
        super().__init__()
        self._stream = stream  # None: whatever sys.stdout is when a line is written
        self.live = self.stream.isatty() if live is None else live
        self.stage: str | None = None
        self.since = 0.0
        self.drawing = threading.Lock()  # not `lock`: logging.Handler holds its own while emitting
        self.drawn = False
        if self.live:
            threading.Thread(target=self._spin, daemon=True, name="brickyard-progress").start()

    @property
    def stream(self):
        # looked up each time: a caller that swaps sys.stdout (a test runner's capture, a notebook)
        # and closes the old one must not leave the handler writing to a closed file
        return self._stream or sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        with self.drawing:
            self._clear()
            self.stream.write(message + "\n")
            if m := STARTED.match(message):
                self.stage, self.since = m.group(1), time.monotonic()
            elif (m := ENDED.match(message)) and m.group(1) == self.stage:
                self.stage = None
            self.stream.flush()

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.drawn = False

    def _spin(self) -> None:
        i = 0
        while True:
            time.sleep(0.1)
            with self.drawing:
                if self.stage is None:
                    continue
                self._clear()
                self.stream.write(f"{FRAMES[i % len(FRAMES)]} {self.stage}  {time.monotonic() - self.since:.1f}s")
                self.stream.flush()
                self.drawn = True
            i += 1


def to_console() -> None:
    """Send the `brickyard` logger's lines to stdout (once), with a live status line on a terminal."""
    log = logging.getLogger("brickyard")
    if not any(isinstance(h, ConsoleProgress) for h in log.handlers):
        handler = ConsoleProgress()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
