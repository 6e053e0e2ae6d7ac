"""Export: `gold.tokens` -> MosaicML Streaming (MDS) shards, one stream per curriculum stream, plus
a manifest that the trainer reads.

Layout of an export (default `<lakehouse>/exports/<curriculum>-v<tokens version>-<spec hash>/`):

    manifest.json                       spec, table versions, streams, phases, checksums
    streams/<stream>/index.json         the stream's merged MDS index
    streams/<stream>/part-00000/...     shards written by one Spark task, with their own index

Beside it, `<lakehouse>/exports/<curriculum>` is a link to the newest export of that curriculum
(what `configs/train/*.yaml` name).

Packing. A stream's documents are put in a fixed pseudo-random order (xxhash64 of doc_id and the
spec's seed) and their ids, each already ending in end-of-text, are laid end to end. The stream is
cut into samples of seq_len + 1 tokens; a tail shorter than a sample is left out (counted in the
manifest). A document may be split across samples. With `doc_boundaries` each sample also carries
the positions where documents start in it, for attention masks.

Distributed writing. Each document's global offset in its stream comes from prefix sums within 64
hash buckets plus bucket offsets added on the driver (one small aggregate), so no task sees the
whole stream. The stream's samples are divided into parts of a fixed number of samples; a document
that crosses a part boundary is sent to both parts with its offsets, and each part is written by one
task with `streaming.MDSWriter` (uint32 tokens, zstd). The parts' indexes are then merged into the
stream's index. The bytes depend only on the table version, the spec and the seed, never on how
many tasks ran: an export at the same versions gives the same shard checksums.

Phases. Every phase is a mix of streams; since samples have one length, the token share of a
stream is its share of the phase's samples (`brickyard.pipelines.curriculum.plan_phases`). The manifest
gives each phase's samples per stream; training reads phase p as a `StreamingDataset` whose
streams choose that many samples each. Each phase draws from a stream on its own, so a later phase
may read samples an earlier phase read too.

The export is written to a temporary folder beside its destination and renamed into place when
complete, then recorded in `ops.exports` and `ops.lineage`. Exporting again at the same versions
and spec finds it there and does nothing. `verify` reads an export back through
`streaming.StreamingDataset` and checks it against its manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..config import PipelineConfig, config_hash, to_dict
from ..curriculum import Curriculum, plan_phases
from ..errors import BrickyardError
from ..lake.delta import latest_version
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.tables import EXPORTS, TOKENS, tokens_spec
from ..manifest import (
    FORMAT,
    INDEX,
    MANIFEST,
    file_sha256,
    import_streaming,
    link_newest,
    read_manifest,
    write_manifest,
)
from .base import Stage, StageContext, StageResult, log, run_stage

ORDER_BUCKETS = 64  # prefix sums run per (stream, bucket); part of the format, as it fixes the order
PART_SHARDS = 4  # a part (one writer task) holds about this many shards

def spec_hash(spec: Curriculum) -> str:
    """The spec's identity. A stream's empty `sources` (a later setting) is left out, so a spec
    written before it existed keeps its export ids."""
    d = to_dict(spec)
    for stream in d["streams"].values():
        if not stream["sources"]:
            del stream["sources"]
    return config_hash(d)


def export_id(spec: Curriculum, tokens_version: int) -> str:
    return f"{spec.name}-v{tokens_version}-{spec_hash(spec)[:8]}"


def columns(spec: Curriculum) -> dict[str, str]:
    """The MDS columns of a sample."""
    cols = {"tokens": f"ndarray:uint32:{spec.sample_tokens}", "stream": "str"}
    if spec.doc_boundaries:
        cols["doc_starts"] = "ndarray:uint32"
    return cols


def part_samples(spec: Curriculum) -> int:
    return max(1, PART_SHARDS * spec.shard_bytes // (4 * spec.sample_tokens))


# ---------------------------------------------------------------------------------------------
# Ordering and offsets (Spark)
# ---------------------------------------------------------------------------------------------


def stream_expr(spec: Curriculum):
    """A Column naming the stream of a gold.tokens row: the first stream whose selection it meets
    (null: in no stream)."""
    from pyspark.sql import functions as F

    expr = None
    for name, s in spec.streams.items():
        expr = F.when(s.column(), F.lit(name)) if expr is None else expr.when(s.column(), F.lit(name))
    return expr if expr is not None else F.lit(None).cast("string")


def ordered(selected, seed: int):
    """Add the packing order: (bucket, key, doc_id) with key = xxhash64(doc_id, seed)."""
    from pyspark.sql import functions as F

    key = F.xxhash64(F.col("doc_id"), F.lit(int(seed)))
    return selected.withColumn("key", key).withColumn("bucket", F.expr(f"pmod(key, {ORDER_BUCKETS})"))


def layout(spark, selected, seed: int):
    """(stream, doc_id, start, n_tokens): each document's first token offset in its stream, and the
    stream totals {stream: (documents, tokens)}. Only per-bucket totals reach the driver."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keyed = ordered(selected.select("stream", "doc_id", "n_tokens"), seed)
    within = Window.partitionBy("stream", "bucket").orderBy("key", "doc_id").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ends = keyed.withColumn("end_in_bucket", F.sum("n_tokens").over(within))
    sums = keyed.groupBy("stream", "bucket").agg(F.sum("n_tokens").alias("t"), F.count("*").alias("d")).collect()
    base, totals = [], {}
    for stream in sorted({r["stream"] for r in sums}):
        offset, docs = 0, 0
        for r in sorted((r for r in sums if r["stream"] == stream), key=lambda r: r["bucket"]):
            base.append((stream, int(r["bucket"]), offset))
            offset += int(r["t"])
            docs += int(r["d"])
        totals[stream] = (docs, offset)
    if not base:
        return None, totals
    bases = spark.createDataFrame(base, "stream STRING, bucket BIGINT, base BIGINT")
    starts = ends.join(F.broadcast(bases), ["stream", "bucket"]).select(
        "stream", "doc_id", (F.col("base") + F.col("end_in_bucket") - F.col("n_tokens")).alias("start"), "n_tokens", "bucket", "key")
    return starts, totals


# ---------------------------------------------------------------------------------------------
# Writing parts on the workers
# ---------------------------------------------------------------------------------------------

PART_SCHEMA = "stream STRING, part INT, samples BIGINT, tokens BIGINT, files ARRAY<STRUCT<file: STRING, bytes: BIGINT, sha256: STRING>>"


class PartWriter:
    """Writes one part of one stream: the tokens [lo, hi) of the stream, as samples of L tokens.

    Documents arrive in stream order with their start offsets; each must continue exactly where
    the previous one ended (or begin before the part, for the one that crosses into it)."""

    def __init__(self, root: str, stream: str, part: int, spec: dict, usable: int):
        self.root, self.stream, self.part = root, stream, part
        self.L = spec["sample_tokens"]
        self.lo = part * spec["part_samples"] * self.L
        self.hi = min(self.lo + spec["part_samples"] * self.L, usable)
        self.pos = self.lo
        self.spec = spec
        self.pending: list = []
        self.pending_len = 0
        self.starts: list[int] = []  # document starts, relative to lo
        self.samples = 0
        self.writer = None

    @property
    def out(self) -> str:
        return os.path.join(self.root, "streams", self.stream, f"part-{self.part:05d}")

    def add(self, start: int, ids) -> None:
        a, b = max(start, self.lo), min(start + len(ids), self.hi)
        if a >= b:
            return
        if a != self.pos:
            raise BrickyardError(f"export: stream {self.stream} part {self.part} expected tokens from offset {self.pos}, got {a}")
        if start >= self.lo:
            self.starts.append(start - self.lo)
        self.pending.append(ids[a - start:b - start])
        self.pending_len += b - a
        self.pos = b
        if self.pending_len >= self.L:
            self._flush()

    def _flush(self) -> None:
        import numpy as np

        buf = np.concatenate(self.pending).astype(np.uint32, copy=False)
        n = len(buf) // self.L
        if self.writer is None:
            MDSWriter = import_streaming().MDSWriter

            shutil.rmtree(self.out, ignore_errors=True)  # a retried task starts its part again
            compression = None if self.spec["compression"] == "none" else self.spec["compression"]
            self.writer = MDSWriter(out=self.out, columns=self.spec["columns"], compression=compression,
                                    hashes=["xxh64"], size_limit=self.spec["shard_bytes"], exist_ok=False)
        starts = np.asarray(self.starts, dtype=np.int64) if self.spec["doc_boundaries"] else None
        for i in range(n):
            sample = {"tokens": buf[i * self.L:(i + 1) * self.L], "stream": self.stream}
            if starts is not None:
                first = (self.samples + i) * self.L
                lo, hi = np.searchsorted(starts, [first + 1, first + self.L])
                # 0 always: the sample's first token begins a segment, whether a document starts there or continues
                sample["doc_starts"] = np.concatenate([[0], starts[lo:hi] - first]).astype(np.uint32)
            self.writer.write(sample)
        self.samples += n
        rest = buf[n * self.L:]
        self.pending, self.pending_len = ([rest] if len(rest) else []), len(rest)

    def finish(self) -> dict:
        if self.pos != self.hi or self.pending_len:
            raise BrickyardError(f"export: stream {self.stream} part {self.part} got tokens up to {self.pos} of "
                                 f"[{self.lo}, {self.hi}) ({self.pending_len} left over)")
        self.writer.finish()
        files = []
        for name in sorted(os.listdir(self.out)):
            path = os.path.join(self.out, name)
            files.append({"file": os.path.relpath(path, self.root), "bytes": os.path.getsize(path), "sha256": file_sha256(path)})
        return {"stream": self.stream, "part": self.part, "samples": self.samples, "tokens": self.hi - self.lo, "files": files}


def make_part_writer(root: str, spec: dict, usable: dict[str, int]):
    """mapInArrow function over rows (stream, part, start, tokens) sorted by (stream, part, start):
    writes each part it meets, yields one summary row per part."""

    def write_parts(batches):
        import pyarrow as pa

        schema = pa.schema([("stream", pa.string()), ("part", pa.int32()), ("samples", pa.int64()), ("tokens", pa.int64()),
                            ("files", pa.list_(pa.struct([("file", pa.string()), ("bytes", pa.int64()), ("sha256", pa.string())])))])
        current = None
        done = []
        for batch in batches:
            if batch.num_rows == 0:
                continue
            streams = batch.column("stream").to_pylist()
            parts = batch.column("part").to_numpy()
            starts = batch.column("start").to_numpy()
            lists = batch.column("tokens")
            offsets = lists.offsets.to_numpy()
            values = lists.values.to_numpy(zero_copy_only=False)
            for i in range(batch.num_rows):
                key = (streams[i], int(parts[i]))
                if current is None or (current.stream, current.part) != key:
                    if current is not None:
                        done.append(current.finish())
                    current = PartWriter(root, key[0], key[1], spec, usable[key[0]])
                current.add(int(starts[i]), values[offsets[i]:offsets[i + 1]])
            if done:
                yield pa.RecordBatch.from_pylist(done, schema=schema)
                done = []
        if current is not None:
            done.append(current.finish())
        if done:
            yield pa.RecordBatch.from_pylist(done, schema=schema)

    return write_parts


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


def export_root(cfg: PipelineConfig, lakehouse: Path) -> Path:
    p = Path(os.path.expanduser(cfg.export.root))
    return p if p.is_absolute() else lakehouse / p


class Export(Stage):
    """gold.tokens at one version -> MDS streams and a manifest, recorded in ops.exports. Its plan:
    the export id (curriculum, tokens version, spec hash) against what the destination holds."""

    name = "export"
    reads = (TOKENS.name,)
    writes = (EXPORTS,)
    quick_noop = False  # an export is a folder too: its own check looks at the folder

    def skip(self, ctx: StageContext) -> str | None:
        if ctx.options.get("spec") is None and not ctx.cfg.export.curriculum:
            return "no curriculum configured (set export.curriculum); nothing exported"
        return None

    def tables(self, ctx: StageContext):
        return (tokens_spec(ctx.cfg.tokenize.table), EXPORTS)

    def prepare(self, ctx: StageContext) -> None:
        from ..curriculum import load_curriculum

        spec = ctx.options.get("spec") or load_curriculum(ctx.cfg.resolve(ctx.cfg.export.curriculum))
        out, as_of = ctx.options.get("out"), ctx.options.get("as_of")
        latest = latest_version(ctx.spark, TOKENS.name)
        version = latest if as_of is None else int(as_of)
        if not 0 <= version <= latest:
            raise BrickyardError(f"--as-of {as_of}: gold.tokens has versions 0 to {latest}")
        xid = export_id(spec, version)
        dest = Path(out) if out else export_root(ctx.cfg, ctx.lakehouse) / xid
        self.plan = spec, version, xid, dest

    def settings(self, ctx: StageContext) -> dict:
        spec, version, _, dest = self.plan
        return {"curriculum": to_dict(spec), "tokens_version": version, "path": str(dest)}

    def settings_hash(self, ctx: StageContext, settings: dict) -> str:
        return spec_hash(self.plan[0])

    def apply(self, ctx: StageContext, run) -> dict:
        spec, version, xid, dest = self.plan
        detail = _export(ctx.spark, ctx.cfg, spec, version, xid, dest, ctx.options.get("out"),
                         bool(ctx.options.get("force")), run)
        ctx.handoff["export"] = detail["path"]
        return detail

    def check(self, ctx: StageContext, result: StageResult) -> None:
        """With `verify` (brickyard run, export --verify): read the export back against its manifest."""
        if not ctx.options.get("verify"):
            return
        from ..manifest import verify

        path = result.detail["path"]
        problems = verify(path)
        for p in problems:
            log.error("verify: %s", p)
        if problems:
            raise BrickyardError(f"export: {path} does not verify ({len(problems)} problems); stopping")
        log.info("verify: %s: ok", path)


def export(spark, cfg: PipelineConfig, spec: Curriculum, out: str | Path | None = None, as_of: int | None = None,
           force: bool = False) -> StageResult:
    """Export `gold.tokens` (latest, or VERSION AS OF `as_of`) with curriculum `spec`; the result's
    detail holds the export's `path` and `manifest`."""
    return run_stage(Export(), StageContext.of(spark, cfg, spec=spec, out=out, as_of=as_of, force=force))


def _export(spark, cfg: PipelineConfig, spec: Curriculum, version: int, xid: str, dest: Path,
            out: str | Path | None, force: bool, run) -> dict:
    from pyspark.sql import functions as F

    from ..lake.session import session_cores

    say = log.info
    run.inputs.append(Ref(TOKENS.name, "table", version))
    if (dest / MANIFEST).exists() and not force:
        old = read_manifest(dest)
        if old.get("export_id") == xid:
            if not spark.table(EXPORTS.name).where(F.col("export_id") == xid).limit(1).count():
                # a run killed after its files were in place and before its row was written
                _record(spark, dest, old)
                run.metrics["recorded_after_kill"] = xid
                say(f"export: {xid} was written by run {old.get('run_id')} but not recorded; recorded it in {EXPORTS.name}")
            run.counts(0, 0)
            run.noop(f"{dest} already holds this export")
            run.outputs.append(Ref(xid, "export", None, str(dest)))
            if out is None:
                link_newest(dest, spec.name)
            say(f"export: {dest} already holds {xid}")
            return {"path": dest, "manifest": old}
        raise BrickyardError(f"{dest} holds another export ({old.get('export_id')}); choose another --out or pass --force")
    try:
        tokens = spark.sql(f"SELECT doc_id, source, domain, quality_tier, encoding, n_tokens, tokens FROM {TOKENS.name} VERSION AS OF {version}")
    except Exception as e:
        raise BrickyardError(f"cannot read gold.tokens version {version} ({str(e).splitlines()[0][:200]}); "
                             "its files may have been vacuumed") from None
    selected = tokens.withColumn("stream", stream_expr(spec)).where("stream IS NOT NULL")
    encodings = [r["encoding"] for r in selected.select("encoding").distinct().collect()]
    if len(encodings) > 1:
        raise BrickyardError(f"gold.tokens version {version} mixes encodings ({', '.join(sorted(encodings))}); "
                             "run `brickyard tokenize` to finish re-tokenizing, then export")
    L = spec.sample_tokens
    starts, totals = layout(spark, selected, spec.seed)
    available = {s: totals.get(s, (0, 0))[1] // L for s in spec.streams}
    plans, warnings = plan_phases(spec, available)
    for w in warnings:
        say(f"export: warning: {w}")

    per_part = part_samples(spec)
    usable = {s: available[s] * L for s in spec.streams}
    tmp = dest.parent / f".{dest.name}.tmp-{run.run_id}"
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    results = []
    if starts is not None and any(usable.values()):
        span = per_part * L
        usable_df = spark.createDataFrame(list(usable.items()), "stream STRING, usable BIGINT")
        pieces = (starts.join(F.broadcast(usable_df), "stream").where("start < usable")
                  .withColumn("part", F.explode(F.sequence(
                      (F.col("start") / span).cast("int"),
                      ((F.least(F.col("start") + F.col("n_tokens"), F.col("usable")) - 1) / span).cast("int"))))
                  .select("stream", "part", "doc_id", "start"))
        with_ids = pieces.join(tokens.select("doc_id", "tokens"), "doc_id")
        n_parts = sum(-(-usable[s] // span) for s in usable)
        tasks = max(1, min(n_parts, 4 * session_cores(spark)))
        settings = {"sample_tokens": L, "part_samples": per_part, "columns": columns(spec), "compression": spec.compression,
                    "shard_bytes": spec.shard_bytes, "doc_boundaries": spec.doc_boundaries}
        written = (with_ids.repartition(tasks, "stream", "part").sortWithinPartitions("stream", "part", "start")
                   .select("stream", "part", "start", "tokens")
                   .mapInArrow(make_part_writer(str(tmp), settings, usable), PART_SCHEMA))
        results = [r.asDict(recursive=True) for r in written.collect()]
    write_s = time.perf_counter() - t0

    streams = {}
    for s, sel in spec.streams.items():
        parts = sorted((r for r in results if r["stream"] == s), key=lambda r: r["part"])
        samples = sum(r["samples"] for r in parts)
        if samples != available[s] or [r["part"] for r in parts] != list(range(len(parts))):
            raise BrickyardError(f"export: stream {s} wrote {samples} samples in parts {[r['part'] for r in parts]}, "
                                 f"expected {available[s]}")
        sdir = tmp / "streams" / s
        if parts:
            _merge_index([str(tmp / "streams" / s / f"part-{r['part']:05d}" / INDEX) for r in parts], str(sdir))
        docs, toks = totals.get(s, (0, 0))
        streams[s] = {
            "path": f"streams/{s}", "domains": sel.domains, "tiers": sel.tiers, "documents": docs,
            "tokens": toks, "samples": samples, "sample_tokens": samples * L, "tail_tokens_dropped": toks - samples * L,
            "index_sha256": file_sha256(sdir / INDEX) if parts else None,
            "shards": [f for r in parts for f in r["files"] if not f["file"].endswith(INDEX)],
        }
    manifest = {
        "format": FORMAT, "export_id": xid, "run_id": run.run_id,
        "curriculum": to_dict(spec), "spec_hash": spec_hash(spec),
        "tables": {TOKENS.name: version}, "encoding": encodings[0] if encodings else cfg.tokenize.encoding,
        "eot_id": _eot(encodings[0] if encodings else cfg.tokenize.encoding),
        "seq_len": spec.seq_len, "sample_tokens": L, "columns": columns(spec), "order_buckets": ORDER_BUCKETS,
        "budget": {"tokens": spec.tokens, "samples": spec.budget_samples},
        "streams": streams,
        "phases": [{"name": p.name, "share": p.share, "samples": p.samples, "tokens": p.samples * spec.seq_len,
                    "streams": p.streams} for p in plans],
        "warnings": warnings,
    }
    write_manifest(tmp, manifest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    if out is None:
        link_newest(dest, spec.name)
    fault_pause("export:after-files")

    n_docs = sum(v["documents"] for v in streams.values())
    n_samples = sum(v["samples"] for v in streams.values())
    n_tokens = n_samples * L
    _record(spark, dest, manifest)
    run.outputs.append(Ref(xid, "export", None, str(dest)))
    run.outputs.append(Ref(EXPORTS.name, "table", latest_version(spark, EXPORTS.name)))
    run.counts(n_docs, n_docs)
    run.metrics.update({"samples": n_samples, "tokens": n_tokens, "seconds.write": f"{write_s:.2f}",
                        **{f"samples.{s}": v["samples"] for s, v in streams.items()}, "warnings": len(warnings)})
    say(f"export: {xid}: {n_samples:,} samples of {L} tokens ({n_tokens:,} tokens) from {n_docs:,} documents -> {dest}")
    for p in plans:
        mix = ", ".join(f"{s} {v['samples']:,} ({v['proportion']:.1%})" for s, v in p.streams.items())
        say(f"  phase {p.name}: {p.samples:,} samples: {mix}")
    return {"path": dest, "manifest": manifest}


def _record(spark, dest: Path, manifest: dict) -> None:
    """The export's row in ops.exports, from its manifest."""
    from pyspark.sql import functions as F

    spec = manifest["curriculum"]
    n_samples = sum(v["samples"] for v in manifest["streams"].values())
    row = [(manifest["export_id"], spec["name"], manifest["spec_hash"], str(dest), manifest["tables"][TOKENS.name],
            manifest["encoding"], manifest["seq_len"], n_samples, n_samples * manifest["sample_tokens"], "current",
            json.dumps(manifest, sort_keys=True), manifest["run_id"])]
    (spark.createDataFrame(row, ", ".join(f"{c.name} {c.type}" for c in EXPORTS.columns[:-1]))
     .withColumn("created_at", F.current_timestamp())
     .write.format("delta").mode("append").saveAsTable(EXPORTS.name))


def _eot(encoding: str) -> int:
    from ..text.tokenizer import encoder

    return int(encoder(encoding).eot_token)


def _merge_index(part_indexes: list[str], out: str) -> None:
    """streaming's index merge, without its note about the temporary folder it uses."""
    import logging

    import_streaming()
    from streaming.base.util import merge_index

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        merge_index(part_indexes, out)
    finally:
        root.setLevel(level)


# ---------------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------------
