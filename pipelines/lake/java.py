"""Java: Spark needs a JVM of version 17 or newer; find it the way Spark will and say so plainly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import BrickyardError

MIN_JAVA = 17


def java_version(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    text = out.stderr + out.stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        raise BrickyardError(f"Could not read the Java version from `{java} -version`: {text.strip()[:200]}")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 else major  # "1.8.0_x" means Java 8


def find_java() -> str | None:
    """The `java` Spark will run: JAVA_HOME's if it is set, else the first on PATH (None: none there)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return java if java and os.access(java, os.X_OK) else None


def check_java() -> str:
    """Find Java the way Spark will (JAVA_HOME first, then PATH) and insist on 17 or newer."""
    java = find_java()
    where = f"JAVA_HOME={os.environ['JAVA_HOME']}" if os.environ.get("JAVA_HOME") else "PATH"
    if not java:
        raise BrickyardError(
            f"Spark needs Java {MIN_JAVA} or newer, but no `java` was found on {where}; install "
            "OpenJDK 17 (for example `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    major = java_version(java)
    if major < MIN_JAVA:
        raise BrickyardError(
            f"Spark 4 needs Java {MIN_JAVA} or newer, but {java} is Java {major}; install OpenJDK 17 "
            "and put it first on PATH or set JAVA_HOME to it."
        )
    return java
