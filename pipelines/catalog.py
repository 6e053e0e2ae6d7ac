"""The governed catalog: table definitions, the lineage log, and what `brickyard catalog` shows.

Every table brickyard writes is declared here once, as a `TableSpec`: its columns with comments,
its COMMENT, the properties that govern it (layer, owner, PII status, licences, producing job and
version) and its constraints (NOT NULL, CHECK). `ensure_table` creates it or brings an existing one
up to date, so the rules hold from the first write on.

`ops.lineage` is the audit trail: one row per job run, written as `running` when the run starts and
completed when it ends (`succeeded`, `noop`, `failed`). A run whose process was killed stays
`running` until the next run of the same job on the same host finds its process gone and marks it
`killed`. A CHECK constraint makes the table itself refuse a successful run whose counts do not
balance: rows_in = rows_out + rows_rejected + rows_quarantined.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pipelines
from pipelines.errors import BrickyardError

SCHEMAS = {
    "bronze": "Raw documents as read from their sources, and what could not be read (quarantine).",
    "silver": "Curated documents: normalized, PII-redacted, annotated with signals and keep/reject.",
    "gold": "What survives curation and deduplication, ready to tokenize and export.",
    "ops": "Operational tables: the lineage of every job run and the state jobs keep.",
}

PROP = "brickyard."  # prefix of the governance properties


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    name: str  # schema.table
    comment: str
    columns: tuple[Column, ...]
    layer: str
    pii: str  # raw / redacted / none
    producer: str  # the job that writes it
    checks: dict[str, str] = field(default_factory=dict)  # constraint name -> SQL condition

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    def ddl_columns(self) -> str:
        def one(c: Column) -> str:
            null = "" if c.nullable else " NOT NULL"
            comment = c.comment.replace("'", "\\'")
            return f"`{c.name}` {c.type}{null} COMMENT '{comment}'"

        return ",\n  ".join(one(c) for c in self.columns)


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (`0.1.0+3f2a1bc-dirty`)."""
    here = Path(pipelines.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],
            cwd=here, capture_output=True, text=True, timeout=10,
        )
        sha = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return f"{pipelines.__version__}+{sha}" if sha else pipelines.__version__


def sql_str(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_properties(spark, table: str) -> dict[str, str]:
    """A Delta table's properties as stored. (SHOW TBLPROPERTIES redacts values that match Spark's
    secret pattern, such as any containing "token": "tokenize" would read back as redacted.)"""
    return dict(spark.sql(f"DESCRIBE DETAIL {table}").first()["properties"] or {})


def table_exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(table)


def latest_version(spark, table: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]["version"])


def read_pinned(spark, table: str, columns: str = "*", where: str | None = None):
    """`table` at its latest version, pinned (VERSION AS OF): later commits by the same job do not
    change what this DataFrame reads. Returns (DataFrame, version)."""
    version = latest_version(spark, table)
    cond = f" WHERE {where}" if where else ""
    return spark.sql(f"SELECT {columns} FROM {table} VERSION AS OF {version}{cond}"), version


def table_checksum(df, columns: list[str]) -> str:
    """An order-free checksum of a frame's rows over `columns`: `ROWS:SUM`, where SUM adds up the
    first 60 bits of each row's sha256. Two tables with the same rows have the same checksum, however
    their files are laid out; it scales (one aggregate), and it is not meant to resist forgery."""
    from pyspark.sql import functions as F

    cells = [F.coalesce(F.col(c).cast("string"), F.lit("\u2400")) for c in columns]  # null shown as ␀
    digest = F.sha2(F.concat_ws("\u241f", *cells), 256)
    row = df.select(F.conv(F.substring(digest, 1, 15), 16, 10).cast("decimal(38,0)").alias("h")).agg(
        F.count("*").alias("n"), F.coalesce(F.sum("h"), F.lit(0)).alias("s")).first()
    return f"{row['n']}:{row['s']}"


def last_commit(spark, table: str) -> tuple[int, dict[str, str]]:
    """Version and operation metrics of the table's latest commit."""
    row = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]
    return int(row["version"]), dict(row["operationMetrics"] or {})


# (JVM session id, what was ensured): governance checked once per session and spec, so the jobs of
# one `brickyard run` (or a test session) do not re-read every table's properties before each job
_ENSURED: set[tuple] = set()


def _session_key(spark) -> str:
    try:
        return spark._jsparkSession.sessionUUID()
    except Exception:  # Spark Connect has no JVM handle: check every time
        return ""


def forget_ensured() -> None:
    """Make the next `ensure_table` check the tables again (after changing them by hand)."""
    _ENSURED.clear()


def ensure_schema(spark, name: str) -> None:
    key = (_session_key(spark), "schema", name)
    if key in _ENSURED:
        return
    # checked first: the Hive metastore logs an error with a trace for IF NOT EXISTS on an existing one
    if not spark.catalog.databaseExists(name):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {name} COMMENT {sql_str(SCHEMAS.get(name, ''))}")
    if key[0]:
        _ENSURED.add(key)


def ensure_table(spark, spec: TableSpec, owner: str) -> None:
    """Create the table if missing; keep its governance properties and constraints in place.

    Checked once per Spark session for a given spec and owner; `forget_ensured` resets that."""
    key = (_session_key(spark), spec.name, spec.ddl_columns(), tuple(sorted(spec.checks.items())),
           spec.comment, spec.layer, spec.pii, spec.producer, owner)
    if key in _ENSURED:
        return
    ensure_schema(spark, spec.schema)
    props = {
        f"{PROP}layer": spec.layer,
        f"{PROP}owner": owner,
        f"{PROP}pii": spec.pii,
        f"{PROP}producer": spec.producer,
        f"{PROP}licenses": "",
        "delta.enableChangeDataFeed": "true",
    }
    if not table_exists(spark, spec.name):
        # a new table gets its CHECK constraints with its first commit (no ALTER per rule)
        create = {**props, **{f"delta.constraints.{c.lower()}": cond for c, cond in spec.checks.items()}}
        props_sql = ", ".join(f"{sql_str(k)} = {sql_str(v)}" for k, v in create.items())
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {spec.ddl_columns()}\n) USING delta "
            f"COMMENT {sql_str(spec.comment)} TBLPROPERTIES ({props_sql})"
        )
    else:
        # columns added to the spec since the table was made arrive as nullable columns, in place
        have = {f.name for f in spark.table(spec.name).schema.fields}
        missing = [c for c in spec.columns if c.name not in have]
        if missing:
            cols = ", ".join(f"`{c.name}` {c.type} COMMENT {sql_str(c.comment)}" for c in missing)
            spark.sql(f"ALTER TABLE {spec.name} ADD COLUMNS ({cols})")
    current = table_properties(spark, spec.name)
    wanted = {k: v for k, v in props.items() if k != f"{PROP}licenses" and current.get(k) != v}
    if wanted:
        set_properties(spark, spec.name, wanted)
    for cname, cond in spec.checks.items():
        have = current.get(f"delta.constraints.{cname.lower()}")
        if have is None or not _same_sql(have, cond):
            if have is not None:  # the spec changed the rule (a wider set of values)
                spark.sql(f"ALTER TABLE {spec.name} DROP CONSTRAINT {cname}")
            spark.sql(f"ALTER TABLE {spec.name} ADD CONSTRAINT {cname} CHECK ({cond})")
    if key[0]:
        _ENSURED.add(key)


def _same_sql(stored: str, wanted: str) -> bool:
    """Delta stores a constraint's expression re-spaced (`length ( x ) = 64`): compare without spaces."""
    return "".join(stored.split()) == "".join(wanted.split())


def merge_into(spark, df, table: str, keys, run_id: str, update_when: str = "true",
               columns: list[str] | None = None) -> None:
    """MERGE `df` into `table` on `keys`: insert new rows, update matched rows where `update_when`.

    With `columns`, matched rows get only those columns and nothing is inserted (an in-place update)."""
    keys = [keys] if isinstance(keys, str) else keys
    view = f"merge_src_{run_id.replace('-', '_')}"
    df.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    if columns:
        action = f"UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)}"
        spark.sql(f"MERGE INTO {table} t USING {view} s ON {on} WHEN MATCHED AND ({update_when}) THEN {action}")
    else:
        spark.sql(
            f"MERGE INTO {table} t USING {view} s ON {on} "
            f"WHEN MATCHED AND ({update_when}) THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
    spark.catalog.dropTempView(view)


def delete_matching(spark, df, table: str, key: str, run_id: str) -> None:
    """Delete the rows of `table` whose `key` appears in `df` (one MERGE, one commit)."""
    view = f"delete_src_{run_id.replace('-', '_')}"
    df.createOrReplaceTempView(view)
    spark.sql(f"MERGE INTO {table} t USING {view} s ON t.{key} = s.{key} WHEN MATCHED THEN DELETE")
    spark.catalog.dropTempView(view)


def set_properties(spark, table: str, props: dict[str, str]) -> None:
    body = ", ".join(f"{sql_str(k)} = {sql_str(v)}" for k, v in props.items())
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({body})")


# ---------------------------------------------------------------------------------------------
# ops.lineage
# ---------------------------------------------------------------------------------------------

_REF = "ARRAY<STRUCT<name: STRING, kind: STRING, version: BIGINT, detail: STRING>>"

LINEAGE = TableSpec(
    name="ops.lineage",
    comment="One row per job run: inputs and outputs with their Delta versions, row counts, "
    "config hash, code version, times and outcome. The audit trail and the lineage graph.",
    layer="ops",
    pii="none",
    producer="every job",
    columns=(
        Column("run_id", "STRING", "Unique id of the run", nullable=False),
        Column("job", "STRING", "The job: ingest, curate, dedup, tokenize, export, train, ...", nullable=False),
        Column("status", "STRING", "running, succeeded, noop (nothing new to do), failed or killed", nullable=False),
        Column("inputs", _REF, "What the run read: tables (kind table, with the Delta version read) or sources"),
        Column("outputs", _REF, "What the run wrote: tables with the Delta version it committed"),
        Column("rows_in", "BIGINT", "Records the run read"),
        Column("rows_out", "BIGINT", "Records that passed to the output"),
        Column("rows_rejected", "BIGINT", "Records rejected by a rule (kept queryable, with their reason)"),
        Column("rows_quarantined", "BIGINT", "Records that could not be used at all (see bronze.quarantine)"),
        Column("metrics", "MAP<STRING, STRING>", "Job-specific figures: inserted, updated, bytes, files, ..."),
        Column("config_hash", "STRING", "Hash of the resolved job config"),
        Column("config", "STRING", "The resolved job config as JSON"),
        Column("code_version", "STRING", "brickyard version and git commit"),
        Column("spark_master", "STRING", "Where the job ran"),
        Column("host", "STRING", "Host of the driver"),
        Column("pid", "INT", "Process id of the driver (to spot killed runs)"),
        Column("started_at", "TIMESTAMP", "When the run started (UTC)", nullable=False),
        Column("ended_at", "TIMESTAMP", "When the run ended (UTC); null while running"),
        Column("message", "STRING", "Why a run failed, or a note on a no-op"),
    ),
    checks={
        "status_known": "status IN ('running', 'succeeded', 'noop', 'failed', 'killed')",
        "counts_balance": "status NOT IN ('succeeded', 'noop') OR rows_in IS NULL OR "
        "rows_in = rows_out + rows_rejected + rows_quarantined",
    },
)

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


class JobRun:
    """Records one job run in ops.lineage. Use as a context manager (see `run_job`)."""

    def __init__(self, spark, job: str, config: dict, config_hash: str, owner: str):
        self.spark = spark
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

    # -- writing the row -----------------------------------------------------------------------
    def _row(self):
        import json

        from pipelines.session import describe_master, hostname

        return (
            self.run_id, self.job, self.status,
            [r.as_tuple() for r in self.inputs], [r.as_tuple() for r in self.outputs],
            self.rows_in, self.rows_out, self.rows_rejected, self.rows_quarantined,
            {k: str(v) for k, v in self.metrics.items()},
            self.config_hash, json.dumps(self.config, sort_keys=True, default=str), code_version(),
            describe_master(self.spark), hostname(), os.getpid(),
            self.started_at, self.ended_at, self.message,
        )

    def _write(self, first: bool) -> None:
        if first:
            df = self.spark.createDataFrame([self._row()], _LINEAGE_SCHEMA)
            _retry(lambda: df.write.format("delta").mode("append").saveAsTable(LINEAGE.name), "record the run")
            return
        # the outcome as one UPDATE of literals: no join, and with deletion vectors no file rewrite
        values = dict(zip([c.name for c in LINEAGE.columns], self._row(), strict=True))
        sets = ", ".join(
            f"{name} = {_literal(values[name], typ)}"
            for name, typ in ((c.name, c.type) for c in LINEAGE.columns)
            if name not in ("run_id", "job", "started_at", "config", "config_hash", "host", "pid")
        )
        _retry(
            lambda: self.spark.sql(f"UPDATE {LINEAGE.name} SET {sets} WHERE run_id = {sql_str(self.run_id)}"),
            "record the run's outcome",
        )

    def __enter__(self) -> JobRun:
        ensure_table(self.spark, LINEAGE, self.owner)
        other = mark_killed_runs(self.spark, self.job)
        if other is not None:
            raise BrickyardError(
                f"{self.job} is already running on this lakehouse (run {other['run_id']}, process {other['pid']}, "
                f"started {other['started_at']:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish, then run it again "
                "if there is still work to do"
            )
        self._write(first=True)
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
            self._write(first=False)
        except Exception:
            if exc is None:
                raise
        if exc is not None and exc_type is None:
            raise exc
        return False


def _literal(value, typ: str) -> str:
    """A Spark SQL literal of `value` typed as `typ` (the lineage columns' types)."""
    if value is None:
        return f"CAST(NULL AS {typ})"
    if typ in ("BIGINT", "INT"):
        return f"CAST({int(value)} AS {typ})"
    if typ == "TIMESTAMP":
        return f"TIMESTAMP {sql_str(value.isoformat(sep=' '))}"
    if typ == "STRING":
        return sql_str(value)
    if typ.startswith("MAP"):
        if not value:
            return f"CAST(map() AS {typ})"
        return "map(" + ", ".join(f"{sql_str(k)}, {sql_str(v)}" for k, v in value.items()) + ")"
    if typ.startswith("ARRAY"):
        if not value:
            return f"CAST(array() AS {typ})"
        items = [
            f"named_struct('name', {_literal(n, 'STRING')}, 'kind', {_literal(k, 'STRING')}, "
            f"'version', {_literal(v, 'BIGINT')}, 'detail', {_literal(d, 'STRING')})"
            for n, k, v, d in value
        ]
        return "array(" + ", ".join(items) + ")"
    raise TypeError(typ)


_CONFLICT = re.compile(r"\b(Concurrent[A-Za-z]*Exception|ProtocolChangedException|MetadataChangedException)\b")


def _is_conflict(exc: BaseException) -> bool:
    """Delta's optimistic concurrency refused a commit (another writer got there first)."""
    return bool(_CONFLICT.search(f"{type(exc).__name__}: {str(exc)[:2000]}"))


def _conflict_name(exc: BaseException) -> str:
    m = _CONFLICT.search(f"{type(exc).__name__}: {str(exc)[:2000]}")
    return m.group(1) if m else type(exc).__name__


def mark_killed_runs(spark, job: str):
    """Runs of `job` still `running` on this host: those whose driver process is gone were killed
    (and are marked so); returns one whose process is alive (a thread of this process included),
    or None. Runs on other hosts cannot be probed; Delta's conflict checks cover them."""
    from pipelines.session import hostname

    rows = (
        spark.table(LINEAGE.name)
        .where(f"job = {sql_str(job)} AND status = 'running' AND host = {sql_str(hostname())}")
        .select("run_id", "pid", "started_at")
        .collect()
    )
    dead = [r["run_id"] for r in rows if not _alive(r["pid"])]
    if dead:
        ids = ", ".join(sql_str(i) for i in dead)
        _retry(
            lambda: spark.sql(
                f"UPDATE {LINEAGE.name} SET status = 'killed', ended_at = current_timestamp(), "
                "message = 'the driver process ended without recording an outcome (killed or crashed)' "
                f"WHERE run_id IN ({ids})"
            ),
            "mark killed runs",
        )
    return next((r for r in rows if _alive(r["pid"])), None)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# What `brickyard catalog` shows
# ---------------------------------------------------------------------------------------------


def format_table(headers: list[str], rows: list[list]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def list_tables(spark) -> list[dict]:
    out = []
    existing = {r["namespace"] for r in spark.sql("SHOW SCHEMAS").collect()}
    for schema in SCHEMAS:
        if schema not in existing:
            continue
        for t in spark.sql(f"SHOW TABLES IN {schema}").collect():
            if t["isTemporary"]:
                continue
            name = f"{schema}.{t['tableName']}"
            props = table_properties(spark, name)
            out.append(
                {
                    "table": name,
                    "layer": props.get(f"{PROP}layer", ""),
                    "rows": spark.table(name).count(),
                    "version": latest_version(spark, name),
                    "owner": props.get(f"{PROP}owner", ""),
                    "pii": props.get(f"{PROP}pii", ""),
                    "licenses": props.get(f"{PROP}licenses", ""),
                }
            )
    return out


def render_ls(spark) -> str:
    tables = list_tables(spark)
    if not tables:
        return "the catalog is empty: run `brickyard run` (or `brickyard ingest`) first"
    keys = ["table", "layer", "rows", "version", "owner", "pii"]
    return format_table(keys, [[t[k] for k in keys] for t in tables])


def _require(spark, table: str) -> None:
    if "." not in table:
        raise BrickyardError(f"name the table with its schema, e.g. bronze.{table}")
    if not table_exists(spark, table):
        raise BrickyardError(f"there is no table {table}; `brickyard catalog ls` lists them")


def render_show(spark, table: str, history: int = 10) -> str:
    _require(spark, table)
    detail = spark.sql(f"DESCRIBE DETAIL {table}").collect()[0]
    props = table_properties(spark, table)
    cols = [
        r for r in spark.sql(f"DESCRIBE TABLE {table}").collect()
        if r["col_name"] and not r["col_name"].startswith("#")
    ]
    lines = [f"{table}: {detail['description'] or ''}", f"location: {detail['location']}", ""]
    lines.append("columns")
    lines.append(format_table(["name", "type", "comment"], [[r["col_name"], r["data_type"], r["comment"]] for r in cols]))
    governance = {k: v for k, v in props.items() if k.startswith(PROP)}
    constraints = {k.removeprefix("delta.constraints."): v for k, v in props.items() if k.startswith("delta.constraints.")}
    delta_props = {k: v for k, v in props.items() if k.startswith("delta.") and not k.startswith("delta.constraints.")}
    lines += ["", "governance"] + [f"  {k.removeprefix(PROP)}: {v}" for k, v in sorted(governance.items())]
    lines += ["", "constraints (CHECK)"] + [f"  {k}: {v}" for k, v in sorted(constraints.items())]
    nn = [f.name for f in spark.table(table).schema.fields if not f.nullable]
    lines.append(f"  NOT NULL: {', '.join(nn) if nn else '(none)'}")
    lines += ["", "delta"] + [f"  {k}: {v}" for k, v in sorted(delta_props.items())]
    lines.append(f"  files: {detail['numFiles']}, bytes: {detail['sizeInBytes']}")
    hist = spark.sql(f"DESCRIBE HISTORY {table} LIMIT {int(history)}").collect()
    rows = []
    for h in hist:
        m = h["operationMetrics"] or {}
        shown = {k: m[k] for k in ("numOutputRows", "numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted") if k in m}
        rows.append([h["version"], str(h["timestamp"])[:19], h["operation"], h["userMetadata"] or "", " ".join(f"{k}={v}" for k, v in shown.items())])
    lines += ["", "recent history"]
    lines.append(format_table(["version", "timestamp", "operation", "by", "metrics"], rows))
    return "\n".join(lines)


def runs_writing(spark, table: str, limit: int | None = None, version: int | None = None) -> list:
    """Runs whose outputs name `table` (a table, or a model; `version`: that version only)."""
    if not table_exists(spark, LINEAGE.name):
        return []
    from pyspark.sql import functions as F

    def wrote(match):
        return lambda o: (o["name"] == table) & match(o["version"])

    if version is not None:
        # a pinned version: the run that made it, not the no-op runs that found it current
        made = spark.table(LINEAGE.name).where(F.exists("outputs", wrote(lambda v: v == F.lit(version))) & (F.col("status") == "succeeded"))
        if made.limit(1).count():
            return made.orderBy(F.col("started_at").desc()).limit(limit or 1).collect()
    # any version; for a version no run wrote (a commit of table properties only), the runs whose
    # output is at or below it: the newest of them wrote its data
    below = (lambda v: v.isNull() | (v <= F.lit(version))) if version is not None else (lambda v: F.lit(True))
    df = spark.table(LINEAGE.name).where(F.exists("outputs", wrote(below))).orderBy(F.col("started_at").desc())
    return (df.limit(limit) if limit else df).collect()


def render_run_lineage(spark, lakehouse, run_id: str, depth: int = 4) -> str:
    """From a training run (MLflow) back to its export and the tables, at the versions it read."""
    from pipelines.tracking import open_store

    client = open_store(lakehouse).MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception:
        raise BrickyardError(f"no MLflow run {run_id!r} in this lakehouse's store") from None
    tags, params = run.data.tags, run.data.params
    if tags.get("brickyard.job") != "train":
        raise BrickyardError(f"MLflow run {run_id} is not a brickyard training run")
    tokens = int(run.data.metrics.get("tokens", 0))
    lines = [f"training run {run_id} ({run.info.run_name}, {run.info.status}): model {params.get('model.preset')}, "
             f"{tokens:,} tokens trained, loss {run.data.metrics.get('ce_loss', float('nan')):.3f}",
             f"└─ export {tags.get('brickyard.export_id')} (curriculum {tags.get('brickyard.curriculum')}) "
             f"at {tags.get('brickyard.export_path')}"]
    tables = sorted((k.removeprefix("brickyard.table."), int(v)) for k, v in tags.items() if k.startswith("brickyard.table."))
    for i, (table, version) in enumerate(tables):
        last = i == len(tables) - 1
        lines.append(f"   {'└─' if last else '├─'} table {table} v{version}")
        below = render_lineage(spark, table, 1, depth, version=version).splitlines()[1:]
        lines += [f"   {'   ' if last else '│  '}{line}" for line in below]
    return "\n".join(lines)


def render_lineage(spark, table: str, runs: int = 5, depth: int = 4, version: int | None = None) -> str:
    """The upstream graph of a table: the runs that wrote it, what they read, and so on up
    (`version`: only the run that wrote that version of it)."""
    _require(spark, table)
    lines = [f"{table} (version {latest_version(spark, table) if version is None else version})"]

    def walk(name: str, prefix: str, level: int, limit: int | None, seen: set[str], version: int | None = None) -> None:
        rows = runs_writing(spark, name, limit, version)
        if not rows:
            lines.append(f"{prefix}└─ no recorded runs")
            return
        for i, r in enumerate(rows):
            last = i == len(rows) - 1
            branch, cont = ("└─ ", "   ") if last else ("├─ ", "│  ")
            out_v = next((o["version"] for o in r["outputs"] if o["name"] == name), None)
            counts = ""
            if r["rows_in"] is not None:
                counts = (
                    f" in {r['rows_in']}, out {r['rows_out']}, rejected {r['rows_rejected']}, "
                    f"quarantined {r['rows_quarantined']}"
                )
            lines.append(
                f"{prefix}{branch}{r['job']} run {r['run_id']} {r['status']} at {str(r['started_at'])[:19]}"
                f" -> v{out_v if out_v is not None else '?'};{counts}; config {r['config_hash']}, code {r['code_version']}"
            )
            if r["message"]:
                lines.append(f"{prefix}{cont}   note: {r['message']}")
            for j, inp in enumerate(r["inputs"] or []):
                ilast = j == len(r["inputs"]) - 1
                ib, ic = ("└─ ", "   ") if ilast else ("├─ ", "│  ")
                ver = f" v{inp['version']}" if inp["version"] is not None else ""
                det = f" ({inp['detail']})" if inp["detail"] else ""
                lines.append(f"{prefix}{cont}{ib}{inp['kind']} {inp['name']}{ver}{det}")
                if inp["kind"] in ("table", "model") and level < depth and inp["name"] not in seen:
                    pinned = inp["version"] if inp["kind"] == "model" else None
                    walk(inp["name"], prefix + cont + ic, level + 1, 1, seen | {inp["name"]}, pinned)

    walk(table, "", 1, runs, {table}, version)
    return "\n".join(lines)
