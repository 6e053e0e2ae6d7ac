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
# # Duplicates
# How large the duplicate clusters are, the largest ones, near duplicates side by side with their
# similarity, and exact against near duplicates per domain.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
versions = {}  # pin tables to Delta versions, e.g. {"silver.duplicates": 3}

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview
from IPython.display import HTML, display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse, versions)

# %% [markdown]
# ## Cluster sizes
# Every deduplicated document belongs to one cluster; a singleton is a cluster of one.

# %%
clusters = lv.cluster_sizes()
sizes = clusters["size"].value_counts().sort_index().rename_axis("cluster size").rename("clusters")
display(sizes.to_frame().T)
charts.grouped_bars(sizes.reset_index().assign(what="clusters"), "cluster size", "what", "clusters",
                    "Clusters per size (documents per cluster)", log=True);

# %% [markdown]
# ## The largest clusters

# %%
display(lv.largest_clusters(10))

# %% [markdown]
# ## Exact against near duplicates, per domain
# `keeper` documents went on to gold; `exact` ones had the same normalized text as a document of
# their cluster, `near` ones a MinHash-LSH candidate pair verified by Jaccard similarity,
# `containment` ones were mostly inside a larger keeper (`dedup.containment`); `spans` are keepers
# left too short once repeated paragraphs were cut (`dedup.spans`).

# %%
kinds = lv.duplicate_kinds()
display(kinds.pivot_table(index="domain", columns="kind", values="documents", fill_value=0))
charts.grouped_bars(kinds, "domain", "kind", "documents", "Keepers, exact and near duplicates", log=True);

# %% [markdown]
# ## Near duplicates beside their keepers
# Most similar first; the similarity is the Jaccard similarity of the two texts' word shingles.

# %%
pairs = lv.near_pairs(4, max_chars=500)
if pairs.empty:
    print("no near duplicates in this catalog")
else:
    pairs["pair"] = [f"{r.domain}: similarity {r.similarity:.3f} - {r.keeper_path} / {r.duplicate_path}" for r in pairs.itertuples()]
    display(HTML(charts.side_by_side(pairs, "keeper_text", "duplicate_text", "pair")))
