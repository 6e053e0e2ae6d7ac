"""MinHash signatures and LSH band keys, computed for whole batches of documents with numpy.

Pure functions, no Spark: the dedup job calls them inside Arrow batches.

Shingles are word n-grams (5 by default) of the lower-cased text, words being runs of `\\w`
characters; a document shorter than n words is one shingle of all its words, and a document with
no words has no shingles (its signature is all 0xFFFFFFFF, as datasketch's empty MinHash).

The shingle hash is a 32-bit fold of the words' CRC-32s (`shingle_hash` spells it out one
shingle at a time; `shingle_hashes` computes every shingle of a document at once). The signature
scheme is datasketch's default since 2.0, "affine32": each shingle hash goes through the
MurmurHash3 32-bit finalizer, then through `num_perm` affine maps `a * h + b mod 2^32` whose
parameters come from datasketch itself (`MinHash(num_perm, seed, scheme="affine32")`), and each
slot keeps its minimum. With `hashfunc=shingle_hash`, datasketch's `MinHash` gives bit-identical
signatures; tests/unit/test_minhash.py checks it.

LSH splits a signature into `b` bands of `r` rows, with (b, r) chosen for a Jaccard threshold by
datasketch's `MinHashLSH` (its optimal-parameter search, false positives and negatives weighted
equally). A band's key is a 64-bit fold of its r values, tagged with the band's index.
"""

from __future__ import annotations

import functools
import re
import zlib

import numpy as np

WORD = re.compile(r"\w+")
MAX_HASH = np.uint32(0xFFFFFFFF)
_FOLD32 = np.uint32(0x01000193)  # FNV-1 prime: shingle hash = fold of its words' CRC-32s
_FOLD64 = np.uint64(0x9E3779B97F4A7C15)
BLOCK = 1 << 15  # shingles per (shingles x permutations) block: 128 permutations -> 16 MB


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


def shingle_hash(shingle: str) -> int:
    """The 32-bit hash of one shingle (its words joined by single spaces), one word at a time."""
    h = 0
    for i, w in enumerate(shingle.split(" ")):
        c = zlib.crc32(w.encode("utf-8"))
        h = c if i == 0 else (h * 0x01000193 + c) & 0xFFFFFFFF
    return h


def shingles_of(text: str, n: int) -> list[str]:
    """The shingles as strings (for tests and notebooks; the job uses `shingle_hashes`)."""
    ws = words_of(text)
    if not ws:
        return []
    if len(ws) < n:
        return [" ".join(ws)]
    return [" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Every shingle's hash, as `shingle_hash` computes it, for all shingles of the text at once."""
    ws = words_of(text)
    if not ws:
        return np.zeros(0, dtype=np.uint32)
    crc = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in ws), dtype=np.uint32, count=len(ws))
    k = min(n, len(ws))
    m = len(ws) - k + 1
    h = crc[:m].copy()
    for j in range(1, k):
        h = h * _FOLD32 + crc[j : j + m]
    return h


@functools.lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own affine32 permutation parameters (a odd, b), as uint32 arrays."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (a bijection), element-wise; multiplications wrap."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(hash_lists: list[np.ndarray], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """One MinHash signature (uint32[num_perm]) per document, from its shingle hashes.

    Documents are packed into blocks of about BLOCK shingles; each block is one
    (shingles x permutations) product and one `minimum.reduceat` over the documents' segments."""
    a, b = permutations(num_perm, seed)
    out = np.full((len(hash_lists), num_perm), MAX_HASH, dtype=np.uint32)
    group: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal group, size
        if group:
            hs = [hash_lists[i] for i in group]
            mixed = fmix32(np.concatenate(hs))
            starts = np.cumsum([0] + [len(h) for h in hs[:-1]])
            phv = mixed[:, None] * a[None, :] + b[None, :]
            out[group] = np.minimum.reduceat(phv, starts, axis=0)
        group, size = [], 0

    for i, h in enumerate(hash_lists):
        if len(h) == 0:
            continue
        if len(h) > BLOCK:  # a long document alone, block by block
            flush()
            acc = out[i]
            for s in range(0, len(h), BLOCK):
                mixed = fmix32(h[s : s + BLOCK])
                np.minimum(acc, (mixed[:, None] * a[None, :] + b[None, :]).min(axis=0), out=acc)
            continue
        if size + len(h) > BLOCK:
            flush()
        group.append(i)
        size += len(h)
    flush()
    return out


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, by datasketch's optimal-parameter search."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """int64[n_docs, bands]: a 64-bit fold of each band's `rows` values (band index folded in)."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    for j in range(bands):
        k = np.full(n, np.uint64(j + 1), dtype=np.uint64)
        for v in sigs[:, j * rows : (j + 1) * rows].T.astype(np.uint64):
            k = (k ^ v) * _FOLD64
        keys[:, j] = k
    return keys.view(np.int64)


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The signatures' estimate of the Jaccard similarity: the share of equal slots."""
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))
