"""What `brickyard catalog` shows: the tables, one table in detail, and the lineage graph."""

from __future__ import annotations

from ..errors import BrickyardError
from .delta import latest_version, table_exists, table_properties
from .tables import LINEAGE, PROP, SCHEMAS

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


def list_tables_on_disk(root) -> list[dict]:
    """`list_tables` for a lakehouse on this machine's disk, read from the Delta logs without Spark
    (the JVM-free reader the notebooks use): milliseconds instead of a Spark job per table."""
    from .lakeview import Lakeview

    overview = Lakeview(root).overview()
    rows = overview[overview["table"].str.split(".").str[0].isin(list(SCHEMAS))] if len(overview) else overview
    return [{"table": r.table, "layer": r.layer, "rows": int(r.rows), "version": int(r.version), "owner": r.owner,
             "pii": r.pii} for r in rows.itertuples()]


def render_ls(spark=None, root=None) -> str:
    """The catalog's tables; from the Delta logs on disk when `root` (a local lakehouse) is given."""
    tables = list_tables_on_disk(root) if root is not None else list_tables(spark)
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
    from .tracking import open_store

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
