"""`brickyard run` end to end on a small built-in sample, in a lakehouse of its own (its own Spark
driver, Derby metastore and MLflow store), through every stage including training and the
report; then the notebooks' reader is checked against Spark on the same Delta tables."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.lakeview import Lakeview
from tests.helpers import clean_env

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TITLES = ["Catalog overview", "Curation funnel", "Duplicates", "Tokens and curriculum", "Training runs"]

PIPELINE = """
lakehouse: lh
spark: {master: "local[2]", driver_memory: 2g, shuffle_partitions: 4, ui: false, progress: false}
quality:
  positives: {where: "path LIKE 'package_docs/%'", kept_only: false}
export: {curriculum: curriculum.yaml}
train: {config: train.yaml}
sources:
  - name: sample
    kind: sample
    parts: {stdlib: 0.4, package_docs: 0.4, licenses: 0.2, man_pages: 0.3, share_doc: 0.2}
"""
CURRICULUM = """
name: rt
seq_len: 64
tokens: 8192
seed: 3
streams:
  code: {domains: [code]}
  text: {domains: [docs, legal]}
phases:
  - {name: broad, share: 0.5, mix: {code: 0.7, text: 0.3}}
  - {name: anneal, share: 0.5, mix: {code: 0.3, text: 0.7}}
"""
TRAIN = """
name: rt
model: {preset: tiny}
data: {export: exports/rt}
global_batch_size: 8
micro_batch_size: 8
optim: {lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 3}
tracking: {experiment: rt, log_every: 1}
"""



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(lakehouse, report path, stdout) of one `brickyard run` over a ~1.5 MB sample."""
    root = tmp_path_factory.mktemp("run")
    for name, text in (("pipeline.yaml", PIPELINE), ("curriculum.yaml", CURRICULUM), ("train.yaml", TRAIN)):
        (root / name).write_text(text)
    r = subprocess.run([sys.executable, "-m", "brickyard", "run", "--config", str(root / "pipeline.yaml")],
                       cwd=root, capture_output=True, text=True, timeout=900, env=clean_env())
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("report: "), last
    return root / "lh", Path(last.removeprefix("report: ")), r.stdout


def outputs(notebook: Path) -> list[dict]:
    return [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]


def test_the_run_writes_a_report_with_every_section_filled(built):
    lakehouse, report, stdout = built
    assert report.parent.parent == lakehouse / "reports" and (lakehouse / "reports" / "latest").resolve() == report.parent
    for stage in ("ingest", "curate", "quality", "dedup", "tokenize", "export", "train", "report"):
        assert f"{stage}: done in" in stdout
    page = report.read_text()
    for title in TITLES:
        assert f">{title}<" in page
    # pictures per notebook: lineage; funnel docs + bytes, reasons, languages, quality; cluster sizes,
    # kinds; tokens, lengths, streams, mix; loss, expert load
    expected_images = {"01_catalog": 1, "02_curation": 5, "03_duplicates": 2, "04_tokens": 4, "05_training": 2}
    for name, images in expected_images.items():
        outs = outputs(report.parent / f"{name}.ipynb")
        assert not [o for o in outs if o["output_type"] == "error"], name
        assert not [o for o in outs if o.get("name") == "stderr"], (name, [o["text"] for o in outs if o.get("name") == "stderr"])
        assert sum("image/png" in o.get("data", {}) for o in outs) == images, name
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64', page)) == sum(expected_images.values())
    # sections filled from this lakehouse's real content, not placeholders
    lv = Lakeview(lakehouse)
    export_id = lv.exports()["export_id"].iloc[0]
    run = lv.training_runs().iloc[0]
    assert run.run_name == "rt" and run.export_id == export_id and run.steps == 16
    for text in ("gold.tokens", "bronze.quarantine", "near duplicates beside their keepers", export_id, "anneal",
                 "similarity", "expert-load", f"gold.tokens@v{lv.manifest()['tables']['gold.tokens']}"):
        assert text.lower() in page.lower(), text
    for placeholder in ("no training run yet", "no export yet", "no near duplicates", "nothing to show"):
        assert placeholder not in page


def test_lakeview_reads_what_spark_reads_deletion_vectors_and_versions_included(spark, built):
    lakehouse, _, _ = built
    lv = Lakeview(lakehouse)
    assert set(lv.paths) >= {"bronze.documents", "bronze.quarantine", "silver.documents", "silver.duplicates",
                             "gold.documents", "gold.tokens", "ops.lineage", "ops.exports"}
    with_dvs = [n for n, p in lv.paths.items() if any(p.glob("deletion_vector_*.bin"))]
    assert "ops.lineage" in with_dvs  # every job updates its lineage row: rows masked by deletion vectors
    for name, path in lv.paths.items():
        assert lv.count(name) == spark.read.format("delta").load(str(path)).count(), name
        v = min(1, lv.version(name))  # an older version, where there is one
        assert Lakeview(lakehouse, {name: v}).count(name) == spark.read.format("delta").option("versionAsOf", v).load(str(path)).count(), name
    kept = {r.doc_id for r in spark.read.format("delta").load(str(lv.paths["silver.documents"])).where("keep").select("doc_id").collect()}
    assert set(lv.sql("SELECT doc_id FROM silver.documents WHERE keep")["doc_id"]) == kept
    tokens = spark.read.format("delta").load(str(lv.paths["gold.tokens"])).selectExpr("sum(n_tokens)").first()[0]
    assert lv.token_counts()["tokens"].sum() == tokens
    funnel = lv.funnel().set_index(["domain", "stage"])
    read = {r.domain: r.n for r in spark.read.format("delta").load(str(lv.paths["bronze.documents"])).groupBy("domain").count()
            .withColumnRenamed("count", "n").collect()}
    for domain, n in read.items():
        assert funnel.loc[(domain, "bronze"), "documents"] == n


def test_a_report_pins_versions_and_a_failing_notebook_is_reported_not_hidden(built, tmp_path):
    import nbformat

    from brickyard.report import build, check
    from pipelines.errors import BrickyardError

    lakehouse, _, _ = built
    # an export or run the lakehouse lacks is refused before any notebook runs
    with pytest.raises(BrickyardError, match="no export rt-v0-x'y in ops.exports"):
        build(lakehouse, export_id="rt-v0-x'y", out_dir=tmp_path / "no-export", quiet=True)
    with pytest.raises(BrickyardError, match="no training run abc in this lakehouse's MLflow store"):
        build(lakehouse, run_id="abc", out_dir=tmp_path / "no-run", quiet=True)
    # pinned: the catalog notebook shows gold.tokens at version 1, not its latest
    latest = Lakeview(lakehouse).version("gold.tokens")
    assert latest > 1
    report, outcomes = build(lakehouse, {"gold.tokens": 1}, folder=REPO / "notebooks", out_dir=tmp_path / "pinned", quiet=True)
    check(outcomes, report)
    nb = json.loads((tmp_path / "pinned" / "01_catalog.ipynb").read_text())
    injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert 'versions = {"gold.tokens": 1}' in "".join(injected["source"])
    overview = next(o["data"]["text/plain"] for c in nb["cells"] for o in c.get("outputs", []) if "last_operation" in "".join(o.get("data", {}).get("text/plain", "")))
    row = next(line.split() for line in "".join(overview).splitlines() if " gold.tokens " in line)
    assert row[1:3] == ["gold.tokens", "gold"] and row[4] == "1", row  # table, layer, rows, version
    # a notebook that raises: the others still run, the report shows the error, check names it
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name, code in (("a_ok", "print('fine')"), ("b_bad", "raise ValueError('no such column: qualty')")):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), nbformat.v4.new_code_cell("lakehouse = ''", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    report, outcomes = build(lakehouse, folder=folder, out_dir=tmp_path / "failing", quiet=True)
    assert [o.error is None for o in outcomes] == [True, False]
    assert "no such column: qualty" in report.read_text()
    with pytest.raises(BrickyardError, match=r"notebook b_bad failed at cell \d+: ValueError: no such column: qualty; .* shows where"):
        check(outcomes, report)
