"""What a Spark driver on this machine needs before it starts: its settings and the checks of its
lakehouse. Used by a local session (`session.get_spark`) and by the lakehouse's server (`server`),
whose JVM is such a driver."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from ..config import SparkSettings
from ..errors import BrickyardError
from .classes import jvm_options


def check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as e:
        raise BrickyardError(
            f"The lakehouse root {root} is not writable ({e.strerror or e}); choose another folder "
            "with --lakehouse or BRICKYARD_LAKEHOUSE, or fix its permissions."
        ) from None


def check_free_space(root: Path, min_mb: float = 256.0) -> None:
    """Refuse to start a job on a nearly full filesystem ($BRICKYARD_MIN_FREE_MB sets the floor)."""
    min_mb = float(os.environ.get("BRICKYARD_MIN_FREE_MB", min_mb))
    free_mb = shutil.disk_usage(root).free / 2**20
    if free_mb < min_mb:
        raise BrickyardError(
            f"The lakehouse {root} has {free_mb:,.0f} MB free on its filesystem, below the {min_mb:,.0f} MB "
            "a job needs to write and commit safely; free space, or choose another --lakehouse."
        )


def check_lakehouse_free(root: Path, wait_s: float = 30.0) -> None:
    """Derby admits one driver per metastore; it holds an OS lock on dbex.lck while open.

    Probing that lock first turns Derby's long "Another instance of Derby may have already
    booted the database" trace into one sentence. A driver that has just finished holds the lock
    for a moment while its JVM exits (after its Python process), so a busy lock is retried for
    `wait_s` seconds (or $BRICKYARD_LOCK_WAIT_S) before giving up: back-to-back runs just work.
    """
    import fcntl
    import time

    wait_s = float(os.environ.get("BRICKYARD_LOCK_WAIT_S", wait_s))
    lock = root / "metastore_db" / "dbex.lck"
    if not lock.exists():
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            return  # unreadable lock file: let Derby speak for itself
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise BrickyardError(
                    f"The lakehouse {root} is in use by another brickyard process (its local metastore "
                    "admits one at a time); wait for that one to finish, or use another --lakehouse."
                ) from None
        finally:
            os.close(fd)
        time.sleep(0.5)


def default_parallelism() -> int:
    return os.cpu_count() or 2


# a JVM option choosing (or refusing) a garbage collector
GC_OPTION = re.compile(r"-XX:[+-]Use(?:Serial|Parallel|ParallelOld|G1|Z|Shenandoah|Epsilon|ConcMarkSweep)GC\b")
JVM_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")  # read by every JVM


# The optimizing compiler (C2) compiles a method after 10 times the calls and loop turns the JVM
# waits for by default (its first compiler, C1, is left as it is). A driver lives minutes and runs
# many small queries, each with classes generated for it: with the defaults, compiling took about a
# third of the demo's CPU, four fifths of that in C2. Measured on 2 cores, the demo's data stages
# twice each way: 229 and 248 CPU-seconds with the defaults, 187 and 206 with these (17% less),
# 5-7% less time. Three times the defaults saved half as much; thirty times, and C1 alone
# (`-XX:TieredStopAtLevel=1`), ran slower. A large job's hot loops pass these counts in
# milliseconds. Options of the config or the JVM's environment that set compilation are used instead.
LATE_C2 = ("-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
           "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=400000")
JIT_OPTION = re.compile(r"-XX:(?:Tier\w*Threshold|TieredStopAtLevel|[+-]TieredCompilation|CompileThresholdScaling)\b")


def _options_given(conf: dict[str, str]) -> list[str]:
    """The config's driver options and the JVM's own environment variables."""
    return [conf.get("spark.driver.extraJavaOptions", ""), conf.get("spark.driver.defaultJavaOptions", ""),
            *(os.environ.get(v, "") for v in JVM_OPTION_VARIABLES)]


def collector_chosen(conf: dict[str, str]) -> bool:
    """Whether the config's driver options or the JVM's own environment variables name a collector."""
    return any(GC_OPTION.search(g) for g in _options_given(conf))


def compilation_chosen(conf: dict[str, str]) -> bool:
    """Whether the config's driver options or the JVM's own environment variables set when methods
    are compiled."""
    return any(JIT_OPTION.search(g) for g in _options_given(conf))


def _log4j_config() -> str:
    return str(resources.files("brickyard.pipelines.lake") / "resources" / "log4j2.properties")


def local_conf(root: Path, settings: SparkSettings, jars: list[Path]) -> dict[str, str]:
    """Every setting of a local (or cluster-driver) session, as plain strings."""
    cores = default_parallelism()
    shuffle = settings.shuffle_partitions or max(4, 2 * cores)
    extra = {k: str(v) for k, v in settings.conf.items()}
    java_opts = " ".join(
        [
            f"-Dderby.system.home={root}",
            f"-Dderby.stream.error.file={root / 'derby.log'}",
            f"-Dlog4j2.configurationFile=file:{_log4j_config()}",
            # The driver runs batch jobs (in local mode, every task too): the throughput collector
            # spends no CPU on concurrent marking, which G1 (the JVM's default) does. Measured on 2
            # cores: the dedup tests took 13% less CPU and 10% less time. A collector named in the
            # config's JVM options or the JVM's environment is used instead (two would stop the JVM).
            *([] if collector_chosen(extra) else ["-XX:+UseParallelGC"]),
            *([] if compilation_chosen(extra) else LATE_C2),
            *jvm_options(jars),  # Spark's classes mapped from an archive, when `brickyard setup` built one
        ]
    )
    conf = {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.brickyard.lakehouse": str(root),  # jobs find the lakehouse's MLflow store from here
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": java_opts,
        "spark.driver.memory": settings.driver_memory,
        # Sized for a small machine: the defaults (200 shuffle partitions, 50 partitions to
        # rebuild a Delta snapshot) cost far more in task overhead than they save.
        "spark.sql.shuffle.partitions": str(shuffle),
        "spark.databricks.delta.snapshotPartitions": str(max(2, cores)),
        # VACUUM lists a table's folder in a job of this many tasks (default 10,000: 35 s for a
        # small table on 2 cores, against 2 s with a handful)
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(shuffle),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "2000",
        "spark.ui.enabled": str(settings.ui).lower(),
        "spark.ui.showConsoleProgress": str(settings.progress).lower(),
        # new tables enable the change data feed, so downstream jobs can read only what changed
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
        # updates and deletes mark rows in a small side file instead of rewriting data files
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    if settings.master.startswith("local"):
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    # JVM options of the config come after brickyard's own (the metastore's home, the log
    # configuration), which they would otherwise replace
    if "spark.driver.extraJavaOptions" in extra:
        extra["spark.driver.extraJavaOptions"] = f"{java_opts} {extra['spark.driver.extraJavaOptions']}".strip()
    conf.update(extra)
    return conf
