"""Listing sources into units of reading work. Runs on the driver; reads metadata, not documents.

The driver walks each declared source, stats its files and splits the work: a whole file per unit,
byte ranges for large plain JSONL files, one unit per Parquet row group. Workers then read the
units in parallel (see `brickyard.pipelines.stages.ingest`). Only file names and sizes pass through the driver.

Rules while walking:
- symbolic links are never followed; a linked file becomes a `symlink` quarantine entry
- a file whose name is not valid UTF-8 becomes a `bad_name` quarantine entry (its path shown with
  \\xNN escapes); it is not read
- hidden files and folders (`.git`, ...) and `__pycache__` are skipped, and so are files that are
  neither regular files nor links (pipes, sockets, devices: opening a pipe would wait forever);
  the skips are counted by kind (`skipped` of `list_units`), and ingest records the counts in
  its lineage metrics
- `include` / `exclude` are glob patterns on the path relative to the source root, in which `*`
  also crosses folders (`*.py` matches `a/b/c.py`)
- code trees: each file takes the licence of the nearest licence file (LICENSE, COPYING, ...) in
  its folder or above, up to the source root; `NOASSERTION` where there is none
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..config import PipelineConfig, SourceConfig
from ..errors import ConfigError
from .readers import LICENSE_FILE, Unit, license_id
from .sample import PARTS, part_root
from .web import WEB_INCLUDE

DEFAULT_INCLUDE = {
    "jsonl": ["*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.ndjson", "*.ndjson.gz", "*.ndjson.zst",
              "*.json", "*.json.gz", "*.json.zst"],
    "parquet": ["*.parquet"],
    "text": ["*"],
    "code": ["*"],
    "warc": WEB_INCLUDE,
}
SKIP_DIRS = {"__pycache__"}
LICENSE_READ_BYTES = 256 * 1024


def _matcher(patterns: Iterable[str]):
    """One compiled regex for a list of glob patterns: `fnmatchcase` against any of them, in one
    match call per path (a tree of tens of thousands of files is walked on every run)."""
    patterns = list(patterns)
    if not patterns:
        return lambda rel: False
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def walk_files(root: Path, include: list[str], exclude: list[str],
               skipped: Counter | None = None) -> Iterable[tuple[str, os.DirEntry]]:
    """(relative path, entry) for each file under root, without following links, sorted.
    `skipped` counts what is passed over: hidden entries, special files that `include` matches,
    and folders that cannot be listed."""
    skipped = Counter() if skipped is None else skipped
    included, excluded = _matcher(include), _matcher(exclude)
    stack = [root]
    cut = len(str(root).rstrip(os.sep)) + 1
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            skipped["unlistable_folder"] += 1
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                skipped["hidden"] += 1
                continue
            rel = e.path[cut:].replace(os.sep, "/")
            if e.is_dir(follow_symlinks=False):
                if e.name not in SKIP_DIRS:
                    subdirs.append(Path(e.path))
            elif included(rel) and not excluded(rel):
                if e.is_file(follow_symlinks=False) or e.is_symlink():
                    yield rel, e
                else:
                    skipped["special_file"] += 1
        stack.extend(reversed(subdirs))


def printable_name(rel: str) -> str | None:
    """None for a path that is valid UTF-8, else the path with each undecodable byte as \\xNN."""
    try:
        rel.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")


def license_map(root: Path, rels: list[str]) -> dict[str, str]:
    """Folder (relative, '' for the root) -> SPDX id of the licence file found in it."""
    found: dict[str, str] = {}
    for rel in rels:
        name = rel.rsplit("/", 1)[-1]
        if LICENSE_FILE.match(name):
            folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
            try:
                with open(root / rel, "rb") as f:
                    text = f.read(LICENSE_READ_BYTES).decode("utf-8", errors="replace")
            except OSError:
                continue
            spdx = license_id(text)
            # several licence files in one folder: a recognised one wins over an unknown one
            if folder not in found or found[folder] == "LicenseRef-unknown":
                found[folder] = spdx
    return found


def nearest_license(rel: str, licenses: dict[str, str]) -> str:
    parts = rel.split("/")[:-1]
    for i in range(len(parts), -1, -1):
        folder = "/".join(parts[:i])
        if folder in licenses:
            return licenses[folder]
    return "NOASSERTION"


def units_for_tree(
    source: SourceConfig, fmt: str, root: Path, include: list[str], exclude: list[str],
    domain: str, prefix: str, chunk_bytes: int, url_blocklist: str | None = None,
    skipped: Counter | None = None,
) -> list[Unit]:
    files = list(walk_files(root, include, exclude, skipped))
    licenses = {}
    if fmt == "code":  # licence files count even where `include` leaves them out
        names = [r for r, _ in walk_files(root, ["*"], exclude) if LICENSE_FILE.match(r.rsplit("/", 1)[-1])]
        licenses = license_map(root, names)
    units = []
    for rel, entry in files:
        if (shown := printable_name(rel)) is not None:  # Spark and Delta hold UTF-8 strings only
            units.append(Unit(source=source.name, domain=domain, format=fmt, file="", path=prefix + shown,
                              problem="bad_name"))
            continue
        lic = source.license or (nearest_license(rel, licenses) if fmt == "code" else None)
        base = dict(
            source=source.name, domain=domain, format=fmt, file=entry.path, path=prefix + rel,
            text_field=source.text_field, id_field=source.id_field, license=lic, url_blocklist=url_blocklist,
            encoding=source.encoding,
        )
        if entry.is_symlink():
            units.append(Unit(**base, problem="symlink"))
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as e:
            units.append(Unit(**base, problem=f"the file cannot be read: {e.strerror or e}"))
            continue
        base.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        units.extend(split_unit(Unit(**base), chunk_bytes))
    return units


def split_unit(unit: Unit, chunk_bytes: int) -> list[Unit]:
    """Split large plain JSONL files into byte ranges and Parquet files into row groups."""
    if unit.format == "jsonl" and not unit.file.endswith((".gz", ".zst")) and unit.size > chunk_bytes:
        out = []
        for start in range(0, unit.size, chunk_bytes):
            u = Unit(**unit.to_row())
            u.start, u.end = start, min(start + chunk_bytes, unit.size)
            out.append(u)
        return out
    if unit.format == "parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(unit.file).metadata
        except Exception as e:  # a corrupt footer: the whole file is one quarantine entry
            unit.problem = f"not a readable Parquet file: {str(e).splitlines()[0]}"
            return [unit]
        out, first = [], 0
        for rg in range(meta.num_row_groups):
            u = Unit(**unit.to_row())
            u.start, u.end = rg, first
            first += meta.row_group(rg).num_rows
            out.append(u)
        return out
    return [unit]


def list_units(cfg: PipelineConfig, source: SourceConfig, skipped: Counter | None = None) -> list[Unit]:
    chunk = cfg.ingest.jsonl_chunk_bytes
    if source.kind == "sample":

        return sample_units(source, chunk)
    path = cfg.source_path(source)
    if not path.exists():
        raise ConfigError(f"source {source.name!r}: {path} does not exist")
    include = source.include or DEFAULT_INCLUDE[source.kind]
    if path.is_file():
        root, include = path.parent, [path.name]
    else:
        root = path
    blocklist = str(cfg.resolve(source.url_blocklist)) if source.url_blocklist else None
    return units_for_tree(source, source.kind, root, include, source.exclude, source.domain, "", chunk, blocklist, skipped)


def assign_partitions(units: list[Unit], n: int) -> list[int]:
    """Longest-processing-time-first: big units first, each to the least loaded partition."""
    loads = [0] * max(1, n)
    parts = [0] * len(units)
    order = sorted(range(len(units)), key=lambda i: -max(units[i].size, 1))
    for i in order:
        p = min(range(len(loads)), key=loads.__getitem__)
        parts[i] = p
        cost = units[i].size if units[i].end < 0 or units[i].format != "jsonl" else units[i].end - units[i].start
        loads[p] += max(cost, 1024)  # a tiny file still costs an open()
    return parts


# the built-in sample (parts declared in `sample`)


def _order(unit: Unit) -> str:
    return hashlib.sha1(unit.path.encode()).hexdigest()


def _inflated_size(unit: Unit) -> int:
    """Size of the text once read: a gzip file's trailer holds it (mod 2**32)."""
    if unit.file.endswith(".gz") and unit.size >= 18:
        try:
            with open(unit.file, "rb") as f:
                f.seek(-4, 2)
                return int.from_bytes(f.read(4), "little")
        except OSError:
            pass
    return unit.size


def sample_units(source: SourceConfig, chunk_bytes: int) -> list[Unit]:
    units: list[Unit] = []
    for name, part in PARTS.items():
        budget = source.parts.get(name, part.default_mb) * 1e6
        root = part_root(part)
        if budget <= 0 or not root.is_dir():
            continue
        found = units_for_tree(
            source, part.fmt, root, list(part.include), list(part.exclude), part.domain,
            f"{name}/", chunk_bytes,
        )
        taken = 0
        for u in sorted(found, key=_order):
            if u.problem:  # links (man-page aliases, shared doc folders) are not sample content
                continue
            size = _inflated_size(u)
            if taken + size > budget:
                continue
            taken += size
            units.append(u)
    return units
