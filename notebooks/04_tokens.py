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
# # Tokens and curriculum
# Token counts and document lengths in `gold.tokens`, then one export: its streams, and per phase
# the mix the curriculum planned against the mix the export holds.

# %% tags=["parameters"]
lakehouse = "../lakehouse"  # the lakehouse root
versions = {}  # pin tables to Delta versions, e.g. {"gold.tokens": 7}
export_id = None  # an export from ops.exports; None: the newest

# %%
import pandas as pd
from brickyard.pipelines.lake.lakeview import Lakeview, planned_vs_exported, stream_counts
from IPython.display import display

from brickyard import charts

pd.set_option("display.max_colwidth", 90)
lv = Lakeview(lakehouse, versions)

# %% [markdown]
# ## Tokens per domain and quality tier
# Each document's tokens end with one end-of-text token.

# %%
counts = lv.token_counts()
display(counts)
charts.grouped_bars(counts, "domain", "quality_tier", "tokens", "Tokens per domain and tier", stacked=True);

# %% [markdown]
# ## Document lengths

# %%
lengths = lv.token_lengths()
display(lengths.groupby("domain")["n_tokens"].describe(percentiles=[0.5, 0.9, 0.99]))
charts.histograms(lengths, "n_tokens", "domain", "Tokens per document", log_x=True);

# %% [markdown]
# ## The export
# Its streams are named selections of `gold.tokens`; each is packed into samples of `seq_len + 1`
# tokens.

# %%
manifest = lv.manifest(export_id)
if manifest is None:
    print("no export yet: run `brickyard export`")
else:
    print(f"export {manifest['export_id']}: curriculum {manifest['curriculum']['name']}, seq_len {manifest['seq_len']}, "
          f"tables {manifest['tables']}, {manifest['budget']['tokens']:,} tokens in {manifest['budget']['samples']:,} samples")
    display(lv.exports().head(10))
    streams = stream_counts(manifest)
    display(streams)
    charts.grouped_bars(streams.assign(what="tokens"), "stream", "what", "tokens", "Tokens per stream", log=True);

# %% [markdown]
# ## Planned against exported mix, per phase
# `planned` is the phase's token share from the curriculum; `exported` the share of the phase's
# samples (samples have one length, so this is the token share); `repeat` how many times the
# phase reads its stream over (above 1: documents repeat).

# %%
if manifest is not None:
    mix = planned_vs_exported(manifest)
    display(mix)
    long = mix.melt(id_vars=["phase", "stream"], value_vars=["planned", "exported"], var_name="mix", value_name="share")
    long["phase / stream"] = long["phase"] + " / " + long["stream"]
    charts.grouped_bars(long, "phase / stream", "mix", "share", "Token share per phase: planned against exported");
