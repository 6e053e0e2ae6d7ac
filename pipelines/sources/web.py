"""Web sources: WARC and WET files (Common Crawl's formats), read with warcio. Pure Python, no Spark.

One file is one unit of reading work; each record becomes one document or one quarantine entry:

    WARC `response`, HTTP 200, HTML   the main text, extracted by trafilatura (title kept, and the
                                      language hint from `<html lang>`)
    WET `conversion`                  the text Common Crawl extracted (language from its header)
    warcinfo, request, metadata, ...  not documents: neither read as records nor counted

Every document carries in its metadata the URL, its normalized form, host and registered domain
(public-suffix list, offline), fetch date, content type, HTTP status, the WARC record id, title and
language hint. Its locator is `path@OFFSET`, the byte offset of the record in the file.

Quarantine reasons added here:
    http_status     a response whose HTTP status is not 200 (redirects, errors)
    not_html        a response whose content type is not HTML (images, PDFs, scripts)
    url_blocked     the normalized URL is on the configured blocklist (domain or substring)
    undecodable     the body does not decode in its declared (or detected) character set
    malformed       a record whose WARC or HTTP headers do not parse, or a gzip member that is
                    truncated or corrupt: the reader skips to the next record and reads on
    too_large, empty  as for other sources (record over `max_doc_bytes`; no text extracted)
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from .records import bad_record, doc_record

WEB_INCLUDE = ["*.warc", "*.warc.gz", "*.wet", "*.wet.gz"]
HTML_TYPES = ("text/html", "application/xhtml+xml")
# query parameters that only track a click; dropped by normalization
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|yclid|igshid)$", re.I)
DEFAULT_PORTS = {"http": 80, "https": 443}
GZIP_MAGIC = b"\x1f\x8b\x08"
RESYNC_WINDOW = 1 << 20
HEADER_ROOM = 1 << 20  # inflated bytes kept beyond max_doc_bytes for a record's WARC and HTTP headers


# --- URLs -------------------------------------------------------------------------------------
def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    out: list[str] = []
    for seg in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    trailing = path.endswith(("/.", "/..")) and out and out[-1] != ""
    return "/" + "/".join(out) + ("/" if trailing else "")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _requote(part: str, safe: str) -> str:
    """Percent-encoding in one canonical form (RFC 3986 6.2.2): escapes of unreserved characters
    decoded, other escapes in upper case, characters that must be escaped escaped."""
    def escape(m: re.Match) -> str:
        c = chr(int(m.group(1), 16))
        return c if c in _UNRESERVED else m.group(0).upper()

    return quote(re.sub(r"%([0-9A-Fa-f]{2})", escape, part), safe=safe + "%")


def normalize_url(url: str) -> str:
    """The form two URLs of the same page share.

    Lower-case scheme and host (IDNA for non-ASCII hosts), no default port, no fragment, dot
    segments resolved, an empty path as `/`, percent-encoding canonical, tracking parameters
    (utm_*, fbclid, gclid, ...) dropped and the remaining query parameters sorted. A URL without
    a scheme or host comes back stripped, otherwise unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if not scheme or not host:
        return url
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = host.lower()
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    path = _requote(_remove_dot_segments(parts.path or "/"), safe="/:@!$&'()*+,;=~")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k))
    return urlunsplit((scheme, netloc, path, urlencode(query, quote_via=quote, safe="/:@!$'()*,;~"), ""))


@lru_cache(maxsize=1)
def _psl():
    import tldextract

    # the public-suffix list snapshot shipped in the package: no network
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(host: str) -> str:
    """`docs.python.org` -> `python.org`, `a.b.co.uk` -> `b.co.uk`; an IP address or a bare
    suffix stays as it is."""
    ext = _psl()(host)
    return ext.top_domain_under_public_suffix or host


@dataclass(frozen=True)
class UrlRules:
    """A blocklist: domains (each blocks itself and its subdomains) and URL substrings.

    The file has one entry per line; `#` starts a comment. A plain entry is a domain; an entry
    written `~text` blocks every normalized URL that contains `text`:

        example.com          # example.com, www.example.com, a.b.example.com
        ~/casino/            # any URL with /casino/ in it
    """

    domains: frozenset[str] = frozenset()
    substrings: tuple[str, ...] = ()
    origin: str = ""

    @classmethod
    def load(cls, path: str | Path) -> UrlRules:
        p = Path(path)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ConfigError(f"url blocklist {p}: cannot be read ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"url blocklist {p}: is not UTF-8 text") from None
        domains, subs = set(), []
        for n, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            if entry.startswith("~"):
                if len(entry) == 1:
                    raise ConfigError(f"url blocklist {p}:{n}: '~' needs the text to look for after it")
                subs.append(entry[1:].lower())
            elif re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|[^\s/:]+", entry) and " " not in entry:
                domains.add(entry.lower().strip("."))
            else:
                raise ConfigError(f"url blocklist {p}:{n}: {entry!r} is not a domain (write ~{entry} to block a URL substring)")
        return cls(frozenset(domains), tuple(subs), p.name)

    def blocked(self, normalized: str, host: str) -> str | None:
        """Why the URL is blocked (one sentence), or None."""
        labels = host.lower().split(".")
        for i in range(len(labels)):
            d = ".".join(labels[i:])
            if d in self.domains:
                return f"domain {d} is on the blocklist {self.origin}".rstrip()
        low = normalized.lower()
        for s in self.substrings:
            if s in low:
                return f"the URL contains {s!r}, on the blocklist {self.origin}".rstrip()
        return None


@lru_cache(maxsize=8)
def url_rules(path: str | None) -> UrlRules | None:
    """The blocklist at `path`, read once per worker process (None: no blocklist)."""
    return UrlRules.load(path) if path else None


# --- HTML ---------------------------------------------------------------------------------------
_CHARSET_HEADER = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?\s*([A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*)", re.I)


def declared_charset(content_type: str | None, body: bytes) -> str | None:
    m = _CHARSET_HEADER.search(content_type or "")
    if m:
        return m.group(1)
    m = _META_CHARSET.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def decode_html(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """(text, None), or (None, why it cannot be decoded). The declared charset (HTTP header, then
    `<meta charset>`) is trusted; without one UTF-8 is tried, then windows-1252 as browsers do."""
    declared = declared_charset(content_type, body)
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            return None, f"unknown character set {declared!r}"
        if codec in ("latin-1", "iso8859-1", "ascii"):  # as browsers read them (WHATWG encoding standard)
            codec = "cp1252"
        try:
            return body.decode(codec), None
        except UnicodeDecodeError as e:
            return None, f"byte 0x{body[e.start]:02x} at offset {e.start} is not valid {declared}"
    for codec in ("utf-8", "cp1252"):
        try:
            return body.decode(codec), None
        except UnicodeDecodeError:
            continue
    return None, "no character set declared, and the body is neither UTF-8 nor windows-1252"


def html_lang(html: str) -> str | None:
    m = _HTML_LANG.search(html[:65536])
    return m.group(1).replace("_", "-").lower() if m else None


def extract_text(html: str, url: str | None) -> tuple[str | None, str]:
    """(title, main text) of a page by trafilatura: boilerplate (menus, footers, comments) left out."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, deduplicate=False)
    if doc is None:
        return None, ""
    return (doc.title or None), (doc.text or "")


# --- records ------------------------------------------------------------------------------------
def _header(headers, name: str) -> str | None:
    return headers.get_header(name) if headers is not None else None


def _resync(f, start: int, gzipped: bool) -> int | None:
    """The offset of the next record at or after `start`: a gzip member header, or a line that
    begins `WARC/` in an uncompressed file. None at the end of the file."""
    marker = GZIP_MAGIC if gzipped else b"\nWARC/"
    pos = start
    while True:
        f.seek(pos)
        block = f.read(RESYNC_WINDOW + len(marker))
        if not block:
            return None
        i = block.find(marker)
        if i >= 0:
            return pos + i + (0 if gzipped else 1)
        if len(block) <= len(marker):
            return None
        pos += RESYNC_WINDOW


def read_warc(unit, max_doc_bytes: int, rules: UrlRules | None = None) -> Iterator[dict]:
    """Every record of one WARC or WET file, as documents and quarantine entries (see the module doc).

    A gzipped file is read member by member, each inflated and its checksum checked before its
    records are parsed: a member that fails is one `malformed` record and the reader goes on at
    the next member. (warcio alone takes a damaged first block for a file that is not gzipped, or
    reads on with a broken decompressor and silently loses every later record of the file.)"""
    with open(unit.file, "rb") as f:
        if f.read(2) != GZIP_MAGIC[:2]:
            f.seek(0)
            yield from _read_records(unit, f, None, max_doc_bytes, rules)
            return
        for offset, data, problem in _gzip_members(f, max_doc_bytes + HEADER_ROOM):
            if data is None:
                yield bad_record(unit, f"{unit.path}@{offset}", "malformed", f"{problem}; the reader skipped to the next record")
            else:
                yield from _read_records(unit, io.BytesIO(data), offset, max_doc_bytes, rules)


def _blank(f, start: int, end: int) -> bool:
    """Whether bytes start..end of `f` are only padding (NUL or white space), read a window at a time."""
    f.seek(start)
    while start < end:
        block = f.read(min(RESYNC_WINDOW, end - start))
        if not block:
            return True
        if block.strip(b"\x00 \t\r\n"):
            return False
        start += len(block)
    return True


def _gzip_members(f, keep: int) -> Iterator[tuple[int, bytes | None, str]]:
    """(offset, data, problem) for each gzip member of `f` from its start: the member's first
    `keep` inflated bytes (the rest is inflated, to check it and find the member's end, and
    dropped), or None and what is wrong with it. Bytes that are no member are skipped to the next
    member header; any but blank padding is reported as a damaged member at its offset."""
    f.seek(0, 2)
    size = f.tell()
    pos: int | None = 0
    while pos is not None and pos < size:
        f.seek(pos)
        head = f.read(len(GZIP_MAGIC))
        if head != GZIP_MAGIC:
            nxt = _resync(f, pos + 1, True)
            if not _blank(f, pos, nxt if nxt is not None else size):
                yield pos, None, "bytes that are no gzip member"
            pos = nxt
            continue
        f.seek(pos)
        d = zlib.decompressobj(wbits=31)
        parts, kept, at = [], 0, pos
        try:
            while not d.eof:
                chunk = f.read(1 << 16)
                if not chunk:
                    raise EOFError("the file ends inside the member")
                at += len(chunk)
                while chunk and not d.eof:
                    out = d.decompress(chunk, 1 << 20)
                    if kept < keep:
                        parts.append(out[: keep - kept])
                        kept += len(parts[-1])
                    chunk = d.unconsumed_tail
        except (zlib.error, EOFError) as e:
            yield pos, None, _failure(e)
            pos = _resync(f, pos + 1, True)
            continue
        yield pos, b"".join(parts), ""
        pos = at - len(d.unused_data)


def _read_records(unit, f, member: int | None, max_doc_bytes: int, rules: UrlRules | None) -> Iterator[dict]:
    """The records of an uncompressed WARC stream: a whole file (`member` None; locators are
    `path@OFFSET`) or one inflated gzip member (locators `path@MEMBER`, then `path@MEMBER+OFFSET`
    for any further record the member holds)."""
    from warcio.archiveiterator import ArchiveIterator

    def loc(offset: int) -> str:
        if member is None:
            return f"{unit.path}@{offset}"
        return f"{unit.path}@{member}" + (f"+{offset}" if offset else "")

    pos, done = 0, set()  # done: offsets of records already handed out
    while pos is not None:
        f.seek(pos)
        it = ArchiveIterator(f, check_digests=False)
        try:
            for record in it:
                out = _record(unit, record, loc(it.offset), max_doc_bytes, rules)
                done.add(it.offset)
                if out is not None:
                    yield out
            pos = None  # the end of the stream
        except Exception as e:  # noqa: BLE001 - a failure inside one record costs that record only
            if isinstance(e, MemoryError | KeyboardInterrupt):
                raise
            # it.offset is where the failing record starts: the record being read, or the next
            # one if the previous record's end was reached; a record already handed out is not
            # counted twice
            at = max(it.offset, pos)
            if at not in done:
                yield bad_record(unit, loc(at), "malformed", f"{_failure(e)}; the reader skipped to the next record")
                done.add(at)
            pos = _resync(f, at + 1, False)


def _failure(e: Exception) -> str:
    if isinstance(e, zlib.error | EOFError):
        return f"the gzip member is truncated or corrupt ({type(e).__name__})"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"the record does not parse: {re.sub(r'[^ -~]+', '?', msg)[:120]}"


TRUNCATED = "the record ends before its Content-Length: the file is cut short"


def _cut_short(record) -> bool:
    """True when the file ended inside the record (its block is shorter than Content-Length)."""
    return getattr(record.raw_stream, "limit", 0) > 0


def _record(unit, record, loc: str, max_doc_bytes: int, rules: UrlRules | None) -> dict | None:
    kind = record.rec_type
    if kind not in ("response", "conversion"):
        return None
    h = record.rec_headers
    url = _header(h, "WARC-Target-URI") or ""
    length = int(_header(h, "Content-Length") or 0)
    norm = normalize_url(url)
    host = urlsplit(norm).hostname or ""
    meta = {"url": url, "url_normalized": norm, "host": host, "registered_domain": registered_domain(host) if host else "",
            "fetch_date": _header(h, "WARC-Date") or "", "record_id": _header(h, "WARC-Record-ID") or "",
            "warc_type": kind}
    if length > max_doc_bytes:
        return bad_record(unit, loc, "too_large", f"the record is {length} bytes, over the {max_doc_bytes}-byte document limit", url, length)
    if rules is not None:
        why = rules.blocked(norm, host)
        if why:
            return bad_record(unit, loc, "url_blocked", why, url, length)
    if kind == "conversion":  # WET: text already extracted, UTF-8
        body = record.content_stream().read(max_doc_bytes + 1)
        if _cut_short(record):
            return bad_record(unit, loc, "malformed", TRUNCATED, body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            return bad_record(unit, loc, "undecodable", f"byte 0x{body[e.start]:02x} at offset {e.start} is not valid UTF-8", body)
        meta |= {"content_type": _header(h, "Content-Type") or "text/plain",
                 "lang_hint": (_header(h, "WARC-Identified-Content-Language") or "").split(",")[0]}
        if not text.strip():
            return bad_record(unit, loc, "empty", "the record holds no text", body)
        return doc_record(unit, loc, text, meta, body)
    if record.http_headers is None and (record.content_type or "").lower().startswith("application/http"):
        # warcio parses HTTP headers only under a lower-case http:/https: target URI
        from warcio.statusandheaders import StatusAndHeadersParser

        record.http_headers = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(record.raw_stream)
    status = record.http_headers.get_statuscode() if record.http_headers else None
    ctype = _header(record.http_headers, "Content-Type") or ""
    meta |= {"http_status": str(status or ""), "content_type": ctype.split(";")[0].strip().lower()}
    if status != "200":
        return bad_record(unit, loc, "http_status", f"HTTP status {status or 'missing'}, not 200", url, length)
    if meta["content_type"] not in HTML_TYPES:
        return bad_record(unit, loc, "not_html", f"content type {meta['content_type'] or 'missing'} is not HTML", url, length)
    body = record.content_stream().read(max_doc_bytes + 1)
    if len(body) <= max_doc_bytes and _cut_short(record):
        return bad_record(unit, loc, "malformed", TRUNCATED, body)
    if len(body) > max_doc_bytes:  # a body that inflates (Content-Encoding) past the limit
        return bad_record(unit, loc, "too_large", f"the body inflates past the {max_doc_bytes}-byte document limit", url, len(body))
    html, problem = decode_html(body, ctype)
    if html is None:
        return bad_record(unit, loc, "undecodable", problem, body)
    title, text = extract_text(html, url)
    meta |= {"title": title or "", "lang_hint": html_lang(html) or ""}
    if not text.strip():
        return bad_record(unit, loc, "empty", "no main text could be extracted from the page", body)
    return doc_record(unit, loc, text, meta)
