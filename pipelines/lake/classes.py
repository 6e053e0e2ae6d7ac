"""A class-data archive for Spark's JVM: the classes a brickyard session loads, parsed and verified
once and mapped into every later JVM from a file.

A local Spark driver loads some 17,000 classes (Spark, Scala, Delta, Hadoop, Derby) before its
first job, and each command, test session and `brickyard serve` starts one. Java's class-data
sharing (CDS) can keep them in an archive: `-XX:ArchiveClassesAtExit` writes the classes one JVM
loaded when it exits, `-XX:SharedArchiveFile` maps them into the next. Measured on a 2-core
machine: a session starts in about 4 s instead of 6, and its first Delta create, insert and read
take about 8.7 s instead of 11.7.

`brickyard setup` (so `make demo` and `make test`) builds the archive once: a short session in a
scratch lakehouse does the kinds of work the stages do (Delta creates, appends, MERGE, deletes,
change-data-feed reads, joins, windows, Arrow batches through Python), then exits and the JVM
writes what it loaded. Sessions use it when it exists (`jvm_options`); without it they start as
before. The archive is named after what it depends on (the Java runtime, the Spark jars, the Delta
jars, each by path, size and time, as the JVM checks them): another Java, Spark or virtual
environment gets an archive of its own, and a JVM that still finds one unusable ignores it silently. About 240 MB, under the cache folder (`jars.cache_root()`, like the Delta
jars). `BRICKYARD_CLASS_ARCHIVE=0` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import BrickyardError

BUILD_TIMEOUT_S = 600
UNUSED_DAYS = 30  # `build` removes other archives no session has mapped for this long
# a JVM that finds the archive unusable (another Java, another class path) runs without it: quietly
QUIET = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")


def enabled() -> bool:
    return os.environ.get("BRICKYARD_CLASS_ARCHIVE", "1").strip().lower() not in ("0", "off", "false", "no")


def archive_key(jars: list[Path]) -> str | None:
    """What the archive depends on, as a short digest: the Java runtime (its binary and libjvm, by
    path, size and time), pyspark's jars and the Delta jars by full path, size and time, and what
    else spark-submit puts on the class path (the conf folder, Hadoop's and YARN's, an extra class
    path from the environment). None: no Java.

    The JVM checks the class path before it maps an archive: a jar at another path (another
    checkout or virtual environment sharing this cache) or one rewritten since (a reinstall) makes
    it drop the whole archive, silently. Keyed on them, such a change gets an archive of its own.
    (A `spark.driver.extraClassPath` in a config is not in the key: the JVM drops the archive then.)"""
    from .java import find_java

    found = find_java()
    if found is None:
        return None
    import pyspark

    java = Path(found).resolve()
    parts = [str(java)]
    spark_home = Path(pyspark.__file__).parent
    conf = Path(os.environ.get("SPARK_CONF_DIR") or spark_home / "conf")  # first on spark-submit's class path
    parts.append(f"{conf}:{sorted(p.name for p in conf.iterdir()) if conf.is_dir() else None}")
    parts += [f"{v}={os.environ.get(v, '')}" for v in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH")]
    for f in (java, *java.parent.parent.glob("lib/server/libjvm.so"), *sorted((spark_home / "jars").glob("*.jar")),
              *jars):
        f = Path(f).absolute()
        st = f.stat() if f.exists() else None
        parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}" if st else str(f))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def archive_path(jars: list[Path]) -> Path | None:
    from .jars import cache_root

    key = archive_key(jars)
    return None if key is None else cache_root() / "jvm" / f"spark-{key}.jsa"


def jvm_options(jars: list[Path]) -> list[str]:
    """The driver JVM's options that map the archive, when it exists (else none: a missing archive
    file would turn off even the Java runtime's own class sharing)."""
    if not enabled():
        return []
    path = archive_path(jars)
    if path is None or not path.is_file():
        return []
    try:  # its time says when it was last used (see `build`)
        os.utime(path)
    except OSError:  # a cache shared read-only
        pass
    return [f"-XX:SharedArchiveFile={path}", *QUIET]


def build(quiet: bool = False, force: bool = False) -> Path | None:
    """Build the archive if it is missing (or `force`). Returns its path, or None when turned off.
    Runs the warm-up session in a child process, so this process's own session is not involved."""
    from .jars import ensure_delta_jars
    from .java import check_java

    if not enabled():
        return None
    jars = ensure_delta_jars(quiet=quiet)
    path = archive_path(jars)
    if path is None:
        check_java()  # says in one sentence where no `java` was found
        return None  # (found since: the next `brickyard setup` builds it)
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="brickyard-classes-") as scratch:
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        # the child must not map an archive while it writes one
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "BRICKYARD_ENGINE")}
        env["BRICKYARD_CLASS_ARCHIVE"] = "0"
        r = subprocess.run([sys.executable, "-m", "brickyard.pipelines.lake.warmup", str(part), scratch],
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
        if r.returncode != 0 or not part.is_file() or part.stat().st_size == 0:
            part.unlink(missing_ok=True)
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise BrickyardError(f"the JVM class archive could not be built ({tail or 'no output'}); sessions still "
                                 "work without it, only slower to start (BRICKYARD_CLASS_ARCHIVE=0 skips it)")
        os.replace(part, path)  # whole or not at all: other JVMs may map it from now on
    # archives of another Java or Spark that no session has used for a while (another checkout or
    # virtual environment sharing this cache still uses its own, and keeps it fresh)
    for old in path.parent.glob("spark-*.jsa"):
        if old != path and time.time() - old.stat().st_mtime > UNUSED_DAYS * 86400:
            old.unlink(missing_ok=True)
    if not quiet:
        print(f"jvm class archive: built in {time.perf_counter() - t:.0f}s ({path.stat().st_size / 1e6:.0f} MB) at {path}")
    return path
