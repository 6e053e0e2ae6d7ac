"""`brickyard run` end to end on a small built-in sample, in a lakehouse of its own (its own Derby
metastore and MLflow store, served by its own `brickyard serve` server, which every command of the
build uses over Spark Connect), through every stage including training and the report,
interrupted by SIGKILLs inside every data stage; then the notebooks' reader is checked against
Spark on the same Delta tables, the same build runs with a driver of its own on a standalone
cluster (the same tables: a build over Spark Connect equals a classic driver's), and a source is
forgotten."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from brickyard.pipelines.config import load_config
from brickyard.pipelines.lake.lakeview import Lakeview
from brickyard.pipelines.sources.listing import list_units
from brickyard.pipelines.sources.readers import read_unit

from tests.helpers import clean_env, kill_at, start_brickyard

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.long]

REPO = Path(__file__).resolve().parents[2]
TITLES = ["Catalog overview", "Curation funnel", "Duplicates", "Tokens and curriculum", "Training runs", "Contamination"]

PIPELINE = """
lakehouse: lh
spark: {master: "local[2]", driver_memory: 2g, shuffle_partitions: 4, ui: false, progress: false}
quality:
  positives: {where: "path LIKE 'package_docs/%'", kept_only: false}
decontaminate:
  eval_sets: [{name: probe, path: probe.jsonl, fields: [passage], id_field: id}]
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



# each a window between two commits of one job, or after its last commit (pipelines/faults.py)
KILLS = ("ingest:after-read", "ingest:after-documents", "curate:after-silver", "decontaminate:after-contamination",
         "dedup:after-gold", "tokenize:after-write", "export:after-files")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(lakehouse, report path, stdout) of a `brickyard run` over a ~1.5 MB sample, interrupted:
    the command is SIGKILLed twice inside ingest, then inside curate, decontaminate, dedup, tokenize
    and export in turn, and a last `brickyard run` finishes the build; the tests below judge what
    that leaves. Every command works through the lakehouse's server (a kill ends the client between
    two of its commits, as a killed driver would); the server stops when the module is done."""
    root = tmp_path_factory.mktemp("run")
    for name, text in (("pipeline.yaml", PIPELINE), ("curriculum.yaml", CURRICULUM), ("train.yaml", TRAIN)):
        (root / name).write_text(text)
    write_probe(root / "probe.jsonl", load_config(root / "pipeline.yaml"))
    config = ["--config", str(root / "pipeline.yaml")]
    run = ["run", *config]
    r = subprocess.run([sys.executable, "-m", "brickyard", "serve", *config], cwd=root, capture_output=True, text=True,
                       timeout=300, env=clean_env())
    assert r.returncode == 0 and "started in" in r.stdout, r.stdout + r.stderr
    try:
        yield _build(root, config, run)
    finally:
        subprocess.run([sys.executable, "-m", "brickyard", "serve", "--stop", *config], cwd=root, capture_output=True,
                       timeout=300, env=clean_env())


def _build(root: Path, config: list[str], run: list[str]):
    # after a stage is killed, the next command runs it again to its end, then the next stage is
    # killed (commands of one stage each after dedup: a whole `run` would repeat every no-op stage)
    steps = (("run", "ingest:after-read"), ("run", "ingest:after-documents"),
             ("run", "curate:after-silver"), ("run", "decontaminate:after-contamination"), ("run", "dedup:after-gold"),
             ("dedup", None),
             ("tokenize", "tokenize:after-write"), ("export", "export:after-files"))
    with open(root / "killed-runs.log", "w") as log:
        for command, point in steps:
            proc = start_brickyard([command, *config], log, point, cwd=root)
            if point:
                kill_at(proc, point)
            else:
                proc.communicate(timeout=600)
                assert proc.returncode == 0, f"brickyard {command} failed; see {root / 'killed-runs.log'}"
    r = subprocess.run([sys.executable, "-m", "brickyard", *run], cwd=root, capture_output=True, text=True, timeout=900, env=clean_env())
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("report: "), last
    return root / "lh", Path(last.removeprefix("report: ")), r.stdout


def write_probe(path: Path, cfg) -> None:
    """An evaluation set of docstring paragraphs (40 words or more) of standard-library modules: from
    files the sample reads (the build holds them), and from files it does not."""
    import ast

    from brickyard.pipelines.sources.listing import sample_units
    from brickyard.pipelines.sources.sample import PARTS, part_root

    read = sorted(u.file for u in sample_units(cfg.sources[0], 1 << 30) if u.path.startswith("stdlib/"))
    unread = sorted({str(f) for f in part_root(PARTS["stdlib"]).glob("*.py")} - set(read))
    items = []
    for origin, files in (("in", read), ("out", unread)):
        got = 0
        for f in files:
            try:
                tree = ast.parse(Path(f).read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                doc = ast.get_docstring(node) if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) else None
                para = next((p for p in (doc or "").split("\n\n") if len(p.split()) >= 40), None)
                if para and got < 6:
                    items.append({"id": f"{origin}{got}", "passage": para})
                    got += 1
    path.write_text("".join(json.dumps(i) + "\n" for i in items))


def outputs(notebook: Path) -> list[dict]:
    return [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]


def test_the_run_writes_a_report_with_every_section_filled(built):
    lakehouse, report, stdout = built
    assert report.parent.parent == lakehouse / "reports" and (lakehouse / "reports" / "latest").resolve() == report.parent
    for stage in ("ingest", "curate", "decontaminate", "quality", "dedup", "tokenize", "export", "train", "report"):
        assert re.search(rf"(?m)^{stage}: (succeeded|noop)\b.* in \d+\.\ds", stdout), stage  # the runner's line
    page = report.read_text()
    for title in TITLES:
        assert f">{title}<" in page
    # pictures per notebook: lineage; funnel docs + bytes, reasons, languages, quality; cluster sizes,
    # kinds; tokens, lengths, streams, mix; loss, expert load; contaminated documents per set
    expected_images = {"01_catalog": 1, "02_curation": 5, "03_duplicates": 2, "04_tokens": 4, "05_training": 2,
                       "06_contamination": 1}
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
    sets = lv.contamination_by_set().set_index("eval_set")
    assert sets.loc["probe", "items_checked"] == sets.loc["probe", "items"] > 0 and sets.loc["probe", "documents_found"] >= 1
    assert lv.contamination_examples()["item_id"].str.startswith("in").any()  # passages the build holds are found
    for text in ("gold.tokens", "bronze.quarantine", "near duplicates beside their keepers", export_id, "anneal", "probe",
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
    assert with_dvs  # MERGE updates and deletes leave rows masked by deletion vectors: lakeview must honour them
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
    from brickyard.pipelines.errors import BrickyardError

    from brickyard.report import build, check

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


DOC_TABLES = ("bronze.documents", "bronze.quarantine", "silver.documents", "silver.signatures", "silver.duplicates",
              "gold.documents", "gold.tokens")


def delta(spark, lakehouse: Path, table: str):
    """A table of another lakehouse, by path (its metastore belongs to its own driver)."""
    schema, name = table.split(".")
    return spark.read.format("delta").load(str(lakehouse / "warehouse" / f"{schema}.db" / name))


def test_a_run_killed_in_each_stage_finishes_on_rerun_with_nothing_twice_and_every_count_balanced(spark, built):
    lakehouse, _, _ = built
    t = lambda name: delta(spark, lakehouse, name)  # noqa: E731
    lineage = t("ops.lineage")
    for point in KILLS:
        job = point.split(":")[0]
        runs = [r.status for r in lineage.where(f"job = '{job}'").orderBy("started_at").collect()]
        assert runs[0] == "killed" and runs[-1] in ("succeeded", "noop") and "running" not in runs, (job, runs)
    assert lineage.where("status = 'failed'").count() == 0
    # every run of the build went through the lakehouse's server
    assert {r.spark_master for r in lineage.where("status != 'killed'").select("spark_master").distinct().collect()} == {"connect:local[2]"}
    for name in DOC_TABLES:
        assert t(name).count() == t(name).select("doc_id").distinct().count(), name
    bronze, silver, dups, gold, tokens = (t(n) for n in ("bronze.documents", "silver.documents", "silver.duplicates",
                                                         "gold.documents", "gold.tokens"))
    ids = lambda df: {r.doc_id for r in df.select("doc_id").collect()}  # noqa: E731

    # ingest, killed after reading and again after its documents commit: bronze holds exactly what
    # the pure readers make of the sources, each record once
    cfg = load_config(lakehouse.parent / "pipeline.yaml")
    expected = {"doc": set(), "quarantine": set()}
    for s in cfg.sources:
        for u in list_units(cfg, s):
            for r in read_unit(u, cfg.ingest.max_doc_bytes, cfg.ingest.max_file_bytes):
                expected[r["kind"]].add(r["doc_id"])
    assert ids(bronze) == expected["doc"] and ids(t("bronze.quarantine")) == expected["quarantine"]
    files = t("ops.source_files")
    assert files.count() == files.select("source", "path").distinct().count()
    ingests = lineage.where("job = 'ingest'").orderBy("started_at").collect()
    assert [r.status for r in ingests[:3]] == ["killed", "killed", "succeeded"]
    assert "killed" in ingests[0].message
    # the second kill came after the documents commit: the rerun found every document unchanged
    assert ingests[2].metrics["inserted"] == "0" and ingests[2].metrics["unchanged"] == str(len(expected["doc"]))
    assert ingests[2].rows_in == ingests[2].rows_out + ingests[2].rows_quarantined
    # conservation down the layers: every bronze document judged once; every kept one placed once;
    # one keeper per cluster in gold; every gold document tokenized
    assert ids(silver) == ids(bronze)
    assert ids(dups) == ids(silver.where("keep"))
    assert ids(gold) == ids(dups.where("is_keeper")) == ids(tokens)
    assert dups.where("is_keeper").count() == dups.select("cluster_id").distinct().count()
    # the curate killed between its silver commit and its statistics: the next curate wrote them,
    # under the killed run's id, so the funnel adds up to silver exactly once, plus the documents a
    # later curate judged again because decontaminate found them
    stats = t("ops.filter_stats")
    assert stats.count() == stats.select("run_id", "domain", "rule", "counted_as").distinct().count()
    rejudged = sum(int(r.metrics.get("contamination_rejudged", 0)) for r in lineage.where("job = 'curate'").collect())
    assert rejudged >= 1
    assert stats.where("counted_as = 'input'").groupBy().sum("documents").first()[0] == silver.count() + rejudged
    killed_curate = lineage.where("job = 'curate' AND status = 'killed'").first().run_id
    assert stats.where(f"run_id = '{killed_curate}'").count() > 0
    # decontaminate killed between its findings and its checks: the rerun checked everything again,
    # replacing what the killed run had written, so no document and item is recorded twice
    found = t("silver.contamination")
    assert found.count() == found.select("doc_id", "eval_set", "item_id").distinct().count() > 0
    checks = t("ops.contamination_checks")
    assert ids(checks) == ids(silver.where("keep OR failed_rules = array('contaminated')"))
    # the export killed after its files were in place and before its row: recorded once, by the rerun
    exports = t("ops.exports").collect()
    assert len(exports) == 1 and exports[0].status == "current"
    killed_export = lineage.where("job = 'export' AND status = 'killed'").first().run_id
    assert exports[0].run_id == killed_export
    assert "recorded_after_kill" in lineage.where("job = 'export'").orderBy("started_at").collect()[-1].metrics


@pytest.fixture(scope="module")
def standalone():
    """A Spark standalone master and one worker (2 cores) from the pyspark package, on 127.0.0.1."""
    import json as _json
    import os
    import socket
    import time
    import urllib.request

    import pyspark

    def free_port():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = dict(clean_env(), SPARK_LOCAL_IP="127.0.0.1", SPARK_DAEMON_MEMORY="512m")
    master = subprocess.Popen([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"brickyard-worker-{port}"
    worker = subprocess.Popen([str(spark_class), "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                               "--host", "127.0.0.1", "--cores", "2", "--memory", "3g", "--webui-port", str(worker_ui),
                               "--work-dir", str(work)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as page:
                    if _json.load(page).get("aliveworkers", 0) >= 1:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "the standalone worker did not register with the master"
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}"
    finally:
        import shutil
        import signal

        for proc in (worker, master):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def test_the_data_build_on_a_standalone_cluster_gives_the_local_tables(spark, built, standalone, tmp_path):
    """The same build on a real cluster (driver, master, worker and its executor in their own
    JVMs) gives the served build's tables: the same rows, by count and by checksum. The served build
    ran over Spark Connect and this one in a classic driver of its own, so the match shows that the
    two engines build the same tables; the served build was interrupted in four stages (above) and
    this one was not, so it also shows that a killed-and-rerun build ends where an uninterrupted one does."""
    import shutil

    from brickyard.pipelines.lake.delta import table_checksum

    local, _, _ = built
    for name, text in (("pipeline.yaml", PIPELINE), ("curriculum.yaml", CURRICULUM)):
        (tmp_path / name).write_text(text)
    shutil.copy(local.parent / "probe.jsonl", tmp_path / "probe.jsonl")  # the same evaluation set
    r = subprocess.run([sys.executable, "-m", "brickyard", "run", "--config", str(tmp_path / "pipeline.yaml"), "--until", "export",
                        "--master", standalone, "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
                        "--conf", "spark.executor.memory=2g"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900, env=clean_env())
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    cluster = tmp_path / "lh"
    runs = delta(spark, cluster, "ops.lineage").select("spark_master").distinct().collect()
    assert [x.spark_master for x in runs] == [standalone]
    for name in DOC_TABLES + ("ops.filter_stats",):
        a, b = delta(spark, local, name), delta(spark, cluster, name)
        same = [c for c in a.columns if not (c.endswith("_at") or c in ("batch_id", "run_id"))]
        assert table_checksum(a, same) == table_checksum(b, same), name
        assert a.count() == b.count() > 0, name
    # the exports: the same samples in the same shards, byte for byte
    (ea,), (eb,) = (delta(spark, lh, "ops.exports").collect() for lh in (local, cluster))
    ma, mb = json.loads(ea.manifest), json.loads(eb.manifest)
    assert ea.export_id == eb.export_id
    assert {s: [f["sha256"] for f in v["shards"]] for s, v in ma["streams"].items()} == \
           {s: [f["sha256"] for f in v["shards"]] for s, v in mb["streams"].items()}


def brickyard(root: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "brickyard", *args, "--config", str(root / "pipeline.yaml")],
                       cwd=root, capture_output=True, text=True, timeout=600, env=clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def export_stream(export_dir: Path, manifest: dict, cache: Path) -> dict[str, np.ndarray]:
    """Each stream's samples, in order, as one token array."""
    from brickyard.pipelines.manifest import stream_registration
    from streaming import Stream, StreamingDataset

    out = {}
    for name, info in manifest["streams"].items():
        if info["samples"]:
            with stream_registration():  # a training in the other test process may be registering
                ds = StreamingDataset(streams=[Stream(remote=str(export_dir / info["path"]), local=str(cache / name))], shuffle=False, batch_size=1)
            out[name] = np.concatenate([ds[i]["tokens"] for i in range(len(ds))])
    return out


def contains(stream: np.ndarray, window: np.ndarray) -> bool:
    hits = np.flatnonzero(stream == window[0])
    return any(np.array_equal(stream[i:i + len(window)], window) for i in hits if i + len(window) <= len(stream))


def test_forget_deletes_documents_everywhere_marks_exports_stale_and_a_re_export_lacks_them(spark, built, tmp_path):
    """Runs last in this module: it changes the lakehouse the tests above read."""
    lakehouse, _, _ = built
    root = lakehouse.parent
    lv = Lakeview(lakehouse)

    def table(name):
        return spark.read.format("delta").load(str(lv.paths[name]))

    chosen = {r.doc_id for r in table("bronze.documents").where("path LIKE 'licenses/%'").select("doc_id").collect()}
    tokens = {r.doc_id: np.asarray(r.tokens, dtype=np.uint32) for r in table("gold.tokens").where(
        f"doc_id IN ({', '.join(repr(d) for d in chosen)})").select("doc_id", "tokens").collect()}
    assert chosen and tokens, "the sample's licences reach gold.tokens"
    newest = "SELECT export_id, path, manifest, status FROM ops.exports ORDER BY created_at DESC LIMIT 1"
    old = lv.sql(newest).iloc[0]
    old_stream = export_stream(Path(old.path), json.loads(old.manifest), tmp_path / "old")
    # a window of each forgotten document that the old export holds (packing may drop a stream's tail)
    windows = {d: t[:24] for d, t in tokens.items() if len(t) >= 24 and any(contains(s, t[:24]) for s in old_stream.values())}
    assert windows

    r = brickyard(root, "forget", "--where", "path LIKE 'licenses/%'", "--vacuum")
    assert f"forget: {len(chosen)} documents match" in r.stdout and "marked stale" in r.stdout
    lv = Lakeview(lakehouse)
    for name in ("bronze.documents", "bronze.quarantine", "silver.documents", "silver.signatures", "silver.duplicates",
                 "gold.documents", "gold.tokens"):
        ids = {x.doc_id for x in table(name).select("doc_id").collect()}
        assert not ids & chosen, name
        # vacuumed: no data file left in the table's folder (change data feed included) holds them
        for f in lv.paths[name].rglob("*.parquet"):
            if "_delta_log" in f.parts:  # log checkpoints hold file actions, not rows
                continue
            assert not set(pq.read_table(f, columns=["doc_id"]).column("doc_id").to_pylist()) & chosen, (name, f)
    assert lv.sql(f"SELECT status FROM ops.exports WHERE export_id = '{old.export_id}'")["status"].tolist() == ["stale"]
    run = lv.sql("SELECT status, metrics FROM ops.lineage WHERE job = 'forget'")
    assert run["status"].tolist() == ["succeeded"]

    # a re-export has none of their tokens
    brickyard(root, "export")
    new = Lakeview(lakehouse).sql(newest).iloc[0]
    assert new.export_id != old.export_id and new.status == "current"
    new_stream = export_stream(Path(new.path), json.loads(new.manifest), tmp_path / "new")
    for d, w in windows.items():
        assert not any(contains(s, w) for s in new_stream.values()), d
