"""Markers of live runs: `_runs/<job>/<run_id>.json` under a lakehouse, one per run at work.

A run writes its marker when it starts and removes it with its outcome row (see `lineage`); a
marker whose process is gone is a killed run. Plain files, no Spark: the runner, `brickyard serve`'s
supervisor (a run at work keeps its server up) and the tests read them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from pathlib import Path

MARKERS = "_runs"  # under the lakehouse root


def markers_dir(lakehouse: str | Path, job: str | None = None) -> Path:
    """Where live runs leave their markers: `_runs/` under a lakehouse on a local (or mounted) file
    system; for a lakehouse in object storage (`s3a://...`), a folder of this machine's brickyard
    cache named after it (markers tell about this host's processes, which only it can probe)."""
    text = str(lakehouse)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/", text)  # `Path` folds `s3a://b` into `s3a:/b`
    if scheme and scheme.group(1).lower() != "file":
        import hashlib

        from .jars import cache_root

        uri = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/+", r"\1://", text)  # one name whether folded or not
        root = cache_root() / "runs" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    else:
        root = Path(re.sub(r"^file:(//)?", "", text)) / MARKERS
    return root / job if job else root


RECENT_ELSEWHERE_S = 24 * 3600  # a marker of another host younger than this may be a run at work


def live_runs(lakehouse: str | Path, job: str | None = None, recent_elsewhere: bool = False) -> list[dict]:
    """The markers of runs that have not recorded an outcome (running now, or killed and not yet
    found), oldest first. Each is the marker's content plus `alive` (for runs on this host; None for
    other hosts, which cannot be probed). `recent_elsewhere`: leave out other hosts' markers older
    than a day (a container that was killed and never came back would otherwise count forever)."""
    folders = [markers_dir(lakehouse, job)] if job else sorted(p for p in markers_dir(lakehouse).glob("*") if p.is_dir())
    here, out, now = socket.gethostname(), [], dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for folder in folders:
        for f in sorted(folder.glob("*.json")):
            try:
                m = json.loads(f.read_text())
            except (OSError, ValueError):
                continue  # removed while listed, or cut short by a kill during its write
            m["marker"] = str(f)
            m["alive"] = alive(m.get("pid")) if m.get("host") == here else None
            if recent_elsewhere and m["alive"] is None:
                started = dt.datetime.fromisoformat(m.get("started_at", "1970-01-01T00:00:00"))
                if (now - started).total_seconds() > RECENT_ELSEWHERE_S:
                    continue
            out.append(m)
    return sorted(out, key=lambda m: m.get("started_at", ""))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
