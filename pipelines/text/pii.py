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
_IPV4 = re.compile(r"(?<![\d.])(?<![vV])(?<!==)(?<![Vv]ersion: )(?<![Vv]ersion )(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4}){0,6}(?![\w:])|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w])"
)


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


def redact(text: str, min_entropy: float = 3.0) -> tuple[str, dict[str, int]]:
    counts = dict.fromkeys(PLACEHOLDERS, 0)

    def sub(kind, pattern, s, check=None, group=0):
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

        return pattern.sub(repl, s)

    # secrets first: an e-mail-like or IP-like piece inside a key must not split it
    text = sub("private_key", _PRIVATE_KEY, text)
    text = sub("key", _KNOWN_KEYS, text)
    text = sub("key", _ASSIGNED_SECRET, text, check=lambda v: looks_random(v, min_entropy), group=4)
    text = sub("email", _EMAIL, text)
    text = sub("ip_address", _IPV4, text, check=_ip_ok)
    text = sub("ip_address", _IPV6, text, check=_ip_ok)
    text = sub("phone", _PHONE, text, check=lambda v: 9 <= sum(ch.isdigit() for ch in v) <= 15)
    return text, counts
