"""The Spark session: local Delta lakehouse by default, any cluster or Spark Connect on request.

Local layout under one lakehouse root (`./lakehouse` unless `--lakehouse` or
`BRICKYARD_LAKEHOUSE` says otherwise):

    lakehouse/
      warehouse/        managed Delta tables, one folder per schema (bronze.db, silver.db, ...)
      metastore_db/     the Derby-backed Hive metastore: tables survive a new session
      derby.log

Derby is an embedded database: one Spark driver at a time can open a given lakehouse. On a cluster
the same code targets whatever catalog the session is configured with (`--conf` passes any
`spark.sql.catalog.*` or Hive metastore settings through).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from importlib import resources
from pathlib import Path

from ..config import SparkSettings
from ..errors import BrickyardError
from .java import MIN_JAVA, check_java, java_version  # noqa: F401  (part of the session's checks)


def lakehouse_root(cli_value: str | None = None, config_value: str | None = None) -> Path:
    """Flag, then environment, then config, then `./lakehouse` (relative to the working dir)."""
    value = cli_value or os.environ.get("BRICKYARD_LAKEHOUSE") or config_value or "lakehouse"
    return Path(os.path.expanduser(value)).resolve()


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


def _log4j_config() -> str:
    return str(resources.files("brickyard.pipelines.lake") / "resources" / "log4j2.properties")


def local_conf(root: Path, settings: SparkSettings, jars: list[Path]) -> dict[str, str]:
    """Every setting of a local (or cluster-driver) session, as plain strings."""
    cores = default_parallelism()
    shuffle = settings.shuffle_partitions or max(4, 2 * cores)
    java_opts = " ".join(
        [
            f"-Dderby.system.home={root}",
            f"-Dderby.stream.error.file={root / 'derby.log'}",
            f"-Dlog4j2.configurationFile=file:{_log4j_config()}",
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
    conf.update({k: str(v) for k, v in settings.conf.items()})
    return conf


def get_spark(root: Path, settings: SparkSettings, app_name: str = "brickyard"):
    """Start (or return the running) session, checking Java, jars and the root first."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    if settings.remote:
        builder = SparkSession.builder.remote(settings.remote).appName(app_name)
        for k, v in settings.conf.items():
            builder = builder.config(k, str(v))
        try:
            return builder.getOrCreate()
        except Exception as e:  # grpc errors are long; keep the first line
            raise BrickyardError(
                f"Could not connect to Spark Connect at {settings.remote}: {str(e).splitlines()[0]}"
            ) from None

    check_java()
    check_writable(root)
    check_free_space(root)
    if SparkSession.getActiveSession() is None and "spark.hadoop.javax.jdo.option.ConnectionURL" not in settings.conf:
        check_lakehouse_free(root)
    from .jars import ensure_delta_jars

    jars = ensure_delta_jars()
    # Python workers must run the interpreter that runs the driver (the project's venv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(settings.master).appName(app_name)
    for k, v in local_conf(root, settings, jars).items():
        builder = builder.config(k, v)
    try:
        spark = builder.getOrCreate()
    except PySparkRuntimeError as e:
        raise BrickyardError(
            f"Spark's JVM did not start ({e.getErrorClass() or e}); run `make setup` to check Java and "
            "the Delta jars, and see the lines above for the JVM's own message."
        ) from None
    spark.sparkContext.setLogLevel("WARN")
    return spark


def session_lakehouse(spark) -> Path:
    """The lakehouse root the session was started on (the warehouse's parent on other setups)."""
    root = spark.conf.get("spark.brickyard.lakehouse", None)
    if root:
        return Path(root)
    warehouse = spark.conf.get("spark.sql.warehouse.dir", "lakehouse/warehouse").removeprefix("file:")
    return Path(warehouse).parent


def session_cores(spark) -> int:
    """Cores the session's tasks run on (from the shuffle partitions under Spark Connect)."""
    try:
        return max(1, spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return max(1, int(spark.conf.get("spark.sql.shuffle.partitions", "8")) // 2)


def describe_master(spark) -> str:
    try:
        return spark.sparkContext.master
    except Exception:  # Spark Connect has no SparkContext
        return "connect"


def hostname() -> str:
    return socket.gethostname()


@contextlib.contextmanager
def scoped_conf(spark, settings: dict[str, str]):
    """Runtime SQL settings for the duration of a block, restored afterwards."""
    before = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
