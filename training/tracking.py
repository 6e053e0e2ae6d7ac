"""A training run in MLflow: the lakehouse's store (or MLFLOW_TRACKING_URI), linked to its data.

Params: the whole config, flattened (`optim.lr`), plus the model's resolved shape. Inputs: each
Delta table the export read, at the version it read (`mlflow.data`, Delta sources), and the
export itself. Artifacts: the config and the manifest. Tags name the export, so
`brickyard catalog lineage --run RUN_ID` can walk from the run back to the tables. A resumed run
logs into the same MLflow run.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

from ..pipelines.config import to_dict
from ..pipelines.lake.tracking import experiment_id, open_store


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return out


def start(cfg, model_cfg, lakehouse: Path, export_dir: Path, manifest: dict, resume_run_id: str | None) -> str:
    """Open (or reopen) the MLflow run of this training; returns its id."""
    mlflow = open_store(lakehouse)
    if resume_run_id:
        mlflow.start_run(run_id=resume_run_id)
        mlflow.set_tag("brickyard.resumed", "true")
        return resume_run_id
    exp = experiment_id(lakehouse, cfg.tracking.experiment)
    run = mlflow.start_run(experiment_id=exp, run_name=cfg.tracking.run_name or cfg.name)
    config = to_dict(cfg)
    mlflow.log_params(flatten({k: v for k, v in config.items() if k != "base_dir"}) | flatten(to_dict(model_cfg), "model.resolved."))
    mlflow.set_tags({"brickyard.job": "train", "brickyard.export_id": export_dir.name, "brickyard.export_path": str(export_dir),
                     "brickyard.curriculum": manifest["curriculum"]["name"], "brickyard.encoding": manifest["encoding"],
                     **{f"brickyard.table.{t}": str(v) for t, v in manifest["tables"].items()}, **cfg.tracking.tags})
    _log_inputs(mlflow, export_dir, manifest)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train_config.json").write_text(json.dumps(config, indent=1))
        mlflow.log_artifact(str(Path(tmp) / "train_config.json"))
    mlflow.log_artifact(str(export_dir / "manifest.json"), artifact_path="export")
    return run.info.run_id


def _log_inputs(mlflow, export_dir: Path, manifest: dict) -> None:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    for table, version in manifest["tables"].items():
        # named in the Spark session's own catalog: a two-part name is taken by MLflow for a Unity
        # Catalog table, whose id it then asks a Databricks workspace for (1.7 s of importing its
        # SDK per training, and a source wrongly marked `is_databricks_uc_table`)
        source = DeltaDatasetSource(delta_table_name=f"spark_catalog.{table}", delta_table_version=int(version))
        mlflow.log_input(MetaDataset(source, name=f"{table}@v{version}", digest=f"v{version}"), context="training")
    with warnings.catch_warnings():  # two registered local sources fit a path; either is right
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(str(export_dir))
    mlflow.log_input(MetaDataset(source, name=export_dir.name, digest=manifest["spec_hash"][:36]), context="training")


def log(metrics: dict[str, float], step: int) -> None:
    import mlflow

    mlflow.log_metrics(metrics, step=step)


def finish(status: str = "FINISHED") -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.end_run(status)
