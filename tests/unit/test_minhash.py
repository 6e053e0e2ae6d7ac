"""MinHash signatures: bit-identical to datasketch for the same shingle hashes, vectorized over
batches, and LSH parameters from datasketch's own search."""

from __future__ import annotations

import numpy as np
import pytest
from brickyard.pipelines.text.minhash import (
    BLOCK,
    jaccard,
    lsh_params,
    shingle_hash,
    shingle_hashes,
    shingles_of,
    signatures,
)
from datasketch import MinHash, MinHashLSH

from tests.helpers import real_metadata_texts


def datasketch_signature(text: str, n: int, num_perm: int, seed: int) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    for s in shingles_of(text, n):
        m.update(s)
    return m.hashvalues


def test_shingle_hashes_match_the_one_at_a_time_hash():
    text = "The quick brown fox jumps over the lazy dog; the quick brown fox naps."
    assert [int(h) for h in shingle_hashes(text, 5)] == [shingle_hash(s) for s in shingles_of(text, 5)]
    assert shingles_of("Two words", 5) == ["two words"] and len(shingle_hashes("Two words", 5)) == 1
    assert shingles_of("  ... ", 5) == [] and len(shingle_hashes("  ... ", 5)) == 0


@pytest.mark.parametrize("num_perm,seed,n", [(128, 1, 5), (64, 42, 3), (256, 7, 5)])
def test_signatures_are_bit_identical_to_datasketch(num_perm, seed, n):
    texts = real_metadata_texts(12) + ["short text", "", "one two three four five six"]
    ours = signatures([shingle_hashes(t, n) for t in texts], num_perm, seed)
    for t, sig in zip(texts, ours, strict=True):
        assert np.array_equal(sig, datasketch_signature(t, n, num_perm, seed))
    assert ours.dtype == np.uint32 and ours.shape == (len(texts), num_perm)


def test_a_document_longer_than_a_block_is_the_same_as_datasketch():
    text = " ".join(f"w{i % 5000} x{i % 777}" for i in range(BLOCK + 5000))
    (sig,) = signatures([shingle_hashes(text, 5)], 128, 1)
    assert np.array_equal(sig, datasketch_signature(text, 5, 128, 1))


def test_empty_documents_get_datasketchs_empty_signature():
    (sig,) = signatures([shingle_hashes("", 5)], 128, 1)
    assert np.array_equal(sig, MinHash(num_perm=128, seed=1).hashvalues)


def test_lsh_params_come_from_datasketch_and_cover_the_signature():
    for threshold, num_perm in [(0.8, 128), (0.7, 256), (0.9, 64)]:
        b, r = lsh_params(threshold, num_perm)
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert (b, r) == (lsh.b, lsh.r) and b * r <= num_perm


def test_near_duplicates_share_a_band_and_estimate_their_jaccard():
    base = real_metadata_texts(1)[0]
    near = base.replace("the", "a", 3)  # a few words changed
    other = real_metadata_texts(2)[1]
    sigs = signatures([shingle_hashes(t, 5) for t in (base, near, other)], 128, 1)
    truth = len(set(shingles_of(base, 5)) & set(shingles_of(near, 5))) / len(set(shingles_of(base, 5)) | set(shingles_of(near, 5)))
    assert abs(jaccard(sigs[0], sigs[1]) - truth) < 0.1
    b, r = lsh_params(0.8, 128)

    def share_a_band(x, y):  # a candidate pair
        return any(np.array_equal(x[j * r:(j + 1) * r], y[j * r:(j + 1) * r]) for j in range(b))

    assert share_a_band(sigs[0], sigs[1]) and not share_a_band(sigs[0], sigs[2])
    assert jaccard(sigs[0], sigs[2]) < 0.2


def test_batches_of_documents_hash_like_one_shingle_at_a_time(monkeypatch):
    import brickyard.pipelines.text.minhash as mh

    texts = real_metadata_texts(5) + ["", "  ... ", "Zwei Wörter", "naïve café — déjà vu, Ünïcödé ÉTÉ text here", "a b c d e f",
                                      "snake_case and CamelCase 42x 3.14 x"]
    for chunk in (mh.CHUNK, 64):  # whole batch in one pass, and many passes with long texts alone
        monkeypatch.setattr(mh, "CHUNK", chunk)
        for n in (1, 3, 5):
            got = mh.batch_shingle_hashes(texts, n)
            assert [[int(h) for h in g] for g in got] == [[shingle_hash(s) for s in shingles_of(t, n)] for t in texts]


def test_pair_jaccard_is_exact_on_the_shingle_sets():
    from brickyard.pipelines.text.minhash import pair_jaccard, s_curve

    texts = real_metadata_texts(3)
    near = texts[0].replace("the", "a", 5)
    got = pair_jaccard([texts[0], texts[0], texts[1], ""], [near, texts[0], texts[2], texts[1]], 5)
    for (x, y), j in zip([(texts[0], near), (texts[0], texts[0]), (texts[1], texts[2]), ("", texts[1])], got, strict=True):
        a, b = set(shingles_of(x, 5)), set(shingles_of(y, 5))
        assert j == pytest.approx(len(a & b) / len(a | b) if a and b else 0.0)
    assert got[1] == 1.0
    b, r = lsh_params(0.8, 128, (0.02, 0.98))
    assert (b, r) == (17, 7) and s_curve(0.8, b, r) > 0.98 > s_curve(0.6, b, r)
