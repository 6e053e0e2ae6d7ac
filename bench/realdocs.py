"""Real documents for the dedup benchmarks, read from files this machine already has (no download),
plus the corpora bench/corpora.sh fetched into .cache/corpora when present.

- `licence_documents()`: licence and copyright texts (Debian's common licences and every package's
  copyright file, the LICENSE / COPYING / NOTICE files of installed Python packages): much exact and
  near-duplicate boilerplate.
- `vendored_documents()`: Python modules vendored under `_vendor/` folders, with the installed
  copies of the same packages: code with real exact and near duplicates (different versions).
- `real_documents(n)`: a deterministic sample of n documents from all of the above plus the Python
  standard library, site-packages sources, C headers, man pages (roff), Perl modules and the
  fetched documentation corpora.

Each document is (name, text); files that are not UTF-8, are empty, or are larger than
`max_bytes` are skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import sysconfig
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PURELIB = Path(sysconfig.get_paths()["purelib"])
STDLIB = Path(sysconfig.get_paths()["stdlib"])
TEXT_SUFFIXES = {".py", ".pyi", ".txt", ".md", ".rst", ".h", ".c", ".cfg", ".toml", ".ini", ".gz", ".pm", ".pl", ".pod"}
LICENCE_NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "copyright")


def read_text(path: Path, max_bytes: int) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
            if len(data) > max_bytes:
                return None
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None
    return text if text.strip() and "\x00" not in text else None


def files(root: Path, pattern: str = "*") -> Iterator[Path]:
    if root.is_dir():
        for p in sorted(root.rglob(pattern)):
            if "__pycache__" not in p.parts and p.is_file():
                yield p


def licence_documents(max_bytes: int = 256 * 1024) -> list[tuple[str, str]]:
    paths = list(files(Path("/usr/share/common-licenses")))
    paths += sorted(Path("/usr/share/doc").glob("*/copyright"))
    paths += [p for p in files(PURELIB) if p.name.startswith(LICENCE_NAMES)]
    return [(str(p), t) for p in paths if (t := read_text(p, max_bytes))]


def vendored_documents(max_bytes: int = 256 * 1024) -> list[tuple[str, str]]:
    vendored = [p for p in files(PURELIB, "*.py") if "_vendor" in p.parts]
    names = {p.parts[p.parts.index("_vendor") + 1].removesuffix(".py") for p in vendored}
    installed = [p for n in sorted(names) for p in files(PURELIB / n, "*.py")]
    return [(str(p), t) for p in vendored + installed if (t := read_text(p, max_bytes))]


def _all_paths() -> Iterator[Path]:
    corpora = REPO / ".cache" / "corpora"
    for root in (PURELIB, STDLIB, Path("/usr/lib/python3"), Path("/usr/include"), Path("/usr/share/doc"),
                 Path("/usr/share/common-licenses"), Path("/usr/share/man"), Path("/usr/share/perl"),
                 corpora / "linux-doc", corpora / "python-doc"):
        for p in files(root):
            if p.suffix in TEXT_SUFFIXES or p.name.startswith(LICENCE_NAMES) or p.name == "METADATA":
                yield p


def real_documents(n: int, max_bytes: int = 16 * 1024, min_bytes: int = 200) -> list[tuple[str, str]]:
    """n documents in a fixed pseudo-random order (by a hash of the path), so that a smaller sample
    is a prefix of a larger one."""
    paths = sorted(_all_paths(), key=lambda p: hashlib.sha1(str(p).encode()).digest())
    docs = []
    for p in paths:
        if len(docs) == n:
            break
        t = read_text(p, max_bytes)
        if t is not None and len(t.encode("utf-8")) >= min_bytes:
            docs.append((str(p), t))
    return docs
