"""Test inputs built from real files: those every Python installation carries, and real HTML pages
(the Python documentation's Debian package, or the HTML manuals installed under /usr/share/doc)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from html.parser import HTMLParser
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def real_metadata_texts(n: int) -> list[str]:
    """README prose of installed packages (their METADATA files), longest first."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    texts = []
    for p in sorted(purelib.glob("*.dist-info/METADATA")):
        t = p.read_text(encoding="utf-8", errors="strict")
        if len(t) > 2000:
            texts.append(t)
    texts.sort(key=len, reverse=True)
    return texts[:n]


def copy_stdlib_package(dest: Path, package: str = "json") -> list[Path]:
    """A real code tree: a stdlib package plus the standard library's own licence file."""
    shutil.copytree(STDLIB / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(STDLIB / "LICENSE.txt", dest / "LICENSE.txt")
    return sorted((dest / package).rglob("*.py"))


def write_jsonl(path: Path, records: list, compress: str | None = None) -> None:
    """Records are dicts (dumped) or raw bytes/str lines (written as they are)."""
    lines = []
    for r in records:
        if isinstance(r, bytes):
            lines.append(r)
        elif isinstance(r, str):
            lines.append(r.encode())
        else:
            lines.append(json.dumps(r).encode())
    data = b"\n".join(lines) + b"\n"
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zstd":
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


def clean_env() -> dict:
    """This process's environment without the MLflow store earlier tests pointed MLflow at (a
    subprocess then uses its own lakehouse's store)."""
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


def start_brickyard(args: list[str], log, pause: str | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """A `brickyard` command in its own process group (so that a kill takes its JVM too); with
    `pause`, the job stops at that fault point (see pipelines/faults.py) and waits to be killed."""
    env = dict(clean_env(), PYTHONUNBUFFERED="1")
    env.pop("BRICKYARD_FAULT_PAUSE", None)
    if pause:
        env["BRICKYARD_FAULT_PAUSE"] = pause
    return subprocess.Popen([sys.executable, "-m", "brickyard", *args], stdout=subprocess.PIPE, stderr=log, text=True,
                            env=env, cwd=cwd, start_new_session=True)


def kill_at(proc: subprocess.Popen, point: str, timeout: float = 400) -> str:
    """Wait for the job to announce the fault point, then SIGKILL its whole process group (JVM
    too). Returns what it printed; fails the test if it never got there."""
    import pytest

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline, seen = time.time() + timeout, []
    while time.time() < deadline:
        if sel.select(timeout=1):
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith(f"fault-pause: {point}"):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                return "".join(seen)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"the job never reached {point}; it printed: {''.join(seen)[-2000:]}")


REPO = Path(__file__).resolve().parents[1]
PYTHON_DOC_HTML = REPO / ".cache/corpora/python-doc/usr/share/doc/python3.11/html/library"


def _prose_pages(paths) -> list[Path]:
    """Pages of prose (a title, ten paragraphs or more, most of the visible text in them), in UTF-8,
    of a size a web page has."""
    out = []
    for p in sorted(paths):
        if p.is_file() and not p.is_symlink() and 4_000 < p.stat().st_size < 400_000:
            data = p.read_bytes()
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            html = data.decode("utf-8")
            paras = re.findall(r"<p[ >].*?</p>", html, re.S)
            if re.search(r"<title>[^<]*\w", html) and len(paras) >= 10:
                def chars(fragment: str) -> int:
                    return len("".join(re.sub(r"<[^>]*>", " ", fragment).split()))

                body = re.sub(r"<(script|style|head)\b.*?</\1>", "", html, flags=re.S | re.I)
                if sum(map(chars, paras)) >= 0.4 * chars(body):  # mostly paragraphs, not an API listing
                    out.append(p)
    return out


def real_html_pages(n: int, fallback: bool | None = None) -> list[Path]:
    """`n` real HTML pages: the Python 3.11 documentation from its Debian package (python3.11-doc),
    fetched by the project's corpus script on first use; or, where no package can be fetched (or
    `fallback` asks for it), the HTML manuals that the Debian packages installed on this machine
    ship under /usr/share/doc."""
    import subprocess

    found: list[Path] = []
    if not fallback:
        if not PYTHON_DOC_HTML.is_dir():
            subprocess.run(["bash", str(REPO / "bench/corpora.sh"), "python-doc"], capture_output=True, timeout=300)
        found = _prose_pages(PYTHON_DOC_HTML.glob("*.html")) if PYTHON_DOC_HTML.is_dir() else []
    if len(found) < n and fallback is not False:
        found = _prose_pages(Path("/usr/share/doc").glob("*/**/*.html"))
    assert len(found) >= n, "no real HTML pages: fetch them with `bench/corpora.sh python-doc` (needs apt-get update once)"
    step = max(1, len(found) // n)
    return found[::step][:n]


class _Visible(HTMLParser):
    """The text a browser shows: everything outside <head>, <script>, <style> and <template>."""

    HIDDEN = {"head", "script", "style", "template", "noscript"}
    BLOCK = {"p", "div", "li", "tr", "td", "th", "br", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dd", "dt", "table", "section"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.parts, self.headings = 0, [], []
        self._heading = False

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
        self._heading = self._heading or tag in ("h1", "h2", "h3")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.depth:
            self.depth -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
        if tag in ("h1", "h2", "h3"):
            self._heading = False
            self.headings.append(" ")

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)
            if self._heading:
                self.headings.append(data)


def visible_text(html: str) -> tuple[str, str]:
    """(the page's visible text, its headings of levels 1 to 3), each with whitespace collapsed."""
    v = _Visible()
    v.feed(html)
    return " ".join("".join(v.parts).split()), " ".join("".join(v.headings).split())


def warc_bytes(records, gzip_members: bool = True) -> bytes:
    """A WARC file written by warcio, one gzip member per record as Common Crawl writes them.

    Each record is (url, http status or None, content type, body, WARC type[, WARC-Date]): a
    `response` gets HTTP headers with that status and type; other types carry the body as is."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    w = WARCWriter(out, gzip=gzip_members)
    w.write_record(w.create_warcinfo_record("test.warc.gz", {"software": "brickyard tests"}))
    for url, status, ctype, body, kind, *date in records:
        headers = {"WARC-Date": date[0]} if date else {}
        if kind == "response":
            http = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                                warc_headers_dict=headers))
        else:
            w.write_record(w.create_warc_record(url, kind, payload=io.BytesIO(body), warc_content_type=ctype,
                                                warc_headers_dict=headers))
    return out.getvalue()
