"""Shared fixtures. One real local Spark session (with Delta and a Derby metastore) serves the
whole test run, on a lakehouse in a temporary folder, so the suite pays the JVM start once."""

from __future__ import annotations

import pytest
from brickyard.pipelines.config import PipelineConfig, SourceConfig, SparkSettings


def spark_settings() -> SparkSettings:
    return SparkSettings(master="local[2]", driver_memory="2g", shuffle_partitions=4, ui=False, progress=False)


@pytest.fixture(scope="session")
def lakehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("lakehouse")


@pytest.fixture(scope="session")
def spark(lakehouse):
    from brickyard.pipelines.lake.session import get_spark

    session = get_spark(lakehouse, spark_settings(), app_name="brickyard-tests")
    yield session
    session.stop()


@pytest.fixture
def make_config(tmp_path):
    """A pipeline config over sources declared as dicts; each test names its own sources."""

    def make(*sources: dict, **ingest) -> PipelineConfig:
        cfg = PipelineConfig(sources=[SourceConfig(**s) for s in sources], spark=spark_settings(), base_dir=str(tmp_path))
        for k, v in ingest.items():
            setattr(cfg.ingest, k, v)
        cfg.validate("test")
        return cfg

    return make


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs two workers, each with a Spark session and lakehouse of
    its own, one test module per worker at a time), the modules that take longest go out first, so
    that the short ones fill in beside them at the end instead of a long one running alone. A plain
    run keeps the file order."""
    import os

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def weight(item) -> int:
        marks = {m.name for m in item.iter_markers()}
        return 0 if "long" in marks else 1 if "slow" in marks else 2 if "spark" in marks else 3

    first_seen = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.path, (weight(item), i))
    items.sort(key=lambda item: first_seen[item.path])
