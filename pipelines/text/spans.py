"""Repeated spans: the paragraphs and lines of a document, hashed for corpus-wide span dedup.

Pure functions, no Spark: the dedup job maps them over Arrow batches
(`brickyard.pipelines.stages.dedup`), which decides which document keeps each span.

A line is a non-blank line; a paragraph is a run of non-blank lines (blank lines separate
paragraphs). A span is normalized before it is hashed (lower-cased, runs of white space as one
space, stripped; in code headers, runs of digits as one 0, so that a header with another year
matches) and hashed to a signed 64-bit integer (blake2b), so that the same paragraph with other
indentation or line breaks is the same span. Spans shorter than `min_chars` normalized
characters are never offered, so never removed: blank and short lines, closing braces, headings
such as "SEE ALSO".

Text documents offer every paragraph and line. Code offers only its leading comment block (its
licence header, typically): the comment lines before the first line of code, after a `#!` line;
the code itself is never touched, since lines such as `import os` repeat across files and are
still needed in each. A document keeps every occurrence of a span it owns, repeats inside one
document included: only copies in other documents are removed.

`remove_spans` cuts the removed spans out of the text and keeps everything else as it was: the
blank lines that separated a removed paragraph go with it, other lines keep their exact bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

PARAGRAPH, LINE = "paragraph", "line"
SPAN_KINDS = (PARAGRAPH, LINE)
_WHITE = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")
# comment lines of the common languages (docstrings are content); `#` lines that are C preprocessor
# directives are code
COMMENT_MARKS = ("#", "//", "/*", "*", "--", ";", "%", "<!--", "-->", "(*", "*)")
_DIRECTIVE = re.compile(r"#\s*(include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma|import|error|line)\b")


@dataclass(frozen=True)
class SpanOptions:
    """Which spans a document offers: paragraphs, lines, their minimum normalized length, and
    whether code offers its header at all."""

    paragraphs: bool = True
    lines: bool = False
    min_chars: int = 40
    code_headers: bool = True  # False: code offers nothing (licence headers stay in gold)


@dataclass(frozen=True)
class Span:
    kind: str  # paragraph or line
    hash: int  # signed 64-bit
    first: int  # first line (index into text.split("\n"))
    last: int  # last line, inclusive


def normalize_span(text: str, digits: bool = False) -> str:
    """Lower case, runs of white space as one space, stripped; with `digits`, every run of digits
    as one 0 (code headers: the same licence header with another year is the same span)."""
    text = _WHITE.sub(" ", text.lower()).strip()
    return _DIGITS.sub("0", text) if digits else text


def span_hash(normalized: str) -> int:
    """A signed 64-bit hash of a normalized span (Spark's BIGINT)."""
    return int.from_bytes(hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def is_comment(line: str) -> bool:
    s = line.strip()
    return s.startswith(COMMENT_MARKS) and not _DIRECTIVE.match(s)


def code_header(lines: list[str]) -> range:
    """The line range of a code file's leading comment block: after a `#!` line and leading blank
    lines, the comment and blank lines before the first line of code (trailing blank lines left
    out). Empty when the file starts with code."""
    start = 1 if lines and lines[0].startswith("#!") else 0
    end = start
    for i in range(start, len(lines)):
        if lines[i].strip() and not is_comment(lines[i]):
            break
        if lines[i].strip():
            end = i + 1
    return range(start, end)


def _paragraphs(lines: list[str], within: range) -> Iterable[tuple[int, int]]:
    """(first, last) line of each run of non-blank lines inside `within`."""
    first = None
    for i in within:
        if lines[i].strip():
            if first is None:
                first = i
        elif first is not None:
            yield first, i - 1
            first = None
    if first is not None:
        yield first, within.stop - 1


def spans_of(text: str, kind: str, options: SpanOptions) -> list[Span]:
    """Every span the document offers, in order, with its lines (a repeated span appears each time)."""
    lines = text.split("\n")
    if kind == "code":
        if not options.code_headers:
            return []
        within = code_header(lines)
    else:
        within = range(len(lines))
    out = []
    digits = kind == "code"
    for first, last in _paragraphs(lines, within):
        if options.paragraphs:
            norm = normalize_span(" ".join(lines[first : last + 1]), digits)
            if len(norm) >= options.min_chars:
                out.append(Span(PARAGRAPH, span_hash(norm), first, last))
        if options.lines:
            for i in range(first, last + 1):
                norm = normalize_span(lines[i], digits)
                if len(norm) >= options.min_chars:
                    out.append(Span(LINE, span_hash(norm), i, i))
    return out


def span_keys(text: str, kind: str, options: SpanOptions) -> list[tuple[str, int]]:
    """The distinct (kind, hash) spans of a document, in order of first appearance."""
    return list(dict.fromkeys((s.kind, s.hash) for s in spans_of(text, kind, options)))


def remove_spans(text: str, kind: str, removed: set[tuple[str, int]], options: SpanOptions) -> str:
    """The text without the spans in `removed` ((kind, hash) pairs): their lines go, and so do the
    blank lines that only separated a removed paragraph from the rest. Other lines are kept as they
    are. With nothing to remove, the text itself."""
    if not removed:
        return text
    lines = text.split("\n")
    cut = [False] * len(lines)
    for s in spans_of(text, kind, options):
        if (s.kind, s.hash) in removed:
            for i in range(s.first, s.last + 1):
                cut[i] = True
    if not any(cut):
        return text
    # blocks: runs of blank lines (gaps) and paragraphs, each line with its cut flag
    blocks: list[tuple[bool, list[tuple[str, bool]]]] = []
    for line, gone in zip(lines, cut, strict=True):
        gap = not line.strip()
        if not blocks or blocks[-1][0] != gap:
            blocks.append((gap, []))
        blocks[-1][1].append((line, gone))
    out: list[str] = []
    gap_lines: list[str] | None = None  # the first gap after the last kept paragraph
    started = cut_first = last_kept = False
    for gap, block in blocks:
        if gap:
            if gap_lines is None:
                gap_lines = [ln for ln, _ in block]
            continue
        kept = [ln for ln, gone in block if not gone]
        last_kept = bool(kept)
        if not kept:  # the whole paragraph goes, and the gap after it
            cut_first = cut_first or not started
            continue
        if gap_lines is not None and (started or not cut_first):
            out.extend(gap_lines)  # a cut header leaves no gap above the first line
        out.extend(kept)
        started, gap_lines = True, None
    if gap_lines is not None and last_kept:
        out.extend(gap_lines)  # the blank lines the text ended with
    result = "\n".join(out)
    if text.endswith("\n") and result and not result.endswith("\n"):
        result += "\n"
    return result


def n_words(text: str) -> int:
    """Words as curate's Gopher rules count them (white-space separated)."""
    return len(text.split())
