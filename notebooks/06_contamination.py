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
# # Contamination
# Training documents that contain items of the evaluation sets the model will be judged on, per
# evaluation set: how many of its items were checked, how many were found and in how many
# documents, which domains they came from, and a few of them beside the text they share.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
versions = {}  # pin tables to Delta versions, e.g. {"silver.contamination": 2}

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview
from IPython.display import display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse, versions)

# %% [markdown]
# ## Per evaluation set
# `items_checked` have at least one n-gram; `items_too_short` hold no text of `min_words` words
# (8 by default) and cannot be checked. `items_found` were found in `documents_found` curated
# documents, of which curate rejects `documents_rejected` as `contaminated` (all of them unless
# `decontaminate.reject` is off). In `ngram` mode one shared n-gram is enough; in `containment` mode
# a document must hold the given share of the item's n-grams.

# %%
sets = lv.contamination_by_set()
if sets.empty:
    print("no evaluation sets checked: declare them under decontaminate.eval_sets")
else:
    display(sets.set_index("eval_set"))
    share = sets.assign(found=sets["items_found"] / sets["items_checked"].clip(lower=1))
    print("\n".join(f"{r.eval_set}: {r.items_found} of {r.items_checked} items checked found in the training data "
                    f"({r.found:.1%}), in {r.documents_found} documents" for r in share.itertuples()))

# %% [markdown]
# ## Where they were found
# Documents found per evaluation set and domain.

# %%
by_domain = lv.contamination_by_domain()
if by_domain.empty:
    print("no contaminated documents")
else:
    charts.grouped_bars(by_domain, "eval_set", "domain", "documents", "Contaminated documents per evaluation set", stacked=True);

# %% [markdown]
# ## Documents beside the items they hold
# The most contained first; the span is the document's own text over the longest stretch it shares
# with the item, checked word for word.

# %%
examples = lv.contamination_examples(per_set=3, max_chars=300)
if examples.empty:
    print("no contaminated documents")
else:
    display(examples)
