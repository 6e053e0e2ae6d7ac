"""`ops.lineage`: the audit trail, one row per job run, appended once when the run ends.

A run in progress is not a row: it is a small marker file under the lakehouse,
`_runs/<job>/<run_id>.json` (run id, host, process id, start time, config). Writing and listing it
costs no Spark action and no Delta commit. When the run ends, its outcome (`succeeded`, `noop` or
`failed`) is appended to `ops.lineage` as one row, in one commit, and the marker is removed.

A run whose process was killed leaves its marker behind. The next run of the same job on the same
host finds the marker, sees that the process is gone, and appends a `killed` row for it together
with its own outcome (still one commit); a marker whose process is alive means the job is running
now, and the second run is refused. Runs on other hosts cannot be probed; Delta's conflict checks
cover them.

A CHECK constraint makes the table itself refuse a successful run whose counts do not balance:
rows_in = rows_out + rows_rejected + rows_quarantined.

Lakehouses written before this format (format 1) recorded a `running` row and UPDATEd it at the
end; `ensure_lineage` upgrades them in place once (see `upgrade_lineage`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrickyardError
from .delta import (
    code_version,
    ensure_table,
    forget_ensured,
    is_ensured,
    mark_ensured,
    query_files,
    set_properties,
    table_exists,
    table_properties,
)
from .markers import alive, live_runs, markers_dir
from .tables import LINEAGE, PROP

LINEAGE_FORMAT = "2"  # 1: a `running` row UPDATEd at the end; 2: one row appended per run, markers for live runs
FORMAT_PROPERTY = f"{PROP}lineage.format"
KILLED = "the driver process ended without recording an outcome (killed or crashed)"

_LINEAGE_SCHEMA = ", ".join(f"{c.name} {c.type}" for c in LINEAGE.columns)


@dataclass
class Ref:
    name: str
    kind: str  # table / source / export / model
    version: int | None = None
    detail: str | None = None

    def as_tuple(self):
        return (self.name, self.kind, self.version, self.detail)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _retry(action, what: str, attempts: int = 5):
    """Retry a small ops write that lost a race with a concurrent Delta commit."""
    for i in range(attempts):
        try:
            return action()
        except Exception as e:
            if "Concurrent" not in type(e).__name__ + str(e)[:300] or i == attempts - 1:
                raise
            time.sleep(0.2 * (2**i))
    raise BrickyardError(f"could not {what}")


def _killed_row(m: dict, ended: dt.datetime) -> tuple:
    return (
        m["run_id"], m["job"], "killed", [], [], None, None, None, None, {},
        m.get("config_hash"), m.get("config"), m.get("code_version"), m.get("spark_master"),
        m.get("host"), m.get("pid"), dt.datetime.fromisoformat(m["started_at"]), ended, KILLED,
    )


# ---------------------------------------------------------------------------------------------
# The table, and lakehouses of the previous format
# ---------------------------------------------------------------------------------------------


def ensure_lineage(spark, owner: str) -> None:
    """ops.lineage exists, is governed, and is of this format (upgraded in place if it was older);
    the format is checked once per session."""
    if not is_ensured(spark, FORMAT_PROPERTY):
        if table_exists(spark, LINEAGE.name) and table_properties(spark, LINEAGE.name).get(FORMAT_PROPERTY) != LINEAGE_FORMAT:
            upgrade_lineage(spark)
            forget_ensured()  # check the table's constraints again: the status rule no longer allows `running`
            ensure_table(spark, LINEAGE, owner)
        elif not table_exists(spark, LINEAGE.name):
            ensure_table(spark, LINEAGE, owner)
        if not table_properties(spark, LINEAGE.name).get(FORMAT_PROPERTY):
            set_properties(spark, LINEAGE.name, {FORMAT_PROPERTY: LINEAGE_FORMAT})  # a new table is of this format
        mark_ensured(spark, FORMAT_PROPERTY)
    ensure_table(spark, LINEAGE, owner)  # once per session too


def upgrade_lineage(spark) -> None:
    """Bring an ops.lineage of format 1 to format 2, once: its `running` rows were runs whose outcome
    was never written (their process is gone) and become `killed`; a row whose process still runs
    on this host means an older brickyard is at work, and the upgrade waits for it."""
    from pyspark.sql import functions as F

    from .session import hostname

    lineage = spark.table(LINEAGE.name)
    running = lineage.where(F.col("status") == "running").select("run_id", "job", "host", "pid").collect()
    busy = [r for r in running if r["host"] == hostname() and alive(r["pid"])]
    if busy:
        r = busy[0]
        raise BrickyardError(
            f"this lakehouse's ops.lineage is of an older format and {r['job']} run {r['run_id']} (process {r['pid']}) "
            "of an older brickyard is still writing to it; let it finish, then run again to upgrade the lakehouse in place"
        )
    if running:
        ids = spark.createDataFrame([(r["run_id"],) for r in running], "run_id STRING").alias("source")
        (ids.mergeInto(LINEAGE.name, F.col(f"{LINEAGE.name}.run_id") == F.col("source.run_id"))
         .whenMatched().update({"status": F.lit("killed"), "ended_at": F.current_timestamp(), "message": F.lit(KILLED)})
         .merge())
    set_properties(spark, LINEAGE.name, {FORMAT_PROPERTY: LINEAGE_FORMAT})


# ---------------------------------------------------------------------------------------------
# Reading it
# ---------------------------------------------------------------------------------------------

OUTCOME_COLUMNS = ("status", "config_hash", "code_version", "inputs", "outputs")


def last_outcome(spark, job: str, local: bool = True) -> dict | None:
    """The newest row of `job` in ops.lineage (OUTCOME_COLUMNS, inputs and outputs as lists of
    dicts), or None. A killed row shares the end time of the run that found it, and sorts after it.

    Every stage run asks this before it plans (`stages.base.unchanged_since_last_run`). When the
    warehouse is on this machine's disk it is read from the table's files (`delta.query_files`: tens
    of milliseconds, where a Spark query costs 0.5-1 s on 2 cores); anywhere else, or with
    `local=False`, Spark answers. The two give the same row (`tests/integration/test_plans.py`).
    DataFusion sorts nulls first in a descending order where Spark sorts them last: NULLS LAST."""
    if local and re.fullmatch(r"[\w-]+", job):  # a job name is a stage's own: no quoting needed
        rows = query_files(spark, outcome_query(job), {"lineage": (LINEAGE.name, None)})
        if rows is not None:
            return rows[0] if rows else None
    from pyspark.sql import functions as F

    last = (spark.table(LINEAGE.name).where(F.col("job") == job)
            .orderBy(F.col("ended_at").desc_nulls_last(), (F.col("status") == "killed").asc())
            .select(*OUTCOME_COLUMNS).limit(1).collect())
    return last[0].asDict(recursive=True) if last else None


def outcome_query(job: str) -> str:
    """`last_outcome`'s query for the files' reader, over the alias `lineage`."""
    return (f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM lineage WHERE job = '{job}' "
            "ORDER BY ended_at DESC NULLS LAST, (status = 'killed') ASC LIMIT 1")


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


class JobRun:
    """Records one job run: a marker while it runs, one row in ops.lineage when it ends.

    Use as a context manager around a job's work; the stage runner (`stages.base.run_stage`) opens
    one per stage and describes the stage from it."""

    def __init__(self, spark, job: str, config: dict, config_hash: str, owner: str, lakehouse: str | Path | None = None):
        self.spark = spark
        self.lakehouse = lakehouse  # None: the session's (the runner passes its context's)
        self.job = job
        self.config = config
        self.config_hash = config_hash
        self.owner = owner
        self.run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.inputs: list[Ref] = []
        self.outputs: list[Ref] = []
        self.rows_in: int | None = None
        self.rows_out: int | None = None
        self.rows_rejected: int | None = None
        self.rows_quarantined: int | None = None
        self.metrics: dict[str, str] = {}
        self.status = "running"
        self.message: str | None = None
        self.started_at = _now()
        self.ended_at: dt.datetime | None = None
        self._killed: list[dict] = []  # markers of this job's killed runs, recorded with this run's row
        self._marker: Path | None = None

    # -- what jobs call ------------------------------------------------------------------------
    def counts(self, rows_in: int, rows_out: int, rejected: int = 0, quarantined: int = 0) -> None:
        self.rows_in, self.rows_out = int(rows_in), int(rows_out)
        self.rows_rejected, self.rows_quarantined = int(rejected), int(quarantined)

    def noop(self, message: str) -> None:
        self.status = "noop"
        self.message = message

    @contextlib.contextmanager
    def phase(self, name: str):
        """Record a phase's wall time in the run's metrics (seconds.NAME)."""
        t = time.perf_counter()
        yield
        self.metrics[f"seconds.{name}"] = f"{time.perf_counter() - t:.2f}"

    # -- the marker and the row ----------------------------------------------------------------
    def _fixed(self) -> dict:
        from .session import describe_master, hostname

        return {
            "run_id": self.run_id, "job": self.job, "host": hostname(), "pid": os.getpid(),
            "started_at": self.started_at.isoformat(), "config_hash": self.config_hash,
            "config": json.dumps(self.config, sort_keys=True, default=str), "code_version": code_version(),
            "spark_master": describe_master(self.spark),
        }

    def _row(self, fixed: dict) -> tuple:
        return (
            self.run_id, self.job, self.status,
            [r.as_tuple() for r in self.inputs], [r.as_tuple() for r in self.outputs],
            self.rows_in, self.rows_out, self.rows_rejected, self.rows_quarantined,
            {k: str(v) for k, v in self.metrics.items()},
            fixed["config_hash"], fixed["config"], fixed["code_version"], fixed["spark_master"],
            fixed["host"], fixed["pid"], self.started_at, self.ended_at, self.message,
        )

    def _append(self) -> None:
        killed = self._killed
        if killed:  # a run killed after its row was appended, and before its marker went, is not killed
            from pyspark.sql import functions as F

            ids = [m["run_id"] for m in killed]
            recorded = {r["run_id"] for r in self.spark.table(LINEAGE.name).where(F.col("run_id").isin(ids)).select("run_id").collect()}
            killed = [m for m in killed if m["run_id"] not in recorded]
        rows = [_killed_row(m, self.ended_at) for m in killed] + [self._row(self._fixed_values)]
        df = self.spark.createDataFrame(rows, _LINEAGE_SCHEMA)
        _retry(lambda: df.write.format("delta").mode("append").saveAsTable(LINEAGE.name), "record the run")
        for m in self._killed:
            Path(m["marker"]).unlink(missing_ok=True)

    def __enter__(self) -> JobRun:
        from .session import session_lakehouse

        ensure_lineage(self.spark, self.owner)
        lakehouse = self.lakehouse if self.lakehouse is not None else session_lakehouse(self.spark)
        mine = live_runs(lakehouse, self.job)
        other = next((m for m in mine if m["alive"]), None)
        if other is not None:
            raise BrickyardError(
                f"{self.job} is already running on this lakehouse (run {other['run_id']}, process {other['pid']}, "
                f"started {other['started_at'][:19].replace('T', ' ')} UTC); wait for it to finish, then run it again "
                "if there is still work to do"
            )
        self._killed = [m for m in mine if m["alive"] is False]
        self._fixed_values = self._fixed()
        folder = markers_dir(lakehouse, self.job)
        folder.mkdir(parents=True, exist_ok=True)
        self._marker = folder / f"{self.run_id}.json"
        tmp = self._marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._fixed_values))
        tmp.replace(self._marker)  # whole or absent: a kill cannot leave half a marker
        # every Delta commit made during the run names it in the table's history
        self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", f"brickyard {self.job} {self.run_id}")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        self.ended_at = _now()
        if exc is None and self.rows_in is not None:
            balance = self.rows_out + self.rows_rejected + self.rows_quarantined
            if self.rows_in != balance:
                exc = BrickyardError(
                    f"{self.job} lost track of records: {self.rows_in} read but {self.rows_out} out + "
                    f"{self.rows_rejected} rejected + {self.rows_quarantined} quarantined = {balance}"
                )
        if exc is not None and not isinstance(exc, BrickyardError) and _is_conflict(exc):
            exc = BrickyardError(
                f"{self.job} lost a race: another run committed to the same Delta table while this one ran "
                f"({_conflict_name(exc)}); what this run committed before stands and nothing is half-written, "
                f"so run {self.job} again to finish"
            )
            exc_type = None  # raise the sentence in place of Delta's trace
        if exc is not None:
            self.status = "failed"
            self.message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:1000]
        elif self.status == "running":
            self.status = "succeeded"
        try:
            self._append()
            if self._marker is not None:
                self._marker.unlink(missing_ok=True)
        except Exception:
            if exc is None:
                raise
        if exc is not None and exc_type is None:
            raise exc
        return False


_CONFLICT = re.compile(r"\b(Concurrent[A-Za-z]*Exception|ProtocolChangedException|MetadataChangedException)\b")


def _is_conflict(exc: BaseException) -> bool:
    """Delta's optimistic concurrency refused a commit (another writer got there first)."""
    return bool(_CONFLICT.search(f"{type(exc).__name__}: {str(exc)[:2000]}"))


def _conflict_name(exc: BaseException) -> str:
    m = _CONFLICT.search(f"{type(exc).__name__}: {str(exc)[:2000]}")
    return m.group(1) if m else type(exc).__name__
