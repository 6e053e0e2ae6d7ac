# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training runs
# From the lakehouse's MLflow store: loss curves marked by curriculum phase, the expert load per
# layer over time, and the data versions that fed the run.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
run_id = None  # an MLflow run id; None: the newest training run

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview, phase_starts
from IPython.display import display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse)
runs = lv.training_runs()
display(runs)
run = runs[runs["run_id"] == run_id].iloc[0] if run_id else (runs.iloc[0] if len(runs) else None)
if run is None:
    print("no training run yet: run `brickyard train`")
else:
    print(f"run {run.run_name} ({run.run_id}): {run.steps} steps on export {run.export_id}")

# %% [markdown]
# ## Loss, marked by phase

# %%
if run is not None:
    metrics = lv.run_metrics(run.run_id)
    manifest = lv.manifest(run.export_id) if run.export_id in set(lv.exports()["export_id"]) else None
    names = [p["name"] for p in manifest["phases"]] if manifest else []
    phases = [(step, names[i] if i < len(names) else f"phase {i}") for step, i in phase_starts(metrics.get("phase", pd.Series(dtype=float)))]
    charts.loss_curve(metrics, phases, f"Loss of {run.run_name}");
    display(metrics[[c for c in ("loss", "ce_loss", "lb_loss", "z_loss", "lr", "grad_norm", "tokens_per_s", "mfu") if c in metrics]].tail(5))

# %% [markdown]
# ## Expert load per layer
# Entropy of the share of tokens each expert got, normalized so 1 is perfectly even, and the
# largest expert's share (1 / experts when even).

# %%
if run is not None:
    charts.expert_load(metrics, f"Expert load of {run.run_name}");

# %% [markdown]
# ## The data that fed the run
# The Delta table versions and the export the run logged as its inputs.

# %%
if run is not None:
    display(lv.run_inputs(run.run_id))
