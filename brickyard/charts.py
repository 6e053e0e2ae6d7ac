"""The pictures the notebooks draw (matplotlib), kept here so each notebook cell stays one line.

Every function takes plain pandas data (from `brickyard.pipelines.lake.lakeview`) and returns its Figure, so a
notebook shows it and a script can save it.
"""

from __future__ import annotations

import html
import re

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

# one colour per kind of node in the lineage graph, in layer order
KIND_COLORS = {"source": "#8c8c8c", "bronze": "#b07b3e", "silver": "#9aa5b1", "gold": "#d4a72c",
               "ops": "#6c8ebf", "model": "#9b6bb3", "export": "#4e9a6a", "run": "#c0504d"}


def node_kind(name: str) -> str:
    prefix = name.split(":", 1)[0] if ":" in name else name.split(".", 1)[0]
    return prefix if prefix in KIND_COLORS else "ops"


def lineage_graph(edges, title: str = "Lineage: datasets and the jobs between them"):
    """Datasets left to right in the order data flows (a job that reads what it writes, like
    curate and its quality model, shares a column), edges coloured by job."""
    import networkx as nx

    g = nx.DiGraph()
    for e in edges:
        g.add_edge(e.source, e.target, job=e.job)
    fig, ax = plt.subplots(figsize=(14, max(4.0, 0.55 * len(g))))
    ax.set_title(title)
    ax.axis("off")
    if not len(g):
        ax.text(0.5, 0.5, "no job has run yet", ha="center", va="center")
        return fig
    dag = nx.condensation(g)  # cycles (curate <-> its quality model) collapse to one column
    for level, comps in enumerate(nx.topological_generations(dag)):
        for c in comps:
            for n in dag.nodes[c]["members"]:
                g.nodes[n]["level"] = level
    pos = nx.multipartite_layout(g, subset_key="level", scale=1.0)
    jobs = sorted({d["job"] for *_, d in g.edges(data=True)})
    cmap = plt.get_cmap("tab10")
    for i, job in enumerate(jobs):
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v) for u, v, d in g.edges(data=True) if d["job"] == job],
                               edge_color=[cmap(i % 10)], arrows=True, arrowsize=12, node_size=3000,
                               connectionstyle="arc3,rad=0.05")
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=3000, node_shape="s", alpha=0.85,
                           node_color=[KIND_COLORS[node_kind(n)] for n in g])
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7.5, labels={n: re.sub(r"[.:]", lambda m: m.group(0) + "\n", n, count=1) for n in g})
    handles = [Line2D([], [], color=cmap(i % 10), label=job) for i, job in enumerate(jobs)]
    ax.legend(handles=handles, title="job", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def grouped_bars(df: pd.DataFrame, index: str, columns: str, values: str, title: str, log: bool = False,
                 stacked: bool = False, horizontal: bool = False):
    """One bar group per `index` value, one bar per `columns` value."""
    table = df.pivot_table(index=index, columns=columns, values=values, aggfunc="sum", observed=True).fillna(0)
    if horizontal:  # the largest at the top
        table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(10, max(3.5, 0.35 * len(table))) if horizontal else (10, 4))
    if table.empty:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center")
        ax.axis("off")
        return fig
    table.plot(kind="barh" if horizontal else "bar", ax=ax, stacked=stacked, logx=log and horizontal,
               logy=log and not horizontal, rot=0, width=0.8)
    ax.set_title(title)
    ax.set_xlabel(values if horizontal else index)
    ax.set_ylabel(index if horizontal else values)
    ax.legend(title=columns, fontsize=8)
    fig.tight_layout()
    return fig


def histograms(df: pd.DataFrame, value: str, by: str, title: str, bins: int = 30, log_x: bool = False,
               marks: dict[str, float] | None = None):
    """One histogram of `value` per `by` group, side by side; `marks` draws labelled vertical lines."""
    import numpy as np

    groups = sorted(df[by].dropna().unique())
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4 * max(1, len(groups)), 3.2), squeeze=False)
    for ax, name in zip(axes[0], groups, strict=False):
        v = df.loc[df[by] == name, value].dropna()
        edges = np.geomspace(max(v.min(), 1), v.max() + 1, bins) if log_x and len(v) else bins
        ax.hist(v, bins=edges, color="#4e79a7")
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        for label, x in (marks or {}).items():
            ax.axvline(x, color="#c0504d", ls="--", lw=1)
            ax.text(x, ax.get_ylim()[1] * 0.95, f" {label}", color="#c0504d", fontsize=8, va="top")
        ax.set_title(f"{name} ({len(v)})")
        ax.set_xlabel(value)
    if not groups:
        axes[0][0].text(0.5, 0.5, "nothing to show", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curve(metrics: pd.DataFrame, phases: list[tuple[int, str]], title: str):
    """Loss (and its cross-entropy part) against tokens seen, with each phase's start marked."""
    fig, ax = plt.subplots(figsize=(10, 4))
    x = metrics["tokens"] if "tokens" in metrics else metrics.index
    for key in ("loss", "ce_loss"):
        if key in metrics:
            ax.plot(x, metrics[key], marker=".", label=key)
    for step, name in phases:
        at = metrics["tokens"].get(step, step) if "tokens" in metrics else step
        ax.axvline(at, color="#888", ls="--", lw=1)
        ax.text(at, ax.get_ylim()[1], f" {name}", va="top", fontsize=9)
    ax.set_xlabel("tokens seen" if "tokens" in metrics else "step")
    ax.set_ylabel("loss (nats)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def expert_load(metrics: pd.DataFrame, title: str):
    """Per layer, over steps: the expert-load entropy (1 = even) and the largest expert's share."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.5))
    for key in sorted(c for c in metrics if c.startswith("expert_entropy/")):
        a.plot(metrics.index, metrics[key], label=key.split("/", 1)[1])
    for key in sorted(c for c in metrics if c.startswith("expert_max_share/")):
        b.plot(metrics.index, metrics[key], label=key.split("/", 1)[1])
    a.set_title("expert-load entropy (1 = even)")
    b.set_title("largest expert's share")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def side_by_side(df: pd.DataFrame, left: str, right: str, caption: str) -> str:
    """HTML: two text columns per row (e.g. a keeper and its near duplicate), with the row's caption column."""
    def pre(t: str) -> str:
        return f'<pre style="white-space:pre-wrap;font-size:11px;margin:0">{html.escape(str(t))}</pre>'

    rows = "".join(
        f"<tr><td colspan=2 style='background:#f3f3f3'><b>{html.escape(str(r[caption]))}</b></td></tr>"
        f"<tr><td style='vertical-align:top;width:50%'>{pre(r[left])}</td>"
        f"<td style='vertical-align:top;width:50%'>{pre(r[right])}</td></tr>" for _, r in df.iterrows())
    return f"<table style='table-layout:fixed;width:100%'><tr><th>{html.escape(left)}</th><th>{html.escape(right)}</th></tr>{rows}</table>"
