"""The model registry of the lakehouse's MLflow store: the newest quality classifier, and its file
where Spark's workers can read it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrickyardError
from ..text.quality import FASTTEXT_FILE


@dataclass
class Registered:
    name: str
    version: int
    path: str  # local path of the fastText file
    tags: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def current_model(lakehouse: Path, name: str) -> Registered | None:
    """The newest registered version of model `name` in the lakehouse's store, or None."""
    from .tracking import open_store, store_exists

    if not store_exists(lakehouse):  # nothing was ever registered: no need to create a store to say so
        return None

    mlflow = open_store(lakehouse)
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(e):
            return None
        raise
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{newest.version}")
    path = Path(local) / "artifacts" / FASTTEXT_FILE
    if not path.is_file():
        raise BrickyardError(f"model version models:/{name}/{newest.version} holds no {FASTTEXT_FILE}; it was not made by `brickyard quality train`")
    return Registered(name, int(newest.version), str(path), dict(newest.tags or {}))


def model_path_on_workers(spark, path: str) -> str:
    """Ship the model file to a cluster's executors; local mode reads it where it is."""
    try:
        master = spark.sparkContext.master
    except Exception:  # Spark Connect: the workers must see the same path (shared storage)
        return path
    if not master.startswith("local"):
        spark.sparkContext.addFile(path)
        return "sparkfiles:" + os.path.basename(path)
    return path


def resolve_worker_path(path: str) -> str:
    if path.startswith("sparkfiles:"):
        from pyspark import SparkFiles

        return SparkFiles.get(path.removeprefix("sparkfiles:"))
    return path


