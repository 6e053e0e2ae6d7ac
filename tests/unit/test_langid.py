"""fastText lid.176 on translated man pages: the folder (/usr/share/man/<lang>) is the label."""

from pathlib import Path

import pytest
from brickyard.pipelines.text.langid import get_model, identify

from tests.roff import roff_text

MAN = Path("/usr/share/man")
# languages whose Debian translations are complete enough to be a label (da and zh_CN pages are
# often half English, so their folder is not ground truth)
LANGS = {"de": "de", "fr": "fr", "es": "es", "ru": "ru", "ja": "ja", "pt_BR": "pt", "nl": "nl", "sv": "sv", "uk": "uk", "ko": "ko"}


@pytest.mark.parametrize("folder,code", list(LANGS.items()))
def test_language_of_translated_man_pages(folder, code):
    pages = sorted((MAN / folder).rglob("*.gz"))[:40]
    if len(pages) < 10:
        pytest.skip(f"this machine has fewer than 10 man pages in {MAN / folder}")
    langs, scores = identify([roff_text(p) for p in pages])
    right = [s for lang, s in zip(langs, scores, strict=True) if lang == code]
    assert len(right) / len(pages) >= 0.85, f"{folder}: {langs}"
    assert sum(right) / len(right) >= 0.65  # confident where right: above the default keep threshold


def test_english_prose_and_one_load_per_process():
    langs, scores = identify(["Beautiful is better than ugly. Explicit is better than implicit. Simple is better than complex."])
    assert langs == ["en"] and scores[0] > 0.65
    assert get_model() is get_model()
    assert identify([]) == ([], [])


def test_scores_are_probabilities_even_where_fasttext_rounds_above_one():
    langs, scores = identify(["Das ist ein Test. " * 50, "The quick brown fox jumps over the lazy dog. " * 50])
    assert langs == ["de", "en"]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores[0] > 0.99
