"""Decontaminate on a real local Spark with Delta: evaluation items planted in real documents
verbatim, lightly edited and paraphrased, found through the join and through the broadcast lookup;
curate rejecting what was found, and judging it again when the sets go; no-op and incremental
reruns; the report section."""

from __future__ import annotations

import ast
import json
import re
import shutil
import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from brickyard.pipelines.config import EvalSetConfig
from brickyard.pipelines.lake.delta import ensure_table, latest_version
from brickyard.pipelines.lake.lakeview import Lakeview
from brickyard.pipelines.lake.tables import SILVER
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.decontaminate import _none_found_before, decontaminate
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.text.filters import DEFAULT_RULES

from tests.helpers import real_metadata_texts

pytestmark = pytest.mark.spark

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ["argparse.py", "textwrap.py", "difflib.py", "heapq.py", "shutil.py", "tempfile.py", "fractions.py",
           "statistics.py", "csv.py", "pickle.py", "zipfile.py", "functools.py", "inspect.py", "typing.py"]


def docstring_paragraphs() -> list[str]:
    """Real English prose: paragraphs of at least 40 words from standard-library docstrings."""
    out = []
    for name in MODULES:
        for node in ast.walk(ast.parse((STDLIB / name).read_text())):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and (doc := ast.get_docstring(node)):
                for para in doc.split("\n\n"):
                    words = para.split()
                    if len(words) >= 40 and sum(w.isalpha() for w in words) > 0.75 * len(words):
                        out.append(" ".join(words))
    return out


def edited(text: str, every: int, start: int) -> str:
    """A word in `every` replaced (from `start` on), by a word the passage does not hold."""
    words = text.split()
    for i in range(start, len(words), every):
        words[i] = f"zq{i}x"
    return " ".join(words)


def paraphrased(text: str) -> str:
    """Heavily rewritten: one word in three replaced, and the sentences in reverse order."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", edited(text, 3, 1)) if s]
    return " ".join(reversed(sentences))


def plant(host: str, passage: str) -> str:
    """The passage set into the middle of a real document, as a paragraph of its own."""
    cut = host.find("\n\n", len(host) // 2)
    cut = len(host) // 2 if cut < 0 else cut
    return host[:cut] + "\n\n" + passage + "\n\n" + host[cut:]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Real README texts, some carrying evaluation items; the evaluation sets as files."""
    root = tmp_path_factory.mktemp("decon")
    paras = docstring_paragraphs()
    hosts = real_metadata_texts(16)
    assert len(paras) >= 12 and len(hosts) >= 12
    long_items = paras[:6]
    sentences = [s for p in paras[6:] for s in re.split(r"(?<=[.!?])\s+", p) if 14 <= len(s.split()) <= 20]
    short_items = sentences[:5]
    assert len(short_items) == 5
    s3_half = " ".join(short_items[3].split()[:7])
    planted = {
        "verbatim": plant(hosts[0], long_items[0]),
        "edited": plant(hosts[1], edited(long_items[1], 17, 14)),  # 3 of about 60 words changed
        "paraphrased": plant(hosts[2], paraphrased(long_items[2])),
        "short_verbatim": plant(hosts[3], short_items[0]),
        "short_edited": plant(hosts[4], edited(short_items[1], 100, len(short_items[1].split()) - 3)),  # one word near the end
        "short_paraphrased": plant(hosts[5], paraphrased(short_items[2])),
        "short_half": plant(hosts[6], s3_half),
    }
    docs = root / "docs"
    docs.mkdir()
    for name, text in planted.items():
        (docs / f"{name}.txt").write_text(text)
    for i, text in enumerate(hosts[7:12]):
        (docs / f"clean{i}.txt").write_text(text)
    # the long items as a QA benchmark: question, answer, choices (a list field)
    qa = docs.parent / "qa"
    qa.mkdir()
    with (qa / "test.jsonl").open("w") as f:
        for i, passage in enumerate(long_items):
            f.write(json.dumps({"uid": f"q{i}", "question": passage, "answer": "yes",
                                "choices": ["yes", "no", "it depends on the arguments given"]}) + "\n")
    # the short items as a Parquet file, with one item too short to check
    short = [{"id": f"s{i}", "question": s} for i, s in enumerate(short_items)] + [{"id": "tiny", "question": "Is it so?"}]
    pq.write_table(pa.Table.from_pylist(short), root / "short.parquet")
    return root, {"long": long_items, "short": short_items}


def config(make_config, root: Path, *sets: dict, broadcast_limit: int = 4_000_000):
    cfg = make_config({"name": "d_docs", "kind": "text", "path": str(root / "docs"), "domain": "docs"})
    cfg.base_dir = str(root)  # evaluation set paths are relative to the config file's folder
    # every document here is English (README files, markdown and all): the heuristic rules are off and
    # the language bar is low, so all of them reach the check
    cfg.curate.rules = {r.name: {"enabled": False} for r in DEFAULT_RULES}
    cfg.curate.min_lang_score = 0.2
    cfg.decontaminate.eval_sets = [EvalSetConfig(**s) for s in sets]
    cfg.decontaminate.broadcast_limit = broadcast_limit
    cfg.validate("test")
    return cfg


QA = {"name": "qa", "path": "qa", "fields": ["question", "answer", "choices"], "id_field": "uid"}
SHORT = {"name": "short_qa", "path": "short.parquet", "fields": ["question"], "id_field": "id",
         "mode": "containment", "ngram": 8, "containment": 0.5}


def rows(spark, table: str, where: str = "TRUE") -> list:
    return spark.table(table).where(where).collect()


def path_of(spark) -> dict[str, str]:
    return {r["doc_id"]: r["path"] for r in spark.table("silver.documents").select("doc_id", "path").collect()}


def test_planted_items_are_found_rejected_by_curate_and_reruns_check_only_what_is_new(spark, make_config, corpus, lakehouse, tmp_path):
    root, items = corpus
    cfg = config(make_config, root, QA, broadcast_limit=0)  # the join: no evaluation n-gram reaches the driver
    if spark.catalog.tableExists("bronze.documents"):
        curate(spark, cfg)  # what an earlier test of the session ingested and left unjudged (test_ingest's)
    ingest(spark, cfg)
    assert (curate(spark, cfg).rows_out, len(rows(spark, "silver.documents", "keep AND source = 'd_docs'"))) == (12, 12)
    # the session's lakehouse also holds what other tests kept: those are checked too (and hold no item)
    others = len(rows(spark, "silver.documents", "keep AND source != 'd_docs'"))

    first = decontaminate(spark, cfg)
    assert first.status == "succeeded" and first.rows_in == 12 + others
    assert rows(spark, "ops.lineage", f"run_id = '{first.run_id}'")[0]["metrics"]["lookup"] == "join"
    paths = path_of(spark)
    found = {(paths[r["doc_id"]], r["item_id"]): r for r in rows(spark, "silver.contamination")}
    # ngram mode: the verbatim and the lightly edited copies are found, the paraphrase is not
    assert set(found) == {("verbatim.txt", "q0"), ("edited.txt", "q1")}
    verbatim, light = found[("verbatim.txt", "q0")], found[("edited.txt", "q1")]
    assert verbatim["containment"] == 1.0 and verbatim["matched_ngrams"] == verbatim["item_ngrams"]
    assert 0 < light["containment"] < 0.5 and light["matched_ngrams"] >= 1
    # the span is the document's own text: all of a verbatim copy, the longest unedited stretch of an edited one
    text_of = {r["path"]: r["text"] for r in rows(spark, "silver.documents")}
    assert verbatim["span"] in items["long"][0] and len(verbatim["span"]) >= len(items["long"][0]) - 3
    assert light["span"] in text_of["edited.txt"] and light["span"] in items["long"][1] and len(light["span"].split()) >= 13
    assert first.rows_rejected == 2 and first.rows_out == 10 + others
    sets = {r["eval_set"]: r for r in rows(spark, "ops.eval_sets")}
    assert sets["qa"]["items"] == sets["qa"]["items_checked"] == 6 and sets["qa"]["format"] == "jsonl"

    # curate rejects them, with the rule in the funnel like any other
    judged = curate(spark, cfg)
    assert (judged.status, judged.rows_in, judged.rows_out, judged.rows_rejected) == ("succeeded", 2, 0, 2)
    silver = {r["path"]: r for r in rows(spark, "silver.documents")}
    for name in ("verbatim.txt", "edited.txt"):
        assert silver[name]["keep"] is False and silver[name]["reject_reason"] == "contaminated"
        assert silver[name]["failed_rules"] == ["contaminated"]
    assert silver["paraphrased.txt"]["keep"] is True
    stats = {(r["rule"], r["counted_as"]): r["documents"] for r in rows(spark, "ops.filter_stats", f"run_id = '{judged.run_id}'")}
    assert stats[("contaminated", "first_failure")] == stats[("contaminated", "any_failure")] == 2
    assert stats[("*", "input")] == 2 and ("*", "kept") not in stats
    lineage = rows(spark, "ops.lineage", f"run_id = '{judged.run_id}'")[0]
    assert lineage["rows_in"] == lineage["rows_out"] + lineage["rows_rejected"]
    assert "silver.contamination" in {i["name"] for i in lineage["inputs"]}

    # what the write phase asks before replacing earlier findings, from the table's files: none for a
    # document never found (the usual new document), some for one that was
    ids = {p: d for d, p in paths.items()}
    version = latest_version(spark, "silver.contamination")
    for path, none_before in (("paraphrased.txt", True), ("verbatim.txt", False)):
        checked = spark.createDataFrame([(ids[path],)], "doc_id STRING")
        assert _none_found_before(spark, checked, 1, version) is none_before, path

    # nothing new: both are no-ops
    assert decontaminate(spark, cfg).status == "noop"
    assert curate(spark, cfg).status == "noop"

    # a new evaluation set: every document in scope is checked against it alone, through the broadcast
    # lookup this time (its n-grams sent to the tasks); the first set's rows stay as they were
    cfg = config(make_config, root, QA, SHORT)
    second = decontaminate(spark, cfg)
    assert second.status == "succeeded" and second.rows_in == 12 + others  # the contaminated two are still in scope
    metrics = rows(spark, "ops.lineage", f"run_id = '{second.run_id}'")[0]["metrics"]
    assert metrics["lookup"] == "broadcast" and "documents.short_qa" in metrics and "documents.qa" not in metrics
    after = rows(spark, "silver.contamination")
    assert {r["batch_id"] for r in after if r["eval_set"] == "qa"} == {first.run_id}
    short = {(paths[r["doc_id"]], r["item_id"]): r for r in after if r["eval_set"] == "short_qa"}
    # containment mode, 8-grams, half of them needed: whole and one word changed are found; the
    # paraphrase and the half-copied sentence are not
    assert set(short) == {("short_verbatim.txt", "s0"), ("short_edited.txt", "s1")}
    assert short[("short_verbatim.txt", "s0")]["containment"] == 1.0
    assert 0.5 <= short[("short_edited.txt", "s1")]["containment"] < 1.0
    sets = {r["eval_set"]: r for r in rows(spark, "ops.eval_sets")}
    assert (sets["short_qa"]["items"], sets["short_qa"]["items_too_short"], sets["short_qa"]["mode"]) == (6, 1, "containment")
    checks = rows(spark, "ops.contamination_checks")
    assert len(checks) == 12 + others and all(len(r["eval_sets"]) == 2 for r in checks)

    judged = curate(spark, cfg)
    assert (judged.rows_in, judged.rows_rejected) == (2, 2)
    silver = {r["path"]: r for r in rows(spark, "silver.documents")}
    assert [p for p, r in sorted(silver.items()) if r["reject_reason"] == "contaminated"] == [
        "edited.txt", "short_edited.txt", "short_verbatim.txt", "verbatim.txt"]

    # removing the evaluation sets: curate keeps the documents again, judged anew
    cfg = config(make_config, root)
    released = curate(spark, cfg)
    assert (released.rows_in, released.rows_rejected) == (4, 0)
    assert all(r["keep"] for r in rows(spark, "silver.documents", "source = 'd_docs'"))

    # the report's section reads the lakehouse without Spark: per set, what was found (ops.eval_sets
    # lists the sets of the last decontaminate run; curate no longer rejects for them)
    table = Lakeview(lakehouse).contamination_by_set().set_index("eval_set")
    assert table.loc["qa", "items"] == 6 and table.loc["qa", "items_found"] == 2 and table.loc["qa", "documents_found"] == 2
    assert table.loc["short_qa", "items_too_short"] == 1 and table.loc["short_qa", "items_found"] == 2
    report_section(lakehouse, tmp_path)


def report_section(lakehouse: Path, tmp_path: Path) -> None:
    """The contamination notebook, executed against this lakehouse the way `brickyard report` runs it."""
    from brickyard.report import build, check

    folder = tmp_path / "nb"
    folder.mkdir()
    notebook = next((Path(__file__).resolve().parents[2] / "notebooks").glob("*_contamination.ipynb"))
    shutil.copy(notebook, folder / notebook.name)
    report, outcomes = build(lakehouse, folder=folder, out_dir=tmp_path / "report", quiet=True)
    check(outcomes, report)
    page = report.read_text()
    for text in (">Contamination<", "qa", "short_qa", "containment", "contaminated"):
        assert text in page, text


def test_an_evaluation_file_that_cannot_be_read_is_one_sentence(spark, make_config, tmp_path):
    from brickyard.pipelines.errors import BrickyardError

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text(real_metadata_texts(1)[0])
    (tmp_path / "bad.jsonl").write_text('{"question": "fine"}\n{"question": broken\n')
    cfg = config(make_config, tmp_path, {"name": "bad", "path": "bad.jsonl", "fields": ["question"]})
    ensure_table(spark, SILVER, cfg.catalog.owner)  # what curate would have made
    with pytest.raises(BrickyardError, match=r"evaluation set bad: bad.jsonl line 2 is not valid JSON"):
        decontaminate(spark, cfg)
    missing = config(make_config, tmp_path, {"name": "gone", "path": "nowhere", "format": "text"})
    with pytest.raises(BrickyardError, match=r"decontaminate.eval_sets\[0\] \(gone\).path: .*nowhere does not exist"):
        decontaminate(spark, missing)
