import os
from collections import Counter

from brickyard.pipelines.config import SourceConfig
from brickyard.pipelines.sources.listing import assign_partitions, sample_units, units_for_tree
from brickyard.pipelines.sources.readers import Unit

from tests.helpers import copy_stdlib_package


def test_code_tree_walk_licences_links_and_hidden_files(tmp_path):
    files = copy_stdlib_package(tmp_path, "json")
    vend = tmp_path / "json" / "_vendor" / "lib"
    vend.mkdir(parents=True)
    (vend / "COPYING").write_text("Permission is hereby granted, free of charge, to any person")
    (vend / "mod.py").write_text("x = 1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "json" / "__pycache__").mkdir(exist_ok=True)
    os.symlink("/etc/passwd", tmp_path / "escape.py")
    src = SourceConfig(name="repo", kind="code", domain="code", path=str(tmp_path))
    units = {u.path: u for u in units_for_tree(src, "code", tmp_path, ["*.py"], [], "code", "", 1 << 20)}
    assert set(units) == {f"json/{f.name}" for f in files} | {"json/_vendor/lib/mod.py", "escape.py"}
    assert units["json/decoder.py"].license == "PSF-2.0"
    assert units["json/_vendor/lib/mod.py"].license == "MIT"
    assert units["escape.py"].problem == "symlink"
    assert all(not u.path.startswith(".git") for u in units.values())


def test_units_carry_the_sources_encoding(tmp_path):
    (tmp_path / "a.txt").write_bytes("caf\u00e9".encode("cp1252"))
    src = SourceConfig(name="books", kind="text", path=str(tmp_path), encoding="cp1252")
    [unit] = units_for_tree(src, "text", tmp_path, ["*.txt"], [], "books", "", 1 << 20)
    assert unit.encoding == "cp1252"
    assert Unit(**unit.to_row()).encoding == "cp1252"  # the form a Spark task receives it in


def test_exclude_patterns_cross_folders(tmp_path):
    copy_stdlib_package(tmp_path, "json")
    src = SourceConfig(name="repo", kind="code", path=str(tmp_path))
    units = units_for_tree(src, "code", tmp_path, ["*"], ["*tool.py", "*.txt"], "code", "", 1 << 20)
    assert units and not any(u.path.endswith(("tool.py", ".txt")) for u in units)


def test_names_that_are_not_utf8_pipes_and_hidden_entries(tmp_path):
    (tmp_path / "ok.txt").write_text("fine")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as f:  # Latin-1, not UTF-8
        f.write(b"text")
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.txt").write_text("x")
    skipped = Counter()
    src = SourceConfig(name="t", kind="text", path=str(tmp_path))
    units = {u.path: u for u in units_for_tree(src, "text", tmp_path, ["*"], [], "other", "", 1 << 20, skipped=skipped)}
    assert set(units) == {"ok.txt", "caf\\xe9.txt"}
    assert units["caf\\xe9.txt"].problem == "bad_name" and units["caf\\xe9.txt"].file == ""
    assert units["caf\\xe9.txt"].path.encode("utf-8")  # a string Spark can hold
    assert skipped == {"hidden": 2, "special_file": 1}


def test_partitions_are_balanced_by_size():
    units = [Unit("s", "d", "text", f"/f{i}", f"f{i}", size=s * 10_000) for i, s in enumerate([900, 500, 400, 300, 200, 100])]
    parts = assign_partitions(units, 2)
    loads = [sum(u.size for u, p in zip(units, parts, strict=True) if p == k) for k in (0, 1)]
    assert sorted(loads) == [12_000_000, 12_000_000]


def test_sample_is_deterministic_within_budget_and_names_no_machine_paths():
    src = SourceConfig(name="sample", kind="sample", parts={"stdlib": 0.5, "package_docs": 0.2, "licenses": 0, "man_pages": 0, "share_doc": 0})
    a, b = sample_units(src, 1 << 26), sample_units(src, 1 << 26)
    assert [u.path for u in a] == [u.path for u in b]
    stdlib = [u for u in a if u.path.startswith("stdlib/")]
    assert stdlib and sum(u.size for u in stdlib) <= 0.5e6
    assert {u.domain for u in a} == {"code", "docs"}
    assert all(not u.path.startswith("/") for u in a)
    assert any(u.license == "PSF-2.0" for u in stdlib)


def test_include_and_exclude_globs_match_as_fnmatchcase_does():
    import fnmatch

    from brickyard.pipelines.sources.listing import _matcher

    paths = ["a.py", "pkg/a.py", "pkg/sub/b.txt", "README", "x[1].md", "dir/.hidden", "new\nline.py", ""]
    for patterns in ([], ["*"], ["*.py"], ["pkg/*"], ["*.py", "*.md"], ["x[[]1].md"], ["[!a]*"], ["README", "*/sub/*"]):
        match = _matcher(patterns)
        for p in paths:
            assert bool(match(p)) == any(fnmatch.fnmatchcase(p, q) for q in patterns), (patterns, p)
