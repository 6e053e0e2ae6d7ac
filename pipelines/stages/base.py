"""The stage frame: what a stage is, and the one runner that owns what every stage repeats.

A stage is a small class (one per module of `stages/`):

    name      its name in `brickyard run`, the CLI and `ops.lineage`
    reads     the tables it reads (`lake.tables` names)
    writes    the tables it writes (`lake.tables` specs: the runner creates and governs them)
    settings  the part of the config that decides its output (logged and hashed in its lineage row)
    skip      why it has nothing to do in this configuration (None: run it)
    prepare   checks and look-ups that must pass before a run is recorded (a bad option is one
              sentence and leaves no lineage row)
    apply     its work, given the run's lineage record: it reads what is new, changed or withdrawn
              (each stage plans that from the catalog: keys joined against what it already wrote),
              commits, and fills in counts, inputs and outputs; it calls `run.noop(...)` when its
              plan finds nothing to do

The runner (`run_stage`) owns the rest: the tables ensured, the lineage run (a marker while it runs,
one `ops.lineage` row when it ends), the quick no-op (`unchanged_since_last_run`: every table the
stage reads and writes is at the version its last run left, with the same settings, so the stage
is not even planned), the progress lines, and one `StageResult` for every stage.

The registry of stages and their order is `stages.registry`; `brickyard run` walks it.

Progress goes through `logging` (logger `brickyard`): one line when a stage starts and one when it
ends, with its outcome and counts. Spark's console progress bar is off by default (`spark.progress`)
so that it cannot interleave with these lines.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..config import PipelineConfig, config_hash
from ..lake.tables import TableSpec

log = logging.getLogger("brickyard")


@dataclass
class StageContext:
    """What a stage may use: the session, the config, the lakehouse root, options of this run, and
    what earlier stages of the same `brickyard run` left for later ones (`handoff`)."""

    spark: object
    cfg: PipelineConfig
    lakehouse: Path
    options: dict = field(default_factory=dict)  # per-command options (ingest's sources, export's --out, ...)
    handoff: dict = field(default_factory=dict)  # e.g. the export path, for training

    @classmethod
    def of(cls, spark, cfg: PipelineConfig, **options) -> StageContext:
        from ..lake.session import session_lakehouse

        return cls(spark, cfg, session_lakehouse(spark), options)


@dataclass
class StageResult:
    """One shape for every stage's outcome. `detail` holds what is particular to a stage (an
    export's path and manifest, the tokens written, ...)."""

    stage: str
    status: str  # succeeded, noop, failed, skipped
    run_id: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rows_quarantined: int = 0
    outputs: dict[str, int | None] = field(default_factory=dict)  # table (export, model) -> version
    metrics: dict[str, str] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    seconds: float = 0.0
    message: str | None = None

    def line(self) -> str:
        counts = ""
        if self.status == "succeeded":
            counts = f": in {self.rows_in:,}, out {self.rows_out:,}"
            counts += "".join(f", {k} {v:,}" for k, v in (("rejected", self.rows_rejected),
                                                           ("quarantined", self.rows_quarantined)) if v)
        why = f" ({self.message})" if self.message and self.status in ("noop", "skipped") else ""
        return f"{self.stage}: {self.status}{why} in {self.seconds:.1f}s{counts}"


class Stage:
    """One step of the build; see the module's docstring."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[TableSpec, ...]] = ()
    quick_noop: ClassVar[bool] = True  # may the runner call it a no-op from table versions alone?
    recorded: ClassVar[bool] = True  # False: not a Spark job, no ops.lineage row (training keeps its own record in MLflow)

    def skip(self, ctx: StageContext) -> str | None:
        return None

    def prepare(self, ctx: StageContext) -> None:
        return None

    def settings(self, ctx: StageContext) -> dict:
        return {}

    def settings_hash(self, ctx: StageContext, settings: dict) -> str:
        return config_hash(settings)

    def read_tables(self, ctx: StageContext) -> tuple[str, ...]:
        """The tables it reads in this configuration."""
        return self.reads

    def tables(self, ctx: StageContext) -> tuple[TableSpec, ...]:
        """The tables to ensure before the run (those it writes, as this config makes them)."""
        return self.writes

    def apply(self, ctx: StageContext, run) -> dict:
        raise NotImplementedError

    def check(self, ctx: StageContext, result: StageResult) -> None:
        """A check of the output after the run is recorded (raise to stop `brickyard run`)."""
        return None


def skip_unless_curated(ctx: StageContext) -> str | None:
    """Curate, quality and dedup have nothing to do when tokenize reads bronze (a raw baseline)."""
    if ctx.cfg.tokenize.table == "bronze.documents":
        return "tokenize reads bronze.documents (tokenize.table), so no curated table is on the way to the export"
    return None


def unchanged_since_last_run(stage: Stage, stage_ctx: StageContext, settings_hash: str) -> dict[str, int] | None:
    """The versions that show `stage` has nothing new to do, without planning it, or None.

    Its last run ended well (succeeded or noop) with the same settings and the same code, no run of
    it on this host was killed since (nor is one running anywhere, as far as markers tell), and
    every table it reads and writes is still at the version that run recorded. Returns those
    versions, which the no-op records as they were checked (a commit by another client after the
    check is then new work for the next run, not hidden by this one). Costs one read of ops.lineage
    and one version read per table; plans on data cost whole Spark jobs."""
    from ..lake.delta import code_version, latest_version, table_exists
    from ..lake.lineage import last_outcome
    from ..lake.markers import live_runs
    from ..lake.tables import LINEAGE

    spark = stage_ctx.spark
    if not stage.quick_noop or not stage.read_tables(stage_ctx) or not table_exists(spark, LINEAGE.name):
        return None
    if live_runs(stage_ctx.lakehouse, stage.name, recent_elsewhere=True):
        return None  # a killed run's work may be half done, or a run is at work: plan it properly
    last = last_outcome(spark, stage.name)
    if (not last or last["status"] not in ("succeeded", "noop") or last["config_hash"] != settings_hash
            or last["code_version"] != code_version()):
        return None
    seen = {r["name"]: r["version"] for r in (last["inputs"] or []) + (last["outputs"] or []) if r["kind"] == "table"}
    wanted = set(stage.read_tables(stage_ctx)) | {t.name for t in stage.writes}
    if not wanted <= set(seen) or any(seen[t] is None for t in wanted):  # a view read as it was: no version
        return None
    for table in sorted(wanted):
        if not table_exists(spark, table) or latest_version(spark, table) != seen[table]:
            return None
    return {t: seen[t] for t in wanted}


QUICK_NOOP = "its input and output tables are at the versions of its last run, with the same settings and code"


def run_stage(stage: Stage, ctx: StageContext) -> StageResult:
    """Run one stage: tables, lineage, quick no-op, its work, progress, and its StageResult.
    A stage that raises is logged as failed (its lineage row says why) and the error goes on."""
    t = time.perf_counter()
    why = stage.skip(ctx)
    if why:
        result = StageResult(stage.name, "skipped", message=why)
        log.info(result.line())
        return result
    log.info("%s: started", stage.name)
    try:
        result = _run(stage, ctx, t)
    except BaseException:
        log.info(StageResult(stage.name, "failed", seconds=time.perf_counter() - t).line())
        raise
    log.info(result.line())
    stage.check(ctx, result)
    return result


def _run(stage: Stage, ctx: StageContext, t: float) -> StageResult:
    from ..lake.delta import ensure_table
    from ..lake.lineage import JobRun, Ref

    if not stage.recorded:
        stage.prepare(ctx)
        return StageResult(stage.name, "succeeded", detail=stage.apply(ctx, None) or {}, seconds=time.perf_counter() - t)
    spark, owner = ctx.spark, ctx.cfg.catalog.owner
    for spec in stage.tables(ctx):
        ensure_table(spark, spec, owner)
    stage.prepare(ctx)
    settings = stage.settings(ctx)
    digest = stage.settings_hash(ctx, settings)
    checked = unchanged_since_last_run(stage, ctx, digest)
    detail: dict = {}
    with JobRun(spark, stage.name, settings, digest, owner, lakehouse=ctx.lakehouse) as run:
        if checked is not None:
            run.counts(0, 0)
            run.noop(QUICK_NOOP)
            reads = set(stage.read_tables(ctx))
            for table, version in sorted(checked.items()):
                (run.inputs if table in reads else run.outputs).append(Ref(table, "table", version))
        else:
            detail = stage.apply(ctx, run) or {}
    return StageResult(
        stage.name, run.status, run.run_id, run.rows_in or 0, run.rows_out or 0, run.rows_rejected or 0,
        run.rows_quarantined or 0, {o.name: o.version for o in run.outputs}, dict(run.metrics), detail,
        time.perf_counter() - t, run.message,
    )
