"""A training's hold on its streaming cache folder: the shared memory a killed run of its own left
behind is removed (a deleted phase's emptied blocks too), another job's live blocks are kept, and a
second training on the same folder is refused in one sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from brickyard.pipelines.errors import BrickyardError
from brickyard.training.data import StreamCache

# two phases' datasets, as a training reads them: the first deleted at the switch (streaming empties
# its locals block), the second live; then the whole group is killed, resource tracker included
KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from streaming import Stream, StreamingDataset
from brickyard.training.data import StreamCache
remote, root = sys.argv[1], Path(sys.argv[2])
cache = StreamCache(root)
cache.hold()
first = StreamingDataset(streams=[Stream(remote=remote, local=str(root / "first"))], shuffle=False, batch_size=1)
cache.note()
print(first._shm_prefix_int, flush=True)
del first
second = StreamingDataset(streams=[Stream(remote=remote, local=str(root / "second"))], shuffle=False, batch_size=1)
cache.note()
print(second._shm_prefix_int, flush=True)
next(iter(second))
os.killpg(0, signal.SIGKILL)
"""


def _blocks(n: int) -> list[str]:
    return sorted(p.name for p in Path("/dev/shm").glob(f"{n:06}_*"))


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="POSIX shared memory as files is Linux's")
def test_a_killed_runs_blocks_go_another_jobs_stay_and_a_second_holder_is_refused(tmp_path):
    from streaming import MDSWriter, Stream, StreamingDataset

    remote = tmp_path / "remote"
    with MDSWriter(out=str(remote), columns={"tokens": "ndarray:uint32"}) as w:
        for i in range(8):
            w.write({"tokens": np.arange(i, i + 4, dtype=np.uint32)})
    root, other = tmp_path / "cache" / "export", tmp_path / "other-cache"
    r = subprocess.run([sys.executable, "-c", KILLED_RUN, str(remote), str(root)], capture_output=True, text=True,
                       timeout=120, start_new_session=True)
    assert r.returncode == -9, r.stderr[-2000:]
    first, second = (int(x) for x in r.stdout.split())
    assert _blocks(first) and _blocks(second)  # left behind, the first phase's with its folders emptied
    live = StreamingDataset(streams=[Stream(remote=str(remote), local=str(other / "s"))], shuffle=False, batch_size=1)
    assert len(list(live)) == 8
    mine = _blocks(live._shm_prefix_int)

    cache = StreamCache(root)
    assert cache.hold() >= 2
    assert not _blocks(first) and not _blocks(second)
    assert _blocks(live._shm_prefix_int) == mine  # another job's live dataset keeps its blocks
    with pytest.raises(BrickyardError, match="another training on this machine is reading through the cache folder"):
        StreamCache(root).hold()
    again = StreamingDataset(streams=[Stream(remote=str(remote), local=str(root / "second"))], shuffle=False, batch_size=1)
    assert len(list(again)) == 8
    cache.note()
    del again
    cache.release()
    later = StreamCache(root)
    assert later.hold() == 0  # this process is alive: its blocks are not a killed run's
    later.release()


HOLDER = """
import sys
from brickyard.pipelines.manifest import stream_registration
with stream_registration():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_datasets_are_registered_by_one_job_at_a_time_on_the_machine():
    import fcntl
    import os
    import tempfile

    from brickyard.pipelines.manifest import stream_registration

    lock = Path(tempfile.gettempdir()) / "brickyard-streaming.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # another job registering: this one would wait
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.communicate("\n", timeout=60)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once it is done
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        holder.kill()
    barriers = []
    with stream_registration(leader=False, barrier=lambda: barriers.append(1)):
        assert barriers == [1]  # the other ranks wait until their leader holds the lock
    assert barriers == [1, 1]  # and until every rank has registered
