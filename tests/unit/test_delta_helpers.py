"""Pure helpers of `lake.delta` that need no Spark."""

from __future__ import annotations

from brickyard.pipelines.lake.delta import id_list


def test_only_brickyards_own_hex_ids_are_named_in_a_query():
    assert id_list(["0f3a", "0f3a", "00ab"]) == "'00ab', '0f3a'"  # sorted, each once
    assert id_list(iter(["beef"])) == "'beef'" and id_list([]) is None
    for hostile in ("x' OR 'a' = 'a", "ABCD", "12 34", ""):
        assert id_list(["00ab", hostile]) is None, hostile
