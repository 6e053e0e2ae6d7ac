"""The JVM class archive that `brickyard setup` builds is mapped by the sessions brickyard starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import clean_env

pytestmark = [pytest.mark.spark]

SESSION = """
import sys
from pathlib import Path
from brickyard.pipelines.config import SparkSettings
from brickyard.pipelines.lake.session import get_spark
spark = get_spark(Path(sys.argv[1]), SparkSettings(master="local[1]", engine="local", ui=False,
                  conf={"spark.driver.extraJavaOptions": f"-Xlog:class+load=info:file={sys.argv[2]} "
                                                         f"-Xlog:cds=info,cds+dynamic=info,class+path=info:file={sys.argv[2]}.cds"}))
spark.range(3).count()
"""


def test_a_session_maps_spark_and_delta_classes_from_the_archive(tmp_path):
    from brickyard.pipelines.lake import classes
    from brickyard.pipelines.lake.jars import ensure_delta_jars

    archive = classes.build(quiet=True)  # made by `make test`'s setup step; built here if missing
    assert archive == classes.archive_path(ensure_delta_jars(quiet=True)) and archive.stat().st_size > 10_000_000
    log = tmp_path / "classes.log"
    r = subprocess.run([sys.executable, "-c", SESSION, str(tmp_path / "lakehouse"), str(log)], env=clean_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[cds" not in r.stdout + r.stderr  # nothing said about the archive (a JVM would log [warning][cds...])
    loaded = {}
    for line in log.read_text().splitlines():
        # [0.123s][info][class,load] org.apache.spark.SparkContext source: shared objects file (top)
        name, _, source = line.partition("] ")[2].partition(" source: ")
        loaded[name] = source
    from_archive = [n for n, s in loaded.items() if s == "shared objects file (top)"]
    # the JVM's reasons, when it dropped the archive, are in its cds log (to a file; nothing printed)
    why = [ln for ln in (tmp_path / "classes.log.cds").read_text().splitlines()
           if any(w in ln for w in ("UseSharedSpaces", "Unable", "fail", "mismatch"))]
    assert loaded["org.apache.spark.SparkContext"] == "shared objects file (top)", "\n".join(why[-5:])
    assert any(n.startswith("org.apache.spark.sql.delta.") for n in from_archive)
    assert len(from_archive) > 0.5 * len(loaded)
