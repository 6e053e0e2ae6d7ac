"""Below-the-document dedup on real Spark and Delta, with real text: partial copies of a licence
caught by containment (the exact value stored); a real disclaimer and a real licence header spread
over real files, cut from all but the first holder in keeper order, a document left too short
rejected, the funnel in ops.filter_stats; then an increment whose copy is cut against the earlier
owner, and the owner's change, which hands the span to the next holder."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from brickyard.pipelines.config import ContainmentSettings, DedupSettings, SpanSettings
from brickyard.pipelines.lake.lakeview import Lakeview
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.dedup import dedup
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.text.minhash import pair_containment, pair_jaccard
from brickyard.pipelines.text.spans import PARAGRAPH, SpanOptions, span_keys

from tests.helpers import copy_stdlib_package

pytestmark = pytest.mark.spark

LICENSES = Path("/usr/share/common-licenses")


def licence(name: str) -> str:
    if not (LICENSES / name).is_file():
        pytest.skip(f"this machine lacks {LICENSES / name}")
    return (LICENSES / name).read_text()


def rows_of(spark, table, sources):
    names = ", ".join(f"'{s}'" for s in sources)
    cols = "s.path, s.source, s.text AS silver_text, s.n_bytes AS silver_bytes, s.license AS silver_license, t.*"
    rows = spark.sql(f"SELECT {cols} FROM {table} t JOIN silver.documents s USING (doc_id) WHERE s.source IN ({names})").collect()
    return {r["path"]: r for r in rows}


def readme(package: str) -> str:
    found = sorted(Path(sysconfig.get_paths()["purelib"]).glob(f"{package}-*.dist-info/METADATA"))
    if not found:
        pytest.skip(f"this environment lacks the package {package}")
    return found[0].read_text()


def lineage(spark, run_id):
    return spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]


def flush(spark, cfg):
    """Place what earlier tests of the session curated and left (with the default settings), so the
    runs below deduplicate only this test's documents."""
    if spark.catalog.tableExists("silver.documents"):
        dedup(spark, cfg.model_copy(update={"dedup": DedupSettings()}))


def test_containment_flags_partial_copies_that_minhash_misses(spark, make_config, tmp_path):
    mpl = licence("MPL-2.0")
    sections = mpl.split("\n\n")
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "MPL-2.0").write_text(mpl)
    (folder / "MPL-2.0.txt").write_text(mpl)  # an exact copy
    (folder / "MPL-2.0-short").write_text("\n\n".join(sections[:-3]) + "\n")  # a near copy, shorter
    note = "We wrote this short note for our own project, to say which parts of the licence apply here.\n\n"
    (folder / "copied.txt").write_text(note + "\n\n".join(sections[10:16]) + "\n")
    words = "\n\n".join(sections[20:32]).split(" ")  # a lightly revised copy: one word in 50 changed
    (folder / "revised.txt").write_text(note + " ".join("really" if i % 50 == 7 else w for i, w in enumerate(words)) + "\n")
    # one passage of the licence inside text of its own: not contained
    (folder / "quoted.txt").write_text(licence("Artistic")[:3000] + "\n\n" + sections[12] + "\n")
    cfg = make_config({"name": "p_legal", "kind": "text", "path": "partial", "domain": "legal"})
    flush(spark, cfg)
    cfg.curate.rules = {"fineweb_char_dup": {"enabled": False}}  # a licence repeats its characters
    cfg.dedup = DedupSettings(containment=ContainmentSettings(enabled=True, threshold=0.8))
    cfg.validate("test")
    ingest(spark, cfg)
    curate(spark, cfg)
    kept = {r["path"] for r in spark.table("silver.documents").where("source = 'p_legal' AND keep").collect()}
    assert kept == {"MPL-2.0", "MPL-2.0.txt", "MPL-2.0-short", "copied.txt", "revised.txt", "quoted.txt"}

    result = dedup(spark, cfg)
    run = lineage(spark, result.run_id)
    assert result.status == "succeeded" and run["rows_in"] == run["rows_out"] + run["rows_rejected"]
    assert run["metrics"]["contained"] == "2"
    p = rows_of(spark, "silver.duplicates", ["p_legal"])
    keeper = p["MPL-2.0"]
    assert keeper["is_keeper"] and keeper["matched_with"] is None and keeper["match_score"] is None
    for name in ("copied.txt", "revised.txt"):
        row = p[name]
        exact = pair_containment([row["silver_text"]], [keeper["silver_text"]], 5)[0]
        jaccard = pair_jaccard([row["silver_text"]], [keeper["silver_text"]], 5)[0]
        assert (row["method"], row["matched_with"], row["cluster_id"]) == ("containment", keeper["doc_id"], keeper["doc_id"])
        assert not row["is_keeper"] and row["match_score"] == pytest.approx(exact, abs=1e-12) and exact >= 0.8
        # invisible to document-level MinHash at 0.8: far from a near duplicate
        assert jaccard < 0.5 and row["similarity"] < 0.5
    assert p["quoted.txt"]["is_keeper"]
    assert pair_containment([p["quoted.txt"]["silver_text"]], [mpl], 5)[0] < 0.5
    # the exact copy and the near copy record the pair and the value that placed them
    assert (p["MPL-2.0.txt"]["method"], p["MPL-2.0.txt"]["matched_with"], p["MPL-2.0.txt"]["match_score"]) == (
        "exact", keeper["doc_id"], 1.0)
    short = p["MPL-2.0-short"]
    assert (short["method"], short["matched_with"]) == ("near", keeper["doc_id"])
    assert short["match_score"] == pytest.approx(pair_jaccard([short["silver_text"]], [keeper["silver_text"]], 5)[0], abs=1e-12)
    gold = {r["doc_id"] for r in spark.table("gold.documents").collect()}
    assert keeper["doc_id"] in gold and p["quoted.txt"]["doc_id"] in gold
    assert not {p[n]["doc_id"] for n in ("copied.txt", "revised.txt", "MPL-2.0.txt", "MPL-2.0-short")} & gold


NOTICE_START, NOTICE_END = "How to Apply These Terms to Your New Programs", "Also add information on how to contact you"


def test_repeated_paragraphs_are_cut_after_their_first_holder_and_the_index_is_incremental(spark, lakehouse, make_config, tmp_path):
    how = licence("GPL-3").split(NOTICE_START)[1].split(NOTICE_END)[0]
    block = how[how.index("    <one line"):]  # the notice the GPL asks each program to carry
    notice = block.split("\n\n", 1)[1].strip("\n")  # its three paragraphs, without the template lines
    # package READMEs no other test reads, that curation keeps and that share no paragraph
    readmes = [readme(n) for n in ("annotated_types", "executing", "h11", "alembic", "idna")]
    text, code = tmp_path / "text", tmp_path / "code"
    text.mkdir()
    for i in range(4):
        (text / f"host{i}.txt").write_text(readmes[1 + i] + "\n\n" + notice + "\n")
    (text / "stub.txt").write_text(block)  # the notice and two template lines: too short without it
    copy_stdlib_package(code, "tomllib")  # four files under one licence header
    cfg = make_config({"name": "sp_text", "kind": "text", "path": "text", "domain": "docs"},
                      {"name": "sp_code", "kind": "code", "path": "code", "domain": "code"})
    flush(spark, cfg)
    cfg.dedup = DedupSettings(keeper=["n_bytes desc"], spans=SpanSettings(paragraphs=True))
    cfg.validate("test")
    options = SpanOptions(paragraphs=True, lines=False, min_chars=40)
    sources = ["sp_text", "sp_code"]
    ingest(spark, cfg)
    curate(spark, cfg)
    silver = {r["path"]: r for r in spark.table("silver.documents").where("source IN ('sp_text', 'sp_code')").collect()}
    assert all(silver[p]["keep"] for p in silver), {p: r["reject_reason"] for p, r in silver.items() if not r["keep"]}
    notice_keys = set(span_keys(silver["stub.txt"]["text"], "text", options)) & set(span_keys(silver["host0.txt"]["text"], "text", options))
    assert len(notice_keys) == 3

    result = dedup(spark, cfg)
    run = lineage(spark, result.run_id)
    assert result.status == "succeeded" and run["rows_in"] == run["rows_out"] + run["rows_rejected"]
    assert run["metrics"]["spans_rejected"] == "1" and run["metrics"]["spans_trimmed"] == "6"
    dups, gold = rows_of(spark, "silver.duplicates", sources), rows_of(spark, "gold.documents", sources)
    hosts = sorted((p for p in silver if p.startswith("host")), key=lambda p: -silver[p]["n_bytes"])
    owner = hosts[0]  # first in keeper order (n_bytes desc)
    assert "WITHOUT ANY WARRANTY" in gold[owner]["text"] and gold[owner]["spans_removed_share"] == 0
    for p in hosts[1:]:
        g = gold[p]
        assert "WITHOUT ANY WARRANTY" not in g["text"] and g["text"].rstrip("\n") == g["silver_text"].split("\n\nThis program is free")[0]
        assert g["spans_removed_share"] == pytest.approx(1 - len(g["text"]) / len(g["silver_text"]))
        assert g["n_bytes"] == len(g["text"].encode()) and dups[p]["spans_removed_share"] == g["spans_removed_share"]
    # the stub, left with the template's two short lines, is rejected with its reason and out of gold
    stub = dups["stub.txt"]
    assert (stub["is_keeper"], stub["method"], stub["cluster_id"]) == (False, "spans", stub["doc_id"])
    assert "stub.txt" not in gold and stub["spans_removed_share"] > 0.5
    # code: the largest file keeps the licence header, the others lose it; the licence stays in the metadata
    modules = sorted((p for p in silver if p.endswith(".py")), key=lambda p: -silver[p]["n_bytes"])
    assert "SPDX-License-Identifier: MIT" in gold[modules[0]]["text"]
    for p in modules[1:]:
        assert "SPDX-License-Identifier" not in gold[p]["text"] and gold[p]["text"].strip()
        assert gold[p]["license"] == silver[p]["license"] and gold[p]["license"]
    # the index: one owner per span; every other holder's row names it
    index = spark.table("silver.spans").where(f"batch_id = '{result.run_id}'").collect()
    ids = {silver[p]["doc_id"]: p for p in silver}
    for kind, h in notice_keys:
        holders = {ids[r["doc_id"]]: ids.get(r["owner_id"]) for r in index if (r["span_kind"], r["span_hash"]) == (kind, h)}
        assert holders == {p: owner for p in [*hosts, "stub.txt"]}
    # the funnel in ops.filter_stats: in = kept + first failures; bytes in = kept + removed + failures
    stats = {(r["domain"], r["rule"], r["counted_as"]): r for r in
             spark.table("ops.filter_stats").where(f"run_id = '{result.run_id}'").collect()}
    assert stats[("docs", "spans", "first_failure")]["documents"] == 1
    assert stats[("docs", "spans", "removed")]["documents"] == 3 and stats[("code", "spans", "removed")]["documents"] == 3
    for d in ("docs", "code"):
        mine = [r for k, r in stats.items() if k[0] == d]
        fails = [r for r in mine if r["counted_as"] == "first_failure"]
        assert stats[(d, "*", "input")]["documents"] == stats[(d, "*", "kept")]["documents"] + sum(r["documents"] for r in fails)
        assert stats[(d, "*", "input")]["bytes"] == (stats[(d, "*", "kept")]["bytes"] + sum(r["bytes"] for r in fails)
                                                    + stats[(d, "spans", "removed")]["bytes"])
    assert stats[("docs", "*", "kept")]["bytes"] == sum(gold[p]["n_bytes"] for p in hosts)
    # a run killed between its silver.duplicates commit and its statistics: the next one writes them
    spark.sql(f"DELETE FROM ops.filter_stats WHERE run_id = '{result.run_id}'")
    again = dedup(spark, cfg)
    assert again.metrics["filter_stats_recovered"] == result.run_id
    recovered = spark.table("ops.filter_stats").where(f"run_id = '{result.run_id}'").collect()
    assert {(r["domain"], r["rule"], r["counted_as"]): (r["documents"], r["bytes"]) for r in recovered} == {
        k: (r["documents"], r["bytes"]) for k, r in stats.items()}
    # the curation notebook's reader (no JVM) sees the same funnel and shares
    lv = Lakeview(lakehouse)
    funnel = {(r.domain, r.rule, r.counted_as): r.documents for r in lv.dedup_funnel().itertuples()}
    assert all(funnel[k] >= r["documents"] for k, r in stats.items())
    shares = lv.spans_removed()
    assert set(shares["spans_removed_share"].round(9)) >= {round(gold[p]["spans_removed_share"], 9) for p in hosts}

    # an increment: a new document, longer than the owner, loses the notice to it (gold comes first)
    (text / "late.txt").write_text(readmes[0] + "\n\n" + notice + "\n")
    assert len(readmes[0]) > len(readmes[1])
    ingest(spark, cfg)
    curate(spark, cfg)
    second = dedup(spark, cfg)
    gold = rows_of(spark, "gold.documents", sources)
    assert second.rows_in == 1 and "WITHOUT ANY WARRANTY" not in gold["late.txt"]["text"] and gold["late.txt"]["spans_removed_share"] > 0
    assert "WITHOUT ANY WARRANTY" in gold[owner]["text"]
    late = {r["owner_id"] for r in spark.table("silver.spans").where(f"batch_id = '{second.run_id}'").collect()
            if (r["span_kind"], r["span_hash"]) in notice_keys}
    assert late == {silver[owner]["doc_id"]}

    # the owner's text changes (its notice goes): the documents that lost the notice to it are placed
    # again, and the first of them in keeper order now keeps it; it is in gold exactly once
    (text / owner).write_text(silver[owner]["text"].split("\n\nThis program is free")[0] + "\n")
    ingest(spark, cfg)
    curate(spark, cfg)
    third = dedup(spark, cfg)
    run = lineage(spark, third.run_id)
    # the three other hosts, the stub and the late one had lost the notice to it
    assert int(run["metrics"]["withdrawn"]) == 1 and int(run["metrics"]["spans_released"]) == 5
    gold = rows_of(spark, "gold.documents", sources)
    holding = [p for p, g in gold.items() if "WITHOUT ANY WARRANTY" in g["text"]]
    assert holding == ["late.txt"]  # now the longest holder
    dups = rows_of(spark, "silver.duplicates", sources)
    assert set(dups) == set(silver) | {"late.txt"} and dups["stub.txt"]["method"] == "spans"
    assert {p for p, r in dups.items() if r["is_keeper"]} == set(gold)
    index = spark.table("silver.spans").collect()
    for kind, h in notice_keys:
        owners = {r["owner_id"] for r in index if (r["span_kind"], r["span_hash"]) == (kind, h)}
        assert owners == {gold["late.txt"]["doc_id"]}
    assert {r["span_kind"] for r in index} == {PARAGRAPH}  # lines are off
