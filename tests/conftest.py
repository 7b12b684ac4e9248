"""Shared fixtures: the real datasets in ../shared/data and the generated sample city."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CITYMODEL_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it are skipped with the reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the ../shared/data folder beside the "
                    f"project; set CITYMODEL_SHARED_DATA to point elsewhere)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_city_session(tmp_path_factory):
    """The generated sample city, once per test session (read-only: copy it before changing it)."""
    from citymodel.samplecity import generate

    return generate(tmp_path_factory.mktemp("sample_city"), verbose=False)


def write_config(tmp_dir: Path, catalog_url: str, output_dir: Path, **overrides) -> Path:
    """A deployment file: the bundled sample city's, with another catalog and output folder."""
    import yaml

    from citymodel.config import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["catalog"]["url"] = catalog_url
    raw["catalog"]["backoff_s"] = 0.05
    raw["output_dir"] = str(output_dir)
    raw.setdefault("quality", {})["schema_dir"] = str(PROJECT_ROOT.parent / "shared" / "schemas")
    for k, v in overrides.items():
        raw[k] = v
    path = Path(tmp_dir) / "citymodel.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pipeline_city(tmp_path_factory, sample_city_session):
    """The whole asset graph materialized once on a copy of the sample city served over HTTP.

    Shared by the end-to-end and analysis tests. The one test that changes a source
    (test_pipeline_e2e.py::test_changed_dataset_rebuilds_only_what_depends_on_it) runs after
    every other user of this fixture (test files run in alphabetical order).
    """
    import shutil
    from types import SimpleNamespace

    import dagster as dg

    from catalog_server import CatalogServer
    from citymodel.config import load_config
    from pipelines.definitions import build_definitions
    from pipelines.refresh_runner import execute_plan, plan_for

    root = tmp_path_factory.mktemp("e2e")
    src = root / "city"
    shutil.copytree(sample_city_session.out_dir, src)
    server = CatalogServer(src).start()
    cfg = write_config(root, server.url("catalog.jsonld"), root / "out")
    settings = load_config(cfg)
    defs = build_definitions(config_path=str(cfg))
    with dg.instance_for_test() as instance:
        plan = plan_for(instance, settings, defs.resolve_asset_graph())
        log: list[str] = []
        outcome = execute_plan(defs, instance, plan, log=log.append)
        yield SimpleNamespace(root=root, src=src, server=server, cfg=cfg, settings=settings, instance=instance,
                              defs=defs, first_plan=plan, outcome=outcome, truth=sample_city_session, log=log)
    server.stop()


def citymodel_cli(cfg: Path, *args: str, timeout: float = 3600, **env):
    """``citymodel --config cfg ...`` of this checkout in a fresh process (as an operator or the
    nightly refresh starts it; its Dagster instance: the output folder's)."""
    import subprocess
    import sys

    from pipelines.cli import fresh_environment

    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--config", str(cfg), *args],
                          cwd=PROJECT_ROOT, env=fresh_environment(**env), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def served_city(tmp_path_factory, sample_city_session):
    """A copy of the sample city served over HTTP (tests/catalog_server.py) after one good
    ``citymodel run``: the whole-city fault tests (slow) share it, because one refresh of the whole
    sample city takes minutes. A test that changes the served files or catalog leaves them good
    again (and may set ``good_catalog`` to the catalog it leaves)."""
    from types import SimpleNamespace

    from catalog_server import CatalogServer

    root = tmp_path_factory.mktemp("served_city")
    src = root / "city"
    import shutil

    shutil.copytree(sample_city_session.out_dir, src)
    server = CatalogServer(src).start()
    try:
        out = root / "out"
        cfg = write_config(root, server.url("catalog.jsonld"), out)
        first = citymodel_cli(cfg, "run")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        yield SimpleNamespace(root=root, src=src, server=server, cfg=cfg, out=out, first_run=first,
                              catalog=src / "catalog.jsonld", good_catalog=(src / "catalog.jsonld").read_bytes())
    finally:
        server.stop()
