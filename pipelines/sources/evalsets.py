"""Evaluation sets: their files listed on the driver, their items read on the workers.

An evaluation set (`decontaminate.eval_sets` in the config) is a file or a folder of files:

    jsonl    one item per line (a JSON object); `fields` name the fields that hold its text
    parquet  one item per row; `fields` likewise (top-level columns, or `column.key` inside a struct)
    text     one item per paragraph (blank lines separate paragraphs), each paragraph one text
    sample   built by brickyard: passages of this machine's text (for the demo, see `sample_items`)

Compressed files (`.gz`, `.zst`) are read transparently. Without `format`, each file's extension
says (.jsonl/.ndjson/.json, .parquet, .txt/.text/.md); in a folder, a file whose extension says
nothing is refused, so that an item is never skipped unseen. Hidden files are passed over.

An item's text comes in segments: each named field, and each element of a list field (ARC's
`choices.text`, MMLU's `choices`) is a segment of its own, so that n-grams never run from one
answer into the next. A segment is normalized as curate normalizes text. An item's id is its
`id_field`, else `FILE:LINE` (jsonl), `FILE#row=N` (parquet) or `FILE:LINE` of the paragraph's first
line (text), FILE relative to the set's folder. An item whose fields hold no text has no segments:
the stage counts it as empty. A line that is not a JSON object, or an item without its `id_field`,
stops the run with one sentence naming the file and line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import EvalSetConfig, eval_format_of
from ..errors import ConfigError

SAMPLE_ITEMS = 40  # passages of a sample evaluation set when `items` is unset
SAMPLE_WORDS = (40, 60)  # a sample passage: the first paragraph of at least 40 words, cut to 60
_LETTERS = re.compile(r"^[(\"']?[A-Za-z][a-z]*[.,;:!?)\"']*$")  # a plain word, maybe with punctuation


class EvalSetError(ValueError):
    """An evaluation file that cannot be read as declared; the message names the file and line."""


@dataclass(frozen=True)
class EvalFile:
    eval_set: str
    file: str  # absolute path on disk
    rel: str  # as item ids show it: relative to the set's folder, or the file's name
    format: str  # jsonl / parquet / text
    size: int
    mtime_ns: int

    def to_row(self) -> dict:
        return asdict(self)


def list_files(s: EvalSetConfig, path: Path, where: str) -> list[EvalFile]:
    """The files of one evaluation set, sorted; `where` names it in errors."""
    if not path.exists():
        raise ConfigError(f"{where}.path: {path} does not exist; point it at the evaluation set's file or folder")
    if path.is_file():
        found = [(path.name, path)]
    else:
        found = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    p = Path(dirpath) / name
                    found.append((str(p.relative_to(path)), p))
        found.sort()
        if not found:
            raise ConfigError(f"{where}.path: the folder {path} holds no files")
    out = []
    for rel, p in found:
        fmt = s.format or eval_format_of(p.name)
        if fmt is None:
            raise ConfigError(f"{where}: cannot tell the format of {rel} from its name; set format (jsonl, parquet or text) "
                              "or give the file a .jsonl, .parquet or .txt extension")
        if fmt in ("jsonl", "parquet") and not s.fields:
            raise ConfigError(f"{where}: {rel} is a {fmt} file, so the set needs 'fields', the fields that hold an item's text")
        st = p.stat()
        out.append(EvalFile(s.name, str(p), rel, fmt, st.st_size, st.st_mtime_ns))
    return out


def _open(file: str):
    low = file.lower()
    if low.endswith(".gz"):
        return gzip.open(file, "rb")
    if low.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(file, "rb"), read_across_frames=True, closefd=True))
    return open(file, "rb")


def field_texts(value, path: list[str]) -> list[str]:
    """The texts at a dotted path inside a record's value: a string is one, a list gives each element
    (mappings in it followed along the rest of the path), numbers count as text; None and missing
    keys give nothing."""
    if isinstance(value, list):
        return [t for v in value for t in field_texts(v, path)]
    if path:
        return field_texts(value.get(path[0]), path[1:]) if isinstance(value, dict) else []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return []
    if isinstance(value, int | float):
        return [str(value)]
    return []


def _segments(record: dict, fields: list[str]) -> list[str]:
    from ..text.signals import normalize_text

    out = []
    for f in fields:
        out += [t for t in (normalize_text(x) for x in field_texts(record, f.split("."))) if t]
    return out


def _item_id(record: dict, id_field: str | None, fallback: str, where: str) -> str:
    if id_field is None:
        return fallback
    value = record.get(id_field)
    if value is None or isinstance(value, dict | list):
        raise EvalSetError(f"{where} has no usable {id_field!r} (the set's id_field); give every item an id, or drop id_field")
    return str(value)


def read_items(f: EvalFile, fields: list[str], id_field: str | None) -> Iterator[tuple[str, list[str]]]:
    """(item id, segments) for every item of one evaluation file."""
    if f.format == "jsonl":
        with _open(f.file) as stream:
            for line_no, raw in enumerate(stream, 1):
                if not raw.strip():
                    continue
                where = f"{f.eval_set}: {f.rel} line {line_no}"
                try:
                    record = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as e:
                    raise EvalSetError(f"{where} is not valid JSON ({str(e).split(':')[0]}); fix or remove the line") from None
                if not isinstance(record, dict):
                    raise EvalSetError(f"{where} is not a JSON object; every line must be one item")
                yield _item_id(record, id_field, f"{f.rel}:{line_no}", where), _segments(record, fields)
    elif f.format == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(f.file)
        except Exception as e:
            raise EvalSetError(f"{f.eval_set}: {f.rel} is not a readable Parquet file ({str(e).splitlines()[0]})") from None
        top = sorted({x.split(".")[0] for x in fields} | ({id_field} if id_field else set()))
        columns = [c for c in top if c in pf.schema_arrow.names]
        row = 0
        for batch in pf.iter_batches(columns=columns, batch_size=4096):
            for record in batch.to_pylist():
                yield _item_id(record, id_field, f"{f.rel}#row={row}", f"{f.eval_set}: {f.rel} row {row}"), _segments(record, fields)
                row += 1
    else:
        with _open(f.file) as stream:
            text = stream.read().decode("utf-8", errors="replace")
        for line, para in paragraphs(text):
            yield f"{f.rel}:{line}", _segments({"p": para}, ["p"])


def paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """(line number of its first line, paragraph) for each paragraph: blank lines separate them."""
    start, lines = 0, []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not lines:
                start = i
            lines.append(line)
        elif lines:
            yield start, "\n".join(lines)
            lines = []
    if lines:
        yield start, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The sample evaluation set (the demo's)
# ---------------------------------------------------------------------------------------------


def sample_items(parts: dict[str, float], n_items: int = SAMPLE_ITEMS) -> list[dict]:
    """A small evaluation set built from this machine's text, the same on every run: `n_items`
    passages (the first paragraph of at least 40 words of a document, cut to 60 words), half of them
    from documents the built-in sample source with these `parts` reads (so a build of that sample
    holds them, as a crawl holds a benchmark's source pages), half from documents of the same parts
    that it does not read. Passages come from English text (package READMEs and the man pages of
    /usr/share/man/man*), read as ingest reads them. Each item: {"id": its document's path, "passage"}."""
    from ..config import SourceConfig
    from ..text.signals import normalize_text
    from .listing import sample_units
    from .readers import read_unit

    names = ("package_docs", "man_pages")
    chosen = SourceConfig(name="sample", kind="sample", parts={p: parts.get(p, 0.0) for p in names} | {"stdlib": 0, "licenses": 0, "share_doc": 0})
    every = SourceConfig(name="sample", kind="sample", parts={p: 1e9 for p in names} | {"stdlib": 0, "licenses": 0, "share_doc": 0})
    english = ("package_docs/", "man_pages/man")
    inside = [u for u in sample_units(chosen, 1 << 30) if u.path.startswith(english)]
    taken = {u.path for u in inside}
    outside = [u for u in sample_units(every, 1 << 30) if u.path.startswith(english) and u.path not in taken]
    items: list[dict] = []
    seen: set[str] = set()  # passages that open alike (man pages share boilerplate) are taken once
    quotas = [(pool, part, want) for pool, half in ((inside, n_items // 2), (outside, n_items - n_items // 2))
              for part, want in zip(english, (half // 2, half - half // 2), strict=True)]
    for pool, part, want in quotas:
        # a fixed order spread over the part (a hash of the path), at most 25 documents read per passage
        units = sorted((u for u in pool if u.path.startswith(part)), key=lambda u: hashlib.sha1(u.path.encode()).hexdigest())
        got = 0
        for u in units[: want * 25]:
            if got >= want:
                break
            text = next((r["text"] for r in read_unit(u, 1 << 22, 1 << 26) if r["kind"] == "doc"), None)
            passage = _passage(normalize_text(text)) if text else None
            opening = " ".join(passage.split()[:12]) if passage else ""
            if passage and opening not in seen:
                seen.add(opening)
                items.append({"id": u.path, "passage": passage})
                got += 1
    return items


def _passage(text: str) -> str | None:
    low, high = SAMPLE_WORDS
    for _, para in paragraphs(text):
        words = para.split()
        if len(words) >= low and sum(bool(_LETTERS.match(w)) for w in words) >= 0.8 * len(words):
            return " ".join(words[:high])
    return None


def ensure_sample(path: Path, parts: dict[str, float], n_items: int) -> None:
    """The sample evaluation set at `path`, built from this machine's files the first time and kept
    from then on: an evaluation set should not move when packages are installed or removed, and
    building it lists every folder the sample reads (about 5 s on a 2-core machine, which each
    decontaminate run, a no-op included, paid before). Built again when the sample's parts or the
    number of items change (recorded beside it in `<name>.params.json`), or when it is deleted."""
    params = path.with_name(path.name + ".params.json")
    wanted = json.dumps({"parts": parts, "items": n_items}, sort_keys=True)
    if path.is_file() and params.is_file() and params.read_text() == wanted:
        return
    write_sample(path, sample_items(parts, n_items))
    params.write_text(wanted)


def write_sample(path: Path, items: list[dict]) -> None:
    """Write a sample evaluation set as JSONL, leaving the file untouched when it holds the same items
    (its unchanged size and time let the next run see at once that nothing changed)."""
    data = "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in items).encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
