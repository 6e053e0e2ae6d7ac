"""Signals against values computed by hand on real snippets; rules and their config."""

import codecs

# the first three lines of the Zen of Python, as the stdlib's `this` module carries them
import this  # noqa: F401,E402  (prints the Zen once on import)

import pytest
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.text.filters import DEFAULT_RULES, configure, evaluate
from brickyard.pipelines.text.signals import (
    c4_signals,
    code_signals,
    fineweb_signals,
    gopher_quality,
    gopher_repetition,
    normalize_code,
    normalize_text,
    text_signals,
)

ZEN = codecs.decode(this.s, "rot13")
ZEN3 = "\n".join(ZEN.splitlines()[2:5])
NOTICE = "Copyright (c) 2001 Python Software Foundation.\nAll Rights Reserved."


def test_the_snippet_is_what_the_hand_counts_assume():
    assert ZEN3 == "Beautiful is better than ugly.\nExplicit is better than implicit.\nSimple is better than complex."


def test_normalize_text():
    assert normalize_text("caf\u0065\u0301\r\nbar\rbaz") == "caf\u00e9\nbar\nbaz"
    assert normalize_text("a \t  b\x07c  \n\n\n\n\nd\u200b ") == "a bc\n\nd"
    assert normalize_text("\n\n  lead\n") == "lead"


def test_normalize_code_keeps_indentation_and_only_fixes_line_endings():
    src = "def f():\r\n\tif x:\r\n        return  1   \r\n"
    assert normalize_code(src) == "def f():\n\tif x:\n        return  1   \n"


def test_gopher_quality_by_hand():
    q = gopher_quality(ZEN3)
    # 15 words; letters 9+2+6+4+5 + 8+2+6+4+9 + 6+2+6+4+8 = 81 characters
    assert q["n_words"] == 15
    assert q["mean_word_length"] == pytest.approx(81 / 15)
    assert q["stop_words"] == 0  # none of the, be, to, of, and, that, have, with
    assert (q["symbol_word_ratio"], q["bullet_lines_frac"], q["ellipsis_lines_frac"], q["alpha_words_frac"]) == (0, 0, 0, 1)
    b = gopher_quality("- one thing...\n- another thing...\nplain line\n# heading #")
    assert b["bullet_lines_frac"] == 0.5 and b["ellipsis_lines_frac"] == 0.5  # 2 of 4 lines each
    assert b["symbol_word_ratio"] == pytest.approx(4 / 11)  # two '...' and two '#' over 11 words


def test_gopher_repetition_by_hand():
    r = gopher_repetition(ZEN3)
    assert r["dup_line_frac"] == 0 and r["dup_para_frac"] == 0
    # most frequent 2-gram: ("is", "better") x3 -> 3 * 8 chars of 81; 3-gram ("is","better","than") x3 -> 3 * 12
    assert r["top_2gram_char_frac"] == pytest.approx(24 / 81)
    assert r["top_3gram_char_frac"] == pytest.approx(36 / 81)
    assert r["dup_5gram_char_frac"] == 0  # no 5 words repeat in order
    twice = gopher_repetition(NOTICE + "\n\n" + NOTICE)
    assert twice["dup_line_frac"] == 0.5 and twice["dup_line_char_frac"] == 0.5
    assert twice["dup_para_frac"] == 0.5 and twice["dup_para_char_frac"] == 0.5
    # the second copy's 9 words are all covered by repeated 5-grams: half the characters
    assert twice["dup_5gram_char_frac"] == pytest.approx(0.5)


def test_c4_signals_by_hand():
    c = c4_signals(ZEN3)
    assert c["c4_terminal_punct_line_frac"] == 1 and c["c4_kept_line_frac"] == 1 and c["c4_sentences"] == 3
    assert c["c4_lorem_ipsum"] == 0 and c["c4_curly_brace"] == 0
    web = c4_signals("Lorem ipsum dolor sit amet.\nPlease enable JavaScript to view.\nRead our privacy policy.\nvar x = {a: 1}")
    assert web["c4_lorem_ipsum"] == 1 and web["c4_curly_brace"] == 1
    assert web["c4_javascript_line_frac"] == 0.25 and web["c4_policy_line_frac"] == 0.25
    assert web["c4_kept_line_frac"] == 0.25  # only the lorem ipsum line survives the line rules


def test_fineweb_signals_by_hand():
    f = fineweb_signals(ZEN3)
    # line lengths 30, 33, 30: two are <= 30 characters
    assert f["fw_short_line_frac"] == pytest.approx(2 / 3)
    assert f["fw_line_punct_frac"] == 1 and f["fw_char_dup_frac"] == 0
    assert f["fw_newline_word_ratio"] == pytest.approx(2 / 15)
    d = fineweb_signals(NOTICE + "\n" + NOTICE)
    assert d["fw_char_dup_frac"] == pytest.approx(0.5)


def test_code_signals_by_hand():
    c = code_signals("x = 1\nyy = 22", "pkg/a.py")
    assert (c["code_max_line_length"], c["code_mean_line_length"]) == (7, 6)
    assert c["code_alnum_frac"] == pytest.approx(6 / 13)
    assert c["code_is_data"] == 0 and c["code_is_minified"] == 0
    assert code_signals("{}", "conf/settings.yaml")["code_is_data"] == 1
    assert code_signals("var a=1;" * 100, "dist/app.min.js")["code_is_minified"] == 1


def test_a_real_prose_document_passes_and_a_boilerplate_page_fails():
    # the whole Zen: 144 words, 19 stop words, 19 sentences, 95% of lines end in punctuation
    assert evaluate(text_signals(normalize_text(ZEN)), "text") == []
    page = "Lorem ipsum dolor sit amet.\n" * 3
    failed = evaluate(text_signals(page), "text")
    assert failed[0] == "c4_lorem_ipsum" and "gopher_min_words" in failed and "gopher_dup_lines" in failed


def test_rules_are_ordered_named_once_and_configurable():
    names = [r.name for r in DEFAULT_RULES]
    assert len(names) == len(set(names))
    rules = configure({"gopher_min_words": {"min": 10}, "fineweb_char_dup": {"enabled": False}})
    by = {r.name: r for r in rules}
    assert by["gopher_min_words"].min == 10 and not by["fineweb_char_dup"].enabled
    assert [r.name for r in rules] == names


@pytest.mark.parametrize("override,message", [
    ({"gopher_min_word": {"min": 3}}, "unknown rule 'gopher_min_word' (did you mean 'gopher_min_words'?)"),
    ({"gopher_min_words": {"minimum": 3}}, "expected a mapping of min, max and enabled"),
    ({"gopher_min_words": {"min": "many"}}, "gopher_min_words.min: expected a number, got 'many'"),
    ({"gopher_mean_word_length": {"min": 12}}, "min 12 is above max 10"),
])
def test_bad_rule_config_gets_one_sentence(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        configure(override)


def test_a_code_record_inside_json_lines_is_judged_on_its_text_not_on_the_containers_name():
    """A code file named `.json` is data; a code record read from a `.jsonl` file is not, because of
    the container's name (it used to be rejected as code_data_file, every one of them)."""
    import sysconfig
    from pathlib import Path

    from brickyard.pipelines.config import CurateSettings
    from brickyard.pipelines.stages.curate import curate_record

    code = (Path(sysconfig.get_paths()["stdlib"]) / "colorsys.py").read_text()
    settings = {**CurateSettings().model_dump(), "licenses": ["PSF-2.0"]}
    rules = configure(settings["rules"])
    base = {"doc_id": "d", "source": "s", "domain": "code", "locator": "", "text": code, "content_sha256": "h",
            "code_language": "python", "license": "PSF-2.0", "is_vendored": False, "is_generated": False}
    in_jsonl = curate_record({**base, "format": "jsonl", "path": "dumps/code-00001.jsonl"}, "en", 1.0, settings, rules)
    as_file = curate_record({**base, "format": "code", "path": "lib/colorsys.json"}, "en", 1.0, settings, rules)
    assert in_jsonl["keep"], in_jsonl["failed_rules"]
    assert "code_data_file" in as_file["failed_rules"]


def _word_by_word(text: str) -> tuple[float, float, float]:
    """gopher_quality's word counts as first written, one word at a time: the reference the
    whole-text regex counts are held to."""
    import re

    ws = text.split()
    n = len(ws)
    if not n:
        return 0.0, 0.0, 0.0
    letter = re.compile(r"[^\W\d_]")
    stop = {"the", "be", "to", "of", "and", "that", "have", "with"}
    return (sum(len(w) for w in ws) / n, sum(bool(letter.search(w)) for w in ws) / n,
            float(sum(w.lower().strip(".,;:!?\"'()") in stop for w in ws)))


def test_whole_text_word_counts_equal_the_word_by_word_ones_on_real_files():
    import random
    import sysconfig
    from pathlib import Path

    from tests.helpers import STDLIB, real_metadata_texts

    rng = random.Random(5)
    sources = sorted(STDLIB.rglob("*.py")) + sorted(Path(sysconfig.get_paths()["purelib"]).glob("*/*.py"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in rng.sample(sources, 500)]
    texts += real_metadata_texts(200)
    texts += [normalize_text(t) for t in texts[:200]]
    # edges: stop words in quotes and brackets, in capitals, glued or hyphenated; letters that
    # lower-case to more than one character or only look like ASCII; digits, "_", other white space
    texts += ["'The' (to) THE. Of, and! thethe to-do wİth wıth \u212aey ...that... \"have\"? with;",
              "123 4_5 __init__ été 日本 ٣٤ x\u00a0the\u2003of\x1cand\tbe\nTO", "", "   \n\t ", "the"]
    for text in texts:
        got = gopher_quality(text)
        assert (got["mean_word_length"], got["alpha_words_frac"], got["stop_words"]) == _word_by_word(text), text[:200]


def _c4_line_by_line(text: str) -> dict[str, float]:
    """c4_signals as first written, every line lower-cased and searched: the reference."""
    import re

    from brickyard.pipelines.text.signals import POLICY_PHRASES, TERMINAL_PUNCT

    ls = [ln.strip() for ln in text.split("\n") if ln.strip()]
    kept = sum(ln.endswith(TERMINAL_PUNCT) and len(ln.split()) >= 3 and "javascript" not in ln.lower()
               and not any(p in ln.lower() for p in POLICY_PHRASES) for ln in ls)
    return {
        "c4_terminal_punct_line_frac": sum(ln.endswith(TERMINAL_PUNCT) for ln in ls) / len(ls) if ls else 0.0,
        "c4_kept_line_frac": kept / len(ls) if ls else 0.0,
        "c4_sentences": float(len(re.findall(r"[.!?]+(?:\s|$)", text))),
        "c4_lorem_ipsum": float("lorem ipsum" in text.lower()),
        "c4_curly_brace": float("{" in text),
        "c4_javascript_line_frac": sum("javascript" in ln.lower() for ln in ls) / len(ls) if ls else 0.0,
        "c4_policy_line_frac": sum(any(p in ln.lower() for p in POLICY_PHRASES) for ln in ls) / len(ls) if ls else 0.0,
    }


def test_c4_signals_equal_the_line_by_line_ones_on_real_pages():
    from tests.helpers import real_html_pages, real_metadata_texts, visible_text

    texts = [visible_text(p.read_text(encoding="utf-8", errors="replace"))[1] for p in real_html_pages(60)]
    texts += real_metadata_texts(100)
    texts += ["Enable JavaScript to view this page.\nWe Use Cookies here, you see.\nRead the PRIVACY POLICY now.\nA real line ends here.",
              "Terms of\nuse are split. JAVASCRİPT is not javascript.\n\n  three words here.  ", "", "\n\n"]
    assert any("javascript" in t.lower() for t in texts)
    for text in texts:
        assert c4_signals(text) == _c4_line_by_line(text), text[:200]
