"""Word n-grams for decontamination: the batch hashes equal the one-at-a-time definition, short
segments count whole from min_words, the lookup set and the verification against the text."""

from __future__ import annotations

import numpy as np
import pytest
from brickyard.pipelines.text.ngrams import (
    CHUNK,
    DocumentWords,
    GramSet,
    batch_gram_hashes,
    document_grams,
    gram_hash,
    grams_of,
    item_grams,
    item_hashes,
    verify_matches,
    words_of,
)

from tests.helpers import real_metadata_texts

TYPOGRAPHY = "“Quoted” text — with dashes… and «guillemets», non\u00a0breaking spaces, x·y and 東京タワー、東京"


def reference(texts: list[str], lengths: list[int]) -> list[tuple[int, int]]:
    out = []
    for i, t in enumerate(texts):
        ws = words_of(t)
        for n in lengths:
            out += [(i, gram_hash(g)) for g in grams_of(ws, n)]
    return sorted(out)


def test_normalization_lowers_and_splits_on_ascii_and_typographic_punctuation():
    assert words_of(TYPOGRAPHY) == ["quoted", "text", "with", "dashes", "and", "guillemets", "non", "breaking",
                                    "spaces", "x", "y", "and", "東京タワー", "東京"]
    assert words_of('"Quoted" text - with dashes... and <<guillemets>>') == words_of("“Quoted” text — with dashes… and «guillemets»")
    assert words_of("Don't stop: naïve café, ÉCOLE_2") == ["don", "t", "stop", "naïve", "café", "école_2"]


def test_batch_hashes_equal_the_one_at_a_time_hash_on_real_text():
    texts = real_metadata_texts(12) + [TYPOGRAPHY, "", "two words", "İstanbul ÇAĞ straße ΣΊΣΥΦΟΣ"]
    h, owner = batch_gram_hashes(texts, [13, 8])
    assert sorted(zip(owner.tolist(), h.tolist(), strict=True)) == reference(texts, [13, 8])
    assert h.dtype == np.uint64 and len(h) > 10_000


def test_a_text_longer_than_a_chunk_and_chunk_edges_change_nothing():
    long = " ".join(real_metadata_texts(40))
    assert len(long.encode()) > CHUNK
    texts = ["alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu", long, "a " * 30]
    h, owner = batch_gram_hashes(texts, [13])
    assert sorted(zip(owner.tolist(), h.tolist(), strict=True)) == reference(texts, [13])
    # no gram runs from one text into the next
    assert set(owner.tolist()) == {0, 1, 2} and (owner == 0).sum() == 1


def test_grams_of_different_lengths_never_share_a_hash():
    words = words_of("one two three four five six seven eight nine ten eleven twelve thirteen")
    assert gram_hash(words[:8]) != gram_hash(words[:9]) and len({gram_hash(words[:k]) for k in range(1, 14)}) == 13


def test_an_item_gives_its_ngrams_per_segment_and_short_segments_whole_from_min_words():
    long = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat today"
    ten = "which of these animals is the fastest runner on land"
    segments = [long, ten, "a cheetah", "   "]
    grams = item_grams(segments, 13, 8)
    assert grams[: len(grams_of(words_of(long), 13))] == grams_of(words_of(long), 13)
    assert tuple(words_of(ten)) in grams  # 10 words: one gram, whole
    assert not any(g == ("a", "cheetah") for g in grams)  # 2 words: below min_words, left out
    assert all(not set(g) >= {"land", "a"} for g in grams)  # no gram crosses two segments
    assert item_grams(["a cheetah", "yes"], 13, 8) == []
    h, offsets, n_words, lengths = item_hashes([segments, ["a cheetah"]], 13, 8)
    assert sorted(h[offsets[0]:offsets[1]].tolist()) == sorted({gram_hash(g) for g in grams})
    assert offsets[2] == offsets[1] and n_words == [len(words_of(long)) + 10 + 2, 2] and lengths == [[10, 13], []]


def test_a_short_item_is_found_whole_in_a_document_by_its_length():
    item = "which of these animals is the fastest runner on land"
    doc = "Quiz night. Which of these animals is the fastest runner on land? Nobody knew."
    h_item, off, _, lengths = item_hashes([[item]], 13, 8)
    found, offsets = document_grams([doc, "which of these animals is the slowest runner on land"], lengths[0], GramSet(h_item))
    assert offsets.tolist() == [0, 1, 1] and found.tolist() == h_item.tolist()


def test_gramset_membership_matches_a_python_set():
    rng = np.random.default_rng(7)
    members = rng.integers(0, 2**63, 50_000, dtype=np.int64).view(np.uint64) * np.uint64(2) + np.uint64(1)
    probe = np.concatenate([members[::7], rng.integers(0, 2**63, 200_000, dtype=np.int64).view(np.uint64)])
    s, plain = GramSet(members), set(members.tolist())
    expected = np.fromiter((x in plain for x in probe.tolist()), dtype=bool, count=len(probe))
    assert np.array_equal(s.contains(probe), expected) and len(s) == len(plain)
    assert GramSet(np.zeros(0, dtype=np.uint64)).contains(probe).sum() == 0


def test_verification_counts_real_shared_grams_and_reports_the_longest_stretch():
    passage = ("Action objects are used by an ArgumentParser to represent the information needed to parse a single "
               "argument from one or more strings from the command line")
    edited = passage.replace("information", "details")
    doc = DocumentWords("Intro text here.\n\n" + edited.replace("Action", "ACTION") + "\n\nOutro text.")
    m = verify_matches(doc, item_grams([passage], 13, 8))
    total = len(words_of(passage)) - 12
    assert m is not None and m.item_grams == total and 0 < m.matched < total
    # "information" is the 11th of 26 words: the three grams after it hold, and the span is their stretch
    assert (m.matched, m.span) == (3, "needed to parse a single argument from one or more strings from the command line")
    # a whole copy: every gram, and the span is the copy as the document writes it
    doc = DocumentWords("Before. " + passage.upper() + " After.")
    m = verify_matches(doc, item_grams([passage], 13, 8))
    assert (m.matched, m.containment) == (total, 1.0) and m.span == passage.upper()
    assert verify_matches(DocumentWords("nothing in common at all"), item_grams([passage], 13, 8)) is None


@pytest.mark.parametrize("lengths", [[13], [8, 13]])
def test_document_grams_are_distinct_per_document(lengths):
    texts = ["la " * 40, "one two three four five six seven eight nine ten eleven twelve thirteen " * 3, ""]
    h, offsets = document_grams(texts, lengths)
    per_doc = [h[offsets[i]:offsets[i + 1]] for i in range(len(texts))]
    assert [len(set(x.tolist())) for x in per_doc] == [len(x) for x in per_doc]
    assert len(per_doc[0]) == len(lengths) and len(per_doc[2]) == 0
