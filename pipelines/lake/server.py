"""The warm engine: one local Spark Connect server per lakehouse (`brickyard serve`).

A command that starts a Spark driver of its own pays, before any work, for a JVM, cold compiled
code, the metastore's boot and the first reads of every Delta log: 10-20 s on 2 cores, for every
command. A server started once keeps all of that warm, and a command connects to it over Spark
Connect (gRPC on 127.0.0.1) in well under a second. The server is also the lakehouse's one driver,
so the embedded Derby metastore's one-process limit no longer bites: a stage, `brickyard catalog`
and a notebook can work against the same lakehouse at once.

    brickyard serve [--config C | --lakehouse L] [--port P] [--idle-timeout 30m]
    brickyard serve --status
    brickyard serve --stop

What runs: a small supervisor process (`python -m brickyard.pipelines.lake.server`) that starts
the server's JVM (`SparkConnectServer`, from the jar the pyspark package ships) with the settings a
local driver gets (`session.local_conf`: Delta, the lakehouse's metastore and warehouse), records
it in `<lakehouse>/_serve/state.json`, and stops it when it has been idle for `idle_timeout`, on
`--stop`, or when the JVM dies. Idle means: no client connected (established TCP connections to its
port), no run at work (`markers.live_runs`) and no command started (clients touch
`<lakehouse>/_serve/last_use`). The JVM's output goes to `<lakehouse>/_serve/server.log`.

The stages' Python work runs in Python workers started with the interpreter that ran `brickyard
serve`, so the server's workers import the same brickyard. Those workers outlive a command, so a
server started from other brickyard source files than a client's (an edited rule, a new version) is
restarted by that client before it connects (unless a run is at work on it), and never runs stale code.

Which engine a command uses is `spark.engine` (or `--engine`, or `BRICKYARD_ENGINE`):
    auto    the lakehouse's server when one is up, else a local session of its own (the default)
    server  the lakehouse's server; an error if none is up
    local   a local session of its own (refused, in one sentence, while a server holds the lakehouse)
Static settings (driver memory, master, jars) are the server's; a client's `shuffle_partitions`
and `spark.sql.*` settings apply to its own Connect session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..config import SparkSettings
from ..errors import BrickyardError
from .markers import alive

log = logging.getLogger("brickyard")

DEFAULT_IDLE_S = 30 * 60
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
POLL_S = 5.0


def serve_dir(root: Path) -> Path:
    return Path(root) / "_serve"


def state_file(root: Path) -> Path:
    return serve_dir(root) / "state.json"


def source_stamp() -> str:
    """A digest of brickyard's own source files (names, sizes, modification times): it changes when
    the code a Python worker would import changes, an edit in a checkout included."""
    from importlib.util import find_spec

    digest = hashlib.sha256()
    folders = set()
    for name in ("brickyard", "brickyard.pipelines", "brickyard.model", "brickyard.training"):
        spec = find_spec(name)  # the package's folders, without importing it (the model would load torch)
        folders |= {Path(p) for p in (spec.submodule_search_locations or [])} if spec else set()
    for folder in sorted(folders):
        for f in sorted(folder.rglob("*.py")):
            st = f.stat()
            digest.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# What clients see
# ---------------------------------------------------------------------------------------------


def _port_open(port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout):
        return True
    return False


def server_state(root: Path) -> dict | None:
    """The lakehouse's running server (its state file, checked), or None. A state file whose
    supervisor is gone is stale and removed."""
    path = state_file(root)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("host") != socket.gethostname():
        return None  # another machine's server (a shared folder): not reachable as 127.0.0.1
    if not alive(state.get("pid")):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return state


def touch(root: Path) -> None:
    """Tell the supervisor the server was used now."""
    with contextlib.suppress(OSError):
        (serve_dir(root) / "last_use").touch()


def server_url(root: Path, restart_stale: bool = True) -> str | None:
    """The Spark Connect URL of the lakehouse's server, restarting it first if it runs other
    brickyard code than this process; None when no server is up."""
    state = server_state(root)
    if state is None:
        return None
    if restart_stale and state.get("stamp") != source_stamp():
        from .markers import live_runs

        if any(m["alive"] for m in live_runs(root)):
            raise BrickyardError(
                f"The server of {root} runs other brickyard code than this command and a run is at work on it; "
                "wait for that run, then run again (the server restarts on the new code), or use --engine local "
                "after `brickyard serve --stop`."
            )
        log.info("serve: brickyard's code changed since the server started; restarting it")
        settings = SparkSettings(**state["settings"])
        stop(root)
        state = start(root, settings, idle_s=state.get("idle_s", DEFAULT_IDLE_S))
    touch(root)
    return state["url"]


# ---------------------------------------------------------------------------------------------
# Starting, stopping, status
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(root: Path, settings: SparkSettings, port: int) -> list[str]:
    """The spark-submit command line of the server's JVM."""
    import pyspark

    from .driver import local_conf
    from .jars import ensure_delta_jars

    home = Path(pyspark.__file__).parent
    jars = sorted((home / "jars").glob("spark-connect_*.jar"))
    if not jars:
        raise BrickyardError(f"the pyspark package at {home} ships no Spark Connect server jar (jars/spark-connect_*.jar); "
                             "reinstall it with `make setup`")
    conf = local_conf(root, settings, ensure_delta_jars())
    conf["spark.connect.grpc.binding.address"] = "127.0.0.1"
    conf["spark.connect.grpc.binding.port"] = str(port)
    cmd = [str(home / "bin" / "spark-submit"), "--master", settings.master, "--driver-memory", settings.driver_memory,
           "--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--name", "brickyard-serve"]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    return [*cmd, str(jars[0])]


def start(root: Path, settings: SparkSettings, port: int | None = None, idle_s: float = DEFAULT_IDLE_S) -> dict:
    """Start the lakehouse's server (or return the one running) and wait until it takes clients."""
    from .driver import check_free_space, check_lakehouse_free, check_writable
    from .java import check_java

    root = Path(root).resolve()
    running = server_state(root)
    if running is not None:
        return running
    check_java()
    check_writable(root)
    check_free_space(root)
    check_lakehouse_free(root)
    server_command(root, settings, 0)  # the jars and the pyspark install, checked here in one sentence
    folder = serve_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if _port_open(port):
        raise BrickyardError(f"port {port} on 127.0.0.1 is taken; choose another with --port, or leave it out")
    payload = json.dumps({"root": str(root), "settings": settings.model_dump(), "port": port, "idle_s": idle_s})
    with open(folder / "server.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "brickyard.pipelines.lake.server", payload],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        state = server_state(root)
        if state is not None and state.get("pid") == proc.pid:
            return state
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
    tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
    raise BrickyardError(f"the server for {root} did not start (see {folder / 'server.log'}): {' | '.join(tail) or 'no output'}")


def stop(root: Path, timeout: float = STOP_TIMEOUT_S) -> dict | None:
    """Stop the lakehouse's server; returns the state it had, or None if none was up."""
    state = server_state(root)
    if state is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(state["pid"], os.WNOHANG)  # reap it when this process started it
    if alive(state["pid"]):
        for pid in (state.get("jvm_pid"), state["pid"]):
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        state_file(root).unlink()
    check_stopped = time.monotonic() + 30
    while _port_open(state["port"]) and time.monotonic() < check_stopped:  # the Derby lock goes with the JVM
        time.sleep(0.2)
    return state


def status(root: Path) -> dict | None:
    """The running server's state with its uptime, idle time and connected clients."""
    state = server_state(root)
    if state is None:
        return None
    now = time.time()
    return {**state, "uptime_s": now - state["started"], "idle_s_now": now - last_use(root, state["started"]),
            "clients": connected_clients(state["port"])}


def last_use(root: Path, started: float) -> float:
    try:
        return max(started, (serve_dir(root) / "last_use").stat().st_mtime)
    except OSError:
        return started


def connected_clients(port: int) -> int:
    """Established TCP connections to `port` on this machine (Linux's /proc tables; 0 elsewhere)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


# ---------------------------------------------------------------------------------------------
# The supervisor (its own process, started by `start`)
# ---------------------------------------------------------------------------------------------


def supervise(root: Path, settings: SparkSettings, port: int, idle_s: float) -> int:
    from .markers import live_runs

    stopping = {"why": None}

    def on_signal(signum, frame):
        stopping["why"] = "stopped"

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    jvm = subprocess.Popen(server_command(root, settings, port), stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    started = time.time()
    while not _port_open(port):
        if jvm.poll() is not None or stopping["why"] or time.time() - started > START_TIMEOUT_S:
            print(f"serve: the server's JVM did not take clients (exit code {jvm.poll()})", flush=True)
            _end(jvm)
            return 1
        time.sleep(0.5)
    state = {"pid": os.getpid(), "jvm_pid": jvm.pid, "host": socket.gethostname(), "port": port,
             "url": f"sc://127.0.0.1:{port}", "root": str(root), "started": started, "idle_s": idle_s,
             "stamp": source_stamp(), "settings": settings.model_dump()}
    tmp = state_file(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(state_file(root))
    print(f"serve: {root} at {state['url']} (supervisor {os.getpid()}, JVM {jvm.pid})", flush=True)
    try:
        while stopping["why"] is None:
            time.sleep(POLL_S)
            if jvm.poll() is not None:
                stopping["why"] = f"the JVM exited with code {jvm.returncode}"
            elif idle_s and connected_clients(port) == 0 and time.time() - last_use(root, started) > idle_s \
                    and not any(m["alive"] for m in live_runs(root)):
                stopping["why"] = f"idle for {idle_s:.0f}s"
    finally:
        print(f"serve: stopping ({stopping['why']})", flush=True)
        with contextlib.suppress(OSError):
            if json.loads(state_file(root).read_text()).get("pid") == os.getpid():
                state_file(root).unlink()
        _end(jvm)
    return 0


def _end(jvm: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(jvm.pid, signal.SIGTERM)
    try:
        jvm.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(jvm.pid, signal.SIGKILL)
        jvm.wait()


def parse_duration(text: str) -> float:
    """`30m`, `2h`, `90s`, `45` (seconds) or `0` (never) -> seconds."""
    t = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise BrickyardError(f"--idle-timeout {text!r}: expected a duration like 30m, 2h or 90s (0: never)") from None


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    sys.exit(supervise(Path(args["root"]), SparkSettings(**args["settings"]), int(args["port"]), float(args["idle_s"])))
