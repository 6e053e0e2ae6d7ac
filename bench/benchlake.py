"""What the job benchmarks share: a quiet Spark config for a throwaway lakehouse, and a table
pre-filled with real documents the way the previous stage would have left it."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path


def config(lakehouse: Path):
    from pipelines.config import PipelineConfig, SparkSettings

    return PipelineConfig(lakehouse=str(lakehouse), spark=SparkSettings(ui=False, progress=False, driver_memory="3g"))


def write_documents(lakehouse: Path, spec, texts: list[str], **extra) -> None:
    """Append one row per text to the table of `spec` (created if missing), in 8 files, with the
    document columns every layer shares filled in; `extra` sets the layer's own columns (a value
    may be a function of the row's doc_id). Columns left out are null."""
    from pipelines.catalog import ensure_table
    from pipelines.session import get_spark

    spark = get_spark(lakehouse, config(lakehouse).spark, app_name=f"bench-{spec.name}")
    ensure_table(spark, spec, "bench")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for i, text in enumerate(texts):
        doc_id = f"d{i:07d}"
        row = {"doc_id": doc_id, "source": "bench", "domain": "other", "kind": "text", "path": f"f{i}", "locator": f"f{i}",
               "text": text, "content_sha256": hashlib.sha256(text.encode()).hexdigest(), "n_bytes": len(text.encode()),
               "lang": "en", "batch_id": "bench", "curated_at": now, "deduped_at": now}
        row.update({k: (v(doc_id) if callable(v) else v) for k, v in extra.items()})
        rows.append([row.get(c.name) for c in spec.columns])
    schema = ", ".join(f"{c.name} {c.type}" for c in spec.columns)
    spark.createDataFrame(rows, schema).repartition(8).write.format("delta").mode("append").saveAsTable(spec.name)
    spark.stop()
