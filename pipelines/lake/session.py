"""The Spark session: local Delta lakehouse by default, any cluster or Spark Connect on request.

Local layout under one lakehouse root (`./lakehouse` unless `--lakehouse` or
`BRICKYARD_LAKEHOUSE` says otherwise):

    lakehouse/
      warehouse/        managed Delta tables, one folder per schema (bronze.db, silver.db, ...)
      metastore_db/     the Derby-backed Hive metastore: tables survive a new session
      derby.log

      _serve/           the lakehouse's server while `brickyard serve` runs (see `server`)

Derby is an embedded database: one Spark driver at a time can open a given lakehouse; its server
(`brickyard serve`) is that one driver for any number of clients, which commands use by default
(`spark.engine`). On a cluster
the same code targets whatever catalog the session is configured with (`--conf` passes any
`spark.sql.catalog.*` or Hive metastore settings through).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..config import SparkSettings
from ..errors import BrickyardError
from .driver import (  # noqa: F401
    check_free_space,
    check_lakehouse_free,
    check_writable,
    default_parallelism,
    local_conf,
)
from .java import MIN_JAVA, check_java, java_version  # noqa: F401  (part of the session's checks)


def lakehouse_root(cli_value: str | None = None, config_value: str | None = None) -> Path:
    """Flag, then environment, then config, then `./lakehouse` (relative to the working dir)."""
    value = cli_value or os.environ.get("BRICKYARD_LAKEHOUSE") or config_value or "lakehouse"
    return Path(os.path.expanduser(value)).resolve()


def get_spark(root: Path, settings: SparkSettings, app_name: str = "brickyard"):
    """Start (or return the running) session, checking Java, jars and the root first.

    `settings.remote`: that Spark Connect server. Otherwise `settings.engine` chooses between the
    lakehouse's own server (`brickyard serve`, see `server`) and a local driver in this process."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    if settings.remote:
        return _connect(settings.remote, settings, app_name, settings.conf)

    from . import server

    if settings.engine != "local":
        url = server.server_url(root)
        if url:
            runtime = {k: v for k, v in settings.conf.items() if k.startswith("spark.sql.")}
            if settings.shuffle_partitions:
                runtime["spark.sql.shuffle.partitions"] = settings.shuffle_partitions
            spark = _connect(url, settings, app_name, runtime)
            from .delta import mark_same_machine

            mark_same_machine(spark)  # the server shares this machine's disk: its Delta logs can be read here
            return spark
        if settings.engine == "server":
            raise BrickyardError(
                f"No brickyard server is running for the lakehouse {root}; start one with "
                f"`brickyard serve --lakehouse {root}`, or use --engine local."
            )
    elif server.server_state(root) is not None:
        state = server.server_state(root)
        raise BrickyardError(
            f"The lakehouse {root} is held by its server ({state['url']}, pid {state['pid']}); work through it "
            "with --engine auto (the default), or stop it first with `brickyard serve --stop`."
        )

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
    except Exception as e:  # the JVM started, but its context refused a setting (py4j's error)
        java = getattr(e, "java_exception", None)
        if java is None:
            raise
        raise BrickyardError(
            f"Spark could not start with these settings ({str(java.toString()).splitlines()[0]}); check the "
            "`spark` settings of the config and any --conf."
        ) from None
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _connect(url: str, settings: SparkSettings, app_name: str, conf: dict):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(url).appName(app_name)
    for k, v in conf.items():
        builder = builder.config(k, str(v))
    try:
        return builder.getOrCreate()
    except Exception as e:  # grpc errors are long; keep the first line
        raise BrickyardError(f"Could not connect to Spark Connect at {url}: {str(e).splitlines()[0]}") from None


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
    except Exception:  # Spark Connect has no SparkContext: the server's master
        try:
            return f"connect:{spark.conf.get('spark.master')}"
        except Exception:
            return "connect"


def hostname() -> str:
    return socket.gethostname()
