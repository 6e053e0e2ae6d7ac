"""The shared memory a killed StreamingDataset leaves is removed for its own cache only: another
job's datasets on the same machine keep theirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from brickyard.pipelines.manifest import release_stream_blocks

READER = """
import os, signal, sys
from streaming import Stream, StreamingDataset
ds = StreamingDataset(streams=[Stream(remote=sys.argv[1], local=sys.argv[2])], shuffle=False, batch_size=1)
next(iter(ds))
os.killpg(0, signal.SIGKILL)  # with its resource tracker, as a killed job: the dataset's blocks stay behind
"""


def _blocks_naming(folder: Path) -> list[str]:
    """The `NNNNNN_locals` blocks on this machine whose recorded local folders include `folder`."""
    from multiprocessing import resource_tracker, shared_memory

    found = []
    for f in sorted(Path("/dev/shm").glob("[0-9]*_locals")):
        track, resource_tracker.register = resource_tracker.register, lambda *a, **k: None
        try:
            b = shared_memory.SharedMemory(f.name)
        except FileNotFoundError:
            continue
        finally:
            resource_tracker.register = track
        if str(folder).encode() in bytes(b.buf):
            found.append(f.name)
        b.close()
    return found


def test_a_killed_readers_blocks_go_and_another_jobs_stay(tmp_path):
    from streaming import MDSWriter, Stream, StreamingDataset

    remote = tmp_path / "remote"
    with MDSWriter(out=str(remote), columns={"tokens": "ndarray:uint32"}) as w:
        for i in range(8):
            w.write({"tokens": np.arange(i, i + 4, dtype=np.uint32)})
    killed, other = tmp_path / "killed-cache", tmp_path / "other-cache"
    r = subprocess.run([sys.executable, "-c", READER, str(remote), str(killed / "s")], capture_output=True, text=True,
                       timeout=120, start_new_session=True)
    assert r.returncode == -9, r.stderr[-2000:]
    assert _blocks_naming(killed / "s")  # left behind
    live = StreamingDataset(streams=[Stream(remote=str(remote), local=str(other / "s"))], shuffle=False, batch_size=1)
    assert len(list(live)) == 8 and _blocks_naming(other / "s")

    assert release_stream_blocks(killed) >= 1
    assert not _blocks_naming(killed / "s")
    assert _blocks_naming(other / "s")  # the live dataset of another job keeps its blocks
    again = StreamingDataset(streams=[Stream(remote=str(remote), local=str(killed / "s"))], shuffle=False, batch_size=1)
    assert len(list(again)) == 8
    del again
    assert release_stream_blocks(tmp_path / "nothing-here") == 0
