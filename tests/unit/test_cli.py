import subprocess
import sys

import pytest

from brickyard.cli import build_parser

COMMANDS = [[], ["run"], ["ingest"], ["curate"], ["decontaminate"], ["dedup"], ["tokenize"], ["export"], ["quality"], ["quality", "train"], ["catalog"], ["catalog", "ls"], ["catalog", "show"],
            ["catalog", "lineage"], ["model"], ["model", "info"], ["setup"], ["report"], ["train"]]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "brickyard")
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*words, "--help"])
    assert e.value.code == 0
    assert "usage: brickyard" in capsys.readouterr().out


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "brickyard", *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_answers_without_starting_spark():
    r = run_cli("--help")
    assert r.returncode == 0 and "catalog" in r.stdout


def test_a_bad_config_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources:\n  - {name: a, kind: jsonl, path: x, txt_field: body}\n")
    r = run_cli("ingest", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "brickyard: error: bad.yaml.sources[0]: unknown key 'txt_field' (did you mean 'text_field'?); "
        "allowed: name, kind, domain, path, include, exclude, text_field, id_field, license, url_blocklist, encoding, parts"
    ]
    assert "Traceback" not in r.stderr


def test_run_without_sources_says_what_to_pass():
    r = run_cli("run")
    assert r.returncode == 2 and "declares no sources" in r.stderr


def test_model_info_prints_the_presets_counts():
    r = run_cli("model", "info", "dbrx")
    assert r.returncode == 0
    assert "131.597B" in r.stdout and "35.853B" in r.stdout and "4 of 16" in r.stdout
    bad = run_cli("model", "info", "dbrx-xl")
    assert bad.returncode == 2 and "unknown model preset 'dbrx-xl'" in bad.stderr


def test_verifying_a_folder_that_is_not_an_export_is_one_line(tmp_path):
    r = run_cli("export", "--verify", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"brickyard: error: {tmp_path} is not an export: it has no manifest.json"]


def test_export_without_a_curriculum_says_what_to_pass():
    r = run_cli("export")
    assert r.returncode == 2 and "name a curriculum: --curriculum" in r.stderr


def test_report_on_a_folder_that_is_not_a_lakehouse_is_one_line(tmp_path):
    r = run_cli("report", "--lakehouse", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"brickyard: error: {tmp_path} is not a brickyard lakehouse (it has no warehouse/ folder); "
        "run `brickyard run` first or pass the lakehouse root"]


def test_report_refuses_a_malformed_version_pin(tmp_path):
    (tmp_path / "warehouse").mkdir()
    r = run_cli("report", "--lakehouse", str(tmp_path), "--as-of", "gold.tokens:7")
    assert r.returncode == 2
    assert "--as-of 'gold.tokens:7': expected TABLE=VERSION, e.g. gold.tokens=7" in r.stderr
