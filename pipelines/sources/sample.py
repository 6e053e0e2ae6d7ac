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

The parts are declared here; `listing.sample_units` lists their files. Locators are prefixed with
the part (`stdlib/json/decoder.py`), never with this machine's paths.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path


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
