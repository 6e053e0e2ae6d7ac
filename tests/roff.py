"""Man pages (roff) to plain text, well enough to identify their language."""

import gzip
import re
from pathlib import Path

_ESCAPES = re.compile(r"\\f[BIRP1-4]|\\f\(..|\\f\[[^\]]*\]|\\\(..|\\\[[^\]]*\]|\\[&|^~%:]|\\[*n]\(?\w\w?|\\s[+-]?\d+")


def roff_text(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    out = []
    for line in raw.splitlines():
        if line.startswith((".\\\"", "'\\\"")):
            continue  # comments
        if line.startswith((".", "'")):
            parts = line.split(None, 1)  # keep a macro's text argument (.SH NAME, .B word)
            line = parts[1] if len(parts) > 1 and parts[0] in (".SH", ".SS", ".B", ".I", ".BR", ".IR", ".IP", ".TP") else ""
        line = _ESCAPES.sub("", line).replace("\\-", "-").replace("\\e", "\\").replace('"', "")
        if line.strip():
            out.append(line.strip())
    return "\n".join(out)
