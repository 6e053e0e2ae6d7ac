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
# # Curation funnel
# What each stage kept, per domain; why documents were turned away; what dedup took out below the
# document; the languages found; the quality scores; and, for every rule, documents it rejected
# beside the value that failed it.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
versions = {}  # pin tables to Delta versions, e.g. {"silver.documents": 5}

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview
from IPython.display import display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse, versions)

# %% [markdown]
# ## Documents and bytes per stage
# `read` is everything ingest read (bronze plus quarantine); `curated (kept)` passed every rule;
# `gold` is one keeper per duplicate cluster.

# %%
funnel = lv.funnel()
display(funnel.pivot_table(index="domain", columns="stage", values=["documents", "bytes"], observed=True))
charts.grouped_bars(funnel, "domain", "stage", "documents", "Documents per stage", log=True);
charts.grouped_bars(funnel, "domain", "stage", "bytes", "Bytes per stage", log=True);

# %% [markdown]
# ## Why documents were turned away
# The first rule each rejected document failed (curate), and ingest's quarantine reasons.

# %%
rejected = lv.rejections()
display(rejected.pivot_table(index="reason", columns="domain", values="documents", aggfunc="sum", fill_value=0))
charts.grouped_bars(rejected, "reason", "domain", "documents", "Rejected documents per reason", stacked=True, horizontal=True);

# %% [markdown]
# ## Dedup below the document
# What dedup runs with span dedup on (`dedup.spans`) did, per domain: the documents they placed
# (`input`), those admitted to gold (`kept`, with the bytes that reached it), those turned away per
# method (`exact`, `near`, `containment`; `spans`: left too short once repeated paragraphs and lines
# were cut), and the bytes cut from the documents kept (`removed`). Then the share of each gold
# document's text that was cut.

# %%
dedup_funnel = lv.dedup_funnel()
if dedup_funnel.empty:
    print("no dedup run with span dedup on in this catalog")
else:
    display(dedup_funnel.pivot_table(index=["counted_as", "rule"], columns="domain", values=["documents", "bytes"],
                                     aggfunc="sum", fill_value=0))
    charts.histograms(lv.spans_removed(), "spans_removed_share", "domain", "Share of each gold document cut as repeated spans");

# %% [markdown]
# ## Languages
# fastText language ID over every curated document (code is labelled but never rejected for its language).

# %%
langs = lv.languages()
display(langs.head(20))
charts.grouped_bars(langs[langs["lang"].isin(langs.groupby("lang")["documents"].sum().nlargest(15).index)],
                    "lang", "kind", "documents", "Documents per language (15 most common)", log=True);

# %% [markdown]
# ## Quality scores
# The fastText quality classifier's score per domain; the dashed lines are the tier bounds the
# latest curate run used.

# %%
tiers = lv.job_config("curate").get("quality_tiers") or {}
charts.histograms(lv.quality_scores(), "quality_score", "domain", "Quality score by domain",
                  marks={k: v for k, v in tiers.items() if v > 0});

# %% [markdown]
# ## Rejected documents, rule by rule
# A few documents per rule, with the signal value that failed it and the bound it had to meet.

# %%
display(lv.rejected_examples(per_rule=2, max_chars=300))
