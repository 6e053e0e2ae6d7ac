"""A folder of WARC and WET files as a source, on a real local Spark with Delta: ingest with
every broken record quarantined and counted, then URL dedup across two crawls: curate keeps the
newest capture of a URL and judges an older one again when a newer one arrives (dedup then takes
a document curation no longer keeps out of gold, as tests/integration/test_dedup.py shows)."""

from __future__ import annotations

import re

import pytest
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.text.filters import DEFAULT_RULES

from tests.helpers import real_html_pages, warc_bytes

pytestmark = pytest.mark.spark

OLD, NEW = "2024-01-15T08:00:00Z", "2024-07-02T17:30:00.250Z"


def test_a_crawl_folder_is_ingested_and_curated_keeping_the_newest_capture_of_each_url(spark, make_config, tmp_path):
    pages = real_html_pages(8)
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    base = "https://docs.webtest.example.org/3/library/"

    def page(p, url=None, date=OLD, body=None):
        return (url or base + p.name, "200 OK", "text/html; charset=utf-8", body or p.read_bytes(), "response", date)

    first = [page(p) for p in pages[:6]] + [
        (base + "gone.html", "404 Not Found", "text/html", b"<html><p>gone</p></html>", "response", OLD),
        (base + "logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n", "response", OLD),
        ("https://ads.spam.example/offer", "200 OK", "text/html", pages[6].read_bytes(), "response", OLD),
        (base + "latin.html", "200 OK", "text/html; charset=utf-8", "<p>café</p>".encode("latin-1"), "response", OLD),
    ]
    data = warc_bytes(first)
    members = [m.start() for m in re.finditer(b"\x1f\x8b\x08", data)]
    # the third page's gzip member loses 100 bytes in its middle: that record is malformed, the rest is read
    cut = members[3] + 400
    (crawl / "crawl-1.warc.gz").write_bytes(data[:cut] + data[cut + 100:])
    (crawl / "README").write_text("not a crawl file: left out by the warc source's default include")
    (tmp_path / "blocklist.txt").write_text("# ad servers\nspam.example\n")
    cfg = make_config({"name": "w_crawl", "kind": "warc", "path": "crawl", "domain": "web", "url_blocklist": "blocklist.txt"})
    # this test is about URLs: documentation pages full of code samples would fail the text rules
    cfg.curate.rules = {r.name: {"enabled": False} for r in DEFAULT_RULES}

    res = ingest(spark, cfg)
    assert (res.rows_in, res.rows_out, res.rows_quarantined) == (10, 5, 5)  # every record but warcinfo, once
    bad = {r["reason"]: r for r in spark.table("bronze.quarantine").where("source = 'w_crawl'").collect()}
    assert set(bad) == {"malformed", "http_status", "not_html", "url_blocked", "undecodable"}
    assert bad["malformed"]["locator"] == f"crawl-1.warc.gz@{members[3]}"
    assert "spam.example is on the blocklist blocklist.txt" in bad["url_blocked"]["detail"]
    docs = {r["metadata"]["url"]: r for r in spark.table("bronze.documents").where("source = 'w_crawl'").collect()}
    p0 = docs[base + pages[0].name]
    assert p0["format"] == "warc" and p0["locator"] == f"crawl-1.warc.gz@{members[1]}"
    assert p0["metadata"]["registered_domain"] == "example.org" and p0["metadata"]["fetch_date"] == OLD
    assert p0["metadata"]["content_type"] == "text/html" and p0["metadata"]["title"]

    curate(spark, cfg)
    old_id = p0["doc_id"]
    assert spark.table("silver.documents").where(f"doc_id = '{old_id}' AND keep").count() == 1

    # a second crawl re-fetched the first page later, under another spelling of its URL (scheme and
    # host case, a default port, a tracking parameter, a fragment): the same normalized URL
    again = pages[0].read_bytes().replace(b"</body>", b"<p>This page was revised after the first crawl.</p></body>")
    second = [page(pages[0], url=f"HTTPS://Docs.WebTest.Example.ORG:443/3/library/{pages[0].name}?utm_source=feed#top", date=NEW, body=again),
              page(pages[7], date=NEW)]
    (crawl / "crawl-2.warc.gz").write_bytes(warc_bytes(second))
    res = ingest(spark, cfg)
    assert (res.detail['files_read'], res.rows_in, res.rows_out) == (1, 2, 2)

    result = curate(spark, cfg)
    kept, rejected = result.rows_out, result.rows_rejected
    silver = {r["doc_id"]: r for r in spark.table("silver.documents").where("source = 'w_crawl'").collect()}
    new_id = next(r["doc_id"] for r in spark.table("bronze.documents").where("source = 'w_crawl'").collect()
                  if r["metadata"]["fetch_date"] == NEW and r["metadata"]["url_normalized"] == p0["metadata"]["url_normalized"])
    # the new page, the other new page, and the old capture judged again
    assert kept + rejected == 3
    assert silver[old_id]["keep"] is False and silver[old_id]["reject_reason"] == "url_duplicate"
    assert "url_duplicate" not in silver[new_id]["failed_rules"]
    others = [r for i, r in silver.items() if i not in (old_id, new_id)]
    assert all("url_duplicate" not in r["failed_rules"] for r in others)

    assert curate(spark, cfg).status == "noop"  # the standing is settled: nothing to judge again
    first = spark.table("ops.filter_stats").where("counted_as = 'first_failure' AND rule = 'url_duplicate'")
    assert first.groupBy().sum("documents").collect()[0][0] == 1
