"""The session whose JVM writes the class archive (`classes.build` runs this module in a child
process): it does the kinds of work the stages do, so the archive holds the classes they load."""

from __future__ import annotations

import sys
from pathlib import Path


def warm_up(archive: Path, scratch: Path) -> None:
    """A session whose JVM writes `archive` when it exits, after the kinds of work the stages do."""
    import pandas as pd  # noqa: F401  (Arrow batches through Python workers, as the stages use them)
    import pyarrow as pa
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ..config import SparkSettings
    from .session import get_spark

    settings = SparkSettings(master="local[2]", engine="local", ui=False, progress=False,
                             conf={"spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={archive}"})
    spark = get_spark(scratch / "lakehouse", settings, app_name="brickyard-class-archive")
    proc = spark.sparkContext._gateway.proc  # the JVM (spark-submit execs it)

    def double(batches):
        for b in batches:
            yield pa.RecordBatch.from_pydict({"id": b.column("id"), "n": pa.compute.multiply(b.column("n"), 2)})

    spark.sql("CREATE DATABASE IF NOT EXISTS warm")
    spark.sql("CREATE TABLE warm.t (id STRING, n BIGINT, text STRING) USING delta "
              "TBLPROPERTIES (delta.enableChangeDataFeed = true, delta.enableDeletionVectors = true)")
    rows = spark.range(200).select(F.col("id").cast("string").alias("id"), F.col("id").alias("n"),
                                   F.concat(F.lit("text "), F.col("id")).alias("text"))
    rows.write.format("delta").mode("append").saveAsTable("warm.t")
    new = rows.where("n % 3 = 0").withColumn("n", F.col("n") + 1).localCheckpoint(eager=True)
    new.mergeInto("warm.t", F.col("warm.t.id") == new.id).whenMatched().updateAll().whenNotMatched().insertAll().merge()
    spark.sql("DELETE FROM warm.t WHERE n % 7 = 0")
    spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 1).table("warm.t").count()
    t = spark.table("warm.t")
    w = Window.partitionBy(F.col("n") % 5).orderBy(F.col("n").desc())
    (t.join(t.select("id", F.col("n").alias("m")), "id").withColumn("r", F.row_number().over(w))
     .groupBy("r").agg(F.count("*"), F.sum("m")).collect())
    t.select("id", "n").mapInArrow(double, "id STRING, n BIGINT").agg(F.sum("n")).collect()
    t.select("id", "n").toPandas()
    spark.sql("DESCRIBE HISTORY warm.t").collect()
    spark.stop()
    proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive on the way
    proc.wait(timeout=600)


if __name__ == "__main__":
    warm_up(Path(sys.argv[1]), Path(sys.argv[2]))
