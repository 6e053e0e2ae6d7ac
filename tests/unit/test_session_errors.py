"""The set-up failures a user can hit each get one sentence, not a JVM trace."""

import os
import stat

import pytest
from brickyard.pipelines.errors import BrickyardError
from brickyard.pipelines.lake import jars
from brickyard.pipelines.lake.session import check_java, check_writable, lakehouse_root


def fake_java(folder, version_line):
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return folder


def test_missing_java_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(BrickyardError, match=r"no `java` was found on JAVA_HOME=.*install OpenJDK 17"):
        check_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrickyardError, match="no `java` was found on PATH"):
        check_java()


def test_old_java_is_named_with_its_version(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path / "jdk8", 'openjdk version "1.8.0_392"')))
    with pytest.raises(BrickyardError, match=r"needs Java 17 or newer, but .* is Java 8"):
        check_java()
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path / "jdk21", 'openjdk version "21.0.2" 2024-01-16')))
    assert check_java().endswith("jdk21/bin/java")


def test_unwritable_lakehouse_root_is_one_sentence(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BrickyardError, match=r"lakehouse root .* is not writable \(.*\); choose another folder"):
        check_writable(blocker / "lakehouse")


def test_lakehouse_root_flag_beats_environment_beats_config(tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKYARD_LAKEHOUSE", str(tmp_path / "env"))
    assert lakehouse_root(str(tmp_path / "flag"), "cfg") == tmp_path / "flag"
    assert lakehouse_root(None, "cfg") == tmp_path / "env"
    monkeypatch.delenv("BRICKYARD_LAKEHOUSE")
    assert lakehouse_root(None, None) == (tmp_path.cwd() / "lakehouse").resolve()


def test_delta_coordinate_matches_installed_spark_and_delta():
    import importlib.metadata

    import pyspark

    mm = ".".join(pyspark.__version__.split(".")[:2])
    assert jars.delta_coordinate() == f"io.delta:delta-spark_{mm}_2.13:{importlib.metadata.version('delta-spark')}"


def test_unreachable_jar_repository_says_how_to_fix_it(tmp_path, monkeypatch):
    # Ivy pointed at a closed port on this machine: resolution fails fast, as it would offline
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(
        '<ivysettings><settings defaultResolver="nowhere"/><resolvers>'
        '<ibiblio name="nowhere" m2compatible="true" root="http://127.0.0.1:9/maven2/"/>'
        "</resolvers></ivysettings>"
    )
    monkeypatch.setenv("BRICKYARD_JARS_DIR", str(tmp_path / "jars"))
    with pytest.raises(BrickyardError) as err:
        jars.resolve_delta_jars(ivy_settings=settings, quiet=True)
    msg = str(err.value)
    assert msg.startswith("Could not fetch the Delta Lake jars (io.delta:delta-spark_")
    assert "unresolved dependency" in msg and "BRICKYARD_JARS_DIR" in msg
    assert "\n" not in msg
    assert jars.cached_jars() is None  # nothing half-written is taken for a cache


def test_a_hand_filled_jar_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKYARD_JARS_DIR", str(tmp_path))
    assert jars.cached_jars() is None
    for name in ("io.delta_delta-spark_4.2_2.13-4.4.0.jar", "io.delta_delta-storage-4.4.0.jar"):
        (tmp_path / name).write_bytes(b"PK")
    assert [p.name for p in jars.cached_jars()] == sorted(os.listdir(tmp_path))


def test_a_nearly_full_lakehouse_is_refused_before_any_job_starts(tmp_path, monkeypatch):
    import shutil

    from brickyard.pipelines.lake.session import check_free_space

    check_free_space(tmp_path)  # the default floor: this machine has room
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    monkeypatch.setenv("BRICKYARD_MIN_FREE_MB", str(free_mb * 2))
    with pytest.raises(BrickyardError, match=r"lakehouse .* has [\d,]+ MB free on its filesystem, below the [\d,]+ MB a job needs"):
        check_free_space(tmp_path)


def test_a_storage_failure_mid_job_is_one_sentence_from_the_cli(tmp_path, monkeypatch, capsys):
    import errno

    from brickyard.pipelines.errors import storage_failure

    from brickyard import cli

    # the OS error itself, and the text Spark passes up from the JVM, inside a chain of exceptions
    disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "part-0.parquet"))
    jvm = RuntimeError("An error occurred while calling o81.saveAsTable.\n: org.apache.spark.SparkException: Job aborted\n"
                       "Caused by: java.io.IOException: Read-only file system")
    try:
        try:
            raise disk_full
        except OSError as inner:
            raise RuntimeError("task failed") from inner
    except RuntimeError as outer:
        chained = outer
    assert "storage is full" in storage_failure(chained)
    assert "storage is read-only" in storage_failure(jvm)
    assert storage_failure(ValueError("no such column: qualty")) is None

    def full(args):
        raise chained

    monkeypatch.setitem(cli.COMMANDS, "tokenize", full)
    assert cli.main(["tokenize"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("brickyard: error: brickyard tokenize stopped because the lakehouse's storage is full;")
    monkeypatch.setitem(cli.COMMANDS, "tokenize", lambda args: (_ for _ in ()).throw(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["tokenize"])


def test_a_delta_commit_conflict_is_recognised_by_its_exception_name():
    from brickyard.pipelines.lake.lineage import _conflict_name, _is_conflict

    jvm = RuntimeError("An error occurred while calling o212.sql.\n: io.delta.exceptions.ConcurrentAppendException: "
                       "[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent update.")
    assert _is_conflict(jvm) and _conflict_name(jvm) == "ConcurrentAppendException"
    assert _conflict_name(RuntimeError("io.delta.exceptions.MetadataChangedException: the table changed")) == "MetadataChangedException"
    assert not _is_conflict(ValueError("no such column: ConcurrentThing"))


def test_jvm_options_of_the_config_come_after_brickyards_own(tmp_path, monkeypatch):
    from brickyard.pipelines.config import SparkSettings
    from brickyard.pipelines.lake.driver import local_conf

    plain = local_conf(tmp_path, SparkSettings(), [])["spark.driver.extraJavaOptions"]
    assert f"-Dderby.system.home={tmp_path}" in plain
    opts = local_conf(tmp_path, SparkSettings(conf={"spark.driver.extraJavaOptions": "-Xss4m"}), [])
    assert opts["spark.driver.extraJavaOptions"] == f"{plain} -Xss4m"  # the metastore's home is kept
    # the throughput collector unless the config chooses one (two collectors: the JVM would not start)
    assert "-XX:+UseParallelGC" in plain.split()
    opts = local_conf(tmp_path, SparkSettings(conf={"spark.driver.extraJavaOptions": "-XX:+UseG1GC -Xss4m"}), [])
    assert opts["spark.driver.extraJavaOptions"] == f"{plain.replace(' -XX:+UseParallelGC', '')} -XX:+UseG1GC -Xss4m"
    # a tuning flag of the parallel collector names no collector; the JVM's own variables do
    tuned = local_conf(tmp_path, SparkSettings(conf={"spark.driver.extraJavaOptions": "-XX:+UseMaximumCompactionOnSystemGC"}), [])
    assert "-XX:+UseParallelGC" in tuned["spark.driver.extraJavaOptions"].split()
    # C2 compiles later than by default, unless the config or the JVM's environment sets compilation
    assert "-XX:Tier4InvocationThreshold=50000" in plain.split()
    c1 = local_conf(tmp_path, SparkSettings(conf={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}), [])
    assert not any(o.startswith("-XX:Tier4") for o in c1["spark.driver.extraJavaOptions"].split())
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+UseZGC")
    zgc = local_conf(tmp_path, SparkSettings(), [])["spark.driver.extraJavaOptions"].split()
    assert "-XX:+UseParallelGC" not in zgc and "-XX:Tier4InvocationThreshold=50000" in zgc
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:CompileThresholdScaling=2")
    assert "-XX:Tier4InvocationThreshold=50000" not in local_conf(tmp_path, SparkSettings(), [])["spark.driver.extraJavaOptions"].split()


def test_the_class_archive_is_used_only_when_it_exists_and_named_after_what_it_depends_on(tmp_path, monkeypatch):
    import subprocess

    from brickyard.pipelines.lake import classes

    monkeypatch.setenv("BRICKYARD_CACHE", str(tmp_path / "cache"))
    jar = tmp_path / "delta.jar"
    jar.write_bytes(b"x")
    path = classes.archive_path([jar])
    assert path.parent == tmp_path / "cache" / "jvm" and classes.jvm_options([jar]) == []  # none built: none used
    jar.write_bytes(b"xy")
    assert classes.archive_path([jar]) != path  # another jar, another archive
    # the JVM drops an archive whose jars moved or were rewritten since: so does the key
    path = classes.archive_path([jar])
    os.utime(jar, (5, 5))
    assert classes.archive_path([jar]) != path
    moved = tmp_path / "other-venv" / "delta.jar"
    moved.parent.mkdir()
    moved.write_bytes(b"xy")
    os.utime(moved, (5, 5))
    assert classes.archive_path([moved]) != classes.archive_path([jar])
    path = classes.archive_path([jar])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an archive")
    os.utime(path, (1, 1))
    opts = classes.jvm_options([jar])
    assert opts[0] == f"-XX:SharedArchiveFile={path}"
    assert path.stat().st_mtime > 1  # used now: `build` keeps an archive a session still maps
    monkeypatch.setenv("BRICKYARD_CLASS_ARCHIVE", "0")
    assert classes.jvm_options([jar]) == []
    # an archive the JVM cannot use (here: not one at all) is passed over without a word
    r = subprocess.run(["java", *opts, "-version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "cds" not in r.stdout + r.stderr and "warning" not in r.stdout + r.stderr
