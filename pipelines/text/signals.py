"""Curation signals: small pure functions from a document to numbers. No Spark, no I/O.

A signal measures; it never decides. Decisions (thresholds, which rule rejects) live in
`brickyard.pipelines.text.filters`, with their values in config. The curate job maps these functions over Arrow
batches and stores every value per document, so a notebook can show why a document went.

Families, after the published recipes:
- normalization: NFC, control characters, line endings, white space (code: line endings only)
- Gopher quality and repetition (Rae et al. 2021, "MassiveText")
- C4 line rules (Raffel et al. 2020)
- FineWeb's extra rules (Penedo et al. 2024)
- code: line lengths and alphanumeric share (The Stack / StarCoder), data/config files, minified
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

import numpy as np

# -- normalization -----------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")  # white space other than newlines
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalize_text(text: str) -> str:
    """NFC; control characters out; CRLF/CR -> LF; runs of spaces/tabs -> one space; lines
    stripped; at most one empty line in a row; no leading or trailing blank lines."""
    text = unicodedata.normalize("NFC", normalize_line_endings(text))
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def normalize_code(text: str) -> str:
    """Code keeps every character and its indentation; only line endings become LF."""
    return normalize_line_endings(text)


# -- words and lines ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


def lines(text: str) -> list[str]:
    return [ln for ln in text.split("\n") if ln.strip()]


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


# -- Gopher quality ----------------------------------------------------------------------------

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "‣", "◦", "⁃", "-", "*", "·", "●", "○", "▪")
# Counted over the whole text in one regex pass, not word by word (a word is what str.split()
# gives; `(?<!\S)` ... `(?!\S)` is its edges): a word holding a letter (not a digit or "_") ...
_LETTER_WORD = re.compile(r"(?<!\S)\S*?[^\W\d_]")
# ... and a stop word with the punctuation that `w.lower().strip(_STOP_STRIP)` would take off; the
# letters are spelled in both cases, not matched with IGNORECASE, which would also take the dotless
# i and the dotted I (whose lower case, "i" and a combining dot, is no stop word's letter)
_STOP_STRIP = ".,;:!?\"'()"
_STRIPPED = f"[{re.escape(_STOP_STRIP)}]*"
_STOP_WORD = re.compile(r"(?<!\S)" + _STRIPPED + "(?:" + "|".join(
    "".join(f"[{c.upper()}{c}]" for c in w) for w in sorted(STOP_WORDS)) + ")" + _STRIPPED + r"(?!\S)")


def gopher_quality(text: str) -> dict[str, float]:
    ws = words(text)
    n = len(ws)
    ls = lines(text)
    symbols = text.count("#") + text.count("...") + text.count("…")
    return {
        "n_words": float(n),
        "mean_word_length": len("".join(ws)) / n if n else 0.0,
        "symbol_word_ratio": symbols / n if n else 0.0,
        "bullet_lines_frac": sum(ln.lstrip().startswith(BULLETS) for ln in ls) / len(ls) if ls else 0.0,
        "ellipsis_lines_frac": sum(ln.rstrip().endswith(("...", "…")) for ln in ls) / len(ls) if ls else 0.0,
        "alpha_words_frac": len(_LETTER_WORD.findall(text)) / n if n else 0.0,
        "stop_words": float(len(_STOP_WORD.findall(text))),  # w.lower().strip(_STOP_STRIP) in STOP_WORDS
    }


# -- Gopher repetition -------------------------------------------------------------------------


def _dup_fracs(items: list[str]) -> tuple[float, float]:
    """Share of items that repeat an earlier one, and the share of characters they hold."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_n = dup_chars = 0
    for it in items:
        if it in seen:
            dup_n += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    total = sum(len(it) for it in items)
    return dup_n / len(items), dup_chars / total if total else 0.0


_GRAM_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the rolling n-gram key


def _word_arrays(ws: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per word: a 64-bit hash (equal words, equal hashes, within this process) and its length."""
    h = np.fromiter(map(hash, ws), dtype=np.int64, count=len(ws)).view(np.uint64)
    lens = np.fromiter(map(len, ws), dtype=np.int64, count=len(ws))
    return h, lens


def _gram_keys(h: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit key per word n-gram (position i covers words i..i+n-1); arithmetic wraps."""
    m = len(h) - n + 1
    keys = h[:m].copy()
    for j in range(1, n):
        keys = keys * _GRAM_MUL + h[j : j + m]
    return keys


def top_ngram_char_frac(ws: list[str], n: int, arrays=None) -> float:
    """Characters in the occurrences of the most frequent word n-gram / characters in all words
    (ties go to the n-gram that occurs first)."""
    h, lens = arrays or _word_arrays(ws)
    total = int(lens.sum())
    if len(ws) < n or not total:
        return 0.0
    _, first, counts = np.unique(_gram_keys(h, n), return_index=True, return_counts=True)
    best = counts.max()
    if best < 2:
        return 0.0
    at = int(first[counts == best].min())
    return min(1.0, int(best) * int(lens[at : at + n].sum()) / total)


def dup_ngram_char_frac(ws: list[str], n: int, arrays=None) -> float:
    """Characters of words covered by a word n-gram seen before (overlaps counted once) / all."""
    h, lens = arrays or _word_arrays(ws)
    total = int(lens.sum())
    if len(ws) < n or not total:
        return 0.0
    keys = _gram_keys(h, n)
    _, first = np.unique(keys, return_index=True)
    repeat = np.ones(len(keys), dtype=bool)
    repeat[first] = False
    starts = np.flatnonzero(repeat)
    if not len(starts):
        return 0.0
    depth = np.zeros(len(ws) + 1, dtype=np.int64)  # +1 where a repeated n-gram starts, -1 after it
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + n, -1)
    covered = np.cumsum(depth[:-1]) > 0
    return int(lens[covered].sum()) / total


def gopher_repetition(text: str) -> dict[str, float]:
    ws = words(text)
    line_frac, line_chars = _dup_fracs([ln.strip() for ln in lines(text)])
    para_frac, para_chars = _dup_fracs([p.strip() for p in paragraphs(text)])
    out = {
        "dup_line_frac": line_frac, "dup_line_char_frac": line_chars,
        "dup_para_frac": para_frac, "dup_para_char_frac": para_chars,
    }
    arrays = _word_arrays(ws)  # hashed once for all nine n-gram signals
    for n in (2, 3, 4):
        out[f"top_{n}gram_char_frac"] = top_ngram_char_frac(ws, n, arrays)
    for n in range(5, 11):
        out[f"dup_{n}gram_char_frac"] = dup_ngram_char_frac(ws, n, arrays)
    return out


# -- C4 ----------------------------------------------------------------------------------------

TERMINAL_PUNCT = (".", "!", "?", '"')
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def c4_signals(text: str) -> dict[str, float]:
    """C4's page and line rules as measurements: a line survives C4 if it ends in terminal
    punctuation, has at least 3 words and mentions neither javascript nor a policy phrase."""
    ls = [ln.strip() for ln in lines(text)]
    lower = text.lower()
    # neither phrase can cross a line's end, so a page that lacks it has no line holding it
    has_js = "javascript" in lower
    policies = [p for p in POLICY_PHRASES if p in lower]
    lows = [ln.lower() for ln in ls] if has_js or policies else None
    js = [("javascript" in low) for low in lows] if has_js else [False] * len(ls)
    policy = [any(p in low for p in policies) for low in lows] if policies else [False] * len(ls)
    terminal = [ln.endswith(TERMINAL_PUNCT) for ln in ls]
    kept = sum(t and not j and not q and len(ln.split()) >= 3 for ln, t, j, q in zip(ls, terminal, js, policy, strict=True))
    sentences = len(re.findall(r"[.!?]+(?:\s|$)", text))
    return {
        "c4_terminal_punct_line_frac": sum(terminal) / len(ls) if ls else 0.0,
        "c4_kept_line_frac": kept / len(ls) if ls else 0.0,
        "c4_sentences": float(sentences),
        "c4_lorem_ipsum": float("lorem ipsum" in lower),
        "c4_curly_brace": float("{" in text),
        "c4_javascript_line_frac": sum(js) / len(ls) if ls else 0.0,
        "c4_policy_line_frac": sum(policy) / len(ls) if ls else 0.0,
    }


# -- FineWeb -----------------------------------------------------------------------------------

LINE_END_PUNCT = (".", "!", "?", '"', "'", "…", ";", ":")


def fineweb_signals(text: str, short_line_chars: int = 30) -> dict[str, float]:
    ls = [ln.strip() for ln in lines(text)]
    n_words = len(words(text))
    non_ws = sum(len(ln) for ln in ls)
    seen: set[str] = set()
    dup_chars = 0
    for ln in ls:
        if ln in seen:
            dup_chars += len(ln)
        seen.add(ln)
    return {
        "fw_line_punct_frac": sum(ln.endswith(LINE_END_PUNCT) for ln in ls) / len(ls) if ls else 0.0,
        "fw_short_line_frac": sum(len(ln) <= short_line_chars for ln in ls) / len(ls) if ls else 0.0,
        "fw_char_dup_frac": dup_chars / non_ws if non_ws else 0.0,
        "fw_newline_word_ratio": text.count("\n") / n_words if n_words else 0.0,
    }


# -- code --------------------------------------------------------------------------------------

DATA_EXTENSIONS = {".json", ".jsonl", ".yaml", ".yml", ".xml", ".csv", ".tsv", ".toml", ".ini", ".cfg",
                   ".lock", ".svg", ".ipynb", ".geojson", ".pbtxt"}


def code_signals(text: str, path: str = "") -> dict[str, float]:
    ls = text.split("\n")
    lengths = [len(ln) for ln in ls]
    n_chars = len(text)
    alnum = sum(ch.isalnum() for ch in text)
    name = PurePosixPath(path).name.lower()
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    return {
        "code_max_line_length": float(max(lengths, default=0)),
        "code_mean_line_length": mean,
        "code_alnum_frac": alnum / n_chars if n_chars else 0.0,
        "code_is_data": float(PurePosixPath(name).suffix in DATA_EXTENSIONS),
        # minified: a .min.* file, or few very long lines (bundlers put a whole file on one line)
        "code_is_minified": float(".min." in name or (mean > 300 and len(ls) <= 10)),
        "code_n_lines": float(len(ls)),
    }


def text_signals(text: str) -> dict[str, float]:
    """Every text signal of a normalized document, by name."""
    return {**gopher_quality(text), **gopher_repetition(text), **c4_signals(text), **fineweb_signals(text)}
