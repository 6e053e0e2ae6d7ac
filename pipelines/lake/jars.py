"""The Delta Lake jars: resolved from Maven Central once, then used from a local cache.

delta-spark's pip package holds only the Python API; the JVM side comes from Maven. Rather than
letting every session resolve `spark.jars.packages` through Ivy (network on each cold start, and a
bare `JAVA_GATEWAY_EXITED` when it fails), `make setup` resolves them once with Spark's own Ivy,
copies them into a cache folder and writes a manifest. Sessions then pass the files as
`spark.jars` and start offline.

Cache location: `$BRICKYARD_JARS_DIR` if set (a folder of jars you provide, e.g. from
`mvn dependency:copy`, works too), else `$BRICKYARD_CACHE/jars/<artifact>-<version>`, where
`BRICKYARD_CACHE` defaults to `$XDG_CACHE_HOME/brickyard` or `~/.cache/brickyard`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import BrickyardError

SCALA_VERSION = "2.13"
MANIFEST = "jars.json"


def cache_root() -> Path:
    if os.environ.get("BRICKYARD_CACHE"):
        return Path(os.environ["BRICKYARD_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "brickyard"


def delta_coordinate() -> str:
    """Maven coordinate of the Delta jar matching the installed delta-spark and pyspark.

    Same rule as delta's `configure_spark_with_delta_pip`: the artifact name carries Spark's
    major.minor version (delta-spark_4.2_2.13) and the version is the pip package's.
    """
    import pyspark

    delta_version = importlib.metadata.version("delta-spark")
    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_{SCALA_VERSION}:{delta_version}"


def jar_dir() -> Path:
    if os.environ.get("BRICKYARD_JARS_DIR"):
        return Path(os.environ["BRICKYARD_JARS_DIR"]).expanduser()
    _, artifact, version = delta_coordinate().split(":")
    return cache_root() / "jars" / f"{artifact}-{version}"


def cached_jars() -> list[Path] | None:
    """The cached jar files, or None when the cache is missing or incomplete."""
    d = jar_dir()
    manifest = d / MANIFEST
    if manifest.exists():
        try:
            names = [j["name"] for j in json.loads(manifest.read_text())["jars"]]
        except (ValueError, KeyError, TypeError):
            return None
        files = [d / n for n in names]
        return files if files and all(f.is_file() for f in files) else None
    if os.environ.get("BRICKYARD_JARS_DIR"):  # a folder the user filled by hand
        files = sorted(d.glob("*.jar"))
        if any(f.name.startswith(("delta-spark", "io.delta_delta-spark")) for f in files):
            return files
    return None


def _spark_submit() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "bin" / "spark-submit"


def _failure_reason(log: str) -> str:
    m = re.search(r"unresolved dependency: ([^\]\n]+)", log)
    if m:
        reason = f"unresolved dependency {m.group(1).strip()}"
    elif "UnknownHost" in log or "not found. url=" in log:
        reason = "the repository host could not be reached"
    else:
        lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
        reason = lines[-1] if lines else "spark-submit failed without output"
    return reason


def resolve_delta_jars(ivy_settings: Path | None = None, quiet: bool = False) -> list[Path]:
    """Resolve the Delta jars and their dependencies with Spark's Ivy, and fill the cache.

    `ivy_settings` points Ivy at other repositories (a mirror; tests use an unreachable one).
    """
    from .java import check_java

    check_java()
    coordinate = delta_coordinate()
    target = jar_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ivy-", dir=target) as ivy:
        noop = Path(ivy) / "noop.py"
        noop.write_text("")
        cmd = [
            str(_spark_submit()),
            "--packages", coordinate,
            "--conf", f"spark.jars.ivy={ivy}",
        ]
        if ivy_settings is not None:
            cmd += ["--conf", f"spark.jars.ivySettings={ivy_settings}"]
        cmd.append(str(noop))
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
        if not quiet:
            print(f"resolving {coordinate} and its dependencies from Maven Central ...", flush=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        resolved = sorted((Path(ivy) / "jars").glob("*.jar"))
        if proc.returncode != 0 or not resolved:
            raise BrickyardError(
                f"Could not fetch the Delta Lake jars ({coordinate}) from Maven Central: "
                f"{_failure_reason(proc.stdout + proc.stderr)}. Check that this machine can reach "
                "Maven Central and run `make setup` again, or put the jars in a folder and point "
                "BRICKYARD_JARS_DIR at it."
            )
        entries = []
        for jar in resolved:
            dest = target / jar.name
            shutil.move(str(jar), dest)
            entries.append({"name": jar.name, "sha256": hashlib.sha256(dest.read_bytes()).hexdigest()})
    tmp = target / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"coordinate": coordinate, "jars": entries}, indent=1))
    os.replace(tmp, target / MANIFEST)  # the manifest appears last: a partial cache is never used
    if not quiet:
        print(f"cached {len(entries)} jars in {target}")
    return [target / e["name"] for e in entries]


def ensure_delta_jars(quiet: bool = False) -> list[Path]:
    return cached_jars() or resolve_delta_jars(quiet=quiet)
