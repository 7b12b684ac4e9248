"""The sample city's refresh run three ways gives the same release: one run after the other in this
process's instance, two tile runs at once (`citymodel run`, max_concurrent_runs 2), and through the
distributed engine: Celery workers behind a Redis broker with the instance in PostgreSQL (issue 16).

Each refresh is a `citymodel run` process of its own on the same catalog, with its own output folder
and so its own Dagster instance (<output_dir>/dagster_home). Compared: the release content digest
(release.json), which covers every published file, and the published analysis values.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import servers
from conftest import write_config
from golden import analysis_digest, compare

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
EXE_DIR = Path(sys.executable).parent


def _citymodel_run(cfg: Path, env: dict, log: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(EXE_DIR / "citymodel"), "--config", str(cfg), "run"], env=env, capture_output=True,
                          text=True, timeout=2000)
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    assert proc.returncode == 0, f"citymodel run failed ({log}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _release(out: Path) -> SimpleNamespace:
    from citymodel.release.layout import read_manifest

    latest = (out / "latest").resolve()
    manifest = read_manifest(latest)
    assert manifest.get("content_digest"), f"no release in {out}"
    return SimpleNamespace(path=latest, digest=manifest["content_digest"], analysis=analysis_digest(latest))


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CITYMODEL_OUTPUT_DIR",
                                                             "CITYMODEL_CONFIG")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def city(tmp_path_factory, sample_city_session):
    """The catalog of the generated sample city, shared read-only by every refresh of this module."""
    root = tmp_path_factory.mktemp("distributed")
    return SimpleNamespace(root=root, catalog=str(sample_city_session.out_dir / "catalog.jsonld"))


def _deployment(city, name: str, **orchestration) -> Path:
    folder = city.root / name
    folder.mkdir()
    return write_config(folder, city.catalog, folder / "out", orchestration=orchestration)


@pytest.fixture(scope="module")
def sequential(city):
    cfg = _deployment(city, "sequential", max_concurrent_runs=1)
    _citymodel_run(cfg, _env(), city.root / "sequential.log")
    return _release(city.root / "sequential" / "out")


def _run_intervals(home: Path) -> list[tuple[str, float, float]]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as inst:
        recs = inst.get_run_records(dg.RunsFilter(job_name="city_refresh"))
        return [(r.dagster_run.tags.get("dagster/partition", "-"), r.start_time, r.end_time) for r in recs]


def test_two_tile_runs_at_once_publish_the_same_release(city, sequential):
    cfg = _deployment(city, "concurrent", max_concurrent_runs=2, pools={"lod2": 2, "noise": 1})
    proc = _citymodel_run(cfg, _env(), city.root / "concurrent.log")
    assert "up to 2 at once" in proc.stdout
    got = _release(city.root / "concurrent" / "out")
    assert got.digest == sequential.digest
    assert not compare(got.analysis, sequential.analysis)
    # the tile runs were recorded in the deployment's own instance, and two of them overlapped in time
    spans = [(p, a, b) for p, a, b in _run_intervals(city.root / "concurrent" / "out" / "dagster_home") if p != "-"]
    assert len(spans) == 8  # 4 tiles: own assets, then the assets that read neighbour tiles
    overlapping = [(x[0], y[0]) for i, x in enumerate(spans) for y in spans[i + 1:] if x[1] < y[2] and y[1] < x[2]]
    assert overlapping, spans
    for _, a, _ in spans:  # never more than two at once
        assert sum(1 for _, s, e in spans if s <= a < e) <= 2


@pytest.fixture(scope="module")
def cluster(city):
    why = servers.missing()
    if why:
        pytest.skip(why)
    pytest.importorskip("dagster_celery")
    pytest.importorskip("dagster_postgres")
    redis, pg, workers = servers.Redis(), servers.Postgres(), None
    try:
        redis.start()
        pg.start()
        cfg = _deployment(city, "celery", max_concurrent_runs=2, engine="celery",
                          postgres_url_env="CITYMODEL_TEST_PG_URL",
                          celery={"broker_url_env": "CITYMODEL_TEST_BROKER",
                                  "backend_url_env": "CITYMODEL_TEST_BACKEND"})
        env = _env(CITYMODEL_TEST_PG_URL=pg.url, CITYMODEL_TEST_BROKER=redis.url(0),
                   CITYMODEL_TEST_BACKEND=redis.url(1), CITYMODEL_CONFIG=str(cfg))
        # the instance (dagster.yaml with PostgreSQL storage) exists before the workers start
        home = subprocess.run([str(EXE_DIR / "citymodel"), "--config", str(cfg), "prepare-home"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
        env["DAGSTER_HOME"] = home
        worker_yaml = city.root / "celery" / "celery_worker.yaml"
        worker_yaml.write_text(yaml.safe_dump({"execution": {"config": {
            "broker": {"env": "CITYMODEL_TEST_BROKER"}, "backend": {"env": "CITYMODEL_TEST_BACKEND"}}}}))
        workers = servers.CeleryWorkers(EXE_DIR, worker_yaml, env, count=2, log_dir=city.root / "celery").start()
        yield SimpleNamespace(cfg=cfg, env=env, home=Path(home), pg=pg, redis=redis, workers=workers)
    finally:
        if workers is not None:
            workers.stop()
        pg.stop()
        redis.stop()


def test_celery_workers_with_postgres_publish_the_same_release(city, sequential, cluster):
    _citymodel_run(cluster.cfg, cluster.env, city.root / "celery.log")
    got = _release(city.root / "celery" / "out")
    assert got.digest == sequential.digest
    assert not compare(got.analysis, sequential.analysis)
    # the steps ran on both Celery workers, and the runs are stored in PostgreSQL
    import dagster as dg

    os.environ["CITYMODEL_TEST_PG_URL"] = cluster.pg.url
    try:
        with dg.DagsterInstance.from_config(str(cluster.home)) as inst:
            assert type(inst.run_storage).__name__ == "PostgresRunStorage"
            runs = inst.get_run_records(dg.RunsFilter(job_name="city_refresh"))
            assert len(runs) == 10 and all(r.dagster_run.is_success for r in runs)
            hosts = set()
            for r in runs:
                for e in inst.all_logs(r.dagster_run.run_id):
                    data = getattr(e.dagster_event, "engine_event_data", None) if e.dagster_event else None
                    if data is not None and "Celery worker" in (data.metadata or {}):
                        hosts.add(data.metadata["Celery worker"].value)
    finally:
        os.environ.pop("CITYMODEL_TEST_PG_URL", None)
    assert {h.split("@")[0] for h in hosts} == {"citymodel1", "citymodel2"}, hosts
