"""The quality classifier end to end on real Spark, Delta and MLflow: train from the catalog,
register with lineage, score silver in curate, no-op when nothing changed, rescore on a new version."""

from __future__ import annotations

from pathlib import Path

import pytest
from brickyard.pipelines.config import QualitySettings, Selection
from brickyard.pipelines.lake.registry import current_model
from brickyard.pipelines.lake.session import session_lakehouse
from brickyard.pipelines.stages.base import QUICK_NOOP
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.stages.quality import train
from brickyard.pipelines.text.quality import tier_of

from tests.helpers import real_metadata_texts
from tests.roff import roff_text

pytestmark = pytest.mark.spark

MODEL = "test-quality"  # its own registered model, so other tests' curate runs stay unscored


def test_train_register_score_and_rescore(spark, make_config, tmp_path):
    ref, other = tmp_path / "ref", tmp_path / "other"
    ref.mkdir()
    other.mkdir()
    for i, t in enumerate(real_metadata_texts(40)):
        (ref / f"readme{i}.txt").write_text(t)
    pages = [roff_text(p) for p in sorted(Path("/usr/share/man/man1").glob("*.gz"))[:120]]
    pages = [t for t in pages if len(t) > 500][:40]
    if len(pages) < 20:
        pytest.skip("this machine has too few man pages for a negative class")
    for i, t in enumerate(pages):
        (other / f"page{i}.txt").write_text(t)
    cfg = make_config(
        {"name": "q_ref", "kind": "text", "path": "ref", "domain": "docs"},
        {"name": "q_other", "kind": "text", "path": "other", "domain": "docs"},
    )
    cfg.quality = QualitySettings(
        # negatives of its own: a random sample of the whole silver table would also draw the same
        # READMEs that other tests of the session ingest as other sources
        positives=Selection(where="source = 'q_ref'", kept_only=False), negatives=Selection(where="source = 'q_other'", kept_only=False),
        model_name=MODEL, min_count=1, holdout=0.2,
    )
    ingest(spark, cfg)
    curate(spark, cfg)
    lakehouse = session_lakehouse(spark)

    result = train(spark, cfg)
    model, status = result.detail['model'], result.status
    assert status == "succeeded" and model.uri.startswith(f"models:/{MODEL}/")
    assert Path(model.path).is_file() and model.tags["brickyard.fingerprint"]
    assert "silver.documents@v" in model.tags["brickyard.inputs"]
    run = spark.table("ops.lineage").where(f"run_id = '{model.tags['brickyard.run_id']}'").collect()[0]
    assert run["job"] == "quality" and run["status"] == "succeeded"
    assert [(o["name"], o["kind"], o["version"]) for o in run["outputs"]] == [(MODEL, "model", model.version)]
    assert float(run["metrics"]["holdout_auc"]) > 0.8

    # the same data and settings: nothing to train (its tables did not move: the runner's quick no-op)
    result = train(spark, cfg)
    again, status = result.detail['model'], result.status
    assert (status, again.version, result.message) == ("noop", model.version, QUICK_NOOP)

    # curate applies it to every text row of silver (these sources' and any earlier ones)
    result = curate(spark, cfg)
    run_id, status = result.run_id, result.status
    assert status == "succeeded"
    rows = spark.table("silver.documents").where("source IN ('q_ref', 'q_other')").collect()
    assert rows and all(r["quality_model"] == model.label for r in rows)
    assert all(0 <= r["quality_score"] <= 1 and r["quality_tier"] == tier_of(r["quality_score"], cfg.quality.tiers) for r in rows)
    mean = {s: sum(r["quality_score"] for r in rows if r["source"] == s) / sum(r["source"] == s for r in rows) for s in ("q_ref", "q_other")}
    assert mean["q_ref"] > mean["q_other"] + 0.3, mean
    assert spark.table("silver.documents").where("kind = 'code' AND quality_tier != 'unscored'").count() == 0
    curate_run = spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]
    assert (MODEL, "model", model.version) in [(i["name"], i["kind"], i["version"]) for i in curate_run["inputs"]]
    assert curate(spark, cfg).status == "noop"

    # the registered model is a pyfunc model too, giving the same scores as silver
    import mlflow

    by_path = {r["path"]: r for r in rows}
    probe = sorted(by_path)[:4]
    predicted = mlflow.pyfunc.load_model(model.uri).predict([by_path[p]["text"] for p in probe])
    assert predicted == pytest.approx([by_path[p]["quality_score"] for p in probe], abs=1e-6)

    # new tier thresholds re-tier without rescoring; a new version rescores
    cfg.quality.tiers = {"top": 0.5, "rest": 0.0}
    result = curate(spark, cfg)
    status = result.status
    assert status == "succeeded"
    tiers = {r["quality_tier"] for r in spark.table("silver.documents").where("source = 'q_ref'").collect()}
    assert tiers <= {"top", "rest"}
    result = train(spark, cfg, force=True)
    newer, status = result.detail['model'], result.status
    assert status == "succeeded" and newer.version == model.version + 1
    assert current_model(lakehouse, MODEL).version == newer.version
    curate(spark, cfg)
    labels = {r["quality_model"] for r in spark.table("silver.documents").where("source IN ('q_ref', 'q_other')").collect()}
    assert labels == {newer.label}
