"""The built-in `sample` source: real text and code that every Python installation carries.

So the demo needs no download, the sample draws from what is already on the machine:

    part             what                                            domain  reader
    stdlib           the standard library's .py files                code    code
    package_docs     installed packages' METADATA (their READMEs)    docs    text
    licenses         installed packages' licence files               legal   text
    man_pages        man pages (/usr/share/man, several languages)   docs    text
    share_doc        Debian copyright files (/usr/share/doc)         legal   text

Each part takes up to its budget in megabytes of text. Files are taken in an order fixed by a hash of their
path, so the choice is spread across the part yet the same on every run. Parts whose folder is
missing (no man pages in a slim container) are simply empty. It holds real duplicates (the same
licence in many packages, vendored copies, translated man pages) and several languages.

Locators are prefixed with the part (`stdlib/json/decoder.py`), never with this machine's paths.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import SourceConfig
from pipelines.readers import Unit


@dataclass(frozen=True)
class Part:
    root: str  # a sysconfig path name ("stdlib", "purelib") or an absolute folder
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    domain: str
    fmt: str
    default_mb: float


PARTS: dict[str, Part] = {
    "stdlib": Part("stdlib", ("*.py",), ("site-packages/*", "dist-packages/*"), "code", "code", 6.0),
    "package_docs": Part("purelib", ("*.dist-info/METADATA",), (), "docs", "text", 2.0),
    "licenses": Part(
        "purelib",
        ("*.dist-info/LICEN[CS]E*", "*.dist-info/COPYING*", "*.dist-info/licenses/*"),
        (), "legal", "text", 1.0,
    ),
    "man_pages": Part("/usr/share/man", ("*.gz",), (), "docs", "text", 3.0),
    "share_doc": Part("/usr/share/doc", ("*/copyright",), (), "legal", "text", 1.0),
}


def part_root(part: Part) -> Path:
    if part.root.startswith("/"):
        return Path(part.root)
    return Path(sysconfig.get_paths()[part.root])


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
    from pipelines.sources import units_for_tree

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
