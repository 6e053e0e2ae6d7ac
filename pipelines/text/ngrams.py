"""Word n-grams for benchmark decontamination: normalized, hashed to 64 bits over whole batches.

Pure functions, no Spark: the decontaminate stage calls them inside Arrow batches, and the tests
and the benchmark call them directly.

Normalization. Text is lower-cased (`str.lower`) and split into words: runs of ASCII letters,
digits and `_`, or of non-ASCII characters, as in `minhash` (so words are found on the UTF-8 bytes
of a whole batch at once), except that three blocks of punctuation also separate words: U+0080 to
U+00BF (no-break space, guillemets, inverted marks, the middle dot), U+2000 to U+207F (the Unicode
spaces, dashes, curly quotes, ellipsis, bullets) and U+3000 to U+303F (CJK punctuation). An
evaluation set and a web page often differ only in their typography (`"` or `“`, `-` or `—`), and
that must not hide a copy. Everything else that is not a word character (ASCII punctuation, white
space, line breaks) separates words too. Both sides are normalized the same way; documents arrive
NFC-normalized from curation and evaluation items are normalized as curate normalizes text.
Languages written without spaces (Chinese, Japanese) give one word per run between punctuation,
so their n-grams are long phrases: word n-grams are a weak test there.

Grams. An item's text comes in segments (each field, each element of a list field); n-grams never
cross a segment's end. A segment of at least `n` words gives its n-grams. A shorter segment of at
least `min_words` words is one gram of all its words: it is found when the whole segment appears,
word for word, in a document. This is GPT-3's choice for short examples (Brown et al. 2020,
appendix C: N-gram overlap with N lowered for benchmarks of short examples, never below 8 words;
the lm-evaluation-harness keeps 13 for every task); `min_words` (8 by default, GPT-3's floor) is the
shortest sequence matched at all, since shorter ones recur by chance. A segment below it gives no
gram, and an item with no gram at all is not checked (the stage counts those items).

Hashes. A word's hash folds its UTF-8 bytes (h = h * P + byte mod 2^64, from the FNV-1 64-bit offset
basis and prime), then goes through MurmurHash3's 64-bit finalizer; a gram of L words folds its
words' mixed hashes with a second odd multiplier, adds L times a constant and is finalized again
(`gram_hash` spells it out one gram at a time). `batch_gram_hashes` computes the same values for a
whole batch with a few numpy passes: word boundaries from a byte-class table, word hashes from
prefix sums of `byte * P^-i`, every gram length from prefix sums of `word * F^-j` (every odd number
is invertible mod 2^64). 64 bits, not the 32 of `minhash`: chance collisions number about
(document grams x evaluation grams) / 2^bits, so 10^9 document grams (a few GB of text) checked
against 10^5 evaluation grams would meet about 23,000 with 32-bit hashes and 0.000005 with 64-bit
ones (10^11 against 10^6: 23 million and 0.005). Matches are then verified against the text (`verify_matches`), so a reported
match is a real shared word sequence, never a hash collision.

Lookups. `GramSet` holds the evaluation side's hashes: a sorted array behind a bitmap of 32 bits
per hash, so a document gram that is not in the set (nearly all of them) costs one memory read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

HASH_VERSION = 1  # part of an evaluation set's digest: bump it when normalization or hashing changes
WORD = re.compile(r"[0-9a-z_\u00c0-\u1fff\u2080-\u2fff\u3040-\U0010ffff]+")
BASIS, PRIME = 0xCBF29CE484222325, 0x100000001B3  # FNV-1 64-bit: a word's hash folds its bytes
FOLD = 0x9E3779B97F4A7C15  # a gram's hash folds its words' hashes (odd)
LENGTH = 0xD6E8FEB86659FD93  # a gram's length is added to its hash (grams of different lengths differ)
MASK = (1 << 64) - 1
CHUNK = 1 << 20  # bytes of text hashed per numpy pass (a longer document is a chunk of its own)
MAX_SPAN_CHARS = 1000  # a reported span is cut to this many characters

_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"0123456789abcdefghijklmnopqrstuvwxyz_":
    _WORD_BYTE[_c] = True
_WORD_BYTE[0x80:] = True
_U64 = np.uint64


# ---------------------------------------------------------------------------------------------
# One at a time: the definition
# ---------------------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """The normalized words of a text."""
    return WORD.findall(text.lower())


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finalizer (a bijection) on a Python int."""
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    return h ^ (h >> 33)


def word_hash(word: str) -> int:
    """A word's mixed 64-bit hash."""
    h = BASIS
    for byte in word.encode("utf-8"):
        h = (h * PRIME + byte) & MASK
    return fmix64(h)


def gram_hash(words: Sequence[str]) -> int:
    """The 64-bit hash of one gram (a sequence of normalized words), one word at a time."""
    h = 0
    for w in words:
        h = (h * FOLD + word_hash(w)) & MASK
    return fmix64((h + len(words) * LENGTH) & MASK)


def grams_of(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Every n-gram of a word sequence, in order."""
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def item_grams(segments: Iterable[str], n: int, min_words: int) -> list[tuple[str, ...]]:
    """An evaluation item's distinct grams, in order of first appearance: the n-grams of each segment
    of at least n words, and each shorter segment of at least `min_words` words whole."""
    out: dict[tuple[str, ...], None] = {}
    for seg in segments:
        ws = words_of(seg)
        if len(ws) >= n:
            out.update(dict.fromkeys(grams_of(ws, n)))
        elif len(ws) >= min_words:
            out[tuple(ws)] = None
    return list(out)


# ---------------------------------------------------------------------------------------------
# Whole batches with numpy
# ---------------------------------------------------------------------------------------------


def _fmix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # multiplier -> (m^i, m^-i), grown as needed


def _powers(m: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """m^i and m^-i mod 2^64 for i < size (uint64; numpy's products wrap)."""
    have = _POWERS.get(m)
    if have is None or len(have[0]) < size:
        size = 1 << max(12, int(size - 1).bit_length())
        p = np.full(size, m, dtype=np.uint64)
        q = np.full(size, pow(m, -1, 1 << 64), dtype=np.uint64)
        p[0] = q[0] = 1
        _POWERS[m] = have = (np.cumprod(p, dtype=np.uint64), np.cumprod(q, dtype=np.uint64))
    return have


def _word_mask(buf: np.ndarray) -> np.ndarray:
    """Which bytes are word bytes: [0-9a-z_] and non-ASCII, less the separator blocks (U+0080-U+00BF
    is C2 xx, U+2000-U+207F is E2 80 xx and E2 81 xx, U+3000-U+303F is E3 80 xx)."""
    mask = _WORD_BYTE[buf]
    high = np.flatnonzero(buf >= 0xC2)  # lead bytes of 2- to 4-byte characters: few in most text
    if not len(high):
        return mask
    for lead, seconds, width in ((0xC2, None, 2), (0xE2, (0x80, 0x81), 3), (0xE3, (0x80,), 3)):
        at = high[(buf[high] == lead) & (high <= len(buf) - width)]
        if seconds is not None and len(at):
            at = at[np.isin(buf[at + 1], seconds)]
        for k in range(width):
            mask[at + k] = False
    return mask


def _words(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(start byte of each word, mixed 64-bit hash of each word) in `data` (lower-cased UTF-8)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    edge = np.diff(_word_mask(buf).view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    if len(starts) == 0:
        return starts, np.zeros(0, dtype=np.uint64)
    ppow, qpow = _powers(PRIME, len(buf) + 1)
    prefix = np.zeros(len(buf) + 1, dtype=np.uint64)
    np.cumsum(buf * qpow[: len(buf)], dtype=np.uint64, out=prefix[1:])
    # sum of b_i P^(e-1-i) over a word = P^(e-1) (S[e] - S[s]); the basis term is BASIS P^len
    words = ppow[ends - 1] * (prefix[ends] - prefix[starts]) + _U64(BASIS) * ppow[ends - starts]
    return starts, _fmix(words)


def _chunk_grams(data: bytes, doc_starts: np.ndarray, lengths: Sequence[int], whole_from: int | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(gram hashes, owning document) of the documents laid out in `data` (each followed by a
    separator byte), for every gram length in `lengths`; with `whole_from`, also each document of
    at least that many words but fewer than the largest length, whole."""
    starts, words = _words(data)
    n_words = len(words)
    if n_words == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    doc = np.searchsorted(doc_starts, starts, side="right") - 1
    fpow, fqpow = _powers(FOLD, n_words + 1)
    prefix = np.zeros(n_words + 1, dtype=np.uint64)
    np.cumsum(words * fqpow[:n_words], dtype=np.uint64, out=prefix[1:])
    # sum of w_t F^(i+L-1-t) over t in [i, i+L) = F^(i+L-1) (S[i+L] - S[i])
    hashes, owners = [], []
    for length in sorted(set(lengths)):
        m = n_words - length + 1
        if m <= 0:
            continue
        i = np.arange(m)
        keep = doc[:m] == doc[length - 1 :]  # the gram lies inside one document
        i = i[keep]
        g = fpow[i + length - 1] * (prefix[i + length] - prefix[i]) + _U64(length * LENGTH % (1 << 64))
        hashes.append(_fmix(g))
        owners.append(doc[i])
    if whole_from is not None:
        per_doc = np.bincount(doc, minlength=len(doc_starts))
        short = np.flatnonzero((per_doc >= whole_from) & (per_doc < max(lengths)))
        if len(short):
            first = np.searchsorted(doc, short)
            count = per_doc[short]
            g = fpow[count - 1 + first] * (prefix[first + count] - prefix[first]) + count.astype(np.uint64) * _U64(LENGTH)
            hashes.append(_fmix(g))
            owners.append(short)
    if not hashes:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(owners).astype(np.int64)


def batch_gram_hashes(texts: Sequence[str], lengths: Sequence[int], whole_from: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Every gram's hash, as `gram_hash` computes it, for each text: (hashes uint64, owner int64, the
    index of the text each hash belongs to). Grams of every length in `lengths`; with `whole_from`,
    a text of at least `whole_from` words but fewer than max(lengths) is also one gram, whole (the
    evaluation side's short segments). Numpy passes over about CHUNK bytes of text at a time."""
    out_h, out_o = [], []
    i = 0
    while i < len(texts):
        first, parts, size = i, [], 0
        while i < len(texts) and (not parts or size < CHUNK):  # a long text makes a chunk of its own
            parts.append(texts[i].lower().encode("utf-8") + b" ")
            size += len(parts[-1])
            i += 1
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        h, o = _chunk_grams(b"".join(parts), starts, lengths, whole_from)
        out_h.append(h)
        out_o.append(o + first)
    if not out_h:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_h), np.concatenate(out_o)


def distinct_per_owner(hashes: np.ndarray, owners: np.ndarray, n_owners: int) -> tuple[np.ndarray, np.ndarray]:
    """Each owner's distinct hashes, laid end to end by owner, and the offsets (n_owners + 1) that
    cut them: the Arrow list layout."""
    order = np.lexsort((hashes, owners))
    h, o = hashes[order], owners[order]
    if len(h):
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (o[1:] != o[:-1])
        h, o = h[first], o[first]
    offsets = np.zeros(n_owners + 1, dtype=np.int64)
    np.cumsum(np.bincount(o, minlength=n_owners), out=offsets[1:])
    return h, offsets


def document_grams(texts: Sequence[str], lengths: Sequence[int], members: GramSet | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The per-batch work on the document side: each text's distinct grams of every length in
    `lengths` (the Arrow list layout: hashes end to end, and n + 1 offsets), only those in `members`
    when it is given (the evaluation grams, when they are few enough to send to every task)."""
    hashes, owners = batch_gram_hashes(texts, lengths)
    if members is not None:
        hit = members.contains(hashes)
        hashes, owners = hashes[hit], owners[hit]
    return distinct_per_owner(hashes, owners, len(texts))


def item_hashes(items: Sequence[Sequence[str]], n: int, min_words: int
                ) -> tuple[np.ndarray, np.ndarray, list[int], list[list[int]]]:
    """The per-batch work on the evaluation side: for each item (its segments), its distinct gram
    hashes (the Arrow list layout: hashes end to end and n + 1 offsets), its words, and the
    lengths of its grams (n, and the length of each short segment taken whole). The same grams as
    `item_grams`, hashed."""
    segments = [seg for segs in items for seg in segs]
    owner_of = np.repeat(np.arange(len(items)), [len(segs) for segs in items])
    hashes, seg_owner = batch_gram_hashes(segments, [n], whole_from=min_words)
    h, offsets = distinct_per_owner(hashes, owner_of[seg_owner] if len(seg_owner) else seg_owner, len(items))
    n_words, lengths = [], []
    for segs in items:
        counts = [len(words_of(seg)) for seg in segs]
        n_words.append(sum(counts))
        lengths.append(sorted({n if c >= n else c for c in counts if c >= min_words}))
    return h, offsets, n_words, lengths


class GramSet:
    """A set of 64-bit gram hashes for fast membership tests of whole arrays: a bitmap on the hashes'
    top bits (32 bits per member, so about 3% of non-members get past it) in front of a sorted array."""

    def __init__(self, hashes: np.ndarray):
        self.sorted = np.unique(np.asarray(hashes, dtype=np.uint64))
        bits = 1 << min(34, max(16, int(len(self.sorted) * 32 - 1).bit_length()))
        self.shift = _U64(64 - (bits.bit_length() - 1))
        self.bitmap = np.zeros(bits // 8, dtype=np.uint8)
        top = self.sorted >> self.shift
        np.bitwise_or.at(self.bitmap, top >> _U64(3), (np.uint8(1) << (top & _U64(7)).astype(np.uint8)))

    def __len__(self) -> int:
        return len(self.sorted)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `hashes` are members."""
        out = np.zeros(len(hashes), dtype=bool)
        if not len(self.sorted) or not len(hashes):
            return out
        top = hashes >> self.shift
        maybe = np.flatnonzero((self.bitmap[top >> _U64(3)] >> (top & _U64(7)).astype(np.uint8)) & np.uint8(1))
        if len(maybe):
            h = hashes[maybe]
            pos = np.minimum(np.searchsorted(self.sorted, h), len(self.sorted) - 1)
            out[maybe[self.sorted[pos] == h]] = True
        return out


# ---------------------------------------------------------------------------------------------
# Verification against the text
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """What one document shares with one evaluation item, found on the words themselves."""

    matched: int  # the item's distinct grams found in the document
    item_grams: int  # the item's distinct grams
    span: str  # the document's text over the longest stretch of matched grams

    @property
    def containment(self) -> float:
        return self.matched / self.item_grams if self.item_grams else 0.0


class DocumentWords:
    """A document's normalized words with where each lies in its text, and its grams by length,
    computed once for all the items it is checked against."""

    def __init__(self, text: str):
        self.text = text
        lowered = text.lower()
        found = list(WORD.finditer(lowered))
        self.words = [m.group(0) for m in found]
        self.spans = [m.span() for m in found]
        self.lowered = lowered
        self._grams: dict[int, dict[tuple[str, ...], list[int]]] = {}

    def grams(self, length: int) -> dict[tuple[str, ...], list[int]]:
        """gram -> the word positions where it starts."""
        if length not in self._grams:
            at: dict[tuple[str, ...], list[int]] = {}
            for i, g in enumerate(grams_of(self.words, length)):
                at.setdefault(g, []).append(i)
            self._grams[length] = at
        return self._grams[length]

    def span(self, first_word: int, last_word: int) -> str:
        """The text from the first word's start to the last word's end, cut to MAX_SPAN_CHARS. Offsets
        come from the lower-cased text; where lower-casing changed the length (a few non-ASCII
        letters), the lower-cased text is what is shown."""
        a, b = self.spans[first_word][0], self.spans[last_word][1]
        source = self.text if len(self.lowered) == len(self.text) else self.lowered
        return source[a : min(b, a + MAX_SPAN_CHARS)]


def verify_matches(doc: DocumentWords, grams: Sequence[tuple[str, ...]]) -> Match | None:
    """Check an item's grams (`item_grams`) against a document's words: how many of them it holds,
    and the longest stretch of text they cover; None when it holds none."""
    if not grams:
        return None
    covered: list[tuple[int, int]] = []
    matched = 0
    for g in grams:
        where = doc.grams(len(g)).get(g)
        if where:
            matched += 1
            covered += [(i, i + len(g) - 1) for i in where]
    if not matched:
        return None
    covered.sort()
    best, (lo, hi) = covered[0], covered[0]
    for a, b in covered[1:]:
        if a <= hi + 1:
            hi = max(hi, b)
        else:
            lo, hi = a, b
        if hi - lo > best[1] - best[0]:
            best = (lo, hi)
    if hi - lo > best[1] - best[0]:
        best = (lo, hi)
    return Match(matched, len(grams), doc.span(*best))
