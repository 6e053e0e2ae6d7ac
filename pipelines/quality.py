"""The quality classifier: a fastText model trained from catalog tables, versioned in MLflow.

`brickyard quality train` trains a binary fastText classifier (the recipe of DCLM's fastText
filter, and of FineWeb-Edu's classifier in spirit):

- positives: a reference selection named in config (`quality.positives`): domains of silver,
  any other table or view of the catalog, and an optional SQL condition;
- negatives: a random sample of the other curated documents (`random`, the DCLM choice) or the
  documents curation rejected (`rejected`);
- both drawn deterministically (a hash of doc_id and the seed), at most `max_per_class` each,
  with a held-out share to measure accuracy, precision, recall and ROC AUC.

The model is logged to the lakehouse's MLflow store as a pyfunc model (so a notebook can
`mlflow.pyfunc.load_model("models:/brickyard-quality/N").predict([...])`) and registered as a new
version of `quality.model_name`, tagged with the fingerprint of its training data and the table
versions it read; the run is recorded in ops.lineage with the model version as its output.
Training again on the same selection, data and settings is a no-op.

`curate` applies the newest version: `quality_score` = P(positive) in [0, 1] for the configured
kinds (default text), and `quality_tier` from the config's thresholds; documents of other kinds are
`unscored`. Rows scored by an older version are rescored when a new one is registered.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import BrickyardError

POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
UNSCORED = "unscored"
EXPERIMENT = "brickyard-quality"
MIN_PER_CLASS = 10
FASTTEXT_FILE = "quality.bin"

# ---------------------------------------------------------------------------------------------
# Pure functions: no Spark
# ---------------------------------------------------------------------------------------------


def fasttext_line(text: str, max_chars: int) -> str:
    """What the classifier reads: lower case, one line, white space collapsed, at most max_chars."""
    return " ".join(text[:max_chars].lower().split())


def tier_of(score: float | None, tiers: dict[str, float]) -> str:
    """The first tier (highest threshold first) whose threshold the score reaches."""
    if score is None:
        return UNSCORED
    for name, low in sorted(tiers.items(), key=lambda kv: -kv[1]):
        if score >= low:
            return name
    return min(tiers.items(), key=lambda kv: kv[1])[0]


def tier_sql(tiers: dict[str, float], score: str = "quality_score") -> str:
    """`tier_of` as a Spark SQL expression, so tiers follow the config without rescoring."""
    ordered = sorted(tiers.items(), key=lambda kv: -kv[1])
    whens = " ".join(f"WHEN {score} >= {float(low)!r} THEN '{name}'" for name, low in ordered)
    return f"CASE WHEN {score} IS NULL THEN '{UNSCORED}' {whens} ELSE '{ordered[-1][0]}' END"


_models: dict[str, object] = {}


def load(path: str):
    """The fastText model at `path`, loaded once per process."""
    if path not in _models:
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None
        _models[path] = fasttext.load_model(path)
    return _models[path]


def score_texts(model, texts: list[str], max_chars: int) -> list[float]:
    """P(positive) per text, in one batched fastText call."""
    if not texts:
        return []
    labels, probs = model.predict([fasttext_line(t, max_chars) for t in texts], k=2)
    out = []
    for labs, ps in zip(labels, probs, strict=True):
        d = dict(zip(labs, ps, strict=True))
        p = d.get(POSITIVE, 1.0 - d.get(NEGATIVE, 1.0))
        out.append(min(1.0, max(0.0, float(p))))
    return out


def roc_auc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve by ranks (ties count half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2
        rank_sum += avg_rank * sum(lab for _, lab in pairs[i:j])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _train_in_process(train_file: str, out: str, lr: float, params: dict) -> str | None:
    """Train and save a supervised fastText model; returns None, or the error's message."""
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    try:
        model = fasttext.train_supervised(input=train_file, lr=lr, loss="softmax", thread=1, verbose=0, **params)
    except RuntimeError as e:
        return str(e)
    model.save_model(out)
    return None


@dataclass
class Trained:
    path: str  # the saved fastText model
    metrics: dict[str, float]
    n_train: int
    n_holdout: int


def train_fasttext(positives: list[str], negatives: list[str], settings, workdir: str) -> Trained:
    """Train on chunks of the documents and evaluate whole held-out documents.

    The seed fixes the split, the order and the training file. fastText itself, even on one
    thread, is not bit-reproducible in every build (and occasionally diverges; the step is then
    halved and training starts again), so two trainings give close, not identical, models."""

    rows = [(POSITIVE, t) for t in positives] + [(NEGATIVE, t) for t in negatives]
    rng = random.Random(settings.seed)
    rng.shuffle(rows)
    n_hold = int(len(rows) * settings.holdout)
    hold, train = rows[:n_hold], rows[n_hold:]
    train_file = Path(workdir) / "train.txt"
    with open(train_file, "w", encoding="utf-8") as f:
        for label, text in train:
            # a long document averages thousands of barely-trained word vectors into one example and
            # learns next to nothing per epoch; chunks of a few hundred words train in a few epochs
            words = fasttext_line(text, settings.max_chars).split()
            for i in range(0, len(words), settings.train_chunk_words):
                f.write(f"{label} {' '.join(words[i:i + settings.train_chunk_words])}\n")
    path = str(Path(workdir) / FASTTEXT_FILE)
    params = {"dim": settings.dim, "epoch": settings.epoch, "wordNgrams": settings.word_ngrams,
              "bucket": settings.bucket, "minCount": settings.min_count, "seed": settings.seed}
    lr = settings.lr
    for attempt in range(4):
        # each training in a fresh process: in this fastText build, a process that has trained
        # before can diverge ("Encountered NaN") on data that trains fine in a new one
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            error = pool.submit(_train_in_process, str(train_file), path, lr, params).result()
        if error is None:
            break
        if "NaN" not in error or attempt == 3:
            raise BrickyardError(f"quality: fastText training failed ({error}); try a smaller quality.lr")
        lr /= 2  # diverged: a smaller step, again
    model = load(path)
    metrics = {"train_docs": float(len(train)), "holdout_docs": float(len(hold)), "lr_used": lr}
    if hold:
        scores = score_texts(model, [t for _, t in hold], settings.max_chars)
        labels = [1 if lab == POSITIVE else 0 for lab, _ in hold]
        pred = [1 if s >= 0.5 else 0 for s in scores]
        tp = sum(p and y for p, y in zip(pred, labels, strict=True))
        fp = sum(p and not y for p, y in zip(pred, labels, strict=True))
        fn = sum((not p) and y for p, y in zip(pred, labels, strict=True))
        metrics.update({
            "holdout_accuracy": sum(p == y for p, y in zip(pred, labels, strict=True)) / len(hold),
            "holdout_precision": tp / (tp + fp) if tp + fp else 0.0,
            "holdout_recall": tp / (tp + fn) if tp + fn else 0.0,
            "holdout_auc": roc_auc(scores, labels),
        })
    return Trained(path, metrics, len(train), len(hold))


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass
class Registered:
    name: str
    version: int
    path: str  # local path of the fastText file
    tags: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def current_model(lakehouse: Path, name: str) -> Registered | None:
    """The newest registered version of model `name` in the lakehouse's store, or None."""
    from pipelines.tracking import open_store

    mlflow = open_store(lakehouse)
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(e):
            return None
        raise
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{newest.version}")
    path = Path(local) / "artifacts" / FASTTEXT_FILE
    if not path.is_file():
        raise BrickyardError(f"model version models:/{name}/{newest.version} holds no {FASTTEXT_FILE}; it was not made by `brickyard quality train`")
    return Registered(name, int(newest.version), str(path), dict(newest.tags or {}))


def model_path_on_workers(spark, path: str) -> str:
    """Ship the model file to a cluster's executors; local mode reads it where it is."""
    try:
        master = spark.sparkContext.master
    except Exception:  # Spark Connect: the workers must see the same path (shared storage)
        return path
    if not master.startswith("local"):
        spark.sparkContext.addFile(path)
        return "sparkfiles:" + os.path.basename(path)
    return path


def resolve_worker_path(path: str) -> str:
    if path.startswith("sparkfiles:"):
        from pyspark import SparkFiles

        return SparkFiles.get(path.removeprefix("sparkfiles:"))
    return path


# ---------------------------------------------------------------------------------------------
# Training from the catalog
# ---------------------------------------------------------------------------------------------


def _has(df, col: str) -> bool:
    return col in df.columns


def _selection(spark, sel, kinds: list[str]):
    """The rows a `Selection` names (as of the table's current version), with that version."""
    from pyspark.sql import functions as F

    from pipelines.catalog import latest_version, table_exists

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


def _fingerprint(df) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = df.agg(F.count("*").alias("n"), F.coalesce(F.bit_xor(F.xxhash64("doc_id", "content_sha256")), F.lit(0)).alias("h")).collect()[0]
    return int(row["n"]), int(row["h"])


def _draw(df, n: int, seed: int, max_chars: int) -> list[str]:
    """At most n texts, chosen by a hash of doc_id and the seed: the same rows every time."""
    from pyspark.sql import functions as F

    picked = df.orderBy(F.xxhash64("doc_id", F.lit(seed)), "doc_id").limit(n)
    return [r["t"] for r in picked.select(F.substring("text", 1, max_chars).alias("t")).collect()]


def train(spark, cfg, lakehouse: Path, quiet: bool = False, force: bool = False):
    """Train (unless the same data and settings already made the newest version) and register."""
    from pipelines.catalog import JobRun, Ref, latest_version
    from pipelines.config import config_hash, to_dict
    from pipelines.curate import SILVER
    from pipelines.tracking import experiment_id, open_store

    q = cfg.quality
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    if q.positives is None:
        raise BrickyardError("quality: no reference selection is configured; set quality.positives (domains, table or where) in the config")
    settings = to_dict(q)
    recipe = {k: v for k, v in settings.items() if k != "tiers"}  # tiers apply at scoring time only
    with JobRun(spark, "quality", settings, config_hash(recipe), cfg.catalog.owner) as run:
        pos, pos_version = _selection(spark, q.positives, q.kinds)
        run.inputs.append(Ref(q.positives.table, "table", pos_version, "positives"))
        silver_version = pos_version if q.positives.table == SILVER.name else latest_version(spark, SILVER.name)
        silver = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version}").where(
            f"kind IN ({', '.join(repr(k) for k in q.kinds)})")
        if q.negatives == "rejected":
            neg = silver.where("NOT keep")
        else:
            neg = silver.join(pos.select("doc_id"), "doc_id", "left_anti")
        neg = neg.select("doc_id", "content_sha256", "text")
        run.inputs.append(Ref(SILVER.name, "table", silver_version, f"negatives: {q.negatives}"))
        (n_pos, h_pos), (n_neg, h_neg) = _fingerprint(pos), _fingerprint(neg)
        fingerprint = f"{config_hash(recipe)}-{n_pos}-{h_pos & 0xFFFFFFFFFFFFFFFF:016x}-{n_neg}-{h_neg & 0xFFFFFFFFFFFFFFFF:016x}"
        if n_pos < MIN_PER_CLASS or n_neg < MIN_PER_CLASS:
            raise BrickyardError(
                f"quality: training needs at least {MIN_PER_CLASS} positives and {MIN_PER_CLASS} negatives, "
                f"but the selection gives {n_pos} positives and {n_neg} negatives ({q.negatives})"
            )
        current = current_model(lakehouse, q.model_name)
        if current is not None and current.tags.get("brickyard.fingerprint") == fingerprint and not force:
            run.counts(0, 0)
            run.noop(f"{current.uri} was trained on the same data and settings")
            run.outputs.append(Ref(q.model_name, "model", current.version, current.uri))
            say(f"quality: {current.uri} is up to date (same data and settings)")
            return current, "noop"

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
                    python_model=str(Path(__file__).with_name("quality_pyfunc.py")),
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
                                             description=f"positives {to_dict(q.positives)}; negatives {q.negatives}")
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
        return registered, "succeeded"
