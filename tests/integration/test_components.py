"""Connected components on real Spark: chains, stars and a long path end in one component each."""

from __future__ import annotations

import random

import pytest
from brickyard.pipelines.text.components import components

pytestmark = pytest.mark.spark


def union_find(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        a, b = find(u), find(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in parent}


@pytest.fixture(params=["spark", "driver"])
def local_edges(request):
    """Both ways of solving a graph: Spark's rounds (no graph is small enough for the driver), and
    the driver's union-find (every graph here is)."""
    return 0 if request.param == "spark" else 10**6


def run(spark, edges, local_edges):
    df = spark.createDataFrame(edges, "u STRING, v STRING")
    rows = components(df, local_edges=local_edges).collect()
    found = {r["node"]: r["component"] for r in rows}
    assert len(found) == len(rows)  # every node once
    return found


def test_a_chain_whose_ends_are_not_similar_is_one_component(spark, local_edges):
    # A~B and B~C but not A~C: still one cluster, named by its smallest node
    got = run(spark, [("b", "a"), ("c", "b"), ("e", "f")], local_edges)
    assert got == {"a": "a", "b": "a", "c": "a", "e": "e", "f": "e"}


def test_a_long_path_and_a_random_graph_match_union_find(spark, local_edges):
    path = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(60)]
    rng = random.Random(3)
    nodes = [f"r{i:03d}" for i in range(300)]
    graph = [(u, v) for u, v in ((rng.choice(nodes), rng.choice(nodes)) for _ in range(250)) if u != v]
    edges = path + graph
    got = run(spark, edges, local_edges)
    assert got == union_find(edges)
    assert len({got[n] for n, _ in path}) == 1 and got["n060"] == "n000"
