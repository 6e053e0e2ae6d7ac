"""PII and secrets: find them, replace them with typed placeholders, count them. Pure Python.

    redact(text) -> (text with <EMAIL>, <IP_ADDRESS>, <PHONE>, <KEY>, <PRIVATE_KEY>, counts)

Secrets are found two ways: the fixed shapes of well-known credentials (AWS, GitHub, Slack,
Google, Stripe, OpenAI-style keys, JWTs, PEM private keys), and values assigned to a secret-ish
name (`api_key = "..."`, `password: ...`) whose characters look random (Shannon entropy), so
that `password = "changeme"` stays while a real token goes. Loopback and unspecified IP
addresses (127.0.0.1, 0.0.0.0, ::1) are not personal and are left in place.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter

PLACEHOLDERS = {
    "email": "<EMAIL>", "ip_address": "<IP_ADDRESS>", "phone": "<PHONE>", "key": "<KEY>",
    "private_key": "<PRIVATE_KEY>",
}

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)", re.S
)
_KNOWN_KEYS = re.compile(
    r"\b(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe
    r"|sk-(?:proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI-style
    r"|glpat-[A-Za-z0-9_-]{20}"  # GitLab
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r")\b"
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b([a-z0-9_.-]*(?:api[_-]?key|secret|token|passw(?:or)?d|passwd|pwd|auth|credential|access[_-]?key)[a-z0-9_.-]*)"
    r"[\"']?(\s*(?:=>|[:=])\s*)([\"']?)([A-Za-z0-9+/=_\-.~!@#$%^&*]{12,})\3"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
# not after "v", "==", "Version: " or "version ": four-part version numbers look like addresses
_IPV4_PLAIN = re.compile(r"(?<![\d.])(?<![vV])(?<!==)(?<![Vv]ersion: )(?<![Vv]ersion )(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4}){0,6}(?![\w:])|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![\w:])")
_PHONE_PLAIN = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w])"
)


# the same patterns, told which characters a match starts with: the regex engine then skips to those
# instead of trying the lookbehinds at every position (4-5 times faster on code; the same matches)
_IPV4 = re.compile(r"(?=\d)" + _IPV4_PLAIN.pattern)
_PHONE = re.compile(r"(?=[+(\d])" + _PHONE_PLAIN.pattern)

# Gates: cheap tests that hold for every text a pattern can match in (a literal or a short pattern
# each match must contain), so a text without one skips that pattern's scan. They decide nothing:
# `redact` gives the same result with them as without (tests/unit/test_pii.py holds that on real
# files).
_KNOWN_KEY_MARKS = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza", "_live_",
                    "_test_", "sk-", "glpat-", "eyJ")
# a secret's name holds one of these words; IGNORECASE also matches these letters (Kelvin sign, long s,
# dotted and dotless i), folded to ASCII before the lower-case search
_SECRET_WORDS = ("api", "secret", "token", "passw", "pwd", "auth", "credential", "access")
_FOLD = str.maketrans({"\u212a": "k", "\u017f": "s", "\u0130": "i", "\u0131": "i"})
_SECRET_NAME = re.compile(
    r"(?:api[_-]?key|secret|token|passw(?:or)?d|passwd|pwd|auth|credential|access[_-]?key)[a-z0-9_.-]*[\"']?\s*(?:=>|[:=])"
)
_IPV6_MARK = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]|::")


# the start of the name run that ends where searched (only a run's first character is tried: linear)
_RUN_START = re.compile(r"(?<![a-z0-9_.-])[a-z0-9_.-]*\Z")
_BOUNDARY = re.compile(r"\b")


def _secret_matches(text: str):
    """The matches `_ASSIGNED_SECRET.finditer(text)` gives, found without scanning the whole text:
    every match's name holds a secret-ish word followed by its assignment (`_SECRET_NAME`, in the
    case-folded text: the same letters IGNORECASE matches, at the same positions), and starts at a
    word boundary in that word's run of name characters, so only those starts are tried."""
    if ":" not in text and "=" not in text:
        return
    folded = text.translate(_FOLD).lower()
    if len(folded) != len(text):  # lower() lengthens no character left after _FOLD; kept as a guard
        yield from _ASSIGNED_SECRET.finditer(text)
        return
    if not any(w in folded for w in _SECRET_WORDS):
        return
    tried = 0  # no match starts before this
    while (word := _SECRET_NAME.search(folded, tried)) is not None:
        k = word.start()
        start = _RUN_START.search(folded, tried, k)  # the name characters before the word
        run = start.start() if start is not None else tried  # none: the run began before `tried`
        found = None
        for b in _BOUNDARY.finditer(text, run, k + 1):
            found = _ASSIGNED_SECRET.match(text, b.start())
            if found is not None:
                break
        if found is None:
            tried = k + 1
            continue
        yield found
        tried = found.end()


GATES = {
    "private_key": lambda t: "PRIVATE KEY-----" in t,
    "known_key": lambda t: any(m in t for m in _KNOWN_KEY_MARKS),
    "email": lambda t: "@" in t,
    "ipv4": lambda t: "." in t,
    "ipv6": lambda t: _IPV6_MARK.search(t) is not None,
}


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _ip_ok(s: str) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def looks_random(value: str, min_entropy: float = 3.0) -> bool:
    """A credential, not a word: letters and digits mixed with high entropy, or long and very random."""
    if value.startswith("<"):
        return False  # already a placeholder
    mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    return (mixed and entropy(value) >= min_entropy) or (len(value) >= 32 and entropy(value) >= 4.0)


def redact(text: str, min_entropy: float = 3.0, gated: bool = True) -> tuple[str, dict[str, int]]:
    """`gated=False` runs every pattern over every text (the reference the gates are tested against)."""
    counts = dict.fromkeys(PLACEHOLDERS, 0)

    def sub(step, kind, pattern, s, check=None, group=0):
        if gated and step in GATES and not GATES[step](s):
            return s

        def repl(m):
            value = m.group(group)
            if check is not None and not check(value):
                return m.group(0)
            counts[kind] += 1
            if group == 0:
                return PLACEHOLDERS[kind]
            start, end = m.start(group) - m.start(0), m.end(group) - m.start(0)
            whole = m.group(0)
            return whole[:start] + PLACEHOLDERS[kind] + whole[end:]

        if not (gated and step == "assigned_secret"):
            return pattern.sub(repl, s)
        pieces, last = [], 0  # what pattern.sub does, over the matches found the quick way
        for m in _secret_matches(s):
            pieces += [s[last:m.start()], repl(m)]
            last = m.end()
        return "".join(pieces) + s[last:] if pieces else s

    # secrets first: an e-mail-like or IP-like piece inside a key must not split it
    text = sub("private_key", "private_key", _PRIVATE_KEY, text)
    text = sub("known_key", "key", _KNOWN_KEYS, text)
    text = sub("assigned_secret", "key", _ASSIGNED_SECRET, text, check=lambda v: looks_random(v, min_entropy), group=4)
    text = sub("email", "email", _EMAIL, text)
    text = sub("ipv4", "ip_address", _IPV4 if gated else _IPV4_PLAIN, text, check=_ip_ok)
    text = sub("ipv6", "ip_address", _IPV6, text, check=_ip_ok)
    text = sub("phone", "phone", _PHONE if gated else _PHONE_PLAIN, text, check=lambda v: 9 <= sum(ch.isdigit() for ch in v) <= 15)
    return text, counts
