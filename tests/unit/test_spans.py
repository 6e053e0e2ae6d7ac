"""Span dedup's pure functions (paragraphs, lines, code headers, cutting them out) and the exact
containment that verifies partial copies, on real text."""

from __future__ import annotations

from pathlib import Path

import pytest
from brickyard.pipelines.text.minhash import pair_containment, pair_jaccard
from brickyard.pipelines.text.spans import (
    LINE,
    PARAGRAPH,
    SpanOptions,
    code_header,
    n_words,
    normalize_span,
    remove_spans,
    span_hash,
    span_keys,
    spans_of,
)

from tests.helpers import STDLIB

LICENSES = Path("/usr/share/common-licenses")
BOTH = SpanOptions(paragraphs=True, lines=True, min_chars=40)


def licence(name: str) -> str:
    path = LICENSES / name
    if not path.is_file():
        pytest.skip(f"this machine lacks {path}")
    return path.read_text()


def test_a_span_is_the_same_whatever_its_case_indentation_and_line_breaks():
    a = "    This program is distributed in the hope that it will be useful,\n    but WITHOUT ANY WARRANTY;"
    b = "this program is distributed in the hope that it will be useful, but  without any warranty;"
    assert normalize_span(a) == normalize_span(b) == b.replace("  ", " ")
    assert span_hash(normalize_span(a)) == span_hash(normalize_span(b))
    assert span_hash("one") != span_hash("two") and -(2**63) <= span_hash("one") < 2**63


def test_text_offers_its_paragraphs_and_lines_above_the_minimum_length():
    gpl = licence("GPL-3")
    spans = spans_of(gpl, "text", BOTH)
    lines = gpl.split("\n")
    paragraphs = [s for s in spans if s.kind == PARAGRAPH]
    assert paragraphs and all(s.kind in (PARAGRAPH, LINE) for s in spans)
    # every paragraph is a run of non-blank lines with a blank line (or the edge) on each side
    for s in paragraphs:
        assert all(lines[i].strip() for i in range(s.first, s.last + 1))
        assert s.first == 0 or not lines[s.first - 1].strip()
        assert s.last == len(lines) - 1 or not lines[s.last + 1].strip()
    # short lines ("Preamble", the title) are never offered
    assert all(len(normalize_span(lines[s.first])) >= 40 for s in spans if s.kind == LINE)
    short = [i for i, ln in enumerate(lines) if ln.strip() and len(normalize_span(ln)) < 40]
    assert short and not {s.first for s in spans if s.kind == LINE} & set(short)
    only_paragraphs = spans_of(gpl, "text", SpanOptions(paragraphs=True, lines=False, min_chars=40))
    assert only_paragraphs == paragraphs
    keys = span_keys(gpl, "text", BOTH)
    assert len(keys) == len(set(keys)) <= len(spans)


def test_code_offers_only_its_leading_comment_block():
    init = (STDLIB / "tomllib" / "__init__.py").read_text()
    lines = init.split("\n")
    header = code_header(lines)
    assert [lines[i] for i in header][0].startswith("# SPDX-License-Identifier: MIT")
    assert not lines[header.stop].strip() or not lines[header.stop].startswith("#")
    spans = spans_of(init, "code", BOTH)
    assert spans and all(header.start <= s.first and s.last < header.stop for s in spans)
    assert spans_of(init, "code", SpanOptions(paragraphs=True, lines=True, code_headers=False)) == []
    # a shebang is not part of the header; C's #include is code, not a comment
    assert code_header(["#!/usr/bin/env python3", "# Copyright 2020 someone", "import os"]) == range(1, 2)
    assert code_header(["/* Copyright 2020 someone", " * Licensed under MIT", " */", "#include <stdio.h>"]) == range(0, 3)
    assert code_header(["#include <stdio.h>", "// not a header"]) == range(0, 0)
    # a module that starts with its docstring has no header
    assert code_header((STDLIB / "bisect.py").read_text().split("\n")) == range(0, 0)


def test_removing_a_paragraph_takes_its_gap_and_keeps_every_other_byte():
    gpl = licence("GPL-3")
    paragraphs = [s for s in spans_of(gpl, "text", BOTH) if s.kind == PARAGRAPH]
    middle = paragraphs[5]
    out = remove_spans(gpl, "text", {(middle.kind, middle.hash)}, BOTH)
    lines = gpl.split("\n")
    cut = "\n".join(lines[middle.first : middle.last + 1])
    # the paragraph and the blank line after it are gone; the rest is the original, byte for byte
    assert cut not in out and out == "\n".join(lines[: middle.first] + lines[middle.last + 2 :])
    assert remove_spans(gpl, "text", set(), BOTH) is gpl
    assert remove_spans(gpl, "text", {(LINE, 12345)}, BOTH) is gpl


def test_removing_a_line_keeps_its_paragraph_apart_from_the_next():
    text = ("This is the first line of a paragraph that is long enough.\n"
            "This second line of it is the one that is repeated elsewhere.\n"
            "\n"
            "A second paragraph follows, and it must stay a paragraph of its own.\n")
    line = [s for s in spans_of(text, "text", BOTH) if s.kind == LINE and s.first == 1][0]
    out = remove_spans(text, "text", {(LINE, line.hash)}, BOTH)
    assert out == ("This is the first line of a paragraph that is long enough.\n"
                   "\n"
                   "A second paragraph follows, and it must stay a paragraph of its own.\n")


def test_removing_a_code_header_leaves_the_code_as_it_was():
    source = (STDLIB / "tomllib" / "_re.py").read_text()
    (header,) = [s for s in spans_of(source, "code", BOTH) if s.kind == PARAGRAPH]
    out = remove_spans(source, "code", {(PARAGRAPH, header.hash)}, BOTH)
    lines = source.split("\n")
    body = "\n".join(lines[header.last + 1 :]).lstrip("\n")
    assert out == body and "SPDX" not in out and out.strip()


def test_a_document_made_only_of_removed_spans_is_left_empty():
    notice = licence("GPL-3").split("How to Apply These Terms")[1].split("Also add information")[0]
    keys = set(span_keys(notice, "text", SpanOptions(paragraphs=True, lines=False, min_chars=40)))
    out = remove_spans(notice, "text", keys, SpanOptions(paragraphs=True, lines=False, min_chars=40))
    assert n_words(notice) > 100 and n_words(out) < 50  # what is left: the template's short lines
    assert "WITHOUT ANY WARRANTY" not in out


def test_containment_of_a_partial_copy_is_exact_and_directional():
    mpl = licence("MPL-2.0")
    sections = mpl.split("\n\n")
    copy = "A short note of our own about this project, written for it.\n\n" + "\n\n".join(sections[10:16])
    (c_in,), (c_out,) = pair_containment([copy], [mpl], 5), pair_containment([mpl], [copy], 5)
    (j,) = pair_jaccard([copy], [mpl], 5)
    assert 0.8 < c_in < 1 and c_out < 0.3 and j < 0.3  # contained, though far from a near duplicate
    assert pair_containment([mpl], [mpl], 5)[0] == 1.0
    assert pair_containment(["", "..."], [mpl, mpl], 5).tolist() == [0.0, 0.0]


def test_code_headers_that_differ_in_their_years_are_one_span():
    source = (STDLIB / "tomllib" / "_re.py").read_text()
    later = source.replace("SPDX-FileCopyrightText: 2021", "SPDX-FileCopyrightText: 2024")
    assert later != source
    assert span_keys(later, "code", BOTH) == span_keys(source, "code", BOTH)
    # prose keeps its digits: two paragraphs that differ in a number are two spans
    assert span_keys(later, "text", BOTH) != span_keys(source, "text", BOTH)


def test_the_trimmer_rejects_text_left_short_and_code_left_empty_but_never_an_untouched_document():
    import pyarrow as pa
    from brickyard.pipelines.config import SpanSettings
    from brickyard.pipelines.stages.dedup import make_trimmer

    notice = licence("GPL-3").split("How to Apply These Terms")[1].split("Also add information")[0]
    notice = notice[notice.index("<one line"):]
    init = (STDLIB / "tomllib" / "__init__.py").read_text()
    lines = init.split("\n")
    header_only = "\n".join(lines[i] for i in code_header(lines)) + "\n"  # a file that is only its licence header
    settings = SpanSettings(paragraphs=True)
    options = SpanOptions(paragraphs=True, lines=False, min_chars=40)
    rows = [("notice", "text", notice), ("header", "code", header_only), ("init", "code", init), ("short", "text", "Too short.")]
    removed = [[{"span_kind": k, "span_hash": h} for k, h in span_keys(t, kind, options)] for _, kind, t in rows]
    removed[-1] = []
    batch = pa.RecordBatch.from_pydict({"doc_id": [r[0] for r in rows], "kind": [r[1] for r in rows],
                                        "text": [r[2] for r in rows], "removed": removed})
    (out,) = list(make_trimmer(settings)([batch]))
    got = {d: (t, share, short) for d, t, share, short in zip(*(out.column(i).to_pylist() for i in range(4)), strict=True)}
    assert got["notice"][2] and got["notice"][1] > 0.5 and "WITHOUT ANY WARRANTY" not in got["notice"][0]
    assert got["header"][2] and got["header"][0].strip() == "" and got["header"][1] == 1.0
    assert not got["init"][2] and "SPDX" not in got["init"][0] and "import" in got["init"][0]
    assert got["short"] == ("Too short.", 0.0, False)  # nothing cut: never rejected here, however short
