"""MinHash signatures, computed for whole batches of documents with numpy.

Pure functions, no Spark: the dedup job calls them inside Arrow batches.

Shingles are word n-grams (5 by default) of the lower-cased text. A word is a run of ASCII letters,
digits and `_`, or of any non-ASCII characters (in UTF-8: a run of bytes in [0-9a-z_] or >= 0x80),
so that words can be found on the bytes of a whole batch at once. A document shorter than n words
is one shingle of all its words; a document with no words has no shingles (its signature is all
0xFFFFFFFF, as datasketch's empty MinHash).

The shingle hash is 32-bit and polynomial: each word's UTF-8 bytes are folded with the FNV prime
from the FNV offset basis, and the shingle's word hashes are folded with a second odd multiplier
(`shingle_hash` spells it out one shingle at a time). `batch_shingle_hashes` computes the same
values for every shingle of a batch of documents with a handful of numpy passes over the batch's
bytes: word boundaries from a byte-class table, word hashes from prefix sums of `byte * P^-i`
(every odd number is invertible mod 2^32), shingles from shifted word-hash arrays.

The signature scheme is datasketch's default since 2.0, "affine32": each shingle hash goes through
the MurmurHash3 32-bit finalizer, then through `num_perm` affine maps `a * h + b mod 2^32` whose
parameters come from datasketch itself (`MinHash(num_perm, seed, scheme="affine32")`), and each
slot keeps its minimum. With `hashfunc=shingle_hash`, datasketch's `MinHash` gives bit-identical
signatures; tests/unit/test_minhash.py checks it.

LSH splits a signature into `b` bands of `r` rows, with (b, r) chosen for a Jaccard threshold by
datasketch's `MinHashLSH` (its optimal-parameter search, false positives and negatives weighted
equally). The dedup job hashes the bands in Spark SQL (`brickyard.pipelines.stages.dedup.band_buckets`).
"""

from __future__ import annotations

import functools
import re

import numpy as np

WORD = re.compile(r"[0-9a-z_\x80-\U0010ffff]+")
MAX_HASH = np.uint32(0xFFFFFFFF)
HASH_VERSION = 1  # part of a stored signature's scheme name: bump it when the shingle hash changes
BASIS, PRIME = 0x811C9DC5, 0x01000193  # FNV-1 32-bit: a word's hash folds its bytes
FOLD = 0x9E3779B1  # a shingle's hash folds its words' hashes
MASK = 0xFFFFFFFF
BLOCK = 1 << 13  # shingles per (permutations x shingles) block: 128 permutations -> 4 MB
CHUNK = 1 << 22  # bytes of text hashed per numpy pass
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"0123456789abcdefghijklmnopqrstuvwxyz_":
    _WORD_BYTE[_c] = True
_WORD_BYTE[0x80:] = True


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


def word_hash(word: str) -> int:
    h = BASIS
    for byte in word.encode("utf-8"):
        h = (h * PRIME + byte) & MASK
    return h


def shingle_hash(shingle: str) -> int:
    """The 32-bit hash of one shingle (its words joined by single spaces), one byte at a time."""
    h = 0
    for w in shingle.split(" "):
        h = (h * FOLD + word_hash(w)) & MASK
    return h


def shingles_of(text: str, n: int) -> list[str]:
    """The shingles as strings (for tests and notebooks; the job uses `batch_shingle_hashes`)."""
    ws = words_of(text)
    if not ws:
        return []
    if len(ws) < n:
        return [" ".join(ws)]
    return [" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)]


_POWERS: list[np.ndarray] = []  # [PRIME^i, PRIME^-i] for i below the longest chunk seen: one table, grown


def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """PRIME^i and PRIME^-i mod 2^32 for i < size (uint32; numpy's products wrap)."""
    if not _POWERS or len(_POWERS[0]) < size:
        p = np.full(size, PRIME, dtype=np.uint32)
        q = np.full(size, pow(PRIME, -1, 1 << 32), dtype=np.uint32)
        p[0] = q[0] = 1
        _POWERS[:] = [np.cumprod(p, dtype=np.uint32), np.cumprod(q, dtype=np.uint32)]
    return _POWERS[0], _POWERS[1]


def _chunk_shingles(data: bytes, doc_starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of the documents laid out in `data` (separated by a non-word byte) and the
    number of shingles of each."""
    n_docs = len(doc_starts)
    buf = np.frombuffer(data, dtype=np.uint8)
    edge = np.diff(_WORD_BYTE[buf].view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(n_docs, dtype=np.int64)
    size = 1 << max(12, int(len(buf)).bit_length())
    ppow, qpow = _powers(size)
    prefix = np.zeros(len(buf) + 1, dtype=np.uint32)
    np.cumsum(buf * qpow[: len(buf)], dtype=np.uint32, out=prefix[1:])
    # sum of b_i P^(e-1-i) over a word = P^(e-1) (S[e] - S[s]); the basis term is BASIS P^len
    words = ppow[ends - 1] * (prefix[ends] - prefix[starts]) + np.uint32(BASIS) * ppow[ends - starts]
    doc = np.searchsorted(doc_starts, starts, side="right") - 1
    per_doc = np.bincount(doc, minlength=n_docs)
    m = len(words) - n + 1
    if m > 0:
        h = words[:m].copy()
        for k in range(1, n):
            h = h * np.uint32(FOLD) + words[k : k + m]
        keep = doc[:m] == doc[n - 1 :]
        hashes, owner = h[keep], doc[:m][keep]
    else:
        hashes, owner = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    short = np.flatnonzero((per_doc > 0) & (per_doc < n))
    if len(short):  # a document of fewer than n words: one shingle of all of them
        first = np.searchsorted(doc, short)
        extra = np.zeros(len(short), dtype=np.uint32)
        for k in range(int(per_doc[short].max())):
            more = per_doc[short] > k
            extra[more] = extra[more] * np.uint32(FOLD) + words[first[more] + k]
        hashes, owner = np.concatenate([hashes, extra]), np.concatenate([owner, short])
        order = np.argsort(owner, kind="stable")
        hashes, owner = hashes[order], owner[order]
    return hashes, np.bincount(owner, minlength=n_docs)


def batch_shingle_hashes(texts: list[str], n: int) -> list[np.ndarray]:
    """Every shingle's hash, as `shingle_hash` computes it, for each text: numpy passes over about
    CHUNK bytes of text at a time."""
    out: list[np.ndarray] = []
    i = 0
    while i < len(texts):
        parts, size = [], 0
        while i < len(texts) and (not parts or size < CHUNK):  # a long text makes a chunk of its own
            parts.append(texts[i].lower().encode("utf-8") + b" ")
            size += len(parts[-1])
            i += 1
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        hashes, counts = _chunk_shingles(b"".join(parts), starts, n)
        out.extend(np.split(hashes, np.cumsum(counts)[:-1]))
    return out


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """Every shingle's hash of one text (see `batch_shingle_hashes`)."""
    return batch_shingle_hashes([text], n)[0]


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

    All shingles of the batch are laid end to end and cut into blocks of BLOCK shingles, regardless
    of documents; each block is one (shingles x permutations) product, reduced per document segment
    with `minimum.reduceat`, and folded into the signatures of the documents it touches."""
    a, b = permutations(num_perm, seed)
    out = np.full((len(hash_lists), num_perm), MAX_HASH, dtype=np.uint32)
    counts = np.fromiter((len(h) for h in hash_lists), dtype=np.int64, count=len(hash_lists))
    if not counts.sum():
        return out
    mixed = fmix32(np.concatenate(hash_lists).astype(np.uint32, copy=False))
    owner = np.repeat(np.arange(len(hash_lists)), counts)
    # permutations x shingles: each permutation's row is contiguous, so the per-document minima
    # reduce along contiguous memory
    phv = np.empty((num_perm, BLOCK), dtype=np.uint32)
    bcol = b[:, None]
    for s in range(0, len(mixed), BLOCK):
        e = min(s + BLOCK, len(mixed))
        block = phv[:, : e - s]
        np.multiply.outer(a, mixed[s:e], out=block)
        block += bcol
        docs = owner[s:e]
        cuts = np.flatnonzero(np.diff(docs, prepend=-1))  # where a document's segment starts
        ids = docs[cuts]  # distinct within a block
        out[ids] = np.minimum(out[ids], np.minimum.reduceat(block, cuts, axis=1).T)
    return out


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, by datasketch's optimal-parameter search (weights of
    false positives and false negatives)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=tuple(weights))
    return int(lsh.b), int(lsh.r)


def s_curve(j: float, bands: int, rows: int) -> float:
    """The probability that two documents of Jaccard similarity j share at least one band."""
    return 1 - (1 - j**rows) ** bands


def pair_jaccard(texts_a: list[str], texts_b: list[str], n: int) -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of each pair (texts_a[i], texts_b[i])."""
    a, b = batch_shingle_hashes(texts_a, n), batch_shingle_hashes(texts_b, n)
    out = np.zeros(len(a), dtype=np.float64)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        x, y = np.unique(x), np.unique(y)
        if len(x) and len(y):
            inter = len(np.intersect1d(x, y, assume_unique=True))
            out[i] = inter / (len(x) + len(y) - inter)
    return out


def pair_containment(texts_a: list[str], texts_b: list[str], n: int) -> np.ndarray:
    """Exact containment of each texts_a[i] in texts_b[i]: the share of a's distinct shingles (as
    hashed by `batch_shingle_hashes`) that b has too, |A & B| / |A|; 0 when a has no shingles."""
    a, b = batch_shingle_hashes(texts_a, n), batch_shingle_hashes(texts_b, n)
    out = np.zeros(len(a), dtype=np.float64)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        x = np.unique(x)
        if len(x):
            out[i] = len(np.intersect1d(x, np.unique(y), assume_unique=True)) / len(x)
    return out


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The signatures' estimate of the Jaccard similarity: the share of equal slots."""
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))
