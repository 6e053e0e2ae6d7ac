"""The quality classifier's pure side: its training lines, scores and tiers. No Spark, no MLflow.

The stage that trains it from the catalog is `stages.quality`; curate scores with `score_texts` and
places scores in tiers with `tier_sql`.
"""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrickyardError

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
