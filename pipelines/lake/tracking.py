"""The MLflow store of a lakehouse: experiments, runs and the model registry, kept beside the tables.

By default each lakehouse carries its own store, so a lakehouse folder is self-contained:

    lakehouse/mlflow/mlflow.db        runs, metrics, params and the model registry (SQLite)
    lakehouse/mlflow/artifacts/       model files and other artifacts

`MLFLOW_TRACKING_URI` (and `MLFLOW_REGISTRY_URI`) override it, e.g. to share a tracking server.
No Spark here: the trainer uses the same store.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# read once, before MLflow runs: `mlflow.set_tracking_uri` writes the variable itself
_USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")
_USER_REGISTRY_URI = os.environ.get("MLFLOW_REGISTRY_URI")


def tracking_uri(lakehouse: Path) -> str:
    return _USER_TRACKING_URI or f"sqlite:///{Path(lakehouse).resolve() / 'mlflow' / 'mlflow.db'}"


def artifact_root(lakehouse: Path) -> str:
    return str(Path(lakehouse).resolve() / "mlflow" / "artifacts")


def store_exists(lakehouse: Path) -> bool:
    """False only when the model registry is the lakehouse's own store and its database was never
    created (so no model is registered)."""
    uri = _USER_REGISTRY_URI or tracking_uri(lakehouse)
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def open_store(lakehouse: Path):
    """Point MLflow at the lakehouse's store (creating it on first use) and quiet its chatter."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Delta dataset sources probe for a Databricks workspace; a local store has none, which is fine
    logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
    uri = tracking_uri(lakehouse)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(_USER_REGISTRY_URI or uri)
    return mlflow


def experiment_id(lakehouse: Path, name: str) -> str:
    """The id of experiment `name`, created with its artifacts under the lakehouse if new."""
    mlflow = open_store(lakehouse)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None if _USER_TRACKING_URI else Path(artifact_root(lakehouse)).as_uri()
    return client.create_experiment(name, artifact_location=location)
