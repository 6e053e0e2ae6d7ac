"""The notebooks' shared logic without Spark: manifest tables, phase marks, Arrow view types,
version pins, the charts, and the notebooks themselves (twins in step, parameters declared)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pyarrow as pa
import pytest

matplotlib.use("Agg")

from brickyard.pipelines.errors import BrickyardError  # noqa: E402
from brickyard.pipelines.lake.lakeview import (  # noqa: E402
    Edge,
    Lakeview,
    _literal,
    phase_starts,
    planned_vs_exported,
    stream_counts,
    to_pandas,
)

from brickyard import charts  # noqa: E402
from brickyard.report import NOTEBOOKS, notebooks, parse_versions  # noqa: E402

MANIFEST = {
    "sample_tokens": 65,
    "phases": [
        {"name": "broad", "streams": {"code": {"share": 0.75, "samples": 30, "repeat": 0.5},
                                      "text": {"share": 0.25, "samples": 10, "repeat": 1.5}}},
        {"name": "anneal", "streams": {"text": {"share": 1.0, "samples": 8, "repeat": 0.2}}},
    ],
    "streams": {
        "code": {"domains": ["code"], "tiers": [], "documents": 3, "tokens": 2000, "samples": 30, "shards": [{}, {}]},
        "text": {"domains": ["docs", "legal"], "tiers": ["high"], "documents": 5, "tokens": 700, "samples": 10, "shards": [{}]},
    },
}


def test_planned_against_exported_shares_and_tokens():
    df = planned_vs_exported(MANIFEST).set_index(["phase", "stream"])
    assert df.loc[("broad", "code"), "planned"] == 0.75
    assert df.loc[("broad", "code"), "exported"] == pytest.approx(30 / 40)
    assert df.loc[("broad", "text"), "tokens"] == 10 * 65
    assert df.loc[("anneal", "text"), "exported"] == 1.0
    assert df["difference"].abs().max() == pytest.approx(0.0)
    assert list(df["repeat"]) == [0.5, 1.5, 0.2]


def test_stream_counts_name_their_selection():
    df = stream_counts(MANIFEST).set_index("stream")
    assert df.loc["code", "tiers"] == "all" and df.loc["text", "domains"] == "docs, legal"
    assert df.loc["code", "shards"] == 2 and df["tokens"].sum() == 2700


def test_phase_starts_from_the_logged_phase_metric():
    s = pd.Series({1: 0.0, 2: 0.0, 3: float("nan"), 5: 1.0, 6: 1.0, 9: 2.0})
    assert phase_starts(s) == [(1, 0), (5, 1), (9, 2)]
    assert phase_starts(pd.Series(dtype=float)) == []


def test_view_types_become_plain_for_pandas():
    t = pa.table({
        "s": pa.array(["a", None], pa.string_view()),
        "l": pa.array([["x"], []], pa.list_(pa.string_view())),
        "m": pa.array([[("k", 1.0)], None], pa.map_(pa.string(), pa.float64())),
    })
    df = to_pandas(t)
    assert df["s"].tolist() == ["a", None]
    assert list(df["l"][0]) == ["x"]
    assert df["m"][0] == {"k": 1.0}


def test_version_pins_parse_or_fail_in_one_sentence():
    assert parse_versions(["gold.tokens=7", " silver.documents = 2"]) == {"gold.tokens": 7, "silver.documents": 2}
    assert parse_versions(None) == {}
    with pytest.raises(BrickyardError, match="expected TABLE=VERSION"):
        parse_versions(["gold.tokens=latest"])


def test_a_lakehouse_is_checked_before_it_is_read(tmp_path):
    with pytest.raises(BrickyardError, match="is not a brickyard lakehouse"):
        Lakeview(tmp_path)
    (tmp_path / "warehouse").mkdir()
    assert Lakeview(tmp_path).paths == {}
    with pytest.raises(BrickyardError, match="versions name tables this lakehouse lacks: gold.tokens"):
        Lakeview(tmp_path, {"gold.tokens": 3})
    with pytest.raises(BrickyardError, match="table gold.tokens does not exist"):
        Lakeview(tmp_path).delta("gold.tokens")


def test_the_lineage_graph_draws_a_cycle_and_an_empty_catalog():
    edges = [Edge("source:s", "bronze.documents", "ingest"), Edge("bronze.documents", "silver.documents", "curate"),
             Edge("silver.documents", "model:q", "quality"), Edge("model:q", "silver.documents", "curate"),
             Edge("gold.tokens", "export:e1", "export"), Edge("export:e1", "run:r", "train")]
    fig = charts.lineage_graph(edges)
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {"source:\ns", "model:\nq", "silver.\ndocuments", "run:\nr"} <= labels
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["curate", "export", "ingest", "quality", "train"]
    assert "no job has run yet" in {t.get_text() for t in charts.lineage_graph([]).axes[0].texts}


def test_bars_put_the_largest_on_top_and_survive_no_data():
    df = pd.DataFrame({"reason": ["a", "b", "b"], "domain": ["x", "x", "y"], "documents": [1, 5, 2]})
    fig = charts.grouped_bars(df, "reason", "domain", "documents", "t", horizontal=True, stacked=True)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    empty = charts.grouped_bars(df.iloc[:0], "reason", "domain", "documents", "t")
    assert "nothing to show" in {t.get_text() for t in empty.axes[0].texts}


def test_side_by_side_escapes_the_texts():
    html = charts.side_by_side(pd.DataFrame({"a": ["<b>x</b>"], "b": ["y & z"], "c": ["pair"]}), "a", "b", "c")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "y &amp; z" in html and "<b>pair</b>" in html


def test_every_notebook_has_its_twin_in_step_and_declares_the_lakehouse():
    import jupytext
    import papermill

    found = notebooks()
    assert [p.stem for p in found] == ["01_catalog", "02_curation", "03_duplicates", "04_tokens", "05_training",
                                       "06_contamination"]
    for nb in found:
        twin = jupytext.read(nb.with_suffix(".py"))
        cells = jupytext.read(nb).cells
        assert [(c.cell_type, c.source) for c in twin.cells] == [(c.cell_type, c.source) for c in cells], \
            f"{nb.name} and its .py twin differ: run `make notebooks`"
        assert all(not c.get("outputs") for c in cells if c.cell_type == "code"), f"{nb.name} is stored with outputs"
        assert "lakehouse" in papermill.inspect_notebook(str(nb)), f"{nb.name} has no lakehouse parameter"


def test_notebooks_are_found_beside_the_package():
    assert NOTEBOOKS == Path(__file__).resolve().parents[2] / "notebooks"


def test_strings_in_queries_are_quoted():
    assert _literal("it's") == "'it''s'"
