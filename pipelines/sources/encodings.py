"""The encoding of a text or code file, and its text. Pure Python, no Spark.

`decode_file(data, declared)` takes a file's bytes and the source's `encoding:` (or None) and
decides, stopping at the first rule that holds:

1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE): the file is decoded with it, the mark
   left out of the text;
2. UTF-8 (strict), for a file without NUL bytes in its first 8 KiB;
3. the source's `encoding:`, when it has one: it explains the files that are not UTF-8, and one
   it does not decode is quarantined (nothing is guessed behind the user's back);
4. a detector: `charset_normalizer` proposes encodings, and the one that leaves the least of the
   text garbled is taken if that is under `MAX_CHAOS` (cp1252 wins a near tie, see `detect`).

UTF-8 comes before the declared encoding on purpose: a folder declared cp1252 usually holds UTF-8
files too (saved by newer editors), a legacy file's bytes practically never form valid UTF-8 once
they hold non-ASCII characters, and an ASCII file reads the same either way. So a declared encoding
costs the UTF-8 files of its source nothing. Files in a 7-bit encoding (ISO-2022-JP, HZ, UTF-7)
look like ASCII and are read as UTF-8, escape sequences and all.

A file none of these explains is quarantined: `binary` (NUL bytes in its first 8 KiB, or text
that decodes to control characters) or `undecodable` (with a sentence saying what was tried).

`Decoded.encoding` is the Python codec name that turns the file's bytes into its text:
`utf-8`, `utf-8-sig` (UTF-8 with a byte-order mark), `utf-16` / `utf-32` (with theirs), or a
declared or detected one in Python's spelling (`cp1252`, `iso8859-1`, `koi8-r`, `shift_jis`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

SNIFF_BYTES = 8192  # NUL bytes in this much of the head make a file binary

# The detector's acceptance bound: charset_normalizer's "chaos", the share of the decoded sample's
# characters its mess detectors flag (runs of symbols, unprintable characters, accents piled on
# letters, scripts mixed inside a word, ...), from 0 (clean) to 1. Measured with bench/encodings.py
# (docs/benchmarks.md): real English reST files read right in cp1252 score at most 0.155 (reST
# markup counts as symbols); translated messages in 22 language/encoding pairs and CJK test texts
# read right stay under 0.15; none of 570 pieces of compressed data without NUL bytes is read as
# text, and of 1,285 pieces of binaries found on a Linux machine (gzip files, images, audio) one
# scored under 0.2. It is also charset_normalizer's own default cut-off.
MAX_CHAOS = 0.2
# A single-byte code page cannot be told from its neighbours when a file has a few non-ASCII
# characters (one `à` in a URL), and the detector then breaks the tie by rules of its own (it
# prefers a multi-byte codec, which turns `’s` into one CJK character). cp1252, the most common
# legacy encoding of Western text (browsers read latin-1 labels as cp1252), wins a near tie: when
# its chaos is within CP1252_MARGIN of the least garbled candidate's, plus what CP1252_TIE_CHARS
# flagged characters weigh in the sample (a short sample's chaos moves in big steps: one odd
# character in 200 is 0.5%). Measured on 104 English files in cp1252 and latin-1: all read right,
# against 76 with charset_normalizer's own pick; the price is paid by Central European text
# (cp1250, cp1254, cp1257) and Vietnamese (cp1258), whose letters cp1252 also reads without a flag.
CP1252_MARGIN = 0.01
CP1252_TIE_CHARS = 10
# A file whose non-ASCII bytes are at least this share well-formed UTF-8 sequences is UTF-8 with
# damage (a stray byte, two files joined), not a legacy encoding: it is quarantined rather than
# read whole as mojibake. Measured share in legacy-encoded text: 0 to 2% for Western and Cyrillic
# code pages, at most 48% for CJK ones.
MOSTLY_UTF8 = 0.9
# Control characters (other than tab, line feeds, form feed) in a decoded text: over this share
# it is binary data that happened to decode.
MAX_CONTROL_SHARE = 0.01
SAMPLE_BYTES = 64 * 1024  # how much of the file's non-ASCII lines the detector looks at

# longest first: the UTF-32 LE mark begins with the UTF-16 LE one
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"),
)
_BOM_FIRST_BYTES = {bom[:1] for bom, _, _ in _BOMS}
# guessed without a byte-order mark, these "explain" binary data (measured); they need their mark
# or a declared `encoding:`
_NEEDS_BOM = ["utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_7"]
_HIGH = re.compile(rb"[\x80-\xff]")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Decoded:
    """A file's text and the codec that read it, or (text None) the quarantine reason and sentence."""

    text: str | None
    encoding: str | None = None
    reason: str | None = None
    detail: str | None = None
    utf8: bytes | None = None  # the text's UTF-8 bytes, when the file was already UTF-8

    @classmethod
    def failed(cls, reason: str, detail: str) -> Decoded:
        return cls(None, reason=reason, detail=detail)


def codec_name(encoding: str) -> str:
    """Python's own name of an encoding (`latin_1` -> `iso8859-1`); LookupError if unknown."""
    return codecs.lookup(encoding).name


def _bad_byte(data: bytes, e: UnicodeDecodeError, shift: int = 0) -> str:
    return f"byte 0x{data[e.start + shift]:02x} at offset {e.start + shift}"


def _not_text(text: str, encoding: str) -> Decoded | None:
    """A `binary` verdict for a non-UTF-8 decode that holds NUL or too many control characters."""
    if "\x00" in text[:SNIFF_BYTES]:
        return Decoded.failed("binary", f"read as {encoding}, the text has NUL characters in its head")
    controls = len(_CONTROL.findall(text))
    if controls > MAX_CONTROL_SHARE * len(text):
        share = controls / len(text)
        return Decoded.failed("binary", f"read as {encoding}, {share:.0%} of the characters are control characters: binary data, not text")
    return None


def decode_file(data: bytes, declared: str | None = None) -> Decoded:
    """The text of a whole file and its encoding, or why it is quarantined (see the module doc)."""
    for bom, codec, name in _BOMS if data[:1] in _BOM_FIRST_BYTES else ():
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as e:
                return Decoded.failed("undecodable", f"the file starts with a {name} byte-order mark, but {_bad_byte(data, e)} is not valid {name}")
            if codec == "utf-8-sig":
                return Decoded(text, codec, utf8=data[len(bom):])
            return _not_text(text, codec) or Decoded(text, codec)
    has_nul = b"\x00" in data[:SNIFF_BYTES]
    not_utf8 = "it has NUL bytes in its first 8 KiB"
    if not has_nul:
        try:
            return Decoded(data.decode("utf-8"), "utf-8", utf8=data)
        except UnicodeDecodeError as e:
            not_utf8 = f"{_bad_byte(data, e)} is not valid UTF-8"
    if declared:
        codec = codec_name(declared)
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as e:
            if has_nul:
                return Decoded.failed("binary", f"the file has NUL bytes in its first 8 KiB and does not decode as {codec}, the source's encoding")
            if codec == "utf-8":
                return Decoded.failed("undecodable", f"{not_utf8}, and the source's encoding is UTF-8 (so no other is tried)")
            return Decoded.failed("undecodable", f"not UTF-8 ({not_utf8}) and not {codec}, the source's encoding "
                                                 f"({_bad_byte(data, e)} is not valid {codec}); correct `encoding:` or the file")
        return _not_text(text, codec) or Decoded(text, codec)
    if has_nul:
        return Decoded.failed("binary", "the file has NUL bytes in its first 8 KiB")
    codec, text, why_not = detect(data)
    if codec is None:
        return Decoded.failed("undecodable", f"not UTF-8 ({not_utf8}), no byte-order mark, and {why_not}")
    return _not_text(text, codec) or Decoded(text, codec)


def utf8_bytes(data: bytes) -> tuple[int, int]:
    """(non-ASCII bytes in well-formed UTF-8 sequences, all non-ASCII bytes)."""
    return sum(len(s) for s in _UTF8_SEQUENCE.findall(data)), len(_HIGH.findall(data))


def sample(data: bytes, limit: int = SAMPLE_BYTES) -> bytes:
    """The lines of `data` that hold non-ASCII bytes, about `limit` bytes of them.

    Only those bytes tell one ASCII-compatible encoding from another, so the detector measures
    them rather than a few evenly spaced chunks that may be all ASCII. Whole lines are kept: no
    line feed falls inside a multi-byte character of the encodings detected, so none is cut."""
    parts: list[bytes] = []
    size = end = 0
    for m in _HIGH.finditer(data):
        if m.start() < end:
            continue
        start = data.rfind(b"\n", 0, m.start()) + 1
        end = data.find(b"\n", m.start())
        end = len(data) if end < 0 else end + 1
        line = data[start:end]
        if size + len(line) > limit:
            if not parts:  # one long line: cut after a space, which no multi-byte character holds
                cut = line.rfind(b" ", 0, limit)
                parts.append(line[: cut + 1 if cut > 0 else limit])
            break
        parts.append(line)
        size += len(line)
    return b"".join(parts)


def detect(data: bytes) -> tuple[str | None, str | None, str]:
    """(codec, text, "") for bytes that are not UTF-8, or (None, None, why no encoding was accepted).

    charset_normalizer measures every encoding it knows on the sample (`sample`); those with a
    chaos under MAX_CHAOS are candidates and the least garbled wins, except that cp1252 wins a
    near tie (CP1252_MARGIN). The winner must decode the whole file, not only the sample."""
    well_formed, high = utf8_bytes(data)
    if well_formed >= MOSTLY_UTF8 * high:
        return None, None, (f"{well_formed} of its {high} non-ASCII bytes are well-formed UTF-8: a UTF-8 file with "
                            "damage (a stray byte, or two files joined), which no other encoding reads; repair the bytes")
    # imported here: only files that are not UTF-8 pay for it
    from charset_normalizer import from_bytes

    chunk = sample(data)
    options = dict(steps=1, chunk_size=max(1, len(chunk)), threshold=MAX_CHAOS, cp_exclusion=_NEEDS_BOM)
    chaos = {codec_name(m.encoding): m.chaos for m in from_bytes(chunk, **options)}
    if "cp1252" not in chaos:
        chaos.update((codec_name(m.encoding), m.chaos) for m in from_bytes(chunk, cp_isolation=["cp1252"], **options))
    ranked = sorted(chaos, key=lambda c: (chaos[c], c))
    if "cp1252" in chaos and chaos["cp1252"] <= chaos[ranked[0]] + CP1252_MARGIN + CP1252_TIE_CHARS / len(chunk):
        ranked.remove("cp1252")
        ranked.insert(0, "cp1252")
    for codec in ranked:
        try:
            return codec, data.decode(codec), ""
        except UnicodeDecodeError:
            continue  # it read the sample, not the whole file
    return None, None, (f"no encoding the detector knows reads it with under {MAX_CHAOS:.0%} of the text garbled; "
                        "if it is text, name its encoding with `encoding:` on the source")
