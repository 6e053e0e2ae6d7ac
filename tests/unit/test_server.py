"""The pure parts of `brickyard serve`: durations, the state file, the client count, the code stamp."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from brickyard.pipelines.errors import BrickyardError
from brickyard.pipelines.lake import server


def test_durations_read_as_seconds_and_a_bad_one_is_one_sentence():
    assert [server.parse_duration(t) for t in ("30m", "2h", "90s", "45", "0", "1d")] == [1800, 7200, 90, 45, 0, 86400]
    with pytest.raises(BrickyardError, match="expected a duration like 30m"):
        server.parse_duration("half an hour")


def test_a_state_file_whose_supervisor_is_gone_is_stale_and_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = server.state_file(tmp_path)
    path.parent.mkdir(parents=True)
    state = {"pid": gone.pid, "host": socket.gethostname(), "port": 1, "url": "sc://127.0.0.1:1", "started": 0}
    path.write_text(json.dumps(state))
    assert server.server_state(tmp_path) is None and not path.exists()
    path.write_text(json.dumps({**state, "pid": os.getpid()}))
    assert server.server_state(tmp_path)["pid"] == os.getpid()
    path.write_text(json.dumps({**state, "pid": os.getpid(), "host": "another-machine"}))
    assert server.server_state(tmp_path) is None  # not reachable as 127.0.0.1: not this lakehouse's server here
    assert server.server_url(tmp_path) is None


def test_connected_clients_counts_established_connections_to_the_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert server.connected_clients(port) == 0
        a, b = socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port))
        accepted = [listener.accept()[0], listener.accept()[0]]
        try:
            assert server.connected_clients(port) == 2
        finally:
            for s in (a, b, *accepted):
                s.close()


def test_the_code_stamp_changes_when_a_source_file_changes():
    from importlib.util import find_spec

    before = server.source_stamp()
    assert server.source_stamp() == before
    f = sorted((Path(find_spec("brickyard.pipelines").submodule_search_locations[0])).glob("*.py"))[0]
    st = f.stat()
    try:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert server.source_stamp() != before
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert server.source_stamp() == before
