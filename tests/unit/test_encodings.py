"""Text and code files in legacy encodings: real English prose (the Python reference's own text,
`pydoc_data.topics`, with its curly quotes, dashes and ellipses) written with Python's codecs,
read back exactly, with the encoding recorded; real binary files still quarantined."""

from __future__ import annotations

import codecs
import gzip
import json
import py_compile
from pydoc_data.topics import topics

import pytest
from brickyard.pipelines.sources.encodings import MOSTLY_UTF8, decode_file, sample, utf8_bytes
from brickyard.pipelines.sources.readers import Unit, read_unit

from tests.helpers import STDLIB

# reference topics rich in typographic punctuation, all of it in cp1252
PROSE = ["compound", "specialnames", "types", "formatstrings"]
CP1252_ONLY = bytes(range(0x80, 0xA0))  # where cp1252 keeps its curly quotes and dashes


def read_file_as(path, fmt="text", encoding=None):
    st = path.stat()
    unit = Unit(source="t", domain="books", format=fmt, file=str(path), path=path.name,
                size=st.st_size, mtime_ns=st.st_mtime_ns, encoding=encoding)
    [rec] = read_unit(unit, 1 << 24, 1 << 30)
    return rec


def encoding_of(rec) -> str:
    return json.loads(rec["metadata"])["encoding"]


def latin1_prose() -> str:
    """A reference topic as a latin-1 editor would hold it: straight quotes and dashes, plus a
    sentence of accented words (latin-1 has no curly quotes)."""
    plain = topics["string-methods"].translate(str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": "--", "–": "-"}))
    return plain + "\nGrüße aus Köln: à la carte, déjà vu, naïve façades, señor Müller’s smörgåsbord.\n".replace("’", "'")


@pytest.mark.parametrize("topic", PROSE)
def test_cp1252_prose_reads_back_exactly_and_says_cp1252(tmp_path, topic):
    text = topics[topic]
    data = text.encode("cp1252")
    assert any(b in CP1252_ONLY for b in data)  # curly quotes or dashes: not latin-1 read as UTF-8
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    (tmp_path / f"{topic}.txt").write_bytes(data)
    rec = read_file_as(tmp_path / f"{topic}.txt")
    assert rec["kind"] == "doc" and rec["text"] == text
    assert encoding_of(rec) == "cp1252"
    assert rec["n_bytes"] == len(text.encode("utf-8"))  # the document is held as UTF-8


def test_latin1_prose_reads_back_exactly(tmp_path):
    text = latin1_prose()
    data = text.encode("latin-1")
    assert not any(b in CP1252_ONLY for b in data)
    (tmp_path / "methods.txt").write_bytes(data)
    rec = read_file_as(tmp_path / "methods.txt")
    assert rec["text"] == text
    # without bytes 0x80-0x9f, latin-1 and cp1252 read a file to the same text
    assert encoding_of(rec) in ("cp1252", "iso8859-1")


@pytest.mark.parametrize("bom, codec, recorded", [
    (b"", "utf-8-sig", "utf-8-sig"),
    (b"", "utf-16", "utf-16"),  # Python writes the mark, in this machine's byte order
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
])
def test_a_byte_order_mark_decides_and_is_left_out_of_the_text(tmp_path, bom, codec, recorded):
    text = topics["compound"]
    p = tmp_path / "compound.txt"
    p.write_bytes(bom + text.encode(codec))
    rec = read_file_as(p, fmt="code")
    assert rec["kind"] == "doc" and rec["text"] == text and not rec["text"].startswith("\ufeff")
    assert encoding_of(rec) == recorded
    assert codecs.decode(p.read_bytes(), recorded) == text  # the recorded codec reads the file's bytes to the text


def test_utf8_files_say_utf8_and_keep_their_bytes(tmp_path):
    text = topics["types"]
    (tmp_path / "types.txt").write_text(text, encoding="utf-8")
    rec = read_file_as(tmp_path / "types.txt")
    assert rec["text"] == text and encoding_of(rec) == "utf-8"


def test_the_declared_encoding_reads_what_is_not_utf8_and_utf8_stays_utf8(tmp_path):
    text = topics["specialnames"]
    (tmp_path / "mac.txt").write_bytes(text.encode("mac-roman"))
    (tmp_path / "new.txt").write_text(text, encoding="utf-8")
    (tmp_path / "wide.txt").write_bytes(text.encode("utf-16-le"))  # no mark: NUL bytes everywhere
    mac = read_file_as(tmp_path / "mac.txt", encoding="mac_roman")
    assert mac["text"] == text and encoding_of(mac) == "mac-roman"  # Python's spelling of the name
    new = read_file_as(tmp_path / "new.txt", encoding="mac_roman")
    assert new["text"] == text and encoding_of(new) == "utf-8"
    wide = read_file_as(tmp_path / "wide.txt", encoding="utf-16-le")
    assert wide["text"] == text and encoding_of(wide) == "utf-16-le"
    # undeclared, the same file without its mark looks binary, as it always did
    assert read_file_as(tmp_path / "wide.txt")["reason"] == "binary"


def test_a_declared_encoding_is_not_second_guessed(tmp_path):
    data = topics["compound"].encode("cp1252")
    (tmp_path / "a.txt").write_bytes(data)
    # it is taken as given: latin-1 reads cp1252's curly quotes as C1 control characters
    rec = read_file_as(tmp_path / "a.txt", encoding="latin-1")
    assert rec["text"] == data.decode("latin-1") and encoding_of(rec) == "iso8859-1"
    # one it does not read is quarantined, with both tries in the sentence
    bad = read_file_as(tmp_path / "a.txt", encoding="ascii")
    assert bad["reason"] == "undecodable"
    assert "not valid UTF-8" in bad["detail"] and "not ascii, the source's encoding" in bad["detail"]
    # `encoding: utf-8` turns detection off
    strict = read_file_as(tmp_path / "a.txt", encoding="utf-8")
    assert strict["reason"] == "undecodable" and "the source's encoding is UTF-8" in strict["detail"]


def test_real_binary_files_stay_quarantined(tmp_path):
    py_compile.compile(str(STDLIB / "json" / "decoder.py"), cfile=str(tmp_path / "decoder.pyc"), doraise=True)
    data = (tmp_path / "decoder.pyc").read_bytes()
    assert read_file_as(tmp_path / "decoder.pyc")["reason"] == "binary"  # by its type
    (tmp_path / "decoder.txt").write_bytes(data)  # the same bytes under a text name
    rec = read_file_as(tmp_path / "decoder.txt")
    assert rec["reason"] == "binary" and "NUL" in rec["detail"]
    packed = gzip.compress(" ".join(topics[t] for t in PROSE).encode("utf-8"))
    (tmp_path / "packed.txt").write_bytes(packed)  # a gzip stream not named .gz
    assert read_file_as(tmp_path / "packed.txt")["reason"] == "binary"


def test_the_detector_explains_no_compressed_data_even_without_nul_bytes(tmp_path):
    """Random-looking bytes that escape the NUL check reach the detector, which accepts none."""
    for topic in PROSE + ["string-methods", "typesseq", "objects"]:
        for level in (1, 9):
            data = gzip.compress(topics[topic].encode("utf-8"), compresslevel=level, mtime=0)[10:].replace(b"\x00", b"")
            assert b"\x00" not in data
            decoded = decode_file(data)
            assert decoded.text is None and decoded.reason == "undecodable", (topic, level, decoded.encoding)
    (tmp_path / "noise.txt").write_bytes(data)
    rec = read_file_as(tmp_path / "noise.txt")
    assert rec["reason"] == "undecodable"
    assert "not UTF-8" in rec["detail"] and "no byte-order mark" in rec["detail"] and "encoding:" in rec["detail"]
    # a declared single-byte encoding reads anything; what it reads here is control characters
    forced = read_file_as(tmp_path / "noise.txt", encoding="latin-1")
    assert forced["reason"] == "binary" and "control characters" in forced["detail"]


def test_utf8_with_one_stray_byte_is_quarantined_not_read_as_mojibake(tmp_path):
    good = topics["formatstrings"].encode("utf-8")
    at = good.index(b". ")
    damaged = good[:at] + b"\x92" + good[at + 1:]  # a cp1252 apostrophe where a full stop was
    (tmp_path / "damaged.txt").write_bytes(damaged)
    rec = read_file_as(tmp_path / "damaged.txt")
    assert rec["reason"] == "undecodable"
    assert f"offset {at}" in rec["detail"] and "well-formed UTF-8" in rec["detail"]
    # the same prose in cp1252 is nowhere near the rule's bound, and reads as cp1252
    legacy = topics["formatstrings"].encode("cp1252")
    well_formed, high = utf8_bytes(legacy)
    assert high > 0 and well_formed < MOSTLY_UTF8 * high / 10
    assert decode_file(legacy).encoding == "cp1252"


def test_the_detector_sample_is_the_non_ascii_lines_whole():
    data = "plain line\nthe café’s door\nanother plain line\nnaïve\n".encode("cp1252")
    assert sample(data) == "the café’s door\nnaïve\n".encode("cp1252")
    long_line = ("word " * 30_000 + "é").encode("cp1252")
    cut = sample(long_line, limit=1000)
    assert len(cut) <= 1000 and cut.endswith(b" ")  # cut after a space, never inside a character
