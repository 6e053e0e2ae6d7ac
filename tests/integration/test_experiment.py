"""The DBRX-claims experiment's smoke run (`bench/experiments/dbrx_claims.py --smoke`): its real
command, end to end, on the sample's own files: two lakehouses (curated, and raw: tokenized
straight from bronze), a held-out validation set, four training runs logged in MLflow with their
validation curves, and the report. A few steps each: this checks the machinery, not the claims."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import clean_env

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.long]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("claims")
    r = subprocess.run([sys.executable, str(REPO / "bench" / "experiments" / "dbrx_claims.py"), "--smoke", "--workdir", str(work)],
                       cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=840)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return work, r.stdout


def test_every_arm_trains_and_is_validated_at_the_same_steps(smoke):
    work, out = smoke
    results = json.loads((work / "results.json").read_text())
    setup = results["setup"]
    assert set(results["runs"]) == {f"{arm}-s0" for arm in ("moe-curated", "moe-raw", "dense-active", "dense-total")}
    for run in results["runs"].values():
        assert run["steps"] == list(range(0, setup["steps"] + 1, setup["eval_every"]))
        assert run["tokens"][-1] == setup["steps"] * setup["global_batch"] * setup["seq_len"]
        assert all(0 < v < math.log(100352) + 1 for v in run["val_loss"])
        assert run["flops"][-1] == pytest.approx(run["tokens"][-1] * run["flops_per_token"])
    for key in ("claim1_token_ratio", "claim2_flop_ratio"):
        assert key in results
    assert "| claim 1:" in out and (work / "claim1.png").stat().st_size and (work / "claim2.png").stat().st_size


def _claims(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "experiments" / "dbrx_claims.py"), "--smoke", "--workdir", str(work), *args],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600)


def test_report_only_redoes_the_same_ratios_from_mlflow_and_another_size_is_refused(smoke):
    work, _ = smoke
    before = json.loads((work / "results.json").read_text())
    r = _claims(work, "--report-only")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    after = json.loads((work / "results.json").read_text())
    assert (after["claim1_token_ratio"], after["claim2_flop_ratio"]) == (before["claim1_token_ratio"], before["claim2_flop_ratio"])
    assert {n: c["run_id"] for n, c in after["runs"].items()} == {n: c["run_id"] for n, c in before["runs"].items()}
    assert "(Report redone from MLflow.)" in (work / "results.md").read_text()
    r = _claims(work, "--report-only", "--mb", "5")
    assert r.returncode != 0 and "holds a corpus of 3" in r.stdout + r.stderr and "pass another --workdir for 5.0 MB" in r.stdout + r.stderr


def test_runs_and_the_summary_are_in_the_mlflow_store(smoke):
    import mlflow

    work, _ = smoke
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("dbrx-claims")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert {"moe-curated-s0", "moe-raw-s0", "dense-active-s0", "dense-total-s0", "summary"} <= set(runs)
    results = json.loads((work / "results.json").read_text())
    for name, curve in results["runs"].items():
        history = client.get_metric_history(runs[name].info.run_id, "val_loss")
        assert sorted(m.value for m in history) == sorted(curve["val_loss"])
        assert runs[name].data.tags["arm"] == curve["arm"]
    artifacts = {a.path for a in client.list_artifacts(runs["summary"].info.run_id)}
    assert {"results.md", "results.json", "claim1.png", "claim2.png"} <= artifacts


def test_the_raw_export_is_bronze_tokenized_without_curation(smoke):
    from brickyard.pipelines.lake.lakeview import Lakeview

    work, _ = smoke
    raw = Lakeview(work / "raw")
    assert not raw.has("silver.documents") and not raw.has("gold.documents")
    assert raw.count("gold.tokens") == raw.count("bronze.documents") > 0
    assert raw.delta("gold.tokens").metadata().configuration["brickyard.pii"] == "raw"
    inputs = raw.sql("SELECT inputs FROM ops.lineage WHERE job = 'tokenize' AND status = 'succeeded'")["inputs"].iloc[0]
    assert [i["name"] for i in inputs] == ["bronze.documents"]


def test_held_out_documents_are_in_no_training_export(smoke):
    from brickyard.pipelines.lake.lakeview import Lakeview

    work, _ = smoke
    cur = Lakeview(work / "curated")
    manifest = json.loads((work / "curated" / "exports" / "claims" / "manifest.json").read_text())
    trained = cur.count("gold.tokens") - int(cur.sql("SELECT count(*) AS n FROM gold.tokens WHERE source LIKE 'heldout%'")["n"].iloc[0])
    assert manifest["streams"]["train"]["documents"] == trained
    val = np.load(work / "val.npy")
    info = json.loads((work / "val.json").read_text())
    assert val.shape == (info["samples"], 65) and info["samples"] % 4 == 0 and info["samples"] > 0
    assert set(info["composition"]) <= {"heldout_package_docs", "heldout_python_stdlib"}
    # no validation sample is a run of tokens any training document holds, raw or curated
    rows = [np.asarray(t, dtype=np.int32).tobytes() for lake in (cur, Lakeview(work / "raw"))
            for t in lake.sql("SELECT tokens FROM gold.tokens WHERE source NOT LIKE 'heldout%'")["tokens"]]
    for sample in val.astype(np.int32):
        needle = sample.tobytes()
        assert not any(_aligned_find(row, needle) for row in rows)


def _aligned_find(haystack: bytes, needle: bytes) -> bool:
    at = haystack.find(needle)
    while at != -1:
        if at % 4 == 0:
            return True
        at = haystack.find(needle, at + 1)
    return False
