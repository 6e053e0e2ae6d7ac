"""The record every reader yields: a document or a quarantine entry, with the unit of work it came from.

Both the file readers (`readers`) and the web reader (`web`) build their records here, so neither
imports the other for them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

SNIPPET_CHARS = 200
META_VALUE_CHARS = 4096

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
    encoding: str | None = None  # text / code: the source's `encoding:` for files that are not UTF-8

    def to_row(self) -> dict:
        return asdict(self)


RECORD_FIELDS = [
    "kind", "source", "domain", "format", "path", "locator", "doc_id", "text", "content_sha256",
    "n_bytes", "code_language", "license", "is_vendored", "is_generated", "metadata", "reason",
    "detail", "snippet",
]


def doc_record(unit: Unit, locator: str, text: str, metadata: dict | None = None, encoded: bytes | None = None, **extra) -> dict:
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


def bad_record(unit: Unit, locator: str, reason: str, detail: str, raw: bytes | str = b"", n_bytes: int = 0) -> dict:
    rec = dict.fromkeys(RECORD_FIELDS)
    rec.update(
        kind="quarantine", source=unit.source, domain=unit.domain, format=unit.format,
        path=unit.path, locator=locator, doc_id=doc_id(unit.source, locator), reason=reason,
        detail=detail, snippet=snippet(raw), n_bytes=n_bytes or len(raw),
    )
    return rec
