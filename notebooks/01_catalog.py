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
# # Catalog overview
# The tables of the lakehouse with their layer, size, version, owner and PII status; how data
# flows between them; and the latest job runs.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
versions = {}  # pin tables to Delta versions, e.g. {"gold.tokens": 7}; the rest are read at their latest

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview
from IPython.display import display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse, versions)
print(f"lakehouse {lv.root}: {len(lv.paths)} tables")

# %% [markdown]
# ## Tables
# `pii` says what personal data a layer may hold: `raw` as read, `redacted` after curation, `none` for
# tables without text.

# %%
tables = lv.overview()
display(tables.drop(columns=["comment"]))
display(tables[["table", "comment"]].style.hide(axis="index"))

# %% [markdown]
# ## Lineage
# Every successful job run links the datasets it read to those it wrote; training runs (from MLflow)
# hang off the exports they read.

# %%
edges = lv.lineage_edges()
charts.lineage_graph(edges);

# %% [markdown]
# ## Recent runs
# From `ops.lineage`, newest first. `noop` means the job found nothing new to do.

# %%
display(lv.runs(15))
display(lv.training_runs().drop(columns=["run_id"]))
