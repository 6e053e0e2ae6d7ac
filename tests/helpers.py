"""Test inputs built from real files that every Python installation carries."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def real_metadata_texts(n: int) -> list[str]:
    """README prose of installed packages (their METADATA files), longest first."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    texts = []
    for p in sorted(purelib.glob("*.dist-info/METADATA")):
        t = p.read_text(encoding="utf-8", errors="strict")
        if len(t) > 2000:
            texts.append(t)
    texts.sort(key=len, reverse=True)
    return texts[:n]


def copy_stdlib_package(dest: Path, package: str = "json") -> list[Path]:
    """A real code tree: a stdlib package plus the standard library's own licence file."""
    shutil.copytree(STDLIB / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(STDLIB / "LICENSE.txt", dest / "LICENSE.txt")
    return sorted((dest / package).rglob("*.py"))


def write_jsonl(path: Path, records: list, compress: str | None = None) -> None:
    """Records are dicts (dumped) or raw bytes/str lines (written as they are)."""
    lines = []
    for r in records:
        if isinstance(r, bytes):
            lines.append(r)
        elif isinstance(r, str):
            lines.append(r.encode())
        else:
            lines.append(json.dumps(r).encode())
    data = b"\n".join(lines) + b"\n"
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zstd":
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


def clean_env() -> dict:
    """This process's environment without the MLflow store earlier tests pointed MLflow at (a
    subprocess then uses its own lakehouse's store)."""
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
