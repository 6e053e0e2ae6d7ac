"""Delta helpers every stage uses: create and govern tables, read pinned versions, merge, checksum.

Values reach Spark as parameters or through the DataFrame API; identifiers (table and column names)
come only from `tables`, never from user input.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
from pathlib import Path

from ... import __version__
from .tables import PROP, SCHEMAS, TableSpec


@functools.cache
def code_version() -> str:
    """Package version plus the git commit when run from a checkout (`0.1.0+3f2a1bc-dirty`), read
    once per process."""
    here = Path(__file__).resolve().parents[2]  # the checkout, when run from one
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],
            cwd=here, capture_output=True, text=True, timeout=10,
        )
        sha = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def ddl_literal(value: str) -> str:
    """A string literal for DDL text (comments, table properties), where Spark takes no parameters.
    Only the project's own table specs and property values reach it; values in queries and writes
    go through the DataFrame API instead."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_properties(spark, table: str) -> dict[str, str]:
    """A Delta table's properties as stored. (SHOW TBLPROPERTIES redacts values that match Spark's
    secret pattern, such as any containing "token": "tokenize" would read back as redacted.)"""
    log = local_log(spark, table)
    if log is not None:
        try:
            from deltalake import DeltaTable

            return dict(DeltaTable(str(log.parent)).metadata().configuration)
        except Exception:  # a table feature the JVM-free reader does not know: ask Spark
            pass
    return dict(spark.sql(f"DESCRIBE DETAIL {table}").first()["properties"] or {})


def table_exists(spark, table: str) -> bool:
    return spark.catalog.tableExists(table)


def latest_version(spark, table: str) -> int:
    log = local_log(spark, table)
    if log is not None:
        version = _newest_commit(log)
        if version >= 0:
            return version
    return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]["version"])


def table_columns(spark, table: str) -> list[str]:
    """The names of a table's columns, in order."""
    log = local_log(spark, table)
    if log is not None:
        try:
            from deltalake import DeltaTable

            return [f.name for f in DeltaTable(str(log.parent)).schema().fields]
        except Exception:
            pass
    return [f.name for f in spark.table(table).schema.fields]


# -- the JVM-free fast path ------------------------------------------------------------------------
# A table's version, properties and columns are facts of its Delta log. When the driver runs in this
# process and the warehouse is on local disk, they are read from the log folder itself (the newest
# commit file's number; the log's metadata through the `deltalake` reader) in milliseconds, where
# DESCRIBE HISTORY and DESCRIBE DETAIL each cost a Spark job (0.2-0.9 s on 2 cores, paid per table
# per job). Anywhere else (object storage, Spark Connect, a table outside the warehouse) Spark answers.

_WAREHOUSE: dict[str, Path | None] = {}  # session id -> local warehouse folder, or None
_SCHEMA_HERE: dict[tuple[str, str], bool] = {}  # (session id, schema) -> the catalog keeps it in the warehouse folder
_SAME_MACHINE: set[str] = set()  # Spark Connect sessions whose server runs on this machine (`brickyard serve`)


def mark_same_machine(spark) -> None:
    _SAME_MACHINE.add(session_key(spark))


def local_log(spark, table: str) -> Path | None:
    """The `_delta_log` folder of a managed table on this machine's disk, or None."""
    from urllib.parse import unquote, urlparse

    key = session_key(spark)
    if not key or (key.startswith("connect:") and key not in _SAME_MACHINE):  # another machine's files
        return None
    if key not in _WAREHOUSE:
        url = urlparse(spark.conf.get("spark.sql.warehouse.dir", ""))
        _WAREHOUSE[key] = Path(url.path) if url.scheme in ("", "file") and url.path else None
    warehouse = _WAREHOUSE[key]
    if warehouse is None or table.count(".") != 1:
        return None
    schema, name = table.split(".")
    log = warehouse / f"{schema}.db" / name / "_delta_log"
    if not log.is_dir():
        return None
    if (key, schema) not in _SCHEMA_HERE:
        # the metastore records where each schema's tables live: a lakehouse folder copied or moved
        # elsewhere still names the old place, where Spark reads and writes, and this folder's log
        # would be another table's past (one metastore call per schema and session)
        try:
            uri = spark.catalog.getDatabase(schema).locationUri or ""
        except Exception:  # not in the catalog (yet): Spark answers, and the next call asks again
            return None
        url = urlparse(uri)
        here = url.scheme in ("", "file") and os.path.realpath(unquote(url.path)) == os.path.realpath(warehouse / f"{schema}.db")
        _SCHEMA_HERE[(key, schema)] = here
    return log if _SCHEMA_HERE[(key, schema)] else None


def _newest_commit(log: Path) -> int:
    """The number of the newest commit file (`00000000000000000012.json`) in a log folder, or -1.
    Commit files are written whole (renamed into place) and the newest is never cleaned up."""
    newest = -1
    with os.scandir(log) as entries:
        for e in entries:
            n = e.name
            if len(n) == 25 and n.endswith(".json") and n[:20].isdigit():
                newest = max(newest, int(n[:20]))
    return newest


def query_files(spark, query: str, tables: dict[str, tuple[str, int | None]]) -> list[dict] | None:
    """Rows of `query` (DataFusion SQL over the aliases of `tables`: alias -> (table, version, None
    for the latest)) read from the tables' files with the `deltalake` reader, which honours deletion
    vectors; None when a table's log is not on this machine's disk or the reader cannot read it, for
    the caller to ask Spark. Meant for the small bookkeeping queries every run makes (which runs
    lack statistics, a job's last outcome), where a Spark job's fixed cost is 0.5-1 s on 2 cores.
    Only identifiers and the project's own constants may appear in `query`."""
    logs = {alias: (local_log(spark, table), version) for alias, (table, version) in tables.items()}
    if any(log is None for log, _ in logs.values()):
        return None
    try:
        import pyarrow as pa
        from deltalake import DeltaTable, QueryBuilder

        qb = QueryBuilder()
        for alias, (log, version) in logs.items():
            qb.register(alias, DeltaTable(str(log.parent), version=version))
        return pa.table(qb.execute(query).read_all()).to_pylist()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # a table feature the reader does not know, or a panic in it (a BaseException): Spark answers
        return None


def count_in_files(spark, table: str, version: int | None, where: str) -> int | None:
    """Rows of `table` at `version` (None: the latest) where `where` holds, counted from the table's
    files (`query_files`); None when they cannot be read here. `where` must mean the same in Spark
    SQL and DataFusion (comparisons, IN lists, CASE, IS [NOT] DISTINCT FROM), so that a caller can
    ask Spark the same question when this answers None."""
    rows = query_files(spark, f"SELECT count(*) AS n FROM t WHERE {where}", {"t": (table, version)})
    return None if rows is None else rows[0]["n"]


_HEX_ID = re.compile(r"[0-9a-f]+")
# a plan of at most this many documents is small enough to name by doc_id (`id_list`) in a query
ID_LIST_LIMIT = 5000


def id_list(ids) -> str | None:
    """brickyard's own ids (lower-case hex: doc_ids, content hashes) as the items of an SQL IN list
    for `query_files` and `count_in_files`; None when one is not such an id, or there is none (then
    the caller asks Spark, whose frames take values as values)."""
    ids = sorted(set(ids))
    if not ids or not all(_HEX_ID.fullmatch(i) for i in ids):
        return None
    return ", ".join(f"'{i}'" for i in ids)


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
    """Version and operation metrics of the table's latest commit: from its commit file's
    `commitInfo` when the log is on this disk (what DESCRIBE HISTORY reads, without its Spark job),
    else from DESCRIBE HISTORY."""
    log = local_log(spark, table)
    if log is not None:
        version = _newest_commit(log)
        info = _commit_info(log / f"{version:020d}.json") if version >= 0 else None
        if info is not None:
            return version, {k: str(v) for k, v in (info.get("operationMetrics") or {}).items()}
    row = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").collect()[0]
    return int(row["version"]), dict(row["operationMetrics"] or {})


def _commit_info(commit: Path) -> dict | None:
    """The `commitInfo` action of a commit file (one JSON action per line), or None."""
    import json

    try:
        with open(commit, encoding="utf-8") as f:
            for line in f:
                if line.startswith('{"commitInfo"'):
                    return json.loads(line)["commitInfo"]
    except (OSError, ValueError, KeyError):
        return None
    return None


# (JVM session id, what was ensured): governance checked once per session and spec, so the jobs of
# one `brickyard run` (or a test session) do not re-read every table's properties before each job
_ENSURED: set[tuple] = set()


def session_key(spark) -> str:
    try:
        return spark._jsparkSession.sessionUUID()
    except Exception:  # Spark Connect: the client's session id
        return f"connect:{getattr(spark, 'session_id', '')}" if getattr(spark, "session_id", "") else ""


def forget_ensured() -> None:
    """Make the next `ensure_table` check the tables again (after changing them by hand)."""
    _ENSURED.clear()
    _SCHEMA_HERE.clear()


def is_ensured(spark, *what) -> bool:
    """Whether `what` (a check of a table's state) was done in this session already."""
    return (session_key(spark), *what) in _ENSURED


def mark_ensured(spark, *what) -> None:
    if session_key(spark):  # Spark Connect has no session id here: check every time
        _ENSURED.add((session_key(spark), *what))


def ensure_schema(spark, name: str) -> None:
    key = (session_key(spark), "schema", name)
    if key in _ENSURED:
        return
    # checked first: the Hive metastore logs an error with a trace for IF NOT EXISTS on an existing one
    if not spark.catalog.databaseExists(name):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {name} COMMENT {ddl_literal(SCHEMAS.get(name, ''))}")
    if key[0]:
        _ENSURED.add(key)


def ensure_table(spark, spec: TableSpec, owner: str) -> None:
    """Create the table if missing; keep its governance properties and constraints in place.

    Checked once per Spark session for a given spec and owner; `forget_ensured` resets that."""
    key = (session_key(spark), spec.name, spec.ddl_columns(), tuple(sorted(spec.checks.items())),
           tuple(sorted(spec.delta_properties.items())), spec.comment, spec.layer, spec.pii, spec.producer, owner)
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
        **spec.delta_properties,
    }
    if not table_exists(spark, spec.name):
        # a new table gets its CHECK constraints with its first commit (no ALTER per rule)
        create = {**props, **{f"delta.constraints.{c.lower()}": cond for c, cond in spec.checks.items()}}
        props_sql = ", ".join(f"{ddl_literal(k)} = {ddl_literal(v)}" for k, v in create.items())
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {spec.name} (\n  {spec.ddl_columns()}\n) USING delta "
            f"COMMENT {ddl_literal(spec.comment)} TBLPROPERTIES ({props_sql})"
        )
    else:
        # columns added to the spec since the table was made arrive as nullable columns, in place
        have = set(table_columns(spark, spec.name))
        missing = [c for c in spec.columns if c.name not in have]
        if missing:
            cols = ", ".join(f"`{c.name}` {c.type} COMMENT {ddl_literal(c.comment)}" for c in missing)
            spark.sql(f"ALTER TABLE {spec.name} ADD COLUMNS ({cols})")
    current = table_properties(spark, spec.name)
    set_properties(spark, spec.name, {k: v for k, v in props.items() if k != f"{PROP}licenses"}, current)
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


def _matches(table: str, keys: list[str]):
    """The merge condition: the target's keys (qualified by the table's name) equal the source's."""
    from functools import reduce

    from pyspark.sql import functions as F

    return reduce(lambda x, y: x & y, [F.col(f"{table}.{k}") == F.col(f"source.{k}") for k in keys])


@contextlib.contextmanager
def scoped_conf(spark, settings: dict[str, str]):
    """Runtime SQL settings for the duration of a block, restored afterwards."""
    before = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _source_settings(df, fixed: bool):
    """MERGE reads its source twice (to find matches, then to write), so Delta first materializes a
    source it cannot prove stable: a job and a copy. `fixed`: the caller's source is a checkpoint
    (or filters and projections of one), which cannot change between the two reads; otherwise the
    session's own setting stands."""
    if not fixed:
        return contextlib.nullcontext()
    return scoped_conf(df.sparkSession, {"spark.databricks.delta.merge.materializeSource": "none"})


def merge_into(df, table: str, keys, changed: list[str] | None = None, columns: list[str] | None = None,
               fixed: bool = False) -> None:
    """MERGE `df` into `table` on `keys` (one commit): insert new rows, replace matched ones.

    `changed`: replace a matched row only where one of these columns differs (null-safe), so an
    unchanged row costs no rewrite. `columns`: matched rows get only these columns and nothing is
    inserted (an in-place update). Built with `DataFrame.mergeInto`: no SQL text, no temporary
    view, and the same call works over Spark Connect."""
    from functools import reduce

    from pyspark.sql import functions as F

    keys = [keys] if isinstance(keys, str) else keys
    merge = df.alias("source").mergeInto(table, _matches(table, keys))
    when = None
    if changed:
        when = reduce(lambda x, y: x | y, [~F.col(f"{table}.{c}").eqNullSafe(F.col(f"source.{c}")) for c in changed])
    matched = merge.whenMatched(when) if when is not None else merge.whenMatched()
    with _source_settings(df, fixed):
        if columns:
            matched.update({c: F.col(f"source.{c}") for c in columns}).merge()
        else:
            matched.updateAll().whenNotMatched().insertAll().merge()


def insert_new(df, table: str, keys, fixed: bool = False) -> None:
    """Insert the rows of `df` whose `keys` are not in `table`: a MERGE with only an insert clause
    (one commit, one pass over the target's keys; Delta writes the new rows without a second join).
    For rows the caller knows to be new it costs less than `merge_into`, and unlike a plain append
    it reads the table, so Delta's optimistic concurrency fails a concurrent writer of the same
    rows instead of letting both commit (appends never conflict), and a key is never doubled.
    `fixed`: the source is a checkpoint (see `_source_settings`)."""
    keys = [keys] if isinstance(keys, str) else keys
    with _source_settings(df, fixed):
        df.alias("source").mergeInto(table, _matches(table, keys)).whenNotMatched().insertAll().merge()


def delete_matching(df, table: str, key: str | list[str], fixed: bool = False) -> None:
    """Delete the rows of `table` whose `key` (a column, or several) appears in `df` (one MERGE, one
    commit). `fixed`: the source is a checkpoint (see `_source_settings`)."""
    keys = [key] if isinstance(key, str) else list(key)
    with _source_settings(df, fixed):
        df.select(*keys).alias("source").mergeInto(table, _matches(table, keys)).whenMatched().delete().merge()


def set_properties(spark, table: str, props: dict[str, str], current: dict[str, str] | None = None) -> None:
    """Set table properties, in one commit, where they differ from the stored ones (none: no commit).
    `current`: the stored properties, where the caller has just read them."""
    current = table_properties(spark, table) if current is None else current
    changed = {k: v for k, v in props.items() if current.get(k) != v}
    if changed:
        body = ", ".join(f"{ddl_literal(k)} = {ddl_literal(v)}" for k, v in changed.items())
        spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({body})")


def table_bytes(spark, table: str, version: int | None) -> int | None:
    """Bytes of the data files `table` holds at `version` (None: the latest), summed from its log
    with the `deltalake` reader (milliseconds, no Spark job); None when the log is not on this
    machine's disk or the reader cannot read it."""
    log = local_log(spark, table)
    if log is None:
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        from deltalake import DeltaTable

        actions = pa.table(DeltaTable(str(log.parent), version=version).get_add_actions(flatten=False))
        return int(pc.sum(actions["size_bytes"]).as_py() or 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # as in query_files: a reader that cannot read the log says nothing
        return None


# a pinned read of a table whose files hold at most this many bytes is held in memory for the run
HOLD_BYTES = 64 << 20


def held(spark, df, table: str, version: int):
    """`df` (a read of `table` pinned at `version`) materialized once, when the table's files at that
    version are small (`HOLD_BYTES`): a job that reads a small table many times (joins, rounds)
    pays one scan instead of a Delta scan per query (0.3-0.6 s each on 2 cores, most of it the
    log and file bookkeeping, not the rows). A large table, or one whose size is unknown here, is
    read where it is used, as before."""
    size = table_bytes(spark, table, version)
    return df.localCheckpoint(eager=True) if size is not None and size <= HOLD_BYTES else df
