"""Web sources without Spark: URL normalization, the blocklist, charsets, and WARC files built
with warcio from real HTML pages (the Python documentation's), broken records included."""

from __future__ import annotations

import html
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.sources.readers import Unit
from brickyard.pipelines.sources.web import (
    UrlRules,
    decode_html,
    html_lang,
    normalize_url,
    read_warc,
    registered_domain,
)

from tests.helpers import real_html_pages, visible_text, warc_bytes


@pytest.mark.parametrize("url, expected", [
    ("HTTP://Docs.Python.ORG:80/3/library/../tutorial/./index.html#intro", "http://docs.python.org/3/tutorial/index.html"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:443/a?b=2&utm_source=news&a=1&fbclid=x", "https://example.com/a?a=1&b=2"),
    ("https://example.com:8443/%7euser/a%2fb", "https://example.com:8443/~user/a%2Fb"),
    ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
    ("not a url", "not a url"),
])
def test_urls_normalize_to_one_form(url, expected):
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected  # idempotent


def test_registered_domains_come_from_the_public_suffix_list_offline():
    assert registered_domain("docs.python.org") == "python.org"
    assert registered_domain("a.b.example.co.uk") == "example.co.uk"
    assert registered_domain("127.0.0.1") == "127.0.0.1"


def test_the_blocklist_blocks_domains_with_their_subdomains_and_substrings(tmp_path):
    f = tmp_path / "block.txt"
    f.write_text("# spam\nexample.com\n~/casino/   # gambling pages\n\n")
    rules = UrlRules.load(f)
    assert rules.blocked("https://www.example.com/a", "www.example.com") == "domain example.com is on the blocklist block.txt"
    assert rules.blocked("https://notexample.com/", "notexample.com") is None
    assert "contains '/casino/'" in rules.blocked("https://ok.org/casino/x", "ok.org")
    f.write_text("fine.org\nhttps://bad.org/page\n")
    with pytest.raises(ConfigError, match=r"block.txt:2: 'https://bad.org/page' is not a domain \(write ~https://bad.org/page"):
        UrlRules.load(f)
    with pytest.raises(ConfigError, match="cannot be read"):
        UrlRules.load(tmp_path / "missing.txt")


def test_charsets_declared_detected_or_refused():
    assert decode_html("<p>café</p>".encode("cp1252"), "text/html; charset=ISO-8859-1") == ("<p>café</p>", None)
    meta = '<meta charset="windows-1251"><p>привет</p>'
    assert decode_html(meta.encode("cp1251"), "text/html")[0] == meta
    assert decode_html("<p>naïve</p>".encode(), "text/html")[0] == "<p>naïve</p>"
    assert decode_html(b"<p>\xe9t\xe9</p>", None)[0] == "<p>été</p>"  # no charset, not UTF-8: windows-1252
    assert decode_html(b"<p>x</p>", "text/html; charset=klingon") == (None, "unknown character set 'klingon'")
    text, why = decode_html(b"<p>\xff\xfe\xfa</p>", "text/html; charset=utf-8")
    assert text is None and why == "byte 0xff at offset 3 is not valid utf-8"


def test_html_lang_hint():
    assert html_lang('<!DOCTYPE html><html xmlns="x" lang="pt_BR" dir="ltr">') == "pt-br"
    assert html_lang("<html><body>") is None


def read(path: Path, max_doc_bytes: int = 1 << 20, rules=None) -> list[dict]:
    return list(read_warc(Unit(source="web", domain="web", format="warc", file=str(path), path=path.name), max_doc_bytes, rules))


@pytest.fixture(scope="module")
def pages():
    return real_html_pages(12)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@pytest.mark.parametrize("fallback", [False, True], ids=["python-doc", "share-doc"])
def test_a_warc_of_real_pages_gives_their_main_text(fallback, tmp_path):
    pages = real_html_pages(12, fallback=fallback)
    recs = [(f"https://docs.example.org/{p.name}", "200 OK", "text/html; charset=utf-8", p.read_bytes(), "response") for p in pages]
    recs.append(("https://docs.example.org/", None, "application/warc-fields", b"a: b\r\n", "metadata"))
    path = tmp_path / "pages.warc.gz"
    path.write_bytes(warc_bytes(recs))
    out = read(path)
    assert len(out) == len(pages) and all(r["kind"] == "doc" for r in out)  # warcinfo and metadata are not documents
    for r, page in zip(out, pages, strict=True):
        html_text = page.read_text(encoding="utf-8")
        visible, headings = visible_text(html_text)
        meta = json.loads(r["metadata"])
        assert meta["url"].endswith(page.name) and meta["registered_domain"] == "example.org" and meta["http_status"] == "200"
        assert meta["record_id"].startswith("<urn:uuid:") and meta["fetch_date"]
        assert r["locator"].startswith("pages.warc.gz@")
        # the title is the page's: its words come from <title> or a heading (trafilatura prefers a
        # heading where the <title> is generic)
        title = html.unescape(re.search(r"<title>(.*?)</title>", html_text, re.S).group(1))
        assert meta["title"] and set(_words(meta["title"])) <= set(_words(title + " " + headings)), (page.name, meta["title"])
        # nothing is invented: the extraction's 5-word runs are the page's visible text (a run can
        # span a seam where trafilatura left out a link list or a code sample between two lines)
        seen = " ".join(_words(visible))
        words = _words(r["text"])
        runs = [" ".join(words[i:i + 5]) for i in range(0, max(1, len(words) - 4))]
        assert sum(x in seen for x in runs) >= 0.75 * len(runs), page.name
        # the main text is there: of the page's three longest paragraphs, two or more are extracted
        paras = sorted((visible_text(p)[0] for p in re.findall(r"<p[ >].*?</p>", html_text, re.S)), key=len)[-3:]
        text = " ".join(words)
        assert sum(" ".join(_words(p)[:8]) in text for p in paras) >= 2, page.name
        # and no script, style or markup is
        for script in re.findall(r"<(?:script|style)[^>]*>(.*?)</(?:script|style)>", html_text, re.S):
            if len(script.strip()) > 30:
                assert script.strip()[:30] not in r["text"], page.name
        for tag in ("<script", "<div", "<span"):  # markup only where the page shows it as text
            assert r["text"].count(tag) <= visible.count(tag), page.name


def test_broken_records_are_quarantined_and_the_rest_of_the_file_is_read(pages, tmp_path):
    good = [(f"https://docs.example.org/{p.name}", "200 OK", "text/html; charset=utf-8", p.read_bytes(), "response") for p in pages[:6]]
    special = [
        ("https://docs.example.org/missing", "404 Not Found", "text/html", b"<html>gone</html>", "response"),
        ("https://docs.example.org/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n", "response"),
        ("https://docs.example.org/latin", "200 OK", "text/html; charset=utf-8", "<p>café</p>".encode("latin-1"), "response"),
        ("https://docs.example.org/big", "200 OK", "text/html", b"<p>" + b"word " * 400_000 + b"</p>", "response"),
        ("https://ads.spam.test/x", "200 OK", "text/html", pages[0].read_bytes(), "response"),
    ]
    data = warc_bytes(good[:3] + special + good[3:])
    members = [m.start() for m in re.finditer(b"\x1f\x8b\x08", data)]
    # cut 200 bytes out of the middle of the second page's gzip member (member 0 is warcinfo)
    cut = members[2] + 300
    path = tmp_path / "broken.warc.gz"
    # and the file ends in the middle of its last record, as a partly written file does
    path.write_bytes(data[:cut] + data[cut + 200:len(data) - (len(data) - members[-1]) // 2])
    out = read(path, max_doc_bytes=1 << 20, rules=UrlRules(frozenset({"spam.test"}), (), "block.txt"))
    reasons = Counter(r["reason"] for r in out)
    assert reasons == {None: 4, "malformed": 2, "http_status": 1, "not_html": 1, "undecodable": 1, "too_large": 1, "url_blocked": 1}
    assert len({r["locator"] for r in out}) == len(out) == 11  # every record once
    bad = [r for r in out if r["reason"] == "malformed"]
    assert bad[0]["locator"] == f"broken.warc.gz@{members[2]}"
    assert bad[1]["locator"] == f"broken.warc.gz@{members[-1] - 200}"
    assert "skipped to the next record" in bad[0]["detail"]


def test_damage_anywhere_in_a_gzip_member_costs_that_record_only(pages, tmp_path):
    # wherever a member is damaged (its WARC headers, its body, or only its checksum), that one
    # record is quarantined and every other record of the file is read: warcio alone would take a
    # damaged first block for plain text, or read on with a dead decompressor and lose the rest
    recs = [(f"https://docs.example.org/{p.name}", "200 OK", "text/html; charset=utf-8", p.read_bytes(), "response") for p in pages[:5]]
    data = warc_bytes(recs)
    members = [m.start() for m in re.finditer(b"\x1f\x8b\x08", data)]
    start, end = members[3], members[4]  # the third page
    path = tmp_path / "damaged.warc.gz"
    for at in sorted({start + 12, start + 60, start + 131, (start + end) // 2, end - 12, end - 6}):
        for drop in (1, 100):
            if at + drop >= end:
                continue
            path.write_bytes(data[:at] + data[at + drop:])
            out = read(path)
            assert Counter(r["reason"] for r in out) == {None: 4, "malformed": 1}, (at - start, drop)
            assert [r for r in out if r["reason"]][0]["locator"] == f"damaged.warc.gz@{start}"


def test_wet_conversions_are_documents_and_an_uncompressed_warc_reads_too(pages, tmp_path):
    from warcio.warcwriter import WARCWriter

    texts = [visible_text(p.read_text(encoding="utf-8"))[0] for p in pages[:3]]
    out = io.BytesIO()
    w = WARCWriter(out, gzip=False)
    for i, t in enumerate(texts):
        w.write_record(w.create_warc_record(
            f"https://docs.example.org/{i}", "conversion", payload=io.BytesIO(t.encode()), warc_content_type="text/plain",
            warc_headers_dict={"WARC-Identified-Content-Language": "eng,fra", "WARC-Date": "2024-05-01T10:00:00Z"}))
    w.write_record(w.create_warc_record("https://docs.example.org/blank", "conversion", payload=io.BytesIO(b"  \n"),
                                        warc_content_type="text/plain"))
    path = tmp_path / "pages.wet"
    path.write_bytes(out.getvalue())
    out = read(path)
    assert [r["text"] for r in out if r["kind"] == "doc"] == texts
    assert [r["reason"] for r in out if r["kind"] == "quarantine"] == ["empty"]
    meta = json.loads(out[0]["metadata"])
    assert meta["lang_hint"] == "eng" and meta["fetch_date"] == "2024-05-01T10:00:00Z" and meta["warc_type"] == "conversion"
    offsets = [int(r["locator"].split("@")[1]) for r in out]
    assert offsets[0] == 0 and offsets == sorted(offsets)  # uncompressed: byte offsets of the records


def test_a_warc_source_in_config_finds_warc_and_wet_files_and_checks_its_blocklist(tmp_path):
    from brickyard.pipelines.config import PipelineConfig, SourceConfig
    from brickyard.pipelines.sources.listing import list_units

    crawl = tmp_path / "crawl"
    crawl.mkdir()
    for name in ("a.warc.gz", "b.wet.gz", "c.warc", "notes.txt"):
        (crawl / name).write_bytes(b"")
    (tmp_path / "block.txt").write_text("spam.test\n")

    def config(**kw):
        cfg = PipelineConfig(sources=[SourceConfig(name="crawl", kind="warc", path="crawl", domain="web", **kw)], base_dir=str(tmp_path))
        cfg.validate("config")
        return cfg

    cfg = config(url_blocklist="block.txt")
    units = list_units(cfg, cfg.sources[0])
    assert [u.path for u in units] == ["a.warc.gz", "b.wet.gz", "c.warc"]
    assert {u.format for u in units} == {"warc"} and units[0].url_blocklist == str(tmp_path / "block.txt")
    (tmp_path / "block.txt").write_text("spam.test\nhttps://x.org/a b\n")
    with pytest.raises(ConfigError, match=r"config.sources\[0\].url_blocklist: url blocklist .*block.txt:2: "):
        config(url_blocklist="block.txt")
    with pytest.raises(ConfigError, match="cannot be read"):
        config(url_blocklist="nowhere.txt")
    with pytest.raises(ConfigError, match="only a warc source has a URL blocklist"):
        SourceConfig(name="t", kind="text", path="x", url_blocklist="block.txt").validate("config.sources[0]")


def test_a_malformed_header_in_an_uncompressed_warc_costs_that_record_only(pages, tmp_path):
    recs = [(f"https://docs.example.org/{p.name}", "200 OK", "text/html; charset=utf-8", p.read_bytes(), "response") for p in pages[:4]]
    data = warc_bytes(recs, gzip_members=False)
    starts = [m.start() for m in re.finditer(rb"WARC/1\.[01]\r\n", data)]  # warcinfo, then the 4 pages
    data = data[:starts[3]] + b"WARQ/1.1\r\n" + data[starts[3] + 10:]  # the third page's version line
    path = tmp_path / "plain.warc"
    path.write_bytes(data)
    out = read(path)
    assert [r["reason"] for r in out] == [None, None, "malformed", None]
    assert [r["locator"] for r in out] == [f"plain.warc@{s}" for s in starts[1:]]
    assert "first line: WARQ/1.1" in out[2]["detail"]


def test_the_padding_check_between_members_reads_a_window_at_a_time():
    from brickyard.pipelines.sources.web import RESYNC_WINDOW, _blank

    class Counted(io.BytesIO):
        largest = 0

        def read(self, n=-1):
            Counted.largest = max(Counted.largest, n)
            return super().read(n)

    pad = b"\x00" * (3 * RESYNC_WINDOW) + b"\r\n \t"
    assert _blank(Counted(pad), 0, len(pad))
    assert not _blank(Counted(pad + b"x"), 0, len(pad) + 1)
    assert _blank(Counted(pad + b"x"), 0, len(pad))  # only the span asked about
    assert 0 < Counted.largest <= RESYNC_WINDOW
