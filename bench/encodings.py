"""Legacy encodings on real files: how many the text reader gets back exactly, how many it reads
wrong or quarantines, and what it costs on the UTF-8 files that never needed detection.

    bench/corpora.sh python-doc shakespeare
    .venv/bin/python bench/encodings.py [--files 100] [--repeat 5]

Sets, each written to a temporary folder and read with brickyard's text reader (`read_unit`, one
core, no Spark):
- english: the first N of the Python documentation's reST sources (python-doc) that hold non-ASCII
  characters cp1252 can hold (curly quotes, dashes, accented names), re-encoded in turn to cp1252,
  latin-1 (cp1252 where the file has characters latin-1 lacks), UTF-16 with its byte-order mark,
  or left UTF-8;
- shakespeare (when fetched): the first N plays and poems, re-encoded the same way; most are
  ASCII, whose bytes no single-byte re-encoding changes, so it is counted apart;
- languages (where /usr/share/locale holds translations): translated messages of installed
  programs in 22 language / legacy-encoding pairs, to show where detection is weak.

Before this change every file that is not UTF-8 was quarantined (`invalid_utf8`). A file counts
as recovered when its text equals the original, character for character.
"""

from __future__ import annotations

import argparse
import codecs
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PYDOC = REPO / ".cache/corpora/python-doc/usr/share/doc/python3.11/html/_sources"
SHAKESPEARE = REPO / ".cache/corpora/shakespeare"
LOCALE = Path("/usr/share/locale")
LANGUAGES = [("de", "cp1252"), ("fr", "cp1252"), ("es", "cp1252"), ("pt", "cp1252"), ("pl", "cp1250"),
             ("cs", "cp1250"), ("hu", "cp1250"), ("tr", "cp1254"), ("lt", "cp1257"), ("vi", "cp1258"),
             ("el", "cp1253"), ("ru", "cp1251"), ("ru", "koi8_r"), ("uk", "cp1251"), ("bg", "cp1251"),
             ("he", "cp1255"), ("ar", "cp1256"), ("ja", "shift_jis"), ("ja", "euc_jp"), ("zh_CN", "gbk"),
             ("zh_TW", "big5"), ("ko", "euc_kr")]


def fits(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def reencode(i: int, text: str) -> tuple[str, bytes]:
    """The i-th file's encoding in the rotation, and its bytes."""
    kind = ("cp1252", "latin-1", "utf-16", "utf-8")[i % 4]
    if not fits(text, kind):  # latin-1 lacks curly quotes and dashes; what cp1252 lacks stays UTF-8
        kind = "cp1252" if fits(text, "cp1252") else "utf-8"
    return kind, text.encode(kind)


def mo_messages(path: Path) -> str:
    """The translated strings of a gettext catalogue (.mo), one per line."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xde\x12\x04\x95" else ">"
    n, _, trans = struct.unpack(order + "3I", data[8:20])
    out = []
    for k in range(1, n):  # entry 0 is the catalogue's header
        length, offset = struct.unpack(order + "2I", data[trans + 8 * k: trans + 8 * k + 8])
        out.append(data[offset: offset + length].decode("utf-8", "replace").replace("\x00", "\n"))  # plural forms
    return "\n".join(out)


def language_texts(lang: str, limit: int = 12) -> list[str]:
    texts = []
    for p in sorted((LOCALE / lang / "LC_MESSAGES").glob("*.mo")):
        try:
            t = mo_messages(p)
        except (struct.error, OSError):
            continue
        if len(t) >= 3000:
            texts.append(t[:20000])
        if len(texts) == limit:
            break
    return texts


def read_back(folder: Path, written: list[tuple[str, str, str, bytes]]) -> Counter:
    """Write each (name, encoding, text, bytes), read it with the text reader, count the outcomes."""
    from brickyard.pipelines.sources.readers import Unit, read_unit

    outcome: Counter = Counter()
    for name, enc, text, data in written:
        p = folder / name
        p.write_bytes(data)
        st = p.stat()
        [rec] = read_unit(Unit(source="b", domain="docs", format="text", file=str(p), path=name,
                               size=st.st_size, mtime_ns=st.st_mtime_ns), 1 << 26, 1 << 30)
        # a UTF-8 file's byte-order mark is not text (UTF-16 and UTF-32 get a mark of their own)
        expected = text.removeprefix("\ufeff") if data.startswith(codecs.BOM_UTF8) else text
        verdict = rec["reason"] if rec["kind"] == "quarantine" else "recovered" if rec["text"] == expected else "read wrong"
        outcome[(enc, verdict)] += 1
    return outcome


def show(title: str, outcome: Counter) -> None:
    encs = sorted({e for e, _ in outcome})
    total = Counter()
    print(f"\n{title}")
    for e in encs:
        row = {v: n for (x, v), n in outcome.items() if x == e}
        total.update(row)
        print(f"  {e:12s} " + ", ".join(f"{n} {v}" for v, n in sorted(row.items())))
    print("  all          " + ", ".join(f"{n} {v}" for v, n in sorted(total.items())))


def detector_alone(data: bytes) -> str | None:
    """charset_normalizer's own pick on the same sample, without brickyard's cp1252 preference."""
    from brickyard.pipelines.sources.encodings import MAX_CHAOS, sample
    from charset_normalizer import from_bytes

    chunk = sample(data)
    best = from_bytes(chunk, steps=1, chunk_size=len(chunk), threshold=MAX_CHAOS).best()
    return best.encoding if best else None


def chaos_of(data: bytes, encoding: str) -> float:
    """charset_normalizer's chaos for `data` read in `encoding`, measured as the reader measures it."""
    from brickyard.pipelines.sources.encodings import sample
    from charset_normalizer import from_bytes

    chunk = sample(data)
    best = from_bytes(chunk, steps=1, chunk_size=len(chunk), threshold=1.0, cp_isolation=[encoding]).best()
    return best.chaos if best else 1.0


def binary_samples(texts: list[str]) -> list[bytes]:
    """Real compressed data (the texts packed with gzip, bz2 and lzma) cut into 256 B, 1 KB and
    8 KB pieces with their NUL bytes taken out: binary that slips past the NUL check."""
    import bz2
    import gzip
    import lzma

    out = []
    for k, text in enumerate(texts):
        packed = [gzip.compress, bz2.compress, lzma.compress][k % 3](text.encode("utf-8"))
        for size in (256, 1000, 8000):
            for start in range(0, max(1, len(packed) - size), max(size, len(packed) // 4)):
                out.append(packed[start: start + size].replace(b"\x00", b""))
    return out


def old_decision(data: bytes) -> str | None:
    """The reader's decoding before encodings were detected: NUL check, BOM strip, strict UTF-8."""
    if b"\x00" in data[:8192]:
        return None
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def best_of(repeat: int, *fns) -> list[float]:
    """The best time of each function over `repeat` rounds, the functions taking turns in each
    round (a shared machine's load then weighs on all of them alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100, help="files per set")
    ap.add_argument("--repeat", type=int, default=20, help="timing rounds; the best counts")
    args = ap.parse_args()
    if not PYDOC.is_dir():
        print(f"python-doc not found at {PYDOC}; run bench/corpora.sh python-doc first", file=sys.stderr)
        return 2

    from brickyard.pipelines.sources.encodings import decode_file
    from brickyard.pipelines.sources.readers import Unit, read_unit

    english = []
    for p in sorted(PYDOC.rglob("*.txt")):
        text = p.read_text("utf-8")
        if text.isascii() or not fits(text, "cp1252"):
            continue
        english.append((p, text))
        if len(english) == args.files:
            break
    with tempfile.TemporaryDirectory(prefix="brickyard-bench-enc-") as tmp:
        folder = Path(tmp)
        written = [(f"e{i}.txt", enc, text, data) for i, (_, text) in enumerate(english) for enc, data in [reencode(i, text)]]
        print(f"english: {len(english)} python-doc reST files with non-ASCII characters, "
              f"{sum(len(t) for _, t in english) / 1e6:.1f} M characters; before: "
              f"{sum(old_decision(d) is None for *_, d in written)} of them quarantined")
        show("english, re-encoded in turn", read_back(folder, written))
        every = [(f"x{i}-{enc}.txt", enc, text, text.encode(enc))
                 for i, (_, text) in enumerate(english) for enc in ("cp1252", "latin-1") if fits(text, enc)]
        show(f"english, every file in each legacy encoding it fits ({len(every)} files)", read_back(folder, every))
        alone = sum(1 for *_, text, data in every if (e := detector_alone(data)) and data.decode(e) == text)
        print(f"  charset_normalizer's own pick on the same samples: {alone} of {len(every)} recovered")
        worst = max(chaos_of(data, "cp1252") for *_, data in every)
        print(f"  chaos of these files read in cp1252 (the right text): at most {worst:.3f}")
        pieces = binary_samples([text for _, text in english])
        taken = sum(decode_file(b).text is not None for b in pieces)
        print(f"\nbinary: {len(pieces)} pieces of gzip, bz2 and lzma data without NUL bytes: {taken} read as text")

        if SHAKESPEARE.is_dir():
            plays = [(p, p.read_text("utf-8")) for p in sorted(SHAKESPEARE.rglob("*.txt"))][: args.files]
            sw = [(f"s{i}.txt", enc, text, data) for i, (_, text) in enumerate(plays) for enc, data in [reencode(i, text)]]
            moved = sum(1 for _, enc, text, data in sw if data != text.encode("utf-8"))
            print(f"\nshakespeare: {len(plays)} files, {sum(any(ord(c) > 127 for c in t) for _, t in plays)} with "
                  f"non-ASCII characters; re-encoding changed the bytes of {moved}; before: "
                  f"{sum(old_decision(d) is None for *_, d in sw)} quarantined")
            show("shakespeare, re-encoded in turn", read_back(folder, sw))

        if LOCALE.is_dir():
            lw = []
            for lang, enc in LANGUAGES:
                for k, text in enumerate(language_texts(lang)):
                    data = text.encode(enc, "ignore")
                    lw.append((f"{lang}-{enc}-{k}.txt", f"{lang}/{enc}", data.decode(enc), data))
            if lw:
                before = sum(old_decision(d) is None for *_, d in lw)
                show(f"languages: translated messages, {len(lw)} files; before: {before} quarantined", read_back(folder, lw))

        # cost on UTF-8 files: the decision alone, in memory, and the whole reader, from disk
        utf8 = [text.encode("utf-8") for _, text in english]
        mb = sum(map(len, utf8)) / 1e6
        t_old, t_new = best_of(args.repeat, lambda: [old_decision(d) for d in utf8], lambda: [decode_file(d) for d in utf8])
        units = []
        for i, data in enumerate(utf8):
            p = folder / f"u{i}.txt"
            p.write_bytes(data)
            st = p.stat()
            units.append(Unit(source="b", domain="docs", format="text", file=str(p), path=p.name,
                              size=st.st_size, mtime_ns=st.st_mtime_ns))
        [t_read] = best_of(args.repeat, lambda: [list(read_unit(u, 1 << 26, 1 << 30)) for u in units])
        legacy = [d for _, enc, _, d in written if enc in ("cp1252", "latin-1")]
        [t_detect] = best_of(3, lambda: [decode_file(d) for d in legacy])
    print(f"\nUTF-8 files ({len(utf8)}, {mb:.1f} MB), one core:")
    print(f"  decision before (NUL check, BOM, strict UTF-8)  {mb / t_old:8.0f} MB/s")
    print(f"  decision now (decode_file)                      {mb / t_new:8.0f} MB/s   ratio {t_old / t_new:.2f}")
    print(f"  the whole text reader (read_unit, from disk)    {mb / t_read:8.0f} MB/s")
    lmb = sum(map(len, legacy)) / 1e6
    print(f"files that need the detector ({len(legacy)}, {lmb:.1f} MB): {1000 * t_detect / len(legacy):.1f} ms a file, "
          f"{lmb / t_detect:.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
