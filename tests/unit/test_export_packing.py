"""Packing without Spark: parts written by `PartWriter`, merged, and read back through
`StreamingDataset` give back the documents' token stream exactly, with document starts."""

from __future__ import annotations

import numpy as np
from brickyard.pipelines.manifest import INDEX, stream_registration
from brickyard.pipelines.stages.export import PartWriter, _merge_index

EOT = 100257


def test_parts_unpack_to_the_token_stream_with_document_starts(tmp_path):
    from streaming import Stream, StreamingDataset

    rng = np.random.default_rng(5)
    docs = [np.append(rng.integers(0, 100000, int(n), dtype=np.int32), EOT) for n in rng.integers(1, 60, 80)]
    docs.append(np.append(rng.integers(0, 100000, 300, dtype=np.int32), EOT))  # spans several samples and parts
    stream = np.concatenate(docs)
    starts = np.concatenate([[0], np.cumsum([len(d) for d in docs])[:-1]])
    L, per_part = 17, 9
    usable = len(stream) // L * L
    spec = {"sample_tokens": L, "part_samples": per_part, "columns": {"tokens": f"ndarray:uint32:{L}", "stream": "str",
            "doc_starts": "ndarray:uint32"}, "compression": "zstd", "shard_bytes": 1 << 12, "doc_boundaries": True}
    n_parts = -(-usable // (L * per_part))
    results = []
    for part in range(n_parts):
        w = PartWriter(str(tmp_path), "s", part, spec, usable)
        for start, d in zip(starts, docs, strict=True):
            w.add(int(start), d)  # documents outside the part are ignored by it
        results.append(w.finish())
    assert sum(r["samples"] for r in results) == usable // L
    assert all(any(f["file"].endswith(".mds.zstd") for f in r["files"]) for r in results)
    _merge_index([str(tmp_path / "streams" / "s" / f"part-{p:05d}" / INDEX) for p in range(n_parts)], str(tmp_path / "streams" / "s"))

    with stream_registration():  # a training in the other test process may be registering
        ds = StreamingDataset(streams=[Stream(remote=str(tmp_path / "streams" / "s"), local=str(tmp_path / "cache"))], shuffle=False, batch_size=1)
    samples = [ds[i] for i in range(len(ds))]
    got = np.concatenate([s["tokens"] for s in samples])
    assert got.dtype == np.uint32 and np.array_equal(got, stream[:usable].astype(np.uint32))
    for i, s in enumerate(samples):
        want = [0] + [int(x) - i * L for x in starts if i * L < x < (i + 1) * L]
        assert s["doc_starts"].tolist() == want
        assert all(s["tokens"][p - 1] == EOT for p in want if p > 0)
        assert s["stream"] == "s"
