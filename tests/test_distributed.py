"""The sample city's refresh run three ways gives the same release: one run after the other in this
process's instance, two tile runs at once (`citymodel run`, max_concurrent_runs 2), and through the
distributed engine: Celery workers behind a Redis broker with the instance in PostgreSQL (issue 16).

Each refresh is a `citymodel run` process of its own on the same catalog, with its own output folder
and so its own Dagster instance (<output_dir>/dagster_home); the three start together. Compared: the
release content digest (release.json), which covers every published file, and the published
analysis values.
"""

from __future__ import annotations

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
from pipelines.cli import fresh_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(6000)]  # 3 refreshes at once: ~5 min idle, 35+ min at load 15
EXE_DIR = Path(sys.executable).parent


def _start_run(cfg: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(EXE_DIR / "citymodel"), "--config", str(cfg), "run"], env=env,
                            stdout=open(log, "w", encoding="utf-8"), stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, log: Path, timeout_s: float) -> str:
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        pytest.fail(f"citymodel run did not finish within {timeout_s} s ({log})")
    out = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, f"citymodel run failed ({log}):\n{out[-5000:]}"
    return out


def _release(out: Path) -> SimpleNamespace:
    from citymodel.release.layout import read_manifest

    latest = (out / "latest").resolve()
    manifest = read_manifest(latest)
    assert manifest.get("content_digest"), f"no release in {out}"
    return SimpleNamespace(path=latest, digest=manifest["content_digest"], analysis=analysis_digest(latest))


def _env(**extra) -> dict:
    return fresh_environment(**extra)


@pytest.fixture(scope="module")
def city(tmp_path_factory, sample_city_session):
    """The catalog of the generated sample city, shared read-only by every refresh of this module."""
    root = tmp_path_factory.mktemp("distributed")
    return SimpleNamespace(root=root, catalog=str(sample_city_session.out_dir / "catalog.jsonld"))


def _deployment(city, name: str, **orchestration) -> Path:
    folder = city.root / name
    folder.mkdir()
    return write_config(folder, city.catalog, folder / "out", orchestration=orchestration)


def _run_intervals(home: Path) -> list[tuple[str, float, float]]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as inst:
        recs = inst.get_run_records(dg.RunsFilter(job_name="city_refresh"))
        return [(r.dagster_run.tags.get("dagster/partition", "-"), r.start_time, r.end_time) for r in recs]


@pytest.fixture(scope="module")
def refreshes(city):
    """Three refreshes of the sample city, started together (they share nothing but the catalog):
    sequential in-process, two runs at once, and on two Celery workers with the instance in
    PostgreSQL (skipped with the reason where Redis, PostgreSQL or the packages are missing)."""
    why_not = servers.missing()
    if why_not is None:
        try:
            import dagster_celery  # noqa: F401
            import dagster_postgres  # noqa: F401
        except ImportError as exc:
            why_not = f"the distributed extra is not installed ({exc}): pip install -e '.[distributed]'"
    redis = pg = workers = None
    procs: dict[str, tuple] = {}
    try:
        cfg = _deployment(city, "sequential", max_concurrent_runs=1)
        procs["sequential"] = (_start_run(cfg, _env(), city.root / "sequential.log"), city.root / "sequential.log")
        cfg = _deployment(city, "concurrent", max_concurrent_runs=2, pools={"lod2": 2, "noise": 1})
        procs["concurrent"] = (_start_run(cfg, _env(), city.root / "concurrent.log"), city.root / "concurrent.log")
        celery_instance = None
        if why_not is None:
            redis, pg = servers.Redis().start(), servers.Postgres().start()
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
            procs["celery"] = (_start_run(cfg, env, city.root / "celery.log"), city.root / "celery.log")
            celery_instance = SimpleNamespace(home=Path(home), pg_url=pg.url)
        logs = {name: _finish(p, log, 5400) for name, (p, log) in procs.items()}
        yield SimpleNamespace(logs=logs, why_not=why_not, celery_instance=celery_instance,
                              **{name: _release(city.root / name / "out") for name in procs})
    finally:
        for p, _ in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(30)
        if workers is not None:
            workers.stop()
        if pg is not None:
            pg.stop()
        if redis is not None:
            redis.stop()


def test_two_tile_runs_at_once_publish_the_same_release(city, refreshes):
    assert "up to 2 at once" in refreshes.logs["concurrent"]
    got, want = refreshes.concurrent, refreshes.sequential
    assert got.digest == want.digest
    assert not compare(got.analysis, want.analysis)
    # the tile runs were recorded in the deployment's own instance, and two of them overlapped in time
    spans = [(p, a, b) for p, a, b in _run_intervals(city.root / "concurrent" / "out" / "dagster_home") if p != "-"]
    assert len(spans) == 8  # 4 tiles: own assets, then the assets that read neighbour tiles
    overlapping = [(x[0], y[0]) for i, x in enumerate(spans) for y in spans[i + 1:] if x[1] < y[2] and y[1] < x[2]]
    assert overlapping, spans
    for _, a, _ in spans:  # never more than two at once
        assert sum(1 for _, s, e in spans if s <= a < e) <= 2
    # the sequential refresh ran one run after the other
    seq = sorted(_run_intervals(city.root / "sequential" / "out" / "dagster_home"), key=lambda x: x[1])
    assert all(b[1] >= a[2] for a, b in zip(seq, seq[1:]))


def test_celery_workers_with_postgres_publish_the_same_release(refreshes):
    if refreshes.why_not:
        pytest.skip(refreshes.why_not)
    got, want = refreshes.celery, refreshes.sequential
    assert "engine celery" in refreshes.logs["celery"]
    assert got.digest == want.digest
    assert not compare(got.analysis, want.analysis)
    # the steps ran on both Celery workers, and the runs are stored in PostgreSQL
    import dagster as dg

    os.environ["CITYMODEL_TEST_PG_URL"] = refreshes.celery_instance.pg_url
    hosts = set()
    try:
        with dg.DagsterInstance.from_config(str(refreshes.celery_instance.home)) as inst:
            assert type(inst.run_storage).__name__ == "PostgresRunStorage"
            runs = inst.get_run_records(dg.RunsFilter(job_name="city_refresh"))
            assert len(runs) == 10 and all(r.dagster_run.is_success for r in runs)
            for r in runs:
                for e in inst.all_logs(r.dagster_run.run_id):
                    data = e.dagster_event.engine_event_data if e.dagster_event and e.dagster_event.is_engine_event \
                        else None
                    if data is not None and "Celery worker" in (data.metadata or {}):
                        hosts.add(data.metadata["Celery worker"].value)
    finally:
        os.environ.pop("CITYMODEL_TEST_PG_URL", None)
    assert {h.split("@")[0] for h in hosts} == {"citymodel1", "citymodel2"}, hosts
