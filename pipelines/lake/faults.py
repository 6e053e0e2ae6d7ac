"""A test hook for fault tests: stop a job at a named point so that a test can SIGKILL it there.

With BRICKYARD_FAULT_PAUSE=<point> set, the job prints `fault-pause: <point>` when it reaches the
point and then sleeps until it is killed, or until SIGUSR1 lets it go on (a test that needs a run
held at work, e.g. while other clients use the same server); without it, the call does nothing. The points sit in the windows where a
kill hurts most: between two commits of one job, or after the last commit and before the run's
outcome is recorded.

    ingest:after-read        units read, nothing written
    ingest:after-documents   bronze.documents committed; quarantine and ops.source_files not yet
    curate:after-silver      silver.documents committed; ops.filter_stats not yet
    decontaminate:after-contamination   silver.contamination committed; ops.contamination_checks not yet
    dedup:after-gold         gold.documents committed; silver.spans and silver.duplicates not yet
    dedup:after-duplicates   (span dedup on) silver.duplicates committed; ops.filter_stats not yet
    tokenize:after-write     gold.tokens committed; the run's outcome not yet
    export:after-files       the export folder in place; its ops.exports row not yet
"""

from __future__ import annotations

import os
import signal
import time


def fault_pause(point: str) -> None:
    if os.environ.get("BRICKYARD_FAULT_PAUSE") == point:
        resumed = []
        previous = signal.signal(signal.SIGUSR1, lambda signum, frame: resumed.append(signum))
        print(f"fault-pause: {point}", flush=True)
        deadline = time.monotonic() + 3600
        while not resumed and time.monotonic() < deadline:
            time.sleep(0.1)
        signal.signal(signal.SIGUSR1, previous)
