"""Ingest on a real local Spark with Delta: real files in, bronze tables and lineage out."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.lake import catalog, delta, tables
from brickyard.pipelines.lake.tables import DOCUMENTS, QUARANTINE
from brickyard.pipelines.sources.readers import content_sha256, doc_id
from brickyard.pipelines.stages.ingest import ingest

from tests.helpers import STDLIB, clean_env, copy_stdlib_package, real_metadata_texts, write_jsonl

pytestmark = pytest.mark.spark


def lineage_row(spark, run_id):
    return spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]


def docs_of(spark, source):
    return spark.table(DOCUMENTS.name).where(f"source = '{source}'")


def quarantine_of(spark, source):
    return {(r["locator"], r["reason"]) for r in spark.table(QUARANTINE.name).where(f"source = '{source}'").collect()}


@pytest.fixture
def web_dir(tmp_path):
    texts = real_metadata_texts(12)
    d = tmp_path / "web"
    d.mkdir()
    write_jsonl(d / "part-0.jsonl", [{"text": t, "url": f"https://x.example/{i}"} for i, t in enumerate(texts[:5])] + [b"{broken", {"text": 7}])
    write_jsonl(d / "part-1.jsonl.gz", [{"text": t} for t in texts[5:9]] + [b'{"text": "\xff\xfe"}'], compress="gzip")
    write_jsonl(d / "part-2.jsonl.zst", [{"text": t} for t in texts[9:12]] + [{"body": "no text"}], compress="zstd")
    pq.write_table(pa.table({"text": ["parquet one " + texts[0][:300], None]}), d / "extra.parquet")
    return d, texts


def test_ingest_real_files_documents_quarantine_and_lineage(spark, make_config, web_dir, tmp_path):
    d, texts = web_dir
    code = tmp_path / "repo"
    code.mkdir()
    py_files = copy_stdlib_package(code, "json")
    (code / "json" / "blob.py").write_bytes(b"\x00\x01binary")
    cfg = make_config(
        {"name": "t_web", "kind": "jsonl", "path": "web", "domain": "web"},
        {"name": "t_web_pq", "kind": "parquet", "path": "web", "domain": "web"},
        {"name": "t_code", "kind": "code", "path": "repo", "domain": "code", "include": ["*.py"]},
    )
    r = ingest(spark, cfg)
    assert r.status == "succeeded"

    web = docs_of(spark, "t_web")
    assert sorted(x["text"] for x in web.collect()) == sorted(texts)
    first = web.where("locator = 'part-0.jsonl:1'").collect()[0]
    assert first["doc_id"] == doc_id("t_web", "part-0.jsonl:1")
    assert first["content_sha256"] == content_sha256(texts[0])
    assert first["metadata"]["url"] == "https://x.example/0"
    assert quarantine_of(spark, "t_web") == {
        ("part-0.jsonl:6", "malformed_json"), ("part-0.jsonl:7", "wrong_type"),
        ("part-1.jsonl.gz:5", "undecodable"), ("part-2.jsonl.zst:4", "missing_text_field"),
    }
    assert docs_of(spark, "t_web_pq").count() == 1
    assert quarantine_of(spark, "t_web_pq") == {("extra.parquet#row=1", "missing_text_field")}

    code_rows = {x["path"]: x for x in docs_of(spark, "t_code").collect()}
    assert set(code_rows) == {f"json/{f.name}" for f in py_files}
    assert code_rows["json/decoder.py"]["code_language"] == "Python"
    assert code_rows["json/decoder.py"]["license"] == "PSF-2.0"
    assert quarantine_of(spark, "t_code") == {("json/blob.py", "binary")}

    row = lineage_row(spark, r.run_id)
    assert row["status"] == "succeeded"
    assert row["rows_in"] == row["rows_out"] + row["rows_quarantined"] == 12 + 1 + len(py_files) + 4 + 1 + 1
    assert row["rows_quarantined"] == 6
    assert {(i["name"], i["kind"]) for i in row["inputs"]} == {("t_web", "source"), ("t_web_pq", "source"), ("t_code", "source")}
    outs = {o["name"]: o["version"] for o in row["outputs"]}
    assert outs["bronze.documents"] == delta.latest_version(spark, "bronze.documents")
    assert row["metrics"]["quarantined.malformed_json"] == "1"
    assert row["config_hash"] and row["code_version"] and row["ended_at"] >= row["started_at"]
    assert "PSF-2.0" in delta.table_properties(spark, "bronze.documents")["brickyard.licenses"]


def test_second_ingest_is_a_recorded_noop_and_a_changed_file_updates_its_row(spark, make_config, tmp_path):
    d = tmp_path / "books"
    d.mkdir()
    texts = real_metadata_texts(4)
    for i, t in enumerate(texts):
        (d / f"book{i}.txt").write_text(t)
    cfg = make_config({"name": "t_books", "kind": "text", "path": "books", "domain": "books"})
    first = ingest(spark, cfg)
    assert (first.detail['inserted'], first.rows_out) == (4, 4)
    version = delta.latest_version(spark, "bronze.documents")

    again = ingest(spark, cfg)
    assert again.status == "noop" and again.detail['files_read'] == 0
    assert delta.latest_version(spark, "bronze.documents") == version
    assert lineage_row(spark, again.run_id)["status"] == "noop"
    assert docs_of(spark, "t_books").count() == 4

    (d / "book1.txt").write_text(texts[1] + "\nA new closing paragraph.\n")
    os.utime(d / "book1.txt", ns=(time.time_ns(), time.time_ns() + 10**9))
    (d / "book2.txt").touch()  # touched but unchanged: read again, left alone
    os.utime(d / "book2.txt", ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    changed = ingest(spark, cfg)
    assert (changed.detail['files_read'], changed.detail['inserted'], changed.detail['updated']) == (2, 0, 1)
    assert docs_of(spark, "t_books").count() == 4
    row = docs_of(spark, "t_books").where("path = 'book1.txt'").collect()[0]
    assert row["text"].endswith("A new closing paragraph.\n") and row["batch_id"] == changed.run_id

    # only a touched file, its text as before: read, and bronze is not written (its documents are
    # looked up in bronze's files, not joined with the table)
    version = delta.latest_version(spark, "bronze.documents")
    os.utime(d / "book3.txt", ns=(time.time_ns(), time.time_ns() + 3 * 10**9))
    touched = ingest(spark, cfg)
    assert (touched.detail['files_read'], touched.detail['inserted'], touched.detail['updated']) == (1, 0, 0)
    assert delta.latest_version(spark, "bronze.documents") == version


def test_a_folder_of_mixed_encodings_is_read_file_by_file_with_each_encoding_recorded(spark, make_config, tmp_path):
    """Real prose (the Python reference's own text) written in six encodings: each file is a
    document with its encoding in the metadata; only the file no encoding explains and a
    compiled file are quarantined. Declaring a source's encoding later reads its files again."""
    import codecs
    import py_compile
    from pydoc_data.topics import topics

    d = tmp_path / "mixed"
    d.mkdir()
    latin1 = topics["with"].replace("’", "'").replace("“", '"').replace("”", '"').replace("…", "...") + "\nGrüße aus Köln, déjà vu.\n"
    written = {  # name: (text, bytes, the encoding ingest should record)
        "utf8.txt": (topics["compound"], topics["compound"].encode("utf-8"), "utf-8"),
        "utf8_bom.txt": (topics["try"], topics["try"].encode("utf-8-sig"), "utf-8-sig"),
        "cp1252.txt": (topics["specialnames"], topics["specialnames"].encode("cp1252"), "cp1252"),
        "latin1.txt": (latin1, latin1.encode("latin-1"), None),  # cp1252 or iso8859-1: the same text
        "utf16le.txt": (topics["types"], codecs.BOM_UTF16_LE + topics["types"].encode("utf-16-le"), "utf-16"),
        "utf16be.txt": (topics["objects"], codecs.BOM_UTF16_BE + topics["objects"].encode("utf-16-be"), "utf-16"),
    }
    for name, (_, data, _) in written.items():
        (d / name).write_bytes(data)
    good = topics["formatstrings"].encode("utf-8")
    at = good.index(b". ")
    (d / "damaged.txt").write_bytes(good[:at] + b"\x92" + good[at + 1:])  # UTF-8 with one stray cp1252 byte
    py_compile.compile(str(STDLIB / "json" / "decoder.py"), cfile=str(d / "decoder.pyc"), doraise=True)
    (d / "compiled.txt").write_bytes((d / "decoder.pyc").read_bytes())  # a binary under a text name

    r = ingest(spark, make_config({"name": "t_mixed", "kind": "text", "path": "mixed", "domain": "docs"}))
    rows = {x["path"]: x for x in docs_of(spark, "t_mixed").collect()}
    assert set(rows) == set(written)
    for name, (text, _, recorded) in written.items():
        assert rows[name]["text"] == text, name
        assert rows[name]["metadata"]["encoding"] == (recorded or rows[name]["metadata"]["encoding"]), name
        assert rows[name]["content_sha256"] == content_sha256(text)
    assert rows["latin1.txt"]["metadata"]["encoding"] in ("cp1252", "iso8859-1")
    assert quarantine_of(spark, "t_mixed") == {
        ("damaged.txt", "undecodable"), ("decoder.pyc", "binary"), ("compiled.txt", "binary")}
    assert r.rows_in == r.rows_out + r.rows_quarantined == len(written) + 3
    assert r.rows_quarantined == 3

    # UTF-16 without a byte-order mark looks binary until the source says what it is
    w = tmp_path / "wide"
    w.mkdir()
    (w / "wide.txt").write_bytes(topics["types"].encode("utf-16-le"))
    (w / "plain.txt").write_text(topics["compound"], encoding="utf-8")
    source = {"name": "t_wide", "kind": "text", "path": "wide", "domain": "docs"}
    first = ingest(spark, make_config(source))
    assert (first.rows_out, first.rows_quarantined) == (1, 1)
    assert quarantine_of(spark, "t_wide") == {("wide.txt", "binary")}
    declared = make_config({**source, "encoding": "utf-16-le"})
    second = ingest(spark, declared)
    assert second.detail["files_read"] == 2  # a changed `encoding:` reads the source again
    assert (second.detail["inserted"], second.detail["updated"]) == (1, 0)  # the UTF-8 file reads as before
    rows = {x["path"]: x for x in docs_of(spark, "t_wide").collect()}
    assert rows["wide.txt"]["text"] == topics["types"] and rows["wide.txt"]["metadata"]["encoding"] == "utf-16-le"
    assert rows["plain.txt"]["metadata"]["encoding"] == "utf-8" and rows["plain.txt"]["batch_id"] == first.run_id
    assert ingest(spark, declared).status == "noop"


def test_a_file_manifest_from_before_declared_encodings_gains_the_column_and_plans_as_before(spark):
    """An existing lakehouse: ops.source_files without `declared_encoding` gets the column (NULL
    for the rows it has), and a file read before, unchanged, is not read again."""
    from dataclasses import replace

    from brickyard.pipelines.stages.ingest import plan_files

    old = replace(tables.SOURCE_FILES, name="ops.t_old_source_files",
                  columns=tuple(c for c in tables.SOURCE_FILES.columns if c.name != "declared_encoding"))
    delta.ensure_table(spark, old, "data-platform")
    spark.sql("INSERT INTO ops.t_old_source_files VALUES ('books', 'a.txt', 10, 1, 1, 0, 'run-1', current_timestamp())")
    delta.ensure_table(spark, replace(tables.SOURCE_FILES, name="ops.t_old_source_files"), "data-platform")
    seen = spark.table("ops.t_old_source_files")
    assert seen.columns[-1] == "declared_encoding" and seen.first()["declared_encoding"] is None
    listed = spark.createDataFrame([("books", "a.txt", 10, 1, None), ("books", "b.txt", 5, 1, None)],
                                   "source STRING, path STRING, size BIGINT, mtime_ns BIGINT, declared_encoding STRING")
    assert {r["path"] for r in plan_files(listed, seen).collect()} == {"b.txt"}


def test_duplicate_ids_in_one_batch_keep_the_first_and_quarantine_the_rest(spark, make_config, tmp_path):
    d = tmp_path / "ids"
    d.mkdir()
    write_jsonl(d / "a.jsonl", [{"id": 1, "text": "the first one"}, {"id": 2, "text": "other"}])
    write_jsonl(d / "b.jsonl", [{"id": 1, "text": "a second record with id 1"}])
    cfg = make_config({"name": "t_ids", "kind": "jsonl", "path": "ids", "domain": "web", "id_field": "id"})
    r = ingest(spark, cfg)
    assert (r.rows_in, r.rows_out, r.rows_quarantined) == (3, 2, 1)
    assert docs_of(spark, "t_ids").where("locator = 'id:1'").collect()[0]["text"] == "the first one"
    assert quarantine_of(spark, "t_ids") == {("id:1", "duplicate_id")}


def test_tables_carry_comments_governance_properties_and_constraints(spark, make_config, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_text(real_metadata_texts(1)[0])
    ingest(spark, make_config({"name": "t_gov", "kind": "text", "path": "one"}))
    for spec in (DOCUMENTS, QUARANTINE, tables.LINEAGE):
        props = delta.table_properties(spark, spec.name)
        assert props["brickyard.layer"] == spec.layer and props["brickyard.pii"] == spec.pii
        assert props["brickyard.owner"] == "data-platform" and props["brickyard.producer"] == spec.producer
        comments = {f.name: f.metadata.get("comment") for f in spark.table(spec.name).schema.fields}
        assert all(comments.values()), f"{spec.name} has a column without a comment"
    detail = spark.sql("DESCRIBE DETAIL bronze.documents").collect()[0]
    assert detail["description"].startswith("Raw documents")
    # the table itself refuses rows that break its rules
    good = spark.table("bronze.documents").limit(1)
    with pytest.raises(Exception, match="(?i)constraint|n_bytes_positive"):
        good.selectExpr(*[c if c != "n_bytes" else "0 AS n_bytes" for c in good.columns]).write.format("delta").mode("append").saveAsTable("bronze.documents")
    with pytest.raises(Exception, match="(?i)NOT NULL|null"):
        good.selectExpr(*[c if c != "text" else "CAST(NULL AS STRING) AS text" for c in good.columns]).write.format("delta").mode("append").saveAsTable("bronze.documents")
    # and so does the lineage log: a successful run must balance
    with pytest.raises(Exception, match="(?i)counts_balance"):
        spark.sql(
            "INSERT INTO ops.lineage (run_id, job, status, rows_in, rows_out, rows_rejected, rows_quarantined, started_at) "
            "VALUES ('bad', 'ingest', 'succeeded', 10, 5, 0, 0, current_timestamp())"
        )


def test_a_table_keeps_its_constraints_as_they_are_and_takes_a_changed_one(spark):
    from dataclasses import replace

    spec = tables.TableSpec(name="ops.t_rules", comment="A table for this test", layer="ops", pii="none", producer="test",
                             columns=(tables.Column("kind", "STRING", "A kind"),), checks={"kind_known": "kind IN ('a', 'b')"})
    delta.ensure_table(spark, spec, "data-platform")
    version = delta.latest_version(spark, spec.name)
    delta.forget_ensured()  # check the table again rather than trust this session's memory of it
    delta.ensure_table(spark, spec, "data-platform")  # Delta stores the rule re-spaced: still the same rule
    assert delta.latest_version(spark, spec.name) == version
    with pytest.raises(Exception, match="(?i)kind_known"):
        spark.sql("INSERT INTO ops.t_rules VALUES ('c')")
    delta.ensure_table(spark, replace(spec, checks={"kind_known": "kind IN ('a', 'b', 'c')"}), "data-platform")
    spark.sql("INSERT INTO ops.t_rules VALUES ('c')")
    assert spark.table("ops.t_rules").count() == 1
    # a Delta setting of the spec reaches a table made without it, in place, and only once
    tuned = replace(spec, checks={"kind_known": "kind IN ('a', 'b', 'c')"}, delta_properties={"delta.checkpointInterval": "100"})
    delta.ensure_table(spark, tuned, "data-platform")
    assert delta.table_properties(spark, spec.name)["delta.checkpointInterval"] == "100"
    version = delta.latest_version(spark, spec.name)
    delta.forget_ensured()
    delta.ensure_table(spark, tuned, "data-platform")
    assert delta.latest_version(spark, spec.name) == version
    delta.ensure_table(spark, tables.LINEAGE, "data-platform")
    assert delta.table_properties(spark, tables.LINEAGE.name)["delta.checkpointInterval"] == "100"


def test_a_failing_run_is_recorded_with_its_reason(spark, make_config):
    cfg = make_config({"name": "t_missing", "kind": "text", "path": "does-not-exist"})
    with pytest.raises(ConfigError, match="does not exist"):
        ingest(spark, cfg)
    row = spark.table("ops.lineage").where("job = 'ingest'").orderBy("started_at", ascending=False).limit(1).collect()[0]
    assert row["status"] == "failed" and "does-not-exist does not exist" in row["message"]


def test_catalog_views_list_show_and_trace_lineage(spark, lakehouse, make_config, tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.txt").write_text(real_metadata_texts(1)[0])
    r = ingest(spark, make_config({"name": "t_view", "kind": "text", "path": "v", "domain": "docs"}))
    ls = catalog.render_ls(spark)
    assert "bronze.documents" in ls and "ops.lineage" in ls and "raw" in ls
    # read from the Delta logs on disk (what `brickyard catalog ls` does on a local lakehouse): the same listing
    assert catalog.render_ls(root=lakehouse) == ls
    show = catalog.render_show(spark, "bronze.documents")
    assert "content_sha256" in show and "n_bytes_positive" in show and "MERGE" in show
    lin = catalog.render_lineage(spark, "bronze.documents", runs=50)
    assert f"ingest run {r.run_id} succeeded" in lin and "source t_view" in lin
    with pytest.raises(Exception, match="there is no table bronze.nope"):
        catalog.render_show(spark, "bronze.nope")


def test_a_second_process_on_an_open_lakehouse_gets_one_sentence(spark, lakehouse):
    import subprocess
    import sys

    spark.sql("SHOW SCHEMAS").collect()  # this session's metastore is open and locked
    import os

    r = subprocess.run(
        [sys.executable, "-m", "brickyard", "catalog", "show", "bronze.documents", "--lakehouse", str(lakehouse)],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, BRICKYARD_LOCK_WAIT_S="2"),
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(f"brickyard: error: The lakehouse {lakehouse} is in use by another brickyard process")
    assert "Traceback" not in r.stderr and "Derby" not in r.stderr


def test_a_spark_setting_the_context_refuses_is_one_sentence(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "no-such-folder"
    r = subprocess.run(
        [sys.executable, "-m", "brickyard", "catalog", "ls", "--lakehouse", str(tmp_path / "lh"), "--engine", "local",
         "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={missing}"],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )
    assert r.returncode == 2, r.stdout + r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("brickyard: error: Spark could not start with these settings (java.io.FileNotFoundException") \
        and str(missing) in last and "--conf" in last, last
    assert "Traceback" not in r.stderr


def test_a_second_run_of_a_job_while_one_runs_is_refused_and_the_data_stays_whole(spark, lakehouse, make_config, tmp_path):
    """Two ingests at once against one lakehouse: the second stops with one sentence before it
    writes anything; the first finishes, and its next run finds nothing left to do."""
    import threading

    from brickyard.pipelines.errors import BrickyardError
    from brickyard.pipelines.lake.markers import live_runs
    from pyspark.sql import functions as F

    src = tmp_path / "src"
    # packages no other test reads: gold is shared by the whole session, and code another test
    # expects in gold would otherwise be an exact duplicate of a document here
    for pkg in ("logging", "urllib", "unittest"):
        copy_stdlib_package(src, pkg)
    cfg = make_config({"name": "t_twice", "kind": "code", "path": str(src), "domain": "code"})
    delta.ensure_table(spark, tables.LINEAGE, "data-platform")
    before = {r.run_id for r in spark.table("ops.lineage").where("job = 'ingest'").select("run_id").collect()}
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(result=ingest(spark, cfg)))
    worker.start()
    deadline = time.time() + 120
    # a run in progress is a marker under the lakehouse, not a lineage row
    while not [m for m in live_runs(lakehouse, "ingest") if m["pid"] == os.getpid() and m["alive"]]:
        assert worker.is_alive() and time.time() < deadline, "the first ingest never showed as running"
        time.sleep(0.2)
    with pytest.raises(BrickyardError, match=r"^ingest is already running on this lakehouse \(run \S+, process \d+, started .*\); wait for it"):
        ingest(spark, cfg)
    worker.join(timeout=300)
    assert first["result"].status == "succeeded"
    runs = spark.table("ops.lineage").where("job = 'ingest'").where(~F.col("run_id").isin(list(before))).collect()
    assert [r.status for r in runs] == ["succeeded"]  # the refused run wrote nothing, not even its lineage row
    docs = spark.table("bronze.documents").where("source = 't_twice'")
    assert docs.count() == docs.select("doc_id").distinct().count() == first["result"].detail["inserted"] > 0
    assert ingest(spark, cfg).status == "noop"
    assert not live_runs(lakehouse, "ingest")  # each marker went with its run's outcome row


def test_a_lineage_table_of_the_previous_format_is_upgraded_in_place_or_refused_in_one_sentence(spark, make_config, tmp_path):
    """Format 1 kept a `running` row per live run: a dead one becomes `killed` on upgrade; a live
    one (an older brickyard at work) stops the upgrade with one sentence."""
    from brickyard.pipelines.errors import BrickyardError
    from brickyard.pipelines.lake.lineage import FORMAT_PROPERTY, ensure_lineage
    from brickyard.pipelines.lake.session import hostname

    def as_format_1(pid: int, run_id: str) -> None:
        spark.sql("ALTER TABLE ops.lineage DROP CONSTRAINT IF EXISTS status_known")
        spark.sql("ALTER TABLE ops.lineage ADD CONSTRAINT status_known CHECK "
                  "(status IN ('running', 'succeeded', 'noop', 'failed', 'killed'))")
        spark.sql("ALTER TABLE ops.lineage UNSET TBLPROPERTIES IF EXISTS ('brickyard.lineage.format')")
        spark.sql("INSERT INTO ops.lineage (run_id, job, status, host, pid, started_at) "
                  f"VALUES ('{run_id}', 'curate', 'running', '{hostname()}', {int(pid)}, current_timestamp())")
        delta.forget_ensured()

    ingest(spark, make_config({"name": "t_upgrade", "kind": "text", "path": str(tmp_path)}))  # ops.lineage exists
    as_format_1(os.getpid(), "old-live")
    with pytest.raises(BrickyardError, match=r"^this lakehouse's ops.lineage is of an older format and curate run old-live "
                       r"\(process \d+\) of an older brickyard is still writing to it; let it finish, then run again"):
        ensure_lineage(spark, "data-platform")
    spark.sql("DELETE FROM ops.lineage WHERE run_id = 'old-live'")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    as_format_1(dead.pid, "old-dead")
    ensure_lineage(spark, "data-platform")
    row = spark.sql("SELECT status, message FROM ops.lineage WHERE run_id = 'old-dead'").first()
    assert row["status"] == "killed" and "without recording an outcome" in row["message"]
    props = delta.table_properties(spark, "ops.lineage")
    assert props[FORMAT_PROPERTY] == "2" and "running" not in props["delta.constraints.status_known"]
