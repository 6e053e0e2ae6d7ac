"""The quality classifier: a fastText model trained from catalog tables, versioned in MLflow.

`brickyard quality train` trains a binary fastText classifier (the recipe of DCLM's fastText
filter, and of FineWeb-Edu's classifier in spirit):

- positives: a reference selection named in config (`quality.positives`): domains of silver,
  any other table or view of the catalog, and an optional SQL condition;
- negatives: a random sample of the other curated documents (`random`, the DCLM choice), the
  documents curation rejected (`rejected`), or a selection of their own (less any positive);
- both drawn deterministically (a hash of doc_id and the seed), at most `max_per_class` each,
  with a held-out share to measure accuracy, precision, recall and ROC AUC.

The model is logged to the lakehouse's MLflow store as a pyfunc model (so a notebook can
`mlflow.pyfunc.load_model("models:/brickyard-quality/N").predict([...])`) and registered as a new
version of `quality.model_name`, tagged with the fingerprint of its training data and the table
versions it read; the run is recorded in ops.lineage with the model version as its output.
Training again on the same selection, data and settings is a no-op, and so is training again after
a class grew or shrank by less than `quality.retrain_drift` (10%): a new version rescores every
document, so a small increment keeps the registered one (`--force` trains anyway).

`curate` applies the newest version: `quality_score` = P(positive) in [0, 1] for the configured
kinds (default text), and `quality_tier` from the config's thresholds; documents of other kinds are
`unscored`. Rows scored by an older version are rescored when a new one is registered.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..config import Selection, config_hash, to_dict
from ..errors import BrickyardError
from ..lake.delta import latest_version
from ..lake.lineage import Ref
from ..lake.registry import current_model
from ..lake.tables import SILVER
from ..text.quality import (
    EXPERIMENT,
    MIN_PER_CLASS,
    train_fasttext,
)
from .base import Stage, StageContext, StageResult, log, run_stage, skip_unless_curated

# ---------------------------------------------------------------------------------------------
# Training from the catalog
# ---------------------------------------------------------------------------------------------


def _has(df, col: str) -> bool:
    return col in df.columns


def _named(negatives) -> str:
    return str(to_dict(negatives)) if isinstance(negatives, Selection) else negatives


def _selection(spark, sel, kinds: list[str]):
    """The rows a `Selection` names (as of the table's current version), with that version."""
    from pyspark.sql import functions as F

    from ..lake.delta import latest_version, table_exists

    if not table_exists(spark, sel.table):
        raise BrickyardError(f"quality: there is no table or view {sel.table}; `brickyard catalog ls` lists them")
    try:
        version = latest_version(spark, sel.table)
        df = spark.sql(f"SELECT * FROM {sel.table} VERSION AS OF {version}")
    except Exception:  # a view has no history: read it as it is now
        version, df = None, spark.table(sel.table)
    for col in ("doc_id", "text"):
        if not _has(df, col):
            raise BrickyardError(f"quality: {sel.table} has no `{col}` column; a selection needs doc_id and text")
    if sel.domains:
        df = df.where(F.col("domain").isin(sel.domains))
    if sel.kept_only and _has(df, "keep"):
        df = df.where("keep")
    if _has(df, "kind"):
        df = df.where(F.col("kind").isin(kinds))
    if sel.where:
        try:
            df = df.where(sel.where)
        except Exception as e:
            raise BrickyardError(f"quality: the condition {sel.where!r} on {sel.table} is not valid SQL here: {str(e).splitlines()[0]}") from None
    sha = F.col("content_sha256") if _has(df, "content_sha256") else F.sha2(F.col("text"), 256)
    return df.select("doc_id", sha.alias("content_sha256"), "text"), version


def _fingerprints(pos, neg) -> tuple[tuple[int, int], tuple[int, int]]:
    """(rows, XOR of 64-bit hashes of doc_id and content_sha256) of the positives and of the
    negatives, in one query over both."""
    from pyspark.sql import functions as F

    # hashed before the union, each side with its own column types (a union would widen them)
    h = F.xxhash64("doc_id", "content_sha256").alias("h")
    both = pos.select(F.lit(True).alias("positive"), h).unionByName(neg.select(F.lit(False).alias("positive"), h))
    found = {r["positive"]: (int(r["n"]), int(r["h"])) for r in both.groupBy("positive").agg(
        F.count("*").alias("n"), F.coalesce(F.bit_xor("h"), F.lit(0)).alias("h")).collect()}
    return found.get(True, (0, 0)), found.get(False, (0, 0))


def _draw(df, n: int, seed: int, max_chars: int) -> list[str]:
    """At most n texts, chosen by a hash of doc_id and the seed: the same rows every time."""
    from pyspark.sql import functions as F

    picked = df.orderBy(F.xxhash64("doc_id", F.lit(seed)), "doc_id").limit(n)
    return [r["t"] for r in picked.select(F.substring("text", 1, max_chars).alias("t")).collect()]


def recipe(settings: dict) -> dict:
    """The settings that make the model: not the tiers (applied at scoring time), nor when to retrain."""
    return {k: v for k, v in settings.items() if k not in ("tiers", "retrain_drift")}


def still_stands(trained_on: str | None, now: str, drift: float) -> str | None:
    """Why the registered model need not be trained again on the data of fingerprint `now`, or None.

    Fingerprints read `recipe-positives-hash-negatives-hash`. The same fingerprint: nothing changed.
    The same recipe and each class's size within `drift` (a share) of what the model learnt from: it
    stands, so that a small increment does not retrain it (a new version rescores every document,
    and gold and tokens follow). Another recipe, a drift of 0, or a fingerprint of another form: train."""
    if not trained_on:
        return None
    if trained_on == now:
        return "was trained on the same data and settings"
    old, new = trained_on.split("-"), now.split("-")
    if drift <= 0 or len(old) != 5 or len(new) != 5 or old[0] != new[0]:
        return None
    moved = [abs(int(n) - int(o)) / max(int(o), 1) for o, n in ((old[1], new[1]), (old[3], new[3]))]
    if max(moved) >= drift:
        return None
    return (f"stands: its positives changed by {moved[0]:.1%} and its negatives by {moved[1]:.1%} since it was "
            f"trained, under quality.retrain_drift ({drift:.0%}); --force trains it again")


class Quality(Stage):
    """Train the quality classifier when its data or settings changed, and register a new version;
    curate then scores silver with it (the follow-up `brickyard run` runs)."""

    name = "quality"

    def skip(self, ctx: StageContext) -> str | None:
        if ctx.options.get("explicit"):
            return None
        if ctx.cfg.quality.positives is None:
            return "no classifier configured (set quality.positives); documents stay unscored"
        return skip_unless_curated(ctx)

    def prepare(self, ctx: StageContext) -> None:
        if ctx.cfg.quality.positives is None:
            raise BrickyardError("quality: no reference selection is configured; set quality.positives (domains, table or where) in the config")

    def read_tables(self, ctx: StageContext) -> tuple[str, ...]:
        """The tables its classes come from: with these at the versions its last run read (and the
        same settings), the fingerprint is the same and the runner's quick no-op answers without
        the fingerprint's query. `--force` always plans (no tables to compare)."""
        q = ctx.cfg.quality
        if ctx.options.get("force") or q.positives is None:
            return ()
        negatives = q.negatives.table if isinstance(q.negatives, Selection) else SILVER.name
        return tuple(sorted({q.positives.table, negatives}))

    def settings(self, ctx: StageContext) -> dict:
        return to_dict(ctx.cfg.quality)

    def settings_hash(self, ctx: StageContext, settings: dict) -> str:
        return config_hash(recipe(settings))

    def apply(self, ctx: StageContext, run) -> dict:
        return _train(ctx.spark, ctx.cfg, ctx.lakehouse, bool(ctx.options.get("force")), run)


def train(spark, cfg, force: bool = False) -> StageResult:
    """Train (unless the same data and settings already made the newest version) and register;
    the result's detail holds the `model` (`lake.registry.Registered`)."""
    ctx = StageContext.of(spark, cfg, force=force, explicit=True)
    result = run_stage(Quality(), ctx)
    if "model" not in result.detail:  # the runner's quick no-op: the registered version stands
        result.detail["model"] = current_model(ctx.lakehouse, cfg.quality.model_name)
    return result


def _train(spark, cfg, lakehouse: Path, force: bool, run) -> dict:
    from ..lake.tracking import experiment_id, open_store

    q = cfg.quality
    say = log.info
    settings = to_dict(q)
    pos, pos_version = _selection(spark, q.positives, q.kinds)
    run.inputs.append(Ref(q.positives.table, "table", pos_version, "positives"))
    if isinstance(q.negatives, Selection):  # a selection of their own, less any positive
        neg, neg_version = _selection(spark, q.negatives, q.kinds)
        neg = neg.join(pos.select("doc_id"), "doc_id", "left_anti")
        run.inputs.append(Ref(q.negatives.table, "table", neg_version, "negatives"))
    else:
        silver_version = pos_version if q.positives.table == SILVER.name else latest_version(spark, SILVER.name)
        silver = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version}").where(
            f"kind IN ({', '.join(repr(k) for k in q.kinds)})")
        if q.negatives == "rejected":
            neg = silver.where("NOT keep")
        else:
            neg = silver.join(pos.select("doc_id"), "doc_id", "left_anti")
        run.inputs.append(Ref(SILVER.name, "table", silver_version, f"negatives: {q.negatives}"))
    neg = neg.select("doc_id", "content_sha256", "text")
    (n_pos, h_pos), (n_neg, h_neg) = _fingerprints(pos, neg)
    fingerprint = f"{config_hash(recipe(settings))}-{n_pos}-{h_pos & 0xFFFFFFFFFFFFFFFF:016x}-{n_neg}-{h_neg & 0xFFFFFFFFFFFFFFFF:016x}"
    if n_pos < MIN_PER_CLASS or n_neg < MIN_PER_CLASS:
        raise BrickyardError(
            f"quality: training needs at least {MIN_PER_CLASS} positives and {MIN_PER_CLASS} negatives, "
            f"but the selection gives {n_pos} positives and {n_neg} negatives ({_named(q.negatives)})"
        )
    current = current_model(lakehouse, q.model_name)
    why = None if current is None or force else still_stands(current.tags.get("brickyard.fingerprint"), fingerprint, q.retrain_drift)
    if why:
        run.counts(0, 0)
        run.noop(f"{current.uri} {why}")
        run.outputs.append(Ref(q.model_name, "model", current.version, current.uri))
        say(f"quality: {current.uri} {why}")
        return {"model": current}

    positives = _draw(pos, q.max_per_class, q.seed, q.max_chars)
    n_negatives = min(q.max_per_class, max(MIN_PER_CLASS, round(len(positives) * q.negatives_per_positive)))
    negatives = _draw(neg, n_negatives, q.seed, q.max_chars)
    with tempfile.TemporaryDirectory(prefix="brickyard-quality-") as work:
        trained = train_fasttext(positives, negatives, q, work)
        mlflow = open_store(lakehouse)
        exp = experiment_id(lakehouse, EXPERIMENT)
        inputs = ", ".join(f"{r.name}@v{r.version}" if r.version is not None else r.name for r in run.inputs)
        with mlflow.start_run(experiment_id=exp, run_name=f"quality {run.run_id}") as mrun:
            mlflow.log_params({k: v for k, v in settings.items() if not isinstance(v, dict)})
            mlflow.log_param("positives", to_dict(q.positives))
            mlflow.log_params({"n_positives": len(positives), "n_negatives": len(negatives)})
            mlflow.log_metrics(trained.metrics)
            mlflow.set_tags({"brickyard.run_id": run.run_id, "brickyard.inputs": inputs, "brickyard.fingerprint": fingerprint})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).parents[1] / "text" / "quality_pyfunc.py"),
                artifacts={"fasttext": trained.path},
                pip_requirements=["fasttext-numpy2-wheel", "mlflow"],
                model_config={"max_chars": q.max_chars},
            )
        client = mlflow.MlflowClient()
        if not client.search_registered_models(f"name = '{q.model_name}'"):
            client.create_registered_model(q.model_name, description="brickyard's fastText quality classifier: P(reference-like) of a document")
        tags = {"brickyard.fingerprint": fingerprint, "brickyard.inputs": inputs,
                "brickyard.run_id": run.run_id, "brickyard.mlflow_run": mrun.info.run_id}
        mv = client.create_model_version(q.model_name, info.model_uri, run_id=mrun.info.run_id, tags=tags,
                                         description=f"positives {to_dict(q.positives)}; negatives {_named(q.negatives)}")
        version = int(mv.version)
    registered = current_model(lakehouse, q.model_name)
    n = len(positives) + len(negatives)
    run.counts(n, n)
    run.metrics.update({k: f"{v:.4f}" for k, v in trained.metrics.items()})
    run.metrics.update({"positives": len(positives), "negatives": len(negatives), "mlflow_run": mrun.info.run_id})
    run.outputs.append(Ref(q.model_name, "model", version, registered.uri))
    m = trained.metrics
    say(
        f"quality: trained {registered.uri} on {len(positives)} positives and {len(negatives)} negatives; "
        f"held out {trained.n_holdout}: accuracy {m.get('holdout_accuracy', float('nan')):.3f}, "
        f"AUC {m.get('holdout_auc', float('nan')):.3f}"
    )
    return {"model": registered}
