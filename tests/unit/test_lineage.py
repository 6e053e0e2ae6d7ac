"""Live-run markers: where they go, and what the next run reads from them (no Spark needed)."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from brickyard.pipelines.lake.markers import MARKERS, live_runs, markers_dir
from brickyard.pipelines.lake.session import hostname


def test_markers_live_under_a_local_lakehouse_and_in_the_cache_for_object_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKYARD_CACHE", str(tmp_path / "cache"))
    assert markers_dir(tmp_path / "lh", "curate") == tmp_path / "lh" / MARKERS / "curate"
    assert markers_dir(f"file://{tmp_path}/lh") == tmp_path / "lh" / MARKERS
    remote = markers_dir("s3a://bucket/lake", "dedup")
    assert remote.is_relative_to(tmp_path / "cache" / "runs") and remote.name == "dedup"
    assert markers_dir(Path("s3a://bucket/lake"), "dedup") == remote  # Path folds `//`: the same folder
    assert markers_dir("s3a://bucket/other", "dedup") != remote


def _marker(folder: Path, run_id: str, host: str, pid: int, started: dt.datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run_id}.json").write_text(json.dumps(
        {"run_id": run_id, "job": folder.name, "host": host, "pid": pid, "started_at": started.isoformat()}))


def test_the_next_run_tells_live_from_killed_and_ignores_other_hosts_stale_markers(tmp_path):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = markers_dir(tmp_path, "tokenize")
    _marker(folder, "a-live", hostname(), os.getpid(), now - dt.timedelta(minutes=5))
    _marker(folder, "b-killed", hostname(), dead.pid, now - dt.timedelta(minutes=9))
    _marker(folder, "c-elsewhere", "another-host", 1, now - dt.timedelta(hours=1))
    _marker(folder, "d-elsewhere-old", "another-host", 1, now - dt.timedelta(days=3))
    (folder / "e-cut.json").write_text('{"run_id": ')  # a kill during a write leaves no whole marker; skipped
    runs = live_runs(tmp_path, "tokenize")
    assert [m["run_id"] for m in runs] == ["d-elsewhere-old", "c-elsewhere", "b-killed", "a-live"]  # oldest first
    assert {m["run_id"]: m["alive"] for m in runs} == {"a-live": True, "b-killed": False, "c-elsewhere": None,
                                                      "d-elsewhere-old": None}
    assert [m["run_id"] for m in live_runs(tmp_path, "tokenize", recent_elsewhere=True)] == ["c-elsewhere", "b-killed", "a-live"]
    assert live_runs(tmp_path, "dedup") == [] and len(live_runs(tmp_path)) == 4
