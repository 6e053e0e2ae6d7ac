"""What the job benchmarks share: a quiet Spark config for a throwaway lakehouse, and a table
pre-filled with real documents the way the previous stage would have left it."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path


def config(lakehouse: Path):
    from brickyard.pipelines.config import PipelineConfig, SparkSettings

    return PipelineConfig(lakehouse=str(lakehouse), spark=SparkSettings(ui=False, progress=False, driver_memory="3g"))


def write_documents(lakehouse: Path, spec, texts: list[str], spark=None, first_id: int = 0, **extra) -> None:
    """Append one row per text to the table of `spec` (created if missing), in 8 files, with the
    document columns every layer shares filled in; `extra` sets the layer's own columns (a value
    may be a function of the row's doc_id). Columns left out are null. Doc ids count from
    `first_id`. Without `spark`, a session of its own is started and stopped."""
    from brickyard.pipelines.lake.delta import ensure_table
    from brickyard.pipelines.lake.session import get_spark

    own = spark is None
    if own:
        spark = get_spark(lakehouse, config(lakehouse).spark, app_name=f"bench-{spec.name}")
    ensure_table(spark, spec, "bench")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for i, text in enumerate(texts, start=first_id):
        doc_id = f"d{i:07d}"
        row = {"doc_id": doc_id, "source": "bench", "domain": "other", "kind": "text", "path": f"f{i}", "locator": f"f{i}",
               "text": text, "content_sha256": hashlib.sha256(text.encode()).hexdigest(), "n_bytes": len(text.encode()),
               "lang": "en", "batch_id": "bench", "curated_at": now, "deduped_at": now}
        row.update({k: (v(doc_id) if callable(v) else v) for k, v in extra.items()})
        rows.append([row.get(c.name) for c in spec.columns])
    schema = ", ".join(f"{c.name} {c.type}" for c in spec.columns)
    spark.createDataFrame(rows, schema).repartition(8).write.format("delta").mode("append").saveAsTable(spec.name)
    if own:
        spark.stop()


class PeakHeap:
    """While open, samples the driver JVM's heap in use every half second; `mb` is the peak (in
    local mode the JVM is driver and executors at once)."""

    def __init__(self, spark):
        self.runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.runtime.totalMemory() - self.runtime.freeMemory())
            except Exception:  # the session is gone
                return
            self.stop.wait(0.5)

    @property
    def mb(self) -> float:
        return self.peak / 2**20

    def __enter__(self) -> PeakHeap:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
