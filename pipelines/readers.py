"""Readers: turn one unit of reading work into records. Pure Python, no Spark.

A `Unit` is what one Spark task reads: a whole file, a byte range of a large plain JSONL file, or
one row group of a Parquet file. `read_unit` yields one record per document found, each either a
document (`kind="doc"`) or a quarantine entry (`kind="quarantine"`) with a reason code and one
sentence of detail. Every record that was read comes out exactly once, so the job can check
rows read = documents + quarantined.

Quarantine reasons:
    malformed_json      a JSONL line that does not parse (or nests too deeply)
    not_an_object       a JSONL line that parses to something other than an object
    missing_text_field  no text field (or a null one)
    missing_id          no id field, where the source names one (`id_field`)
    wrong_type          the text (or id) field is not a string
    invalid_utf8        bytes that do not decode as UTF-8
    binary              a file with NUL bytes in its first 8 KiB
    empty               no text, or only white space
    too_large           a document over `max_doc_bytes`
    unreadable          the file cannot be opened or its compressed stream is cut short or corrupt
    symlink             a symbolic link (never followed: it could lead outside the source root)
    file_too_large      a compressed file inflating past `max_file_bytes` (the rest is not read)
    bad_name            a file name that is not valid UTF-8 (not read; shown with \\xNN escapes)
    changed_while_read  the file's size or mtime moved between listing and the end of its reading
    duplicate_id        a second record with the same id in one batch (the job adds these)

Blank lines in JSONL files are not records and are not counted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

SNIPPET_CHARS = 200
META_VALUE_CHARS = 4096
BINARY_SNIFF = 8192

# ---------------------------------------------------------------------------------------------
# Ids and hashes
# ---------------------------------------------------------------------------------------------


def doc_id(source: str, locator: str) -> str:
    """Stable id of a document: 128 bits of sha256 over the source name and the locator."""
    return hashlib.sha256(f"{source}\x1f{locator}".encode()).hexdigest()[:32]


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def snippet(data: bytes | str) -> str:
    """A short, printable look at bad input (bytes shown with escapes)."""
    if isinstance(data, bytes):
        data = data[: SNIPPET_CHARS * 4].decode("utf-8", errors="backslashreplace")
    return data[:SNIPPET_CHARS].encode("unicode_escape").decode("ascii")[:SNIPPET_CHARS]


# ---------------------------------------------------------------------------------------------
# Code: language, vendored, generated, licences
# ---------------------------------------------------------------------------------------------

LANGUAGE_BY_EXTENSION = {
    ".py": "Python", ".pyi": "Python", ".pyx": "Cython", ".c": "C", ".h": "C",
    ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hpp": "C++", ".hh": "C++",
    ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin", ".scala": "Scala",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".rb": "Ruby", ".php": "PHP", ".pl": "Perl",
    ".pm": "Perl", ".lua": "Lua", ".r": "R", ".jl": "Julia", ".swift": "Swift", ".cs": "C#",
    ".m": "Objective-C", ".sh": "Shell", ".bash": "Shell", ".zsh": "Shell", ".ps1": "PowerShell",
    ".sql": "SQL", ".html": "HTML", ".htm": "HTML", ".css": "CSS", ".scss": "SCSS",
    ".md": "Markdown", ".rst": "reStructuredText", ".tex": "TeX", ".yaml": "YAML", ".yml": "YAML",
    ".toml": "TOML", ".json": "JSON", ".xml": "XML", ".ini": "INI", ".cfg": "INI",
    ".proto": "Protocol Buffers", ".cmake": "CMake", ".hs": "Haskell", ".ml": "OCaml",
    ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang", ".clj": "Clojure", ".dart": "Dart",
    ".vim": "Vim Script", ".el": "Emacs Lisp", ".f90": "Fortran", ".zig": "Zig", ".txt": "Text",
}
LANGUAGE_BY_NAME = {
    "Makefile": "Makefile", "makefile": "Makefile", "GNUmakefile": "Makefile",
    "Dockerfile": "Dockerfile", "CMakeLists.txt": "CMake", "Rakefile": "Ruby", "Gemfile": "Ruby",
}
SHEBANG_LANGUAGES = {
    "python": "Python", "sh": "Shell", "bash": "Shell", "zsh": "Shell", "dash": "Shell",
    "node": "JavaScript", "perl": "Perl", "ruby": "Ruby", "php": "PHP", "lua": "Lua",
}
VENDORED_DIRS = {"vendor", "_vendor", "vendored", "third_party", "thirdparty", "third-party",
                 "node_modules", "external", "extern", "deps"}
GENERATED_NAMES = re.compile(
    r"(_pb2(_grpc)?\.py|\.pb\.go|\.min\.(js|css)|-lock\.json|\.lock|_generated\.\w+|\.g\.dart)$"
)
GENERATED_MARKERS = re.compile(
    r"(auto-?generated|@generated|generated by|do not edit|code generated .* do not edit)", re.I
)
BINARY_EXTENSIONS = {
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".pdf", ".zip", ".tar", ".so", ".dll", ".dylib",
    ".exe", ".o", ".a", ".pyc", ".pyo", ".class", ".jar", ".whl", ".woff", ".woff2", ".ttf",
    ".otf", ".mo", ".db", ".sqlite", ".bin", ".npy", ".npz", ".pt", ".wasm",
}


def code_language(relpath: str, head: str = "") -> str | None:
    """Language from the file name or extension, else from a `#!` line."""
    name = PurePosixPath(relpath).name
    if name in LANGUAGE_BY_NAME:
        return LANGUAGE_BY_NAME[name]
    ext = PurePosixPath(name).suffix.lower()
    if ext in LANGUAGE_BY_EXTENSION:
        return LANGUAGE_BY_EXTENSION[ext]
    if head.startswith("#!"):
        words = head[2:].split("\n", 1)[0].replace("/", " ").split()
        if words and words[-1 if len(words) == 1 else 0] == "env" and len(words) > 1:
            words = words[1:]
        for w in words:
            base = re.sub(r"[\d.]+$", "", w)
            if base in SHEBANG_LANGUAGES:
                return SHEBANG_LANGUAGES[base]
    return None


def is_vendored(relpath: str) -> bool:
    return any(part in VENDORED_DIRS for part in PurePosixPath(relpath).parts[:-1])


def is_generated(relpath: str, head: str) -> bool:
    return bool(GENERATED_NAMES.search(relpath)) or bool(GENERATED_MARKERS.search(head[:1024]))


LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicense)([-._].*)?$", re.I)

# (SPDX id, phrases that must all appear); the first match wins, so specific before general
_LICENSE_RULES = [
    ("PSF-2.0", ["python software foundation license"]),  # its text also names the GPL
    ("AGPL-3.0", ["gnu affero general public license", "version 3"]),
    ("LGPL-3.0", ["gnu lesser general public license", "version 3"]),
    ("LGPL-2.1", ["gnu lesser general public license", "version 2.1"]),
    ("GPL-3.0", ["gnu general public license", "version 3"]),
    ("GPL-2.0", ["gnu general public license", "version 2"]),
    ("MPL-2.0", ["mozilla public license", "2.0"]),
    ("Apache-2.0", ["apache license", "version 2.0"]),
    ("BSD-3-Clause", ["redistribution and use in source and binary forms", "neither the name"]),
    ("BSD-2-Clause", ["redistribution and use in source and binary forms"]),
    ("MIT", ["permission is hereby granted, free of charge"]),
    ("ISC", ["permission to use, copy, modify, and/or distribute this software for any purpose"]),
    ("Unlicense", ["this is free and unencumbered software released into the public domain"]),
    ("CC0-1.0", ["cc0 1.0 universal"]),
    ("EPL-2.0", ["eclipse public license", "2.0"]),
    ("Zlib", ["this software is provided 'as-is', without any express or implied"]),
]


def license_id(text: str) -> str:
    """SPDX id of a licence text, `LicenseRef-unknown` when no rule recognises it."""
    t = " ".join(text.lower().split())
    for spdx, phrases in _LICENSE_RULES:
        if all(p in t for p in phrases):
            return spdx
    return "LicenseRef-unknown"


# ---------------------------------------------------------------------------------------------
# Units and records
# ---------------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One piece of reading work. `path` is the logical path used in locators and lineage."""

    source: str
    domain: str
    format: str  # jsonl / parquet / text / code / warc
    file: str  # absolute path of the file on disk
    path: str  # logical path: relative to the source root, prefixed for sample parts
    size: int = 0
    mtime_ns: int = 0
    start: int = 0  # jsonl: first byte of the range; parquet: row group index
    end: int = -1  # jsonl: end of the range (-1: whole file); parquet: first row's global index
    text_field: str = "text"
    id_field: str | None = None
    license: str | None = None
    problem: str | None = None  # set at listing time: symlink / unreadable
    url_blocklist: str | None = None  # warc: the blocklist file (absolute path)

    def to_row(self) -> dict:
        return asdict(self)


RECORD_FIELDS = [
    "kind", "source", "domain", "format", "path", "locator", "doc_id", "text", "content_sha256",
    "n_bytes", "code_language", "license", "is_vendored", "is_generated", "metadata", "reason",
    "detail", "snippet",
]


def _doc(unit: Unit, locator: str, text: str, metadata: dict | None = None, encoded: bytes | None = None, **extra) -> dict:
    data = text.encode("utf-8") if encoded is None else encoded  # `encoded`: the text's UTF-8 bytes
    rec = dict.fromkeys(RECORD_FIELDS)
    rec.update(
        kind="doc", source=unit.source, domain=unit.domain, format=unit.format, path=unit.path,
        locator=locator, doc_id=doc_id(unit.source, locator), text=text,
        content_sha256=hashlib.sha256(data).hexdigest(), n_bytes=len(data),
        license=unit.license, metadata=json.dumps(metadata or {}, ensure_ascii=False),
    )
    rec.update(extra)
    return rec


def _bad(unit: Unit, locator: str, reason: str, detail: str, raw: bytes | str = b"", n_bytes: int = 0) -> dict:
    rec = dict.fromkeys(RECORD_FIELDS)
    rec.update(
        kind="quarantine", source=unit.source, domain=unit.domain, format=unit.format,
        path=unit.path, locator=locator, doc_id=doc_id(unit.source, locator), reason=reason,
        detail=detail, snippet=snippet(raw), n_bytes=n_bytes or len(raw),
    )
    return rec


class TooMuchData(Exception):
    pass


class LimitedReader(io.RawIOBase):
    """Raises TooMuchData once more than `limit` bytes came out of `raw` (bounds zip bombs)."""

    def __init__(self, raw, limit: int):
        self.raw, self.limit, self.count = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        # one read of the inner stream at a time, so lines before a corrupt or truncated spot are
        # handed out before the error surfaces (a full readinto would lose them with the error)
        n = self.raw.readinto1(b) if hasattr(self.raw, "readinto1") else self.raw.readinto(b)
        self.count += n or 0
        if self.count > self.limit:
            raise TooMuchData
        return n


def compression(path: str) -> str | None:
    p = path.lower()
    return "gzip" if p.endswith(".gz") else "zstd" if p.endswith(".zst") else None


def open_stream(file: str, limit: int):
    """A buffered binary stream of the file's (decompressed) bytes, at most `limit` of them."""
    kind = compression(file)
    if kind is None:
        return open(file, "rb")
    raw = open(file, "rb")
    if kind == "gzip":
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        import zstandard

        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
    return io.BufferedReader(LimitedReader(inner, limit), buffer_size=1 << 20)


CORRUPT_STREAM = (EOFError, gzip.BadGzipFile, zlib.error)


def _corrupt_errors():
    try:
        import zstandard

        return CORRUPT_STREAM + (zstandard.ZstdError,)
    except ImportError:  # pragma: no cover
        return CORRUPT_STREAM


def _utf8_problem(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        return f"byte 0x{data[e.start]:02x} at offset {e.start} is not valid UTF-8"


# ---------------------------------------------------------------------------------------------
# The readers
# ---------------------------------------------------------------------------------------------


def read_unit(unit: Unit, max_doc_bytes: int, max_file_bytes: int) -> Iterator[dict]:
    """Every record of one unit: documents and quarantine entries.

    A file whose size or mtime differs, after reading, from what the listing saw was written to
    while ingest ran: a whole-file document is replaced by one `changed_while_read` entry (its
    text may be torn); a multi-record file keeps the records read and gets that entry too. Ingest
    records no `ops.source_files` row for such a file, so the next run reads it again.
    """
    if unit.problem == "symlink":
        yield _bad(unit, unit.path, "symlink", "symbolic links are not followed (one could lead outside the source root)")
        return
    if unit.problem == "bad_name":
        yield _bad(unit, unit.path, "bad_name", "the file name is not valid UTF-8 (shown with \\xNN escapes); rename the file to read it")
        return
    if unit.problem:
        yield _bad(unit, unit.path, "unreadable", unit.problem)
        return
    if unit.format == "jsonl":
        yield from read_jsonl(unit, max_doc_bytes, max_file_bytes)
    elif unit.format == "parquet":
        yield from read_parquet(unit, max_doc_bytes)
    elif unit.format == "warc":
        from pipelines.web import read_warc, url_rules

        yield from read_warc(unit, max_doc_bytes, url_rules(unit.url_blocklist))
    else:
        records = list(read_file(unit, max_doc_bytes, max_file_bytes))  # one record
        if (change := changed_since_listing(unit)) is None:
            yield from records
        else:
            yield _bad(unit, unit.path, CHANGED, change, n_bytes=sum(r["n_bytes"] or 0 for r in records))
        return
    if (change := changed_since_listing(unit)) is not None:
        one_of_several = unit.format == "parquet" or unit.end >= 0  # a row group, a byte range
        yield _bad(unit, f"{unit.path}#changed" + (f"@{unit.start}" if one_of_several else ""), CHANGED, change)


CHANGED = "changed_while_read"


def changed_since_listing(unit: Unit) -> str | None:
    """None when the file still has the size and mtime the listing saw, else what changed."""
    try:
        st = file_stat(unit.file)
    except OSError as e:
        return f"the file went away while it was read: {e.strerror or e}"
    if st.st_size != unit.size:
        return f"the file changed while it was read: {unit.size} bytes when listed, {st.st_size} after reading"
    if st.st_mtime_ns != unit.mtime_ns:
        return "the file changed while it was read: its modification time moved"
    return None


def _read_whole(file: str, size: int, limit: int, file_limit: int) -> tuple[bytes, int]:
    """The file's (decompressed) bytes, at most limit + 1 of them, and the total size if known.

    Plain and gzip files are read in one go (one bounded inflate, gzip members followed), the
    fast path for folders of many small files; zstd goes through the streaming reader. A total
    of -1 means "more than limit": an oversized document is not inflated to the end.
    """
    kind = compression(file)
    if kind is None:
        with open(file, "rb") as f:
            data = f.read(limit + 1)
        return data, max(size, len(data))
    if kind == "gzip":
        # deflate never shrinks data by more than a few bytes per 64 KiB block, so this much
        # compressed input always inflates past the limit when the file is bigger than it:
        # memory stays bounded by the limit, not by the size of the file on disk
        with open(file, "rb") as f:
            packed = f.read(limit + limit // 64 + 65536)
        out, total = bytearray(), 0
        while packed:
            d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk = d.decompress(packed, limit + 1 - len(out))
            out += chunk
            total += len(chunk)
            if len(out) > limit:
                return bytes(out), -1  # too large; the exact size is not worth inflating for
            if not d.eof:
                raise EOFError("the gzip stream ends before its end marker")
            packed = d.unused_data.lstrip(b"\x00")
        return bytes(out), total
    with open_stream(file, file_limit) as f:  # file_limit bounds a bomb; limit bounds the document
        data = f.read(limit + 1)
        return data, (-1 if len(data) > limit else len(data))


def read_file(unit: Unit, max_doc_bytes: int, max_file_bytes: int) -> Iterator[dict]:
    """A whole file is one document (plain-text folders and code trees)."""
    loc = unit.path
    if PurePosixPath(unit.path.lower()).suffix in BINARY_EXTENSIONS:
        yield _bad(unit, loc, "binary", "the file type is binary", n_bytes=unit.size)
        return
    if compression(unit.file) is None and unit.size > max_doc_bytes:
        with open(unit.file, "rb") as f:
            head = f.read(SNIPPET_CHARS)
        yield _bad(unit, loc, "too_large", f"{unit.size} bytes is over the {max_doc_bytes}-byte document limit", head, unit.size)
        return
    try:
        data, total = _read_whole(unit.file, unit.size, min(max_doc_bytes, max_file_bytes), max_file_bytes)
    except TooMuchData:
        yield _bad(unit, loc, "file_too_large", f"the file inflates past the {max_file_bytes}-byte limit")
        return
    except _corrupt_errors() as e:
        yield _bad(unit, loc, "unreadable", f"the compressed stream is truncated or corrupt ({type(e).__name__})")
        return
    except OSError as e:
        yield _bad(unit, loc, "unreadable", f"the file cannot be read: {e.strerror or e}")
        return
    if len(data) > max_doc_bytes:
        detail = (f"{total} bytes (decompressed) is over the {max_doc_bytes}-byte document limit" if total > 0
                  else f"it decompresses to more than the {max_doc_bytes}-byte document limit (not inflated further)")
        yield _bad(unit, loc, "too_large", detail, data[:SNIPPET_CHARS], max(total, len(data)))
        return
    if b"\x00" in data[:BINARY_SNIFF]:
        yield _bad(unit, loc, "binary", "the file has NUL bytes in its first 8 KiB", data)
        return
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield _bad(unit, loc, "invalid_utf8", f"byte 0x{data[e.start]:02x} at offset {e.start} is not valid UTF-8", data)
        return
    if not text.strip():
        yield _bad(unit, loc, "empty", "the file holds no text", data)
        return
    meta = {"mtime_ns": str(unit.mtime_ns)}
    if unit.format == "code":
        head = text[:2048]
        yield _doc(
            unit, loc, text, meta, data,
            code_language=code_language(unit.path, head),
            is_vendored=is_vendored(unit.path), is_generated=is_generated(unit.path, head),
        )
    else:
        yield _doc(unit, loc, text, meta, data)


def _drain(f, chunk: int = 1 << 20) -> int:
    n = 0
    while True:
        b = f.read(chunk)
        if not b:
            return n
        n += len(b)


def _readline_bounded(f, limit: int) -> tuple[bytes, int]:
    """Read one line of at most `limit` bytes; a longer line is drained and returned cut short.

    Returns (line or its head, full length of the line in bytes).
    """
    line = f.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, len(line)
    total = len(line)
    while True:
        more = f.readline(1 << 20)
        total += len(more)
        if not more or more.endswith(b"\n"):
            return line[:SNIPPET_CHARS], total


def _metadata(obj: dict, skip: set[str]) -> dict[str, str]:
    meta = {}
    for k, v in obj.items():
        if k in skip:
            continue
        s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        meta[str(k)] = s[:META_VALUE_CHARS]
    return meta


def read_jsonl(unit: Unit, max_doc_bytes: int, max_file_bytes: int) -> Iterator[dict]:
    """One JSON object per line. Locator `path:LINE`, or `path@OFFSET` in a split file."""
    split = unit.end >= 0
    # JSON escaping can double a text, so a line may be longer than the text it carries
    line_limit = 2 * max_doc_bytes + 65536
    lineno = 0
    try:
        with open_stream(unit.file, max_file_bytes) as f:
            pos = 0
            if split and unit.start > 0:
                f.seek(unit.start - 1)
                skipped = f.readline()  # the line that began before this range belongs to the previous one
                pos = unit.start - 1 + len(skipped)
            while not split or pos < unit.end:
                start = pos
                raw, full = _readline_bounded(f, line_limit)
                if not raw:
                    break
                pos += full
                lineno += 1
                loc = f"{unit.path}@{start}" if split else f"{unit.path}:{lineno}"
                if full > line_limit:
                    yield _bad(unit, loc, "too_large", f"the line is {full} bytes, over the limit for a {max_doc_bytes}-byte document", raw, full)
                    continue
                if not raw.strip():
                    continue
                yield _parse_json_line(unit, loc, raw, max_doc_bytes)
    except TooMuchData:
        yield _bad(unit, f"{unit.path}:{lineno + 1}", "file_too_large", f"the file inflates past the {max_file_bytes}-byte limit; the rest is not read")
    except _corrupt_errors() as e:
        yield _bad(unit, f"{unit.path}:{lineno + 1}", "unreadable", f"the compressed stream is truncated or corrupt after line {lineno} ({type(e).__name__}); the lines before it were read")
    except OSError as e:
        yield _bad(unit, f"{unit.path}:{lineno + 1}", "unreadable", f"the file cannot be read: {e.strerror or e}")


def _parse_json_line(unit: Unit, loc: str, raw: bytes, max_doc_bytes: int) -> dict:
    problem = _utf8_problem(raw)
    if problem:
        return _bad(unit, loc, "invalid_utf8", problem, raw)
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return _bad(unit, loc, "malformed_json", f"not valid JSON: {e.msg} at column {e.colno}", raw)
    except RecursionError:
        return _bad(unit, loc, "malformed_json", "the JSON nests too deeply to parse", raw)
    if not isinstance(obj, dict):
        return _bad(unit, loc, "not_an_object", f"expected a JSON object, got {type(obj).__name__}", raw)
    return _record_from_fields(unit, loc, obj, raw, max_doc_bytes)


def _record_from_fields(unit: Unit, loc: str, obj: dict, raw: bytes | str, max_doc_bytes: int) -> dict:
    text = obj.get(unit.text_field)
    if text is None:
        return _bad(unit, loc, "missing_text_field", f"no {unit.text_field!r} field", raw)
    if not isinstance(text, str):
        return _bad(unit, loc, "wrong_type", f"{unit.text_field!r} is {type(text).__name__}, not a string", raw)
    if unit.id_field:
        rid = obj.get(unit.id_field)
        if rid is None:
            return _bad(unit, loc, "missing_id", f"no {unit.id_field!r} id field", raw)
        if isinstance(rid, bool) or not isinstance(rid, str | int):
            return _bad(unit, loc, "wrong_type", f"id {unit.id_field!r} is {type(rid).__name__}, not a string or integer", raw)
        loc = f"id:{rid}"
    n = len(text.encode("utf-8", errors="surrogatepass"))
    if n > max_doc_bytes:
        return _bad(unit, loc, "too_large", f"{n} bytes is over the {max_doc_bytes}-byte document limit", text[:SNIPPET_CHARS], n)
    if not text.strip():
        return _bad(unit, loc, "empty", f"{unit.text_field!r} holds no text", raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        return _bad(unit, loc, "invalid_utf8", "the text holds unpaired surrogate escapes", raw)
    meta = _metadata(obj, {unit.text_field})
    return _doc(unit, loc, text, meta)


def read_parquet(unit: Unit, max_doc_bytes: int) -> Iterator[dict]:
    """One row group of a Parquet file; locator `path#row=N` (or `id:...` with an id field)."""
    import pyarrow.parquet as pq

    first_row = max(unit.end, 0)
    try:
        table = pq.ParquetFile(unit.file).read_row_group(unit.start)
    except (OSError, ValueError) as e:
        yield _bad(unit, f"{unit.path}#rg={unit.start}", "unreadable", f"row group {unit.start} cannot be read: {e}")
        return
    names = table.column_names
    text_ok = unit.text_field in names and (
        str(table.schema.field(unit.text_field).type) in ("string", "large_string")
    )
    for i, row in enumerate(table.to_pylist()):
        loc = f"{unit.path}#row={first_row + i}"
        if unit.text_field in names and not text_ok and row.get(unit.text_field) is not None:
            yield _bad(unit, loc, "wrong_type", f"column {unit.text_field!r} is {table.schema.field(unit.text_field).type}, not a string", repr(row)[:SNIPPET_CHARS])
            continue
        yield _record_from_fields(unit, loc, row, json.dumps(row, default=str)[:SNIPPET_CHARS * 2], max_doc_bytes)


def file_stat(path: str) -> os.stat_result:
    return os.stat(path, follow_symlinks=False)
