"""`brickyard serve`: a warm Spark Connect server for one lakehouse, used by every other command.

One server, started by the CLI on a lakehouse of its own: commands use it by default; while a stage
is at work on it, `brickyard catalog` and a notebook's session query the same lakehouse (a local
driver could not: the embedded metastore admits one process); a local driver is refused with one
sentence while the server holds the lakehouse; a server started from other brickyard code is
restarted before use; `--status`, `--stop` and the idle timeout. That a whole build over the server
gives the tables a local driver gives is checked in test_report.py (its build runs through a server;
the standalone-cluster build there runs a driver of its own, and their tables are compared)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import clean_env, copy_stdlib_package

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PIPELINE = """
lakehouse: lh
spark: {master: "local[2]", driver_memory: 1g, shuffle_partitions: 4, ui: false, progress: false}
sources:
  - {name: code, kind: code, path: code}
"""


def brickyard(root: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "brickyard", *args, "--config", str(root / "pipeline.yaml")],
                       cwd=root, capture_output=True, text=True, timeout=timeout, env=clean_env())
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    (root / "pipeline.yaml").write_text(PIPELINE)
    copy_stdlib_package(root / "code", "json")
    r = brickyard(root, "serve")
    assert "started in" in r.stdout, r.stdout
    try:
        yield root
    finally:
        brickyard(root, "serve", "--stop", check=False)


def state(root: Path) -> dict:
    return json.loads((root / "lh" / "_serve" / "state.json").read_text())


def test_a_stage_the_catalog_and_a_notebook_session_work_on_one_lakehouse_at_once(served):
    """The build is held at work between two of curate's commits (a fault point, released with
    SIGUSR1) while `brickyard catalog` and a notebook's session query the lakehouse; then it goes on."""
    root = served
    env = dict(clean_env(), PYTHONUNBUFFERED="1", BRICKYARD_FAULT_PAUSE="curate:after-silver")
    stage = subprocess.Popen([sys.executable, "-m", "brickyard", "run", "--until", "dedup", "--config", str(root / "pipeline.yaml")],
                             cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = []
    for line in stage.stdout:
        seen.append(line)
        if line.startswith("fault-pause: curate:after-silver"):
            break
    else:
        pytest.fail("the build never reached curate's pause: " + "".join(seen)[-3000:])
    assert list((root / "lh" / "_runs" / "curate").glob("*.json")), "curate's run is at work"
    env.pop("BRICKYARD_FAULT_PAUSE")
    catalog = subprocess.Popen([sys.executable, "-m", "brickyard", "catalog", "show", "silver.documents", "--config", str(root / "pipeline.yaml")],
                               cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    notebook = subprocess.run([sys.executable, "-c", (
        "from pathlib import Path\n"
        "from brickyard.pipelines.config import SparkSettings\n"
        "from brickyard.pipelines.lake.session import get_spark\n"
        "spark = get_spark(Path('lh').resolve(), SparkSettings())\n"
        "print('session', type(spark).__module__)\n"
        "print('silver', spark.table('silver.documents').count(), 'kept', spark.table('silver.documents').where('keep').count())\n")],
        cwd=root, capture_output=True, text=True, timeout=300, env=env)
    out_catalog, _ = catalog.communicate(timeout=300)
    assert stage.poll() is None, "the build was still held at work"
    stage.send_signal(signal.SIGUSR1)
    out_stage = "".join(seen) + stage.communicate(timeout=600)[0]
    assert notebook.returncode == 0, notebook.stdout + notebook.stderr
    assert "pyspark.sql.connect" in notebook.stdout, notebook.stdout
    silver = int(notebook.stdout.split("silver ")[1].split()[0])
    assert silver > 0, notebook.stdout  # curate's silver commit, seen by another client while its run is open
    assert catalog.returncode == 0 and "silver.documents: " in out_catalog and "recent history" in out_catalog, out_catalog
    assert stage.returncode == 0, out_stage
    assert all(f"{s}: succeeded" in out_stage for s in ("ingest", "curate", "dedup")), out_stage
    r = brickyard(root, "catalog", "lineage", "silver.documents")
    assert "curate" in r.stdout


def test_a_local_driver_is_refused_while_the_server_holds_the_lakehouse(served):
    r = brickyard(served, "catalog", "show", "silver.documents", "--engine", "local", check=False)
    assert r.returncode == 2
    assert "is held by its server" in r.stderr and "brickyard serve --stop" in r.stderr, r.stderr


def test_a_server_running_other_code_is_restarted_before_use_and_status_and_stop_report_it(served):
    before = state(served)
    path = served / "lh" / "_serve" / "state.json"
    path.write_text(json.dumps({**before, "stamp": "code-of-another-day"}))
    r = brickyard(served, "catalog", "show", "silver.documents")
    assert "restarting it" in r.stdout + r.stderr
    after = state(served)
    assert after["pid"] != before["pid"] and after["stamp"] != "code-of-another-day"
    r = brickyard(served, "serve", "--status")
    assert f"at {after['url']}" in r.stdout and "stops after 30 min idle" in r.stdout
    r = brickyard(served, "serve", "--stop")
    assert "stopped the server" in r.stdout
    assert brickyard(served, "serve", "--status", check=False).returncode == 3
    # with no server, commands start a driver of their own (the default engine), or refuse (--engine server)
    r = brickyard(served, "catalog", "show", "silver.documents", "--engine", "server", check=False)
    assert r.returncode == 2 and "No brickyard server is running" in r.stderr


def test_an_idle_server_stops_by_itself(served):
    r = brickyard(served, "serve", "--idle-timeout", "2s")
    pid = state(served)["pid"]
    deadline = time.time() + 120
    while (served / "lh" / "_serve" / "state.json").exists() and time.time() < deadline:
        time.sleep(1)
    assert not (served / "lh" / "_serve" / "state.json").exists(), "the idle server did not stop"
    log = (served / "lh" / "_serve" / "server.log").read_text()
    assert f"supervisor {pid}" in log and "stopping (idle for 2s)" in log, log[-2000:]
    assert r.returncode == 0
    assert brickyard(served, "serve", "--status", check=False).returncode == 3
