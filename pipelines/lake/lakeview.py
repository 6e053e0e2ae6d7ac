"""A read-only view of a lakehouse without a JVM, for notebooks and `brickyard report`.

Delta tables are read through delta-rs (the `deltalake` package) and queried with its DataFusion
engine, which honours deletion vectors; runs come from the lakehouse's MLflow store. So a notebook
opens in seconds, and never touches the Derby metastore that a running Spark job holds locked.

Tables are found where the catalog puts them, `<lakehouse>/warehouse/<layer>.db/<table>`, and
named as in Spark SQL (`silver.documents`). `versions` pins tables to a Delta version; the others
are read at their latest. The questions the notebooks ask are methods here, so every notebook
answers them the same way; each returns a pandas DataFrame or plain values.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..errors import BrickyardError

LAYERS = ("bronze", "silver", "gold", "ops")


def _plain_type(t: pa.DataType) -> pa.DataType:
    """DataFusion hands back view types that pandas cannot convert; their plain twins."""
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(pa.field(t.value_field.name, _plain_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(_plain_type(t.key_type), _plain_type(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in t])
    return t


def to_pandas(table: pa.Table) -> pd.DataFrame:
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema])
    return table.cast(schema).to_pandas(maps_as_pydicts="strict")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    job: str


class Lakeview:
    def __init__(self, root: str | Path, versions: dict[str, int] | None = None):
        self.root = Path(root).expanduser().resolve()
        if not (self.root / "warehouse").is_dir():
            raise BrickyardError(f"{self.root} is not a brickyard lakehouse (it has no warehouse/ folder); "
                                 "run `brickyard run` first or pass the lakehouse root")
        self.paths = {f"{d.name.removesuffix('.db')}.{t.name}": t
                      for d in sorted((self.root / "warehouse").glob("*.db")) for t in sorted(d.iterdir())
                      if (t / "_delta_log").is_dir()}
        self.versions = dict(versions or {})
        unknown = sorted(set(self.versions) - set(self.paths))
        if unknown:
            raise BrickyardError(f"versions name tables this lakehouse lacks: {', '.join(unknown)}")
        self._tables: dict = {}

    # --- tables -------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.paths

    def delta(self, name: str):
        """The DeltaTable `name`, at its pinned version if one was given."""
        from deltalake import DeltaTable

        if name not in self.paths:
            raise BrickyardError(f"table {name} does not exist in {self.root} yet")
        if name not in self._tables:
            self._tables[name] = DeltaTable(str(self.paths[name]), version=self.versions.get(name))
        return self._tables[name]

    def version(self, name: str) -> int:
        return self.delta(name).version()

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL over the catalog, naming tables as Spark does (`SELECT ... FROM gold.tokens`)."""
        from deltalake import QueryBuilder

        qb, used = QueryBuilder(), {}

        def alias(m: re.Match) -> str:
            name = m.group(0)
            if name not in self.paths:
                return name
            used[name] = name.replace(".", "__")
            return used[name]

        rewritten = re.sub(r"\b(?:" + "|".join(LAYERS) + r")\.\w+\b", alias, query)
        for name, a in used.items():
            qb.register(a, self.delta(name))
        return to_pandas(pa.table(qb.execute(rewritten).read_all()))

    def count(self, name: str) -> int:
        return int(self.sql(f"SELECT count(*) AS n FROM {name}")["n"].iloc[0]) if self.has(name) else 0

    def overview(self) -> pd.DataFrame:
        """One row per table: layer, rows, version, owner, PII status, producer, last write, comment."""
        rows = []
        for name in self.paths:
            dt = self.delta(name)
            props = dt.metadata().configuration
            last = dt.history(1)[0]
            rows.append({"table": name, "layer": props.get("brickyard.layer", name.split(".")[0]),
                         "rows": self.count(name), "version": dt.version(),
                         "owner": props.get("brickyard.owner", ""), "pii": props.get("brickyard.pii", ""),
                         "producer": props.get("brickyard.producer", ""),
                         "last_write": pd.to_datetime(last.get("timestamp"), unit="ms", utc=True),
                         "last_operation": last.get("operation", ""),
                         "comment": dt.metadata().description or ""})
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        df["_order"] = df["layer"].map({layer: i for i, layer in enumerate(LAYERS)}).fillna(len(LAYERS))
        return df.sort_values(["_order", "table"], ignore_index=True).drop(columns="_order")

    # --- runs and lineage --------------------------------------------------------------------
    def runs(self, limit: int = 20) -> pd.DataFrame:
        """The latest job runs from ops.lineage, newest first."""
        df = self.sql("SELECT run_id, job, status, rows_in, rows_out, rows_rejected, rows_quarantined, "
                      f"started_at, ended_at, message FROM ops.lineage ORDER BY started_at DESC LIMIT {int(limit)}")
        df.insert(3, "seconds", (df.pop("ended_at") - df["started_at"]).dt.total_seconds().round(1))
        return df

    def lineage_edges(self) -> list[Edge]:
        """Dataset -> dataset edges of every successful run, each labelled with its job; exports
        lead on to the training runs that read them."""
        df = self.sql("SELECT job, inputs, outputs FROM ops.lineage WHERE status = 'succeeded'")
        edges = set()
        for job, inputs, outputs in df.itertuples(index=False):
            for i in inputs:
                for o in outputs:
                    if i["name"] != o["name"]:
                        edges.add(Edge(_node(i), _node(o), job))
        for run in self.training_runs().itertuples():
            if run.export_id:
                edges.add(Edge(f"export:{run.export_id}", f"run:{run.run_name}", "train"))
        return sorted(edges, key=lambda e: (e.job, e.source, e.target))

    def job_config(self, job: str) -> dict:
        """The config of the job's latest successful run (empty if it never ran)."""
        if not self.has("ops.lineage"):
            return {}
        df = self.sql(f"SELECT config FROM ops.lineage WHERE job = {_literal(job)} AND status = 'succeeded' "
                      "ORDER BY started_at DESC LIMIT 1")
        return json.loads(df["config"].iloc[0] or "{}") if len(df) else {}

    # --- curation -----------------------------------------------------------------------------
    def funnel(self) -> pd.DataFrame:
        """Per domain and stage: documents and bytes, from what ingest read down to gold."""
        def per_domain(table: str, stage: str, where: str = "TRUE") -> pd.DataFrame:
            return self.sql(f"SELECT domain, '{stage}' AS stage, count(*) AS documents, sum(n_bytes) AS bytes "
                            f"FROM {table} WHERE {where} GROUP BY domain")

        bronze, quarantined = per_domain("bronze.documents", "bronze"), per_domain("bronze.quarantine", "read")
        # (two queries added up here: DataFusion refuses a UNION of columns whose comments differ)
        read = pd.concat([bronze.assign(stage="read"), quarantined]).groupby("domain", as_index=False)[["documents", "bytes"]].sum()
        stages = ["read", "bronze", "curated (kept)", "gold (deduplicated)"]
        df = pd.concat([read.assign(stage="read"), bronze, per_domain("silver.documents", stages[2], "keep"),
                        per_domain("gold.documents", stages[3])], ignore_index=True)
        df["stage"] = pd.Categorical(df["stage"], stages, ordered=True)
        return df.sort_values(["domain", "stage"], ignore_index=True)

    def rejections(self) -> pd.DataFrame:
        """Documents and bytes turned away per domain and reason: curate's first failing rule, and
        ingest's quarantine reasons."""
        curate = self.sql("SELECT domain, reject_reason AS reason, 'curate' AS stage, count(*) AS documents, "
                          "sum(n_bytes) AS bytes FROM silver.documents WHERE NOT keep GROUP BY 1, 2")
        ingest = self.sql("SELECT domain, reason, 'ingest' AS stage, count(*) AS documents, sum(n_bytes) AS bytes "
                          "FROM bronze.quarantine GROUP BY 1, 2")
        return pd.concat([curate, ingest], ignore_index=True).sort_values(["documents", "reason"], ascending=[False, True],
                                                                          ignore_index=True)

    def dedup_funnel(self) -> pd.DataFrame:
        """Per domain, rule and count: the funnel dedup runs with span dedup on wrote to
        ops.filter_stats (input, kept, first failures per method, bytes removed), over all runs."""
        if not (self.has("ops.filter_stats") and self.has("ops.lineage")):
            return pd.DataFrame(columns=["domain", "rule", "counted_as", "documents", "bytes"])
        return self.sql(
            "SELECT f.domain, f.rule, f.counted_as, sum(f.documents) AS documents, sum(f.bytes) AS bytes "
            "FROM ops.filter_stats f JOIN (SELECT DISTINCT run_id FROM ops.lineage WHERE job = 'dedup') l "
            "ON f.run_id = l.run_id GROUP BY 1, 2, 3 ORDER BY 1, 3, 2")

    def spans_removed(self) -> pd.DataFrame:
        """Per gold document that went through span dedup: its domain and the share of its text cut."""
        if not self.has("gold.documents") or "spans_removed_share" not in {f.name for f in self.delta("gold.documents").schema().fields}:
            return pd.DataFrame(columns=["domain", "spans_removed_share"])
        return self.sql("SELECT domain, spans_removed_share FROM gold.documents WHERE spans_removed_share IS NOT NULL")

    def languages(self) -> pd.DataFrame:
        return self.sql("SELECT coalesce(lang, 'none') AS lang, kind, count(*) AS documents, "
                        "sum(CASE WHEN keep THEN 1 ELSE 0 END) AS kept FROM silver.documents "
                        "GROUP BY 1, 2 ORDER BY documents DESC")

    def quality_scores(self) -> pd.DataFrame:
        return self.sql("SELECT domain, quality_score, quality_tier, keep FROM silver.documents "
                        "WHERE quality_score IS NOT NULL")

    def rejected_examples(self, per_rule: int = 2, max_chars: int = 400) -> pd.DataFrame:
        """For each rule that rejected documents: a few of them beside the value that failed it.

        A rule's bound is the one the latest curate run used (its config's `rules` over the defaults)."""
        from ..text.filters import configure

        curate = self.job_config("curate")
        rules = {r.name: r for r in configure(curate.get("rules") or {})}
        df = self.sql(
            "SELECT domain, path, reject_reason AS rule, signals, lang, lang_score, license, text FROM ("
            "SELECT *, row_number() OVER (PARTITION BY reject_reason ORDER BY doc_id) AS k FROM silver.documents "
            f"WHERE NOT keep) WHERE k <= {int(per_rule)} ORDER BY rule, path")
        values, bounds = [], []
        for row in df.itertuples():
            rule = rules.get(row.rule)
            if rule is not None:
                v = (row.signals or {}).get(rule.signal)
                values.append(f"{rule.signal} = {_fmt(v)}")
                bounds.append(" and ".join(b for b in (f">= {_fmt(rule.min)}" if rule.min is not None else "",
                                                       f"<= {_fmt(rule.max)}" if rule.max is not None else "") if b))
            elif row.rule == "language":
                values.append(f"lang = {row.lang} ({_fmt(row.lang_score)})")
                bounds.append(", ".join(curate.get("languages") or []) or "any")
            elif row.rule.startswith("license:"):
                values.append(f"license = {row.license}")
                bounds.append(", ".join(curate.get("licenses") or []) or "allowed licences")
            elif row.rule == "url_duplicate":
                values.append("a newer capture of this URL exists")
                bounds.append("the newest capture of its URL")
            elif row.rule == "contaminated":
                values.append("holds an item of an evaluation set (silver.contamination)")
                bounds.append("no evaluation item")
            else:
                values.append("")
                bounds.append("")
        out = df[["rule", "domain", "path"]].copy()
        out["value"], out["must_be"] = values, bounds
        out["text"] = [_snippet(t, max_chars) for t in df["text"]]
        return out

    # --- duplicates ---------------------------------------------------------------------------
    def cluster_sizes(self) -> pd.DataFrame:
        """Every cluster of silver.duplicates: its size, domain and keeper."""
        return self.sql(
            "SELECT cluster_id, count(*) AS size, max(CASE WHEN is_keeper THEN doc_id END) AS keeper, "
            "min(domain) AS domain, sum(CASE WHEN method = 'exact' THEN 1 ELSE 0 END) AS exact, "
            "sum(CASE WHEN method = 'near' THEN 1 ELSE 0 END) AS near "
            "FROM silver.duplicates GROUP BY cluster_id ORDER BY size DESC, cluster_id")

    def largest_clusters(self, n: int = 10) -> pd.DataFrame:
        top = self.cluster_sizes().head(n)
        if top.empty:
            return top
        ids = ", ".join(f"'{k}'" for k in top["keeper"].dropna())
        paths = self.sql(f"SELECT doc_id AS keeper, path AS keeper_path FROM silver.documents WHERE doc_id IN ({ids})") if ids else None
        return top.merge(paths, on="keeper", how="left") if paths is not None else top

    def duplicate_kinds(self) -> pd.DataFrame:
        """Per domain: keepers, and documents per method (exact, near, containment; spans: keepers
        rejected for too little text once repeated spans were cut)."""
        return self.sql(
            "SELECT domain, coalesce(method, 'keeper') AS kind, count(*) AS documents FROM silver.duplicates "
            "GROUP BY 1, 2 ORDER BY 1, 2")

    def near_pairs(self, n: int = 4, max_chars: int = 500) -> pd.DataFrame:
        """Near duplicates beside their keepers, most similar first."""
        df = self.sql(
            "SELECT d.domain, d.similarity, k.doc_id AS keeper_id, d.doc_id AS duplicate_id "
            "FROM silver.duplicates d JOIN silver.duplicates k ON d.cluster_id = k.cluster_id AND k.is_keeper "
            f"WHERE d.method = 'near' ORDER BY d.similarity DESC, d.doc_id LIMIT {int(n)}")
        if df.empty:
            return df
        ids = ", ".join(f"'{i}'" for i in set(df["keeper_id"]) | set(df["duplicate_id"]))
        docs = self.sql(f"SELECT doc_id, path, text FROM silver.documents WHERE doc_id IN ({ids})").set_index("doc_id")
        for side in ("keeper", "duplicate"):
            df[f"{side}_path"] = [docs.at[i, "path"] for i in df[f"{side}_id"]]
            df[f"{side}_text"] = [_snippet(docs.at[i, "text"], max_chars) for i in df[f"{side}_id"]]
        return df

    # --- contamination -------------------------------------------------------------------------
    SET_COLUMNS = ["eval_set", "format", "mode", "ngram", "containment", "items", "items_checked", "items_too_short",
                   "items_empty", "ngrams", "items_found", "documents_found", "documents_rejected"]

    def contamination_by_set(self) -> pd.DataFrame:
        """Per evaluation set of the last decontaminate run (ops.eval_sets): its items (read, checked,
        too short, empty), mode and n-grams; the items found in documents, the documents found, and
        how many of those curate rejects as contaminated. A document counts while silver still holds
        the text that was checked."""
        if not self.has("ops.eval_sets"):
            return pd.DataFrame(columns=self.SET_COLUMNS)
        sets = self.sql("SELECT eval_set, format, mode, ngram, containment, items, items_checked, items_too_short, "
                        "items_empty, ngrams FROM ops.eval_sets ORDER BY eval_set")
        found = self._found().groupby("eval_set").agg(
            items_found=("item_id", "nunique"), documents_found=("doc_id", "nunique")).reset_index()
        rejected = (self._found().query("rejected")[["eval_set", "doc_id"]].drop_duplicates()
                    .groupby("eval_set").size().rename("documents_rejected").reset_index())
        out = sets.merge(found, on="eval_set", how="left").merge(rejected, on="eval_set", how="left")
        for c in ("items_found", "documents_found", "documents_rejected"):
            out[c] = out[c].fillna(0).astype("int64")
        return out[self.SET_COLUMNS]

    def _found(self) -> pd.DataFrame:
        """silver.contamination rows whose document text silver still holds, with its domain, path
        and whether curate rejects it as contaminated."""
        cols = ["eval_set", "item_id", "doc_id", "domain", "path", "containment", "matched_ngrams", "item_ngrams",
                "span", "rejected"]
        if not self.has("silver.contamination"):
            return pd.DataFrame(columns=cols)
        df = self.sql(
            "SELECT c.eval_set, c.item_id, c.doc_id, d.domain, d.path, c.containment, c.matched_ngrams, c.item_ngrams, "
            "c.span, array_has(d.failed_rules, 'contaminated') AS rejected FROM silver.contamination c "
            "JOIN silver.documents d ON c.doc_id = d.doc_id AND c.content_sha256 = d.content_sha256")
        df["rejected"] = df["rejected"].fillna(False).astype(bool)
        return df[cols]

    def contamination_by_domain(self) -> pd.DataFrame:
        """Documents found per evaluation set and domain."""
        found = self._found()
        sets = set(self.contamination_by_set()["eval_set"])
        found = found[found["eval_set"].isin(sets)]
        return (found[["eval_set", "domain", "doc_id"]].drop_duplicates().groupby(["eval_set", "domain"]).size()
                .rename("documents").reset_index())

    def contamination_examples(self, per_set: int = 3, max_chars: int = 300) -> pd.DataFrame:
        """A few documents per evaluation set beside the item they hold: the most contained first."""
        found = self._found()
        found = found[found["eval_set"].isin(set(self.contamination_by_set()["eval_set"]))]
        found = found.sort_values(["eval_set", "containment", "doc_id"], ascending=[True, False, True])
        top = found.groupby("eval_set", group_keys=False).head(per_set).copy()
        top["span"] = [_snippet(t, max_chars) for t in top["span"]]
        return top[["eval_set", "item_id", "domain", "path", "containment", "matched_ngrams", "item_ngrams", "span"]].reset_index(drop=True)

    # --- tokens and exports -------------------------------------------------------------------
    def token_counts(self) -> pd.DataFrame:
        return self.sql("SELECT domain, quality_tier, count(*) AS documents, sum(n_tokens) AS tokens "
                        "FROM gold.tokens GROUP BY 1, 2 ORDER BY 1, 2")

    def token_lengths(self) -> pd.DataFrame:
        return self.sql("SELECT domain, n_tokens FROM gold.tokens")

    def exports(self) -> pd.DataFrame:
        return self.sql("SELECT export_id, curriculum, status, tokens_version, seq_len, samples, tokens, created_at "
                        "FROM ops.exports ORDER BY created_at DESC")

    def manifest(self, export_id: str | None = None) -> dict | None:
        """An export's manifest from ops.exports: the given one, else the newest (None if none)."""
        where = f"WHERE export_id = {_literal(export_id)}" if export_id else ""
        df = self.sql(f"SELECT manifest FROM ops.exports {where} ORDER BY created_at DESC LIMIT 1")
        if df.empty:
            if export_id:
                raise BrickyardError(f"no export {export_id} in ops.exports")
            return None
        return json.loads(df["manifest"].iloc[0])

    # --- training runs (MLflow) ---------------------------------------------------------------
    def _has_store(self) -> bool:
        from .tracking import tracking_uri

        return not tracking_uri(self.root).startswith("sqlite:") or (self.root / "mlflow" / "mlflow.db").exists()

    def _mlflow(self):
        import logging
        import warnings

        warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by MLflow, in a kernel
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        from .tracking import tracking_uri

        return MlflowClient(tracking_uri=tracking_uri(self.root))

    def training_runs(self) -> pd.DataFrame:
        """Training runs in the lakehouse's MLflow store, newest first."""
        cols = ["run_id", "run_name", "experiment", "status", "start", "export_id", "steps", "final_ce_loss", "tables"]
        if not self._has_store():
            return pd.DataFrame(columns=cols)
        client = self._mlflow()
        exps = {e.experiment_id: e.name for e in client.search_experiments()}
        rows = []
        runs = client.search_runs(list(exps), filter_string="tags.`brickyard.job` = 'train'",
                                  order_by=["attributes.start_time DESC"]) if exps else []
        for r in runs:
            tags = r.data.tags
            losses = client.get_metric_history(r.info.run_id, "loss")
            rows.append({"run_id": r.info.run_id, "run_name": r.info.run_name, "experiment": exps[r.info.experiment_id],
                         "status": r.info.status, "start": pd.to_datetime(r.info.start_time, unit="ms", utc=True),
                         "export_id": tags.get("brickyard.export_id"),
                         "steps": max((m.step for m in losses), default=0),
                         "final_ce_loss": r.data.metrics.get("ce_loss"),
                         "tables": ", ".join(f"{k.removeprefix('brickyard.table.')}@v{v}" for k, v in sorted(tags.items())
                                             if k.startswith("brickyard.table."))})
        return pd.DataFrame(rows, columns=cols)

    def run_metrics(self, run_id: str, prefix: str = "") -> pd.DataFrame:
        """Every logged metric of a run (or those starting with `prefix`), one column each, by step."""
        client = self._mlflow()
        keys = [k for k in client.get_run(run_id).data.metrics if k.startswith(prefix)]
        series = {}
        for k in keys:
            hist = sorted(client.get_metric_history(run_id, k), key=lambda m: (m.step, m.timestamp))
            series[k] = pd.Series({m.step: m.value for m in hist}, dtype=float)
        df = pd.DataFrame(series).sort_index()
        df.index.name = "step"
        return df

    def run_inputs(self, run_id: str) -> pd.DataFrame:
        """The datasets a run logged as inputs: the Delta tables with their versions, and the export."""
        run = self._mlflow().get_run(run_id)
        rows = []
        for d in run.inputs.dataset_inputs if run.inputs else []:
            src = json.loads(d.dataset.source or "{}")
            rows.append({"dataset": d.dataset.name, "source_type": d.dataset.source_type, "digest": d.dataset.digest,
                         "source": src.get("delta_table_name") or src.get("uri") or src.get("path") or "",
                         "version": src.get("delta_table_version")})
        return pd.DataFrame(rows, columns=["dataset", "source_type", "digest", "source", "version"])


# --- pure helpers (unit-tested) ----------------------------------------------------------------
def _literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _node(ref: dict) -> str:
    kind = ref.get("kind") or "table"
    return ref["name"] if kind == "table" else f"{kind}:{ref['name']}"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _snippet(text: str | None, max_chars: int) -> str:
    text = text or ""
    return text if len(text) <= max_chars else text[:max_chars].rstrip() + " ..."


def planned_vs_exported(manifest: dict) -> pd.DataFrame:
    """Per phase and stream: the token share the curriculum asked for, the share the export holds
    (samples have a fixed length, so sample shares are token shares), and the repeat factor."""
    rows = []
    for phase in manifest["phases"]:
        total = sum(s["samples"] for s in phase["streams"].values()) or 1
        for name, s in phase["streams"].items():
            rows.append({"phase": phase["name"], "stream": name, "planned": s["share"],
                         "exported": s["samples"] / total, "samples": s["samples"],
                         "tokens": s["samples"] * manifest["sample_tokens"], "repeat": s.get("repeat")})
    df = pd.DataFrame(rows)
    if len(df):
        df["difference"] = df["exported"] - df["planned"]
    return df


def stream_counts(manifest: dict) -> pd.DataFrame:
    """Per stream of an export: its selection, documents, tokens and samples."""
    rows = [{"stream": name, "domains": ", ".join(s["domains"]) or "all", "tiers": ", ".join(s["tiers"]) or "all",
             "documents": s["documents"], "tokens": s["tokens"], "samples": s["samples"],
             "shards": len(s["shards"])} for name, s in manifest["streams"].items()]
    return pd.DataFrame(rows)


def phase_starts(phase_by_step: pd.Series) -> list[tuple[int, int]]:
    """(first step, phase index) of each phase in a run's logged `phase` metric."""
    out, last = [], None
    for step, value in phase_by_step.dropna().sort_index().items():
        if value != last:
            out.append((int(step), int(value)))
            last = value
    return out
