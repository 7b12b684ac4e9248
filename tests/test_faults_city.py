"""Fault injection into whole refreshes of the sample city, through the real command line.

One copy of the sample city is served over HTTP and refreshed by ``citymodel run`` (a new process
each time, as the nightly refresh or an operator starts it). After a good first refresh, each fault
is injected into a delivered file (a truncated LAZ tile, a tree CSV whose id column was renamed),
the catalog records the new version, and ``citymodel run`` must

- exit with status 1 and print the failed step's own message (dataset, record, fix), not Dagster's
  wrapper;
- publish nothing: ``latest`` is the release of the good run and still verifies with
  ``sha256sum -c SHA256SUMS``;
- recover on the next run once the good file is back: exit 0, and since the content is then the
  same as before, no new release (the content digest of a rebuilt city is the same bytes).

The two faults share the first refresh with test_faults_input_e2e.py (``served_city`` in
conftest.py); each full refresh of the sample city takes minutes, so the module is ``slow``. The release's decision itself (which
parts are fresh, carried over or failed) is tested on a small graph in ``test_release_contents.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import citymodel_cli
from test_pipeline_e2e import _bump_distribution

pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]


def _run(city, *args: str) -> subprocess.CompletedProcess:
    return citymodel_cli(city.cfg, "run", *args)


def _sha256sum_ok(release: Path) -> bool:
    r = subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], cwd=release, capture_output=True,
                       text=True)
    return r.returncode == 0


def _latest(city) -> Path:
    return (city.out / "latest").resolve()


@pytest.fixture(scope="module")
def city(served_city):
    """The served sample city after its good first refresh: a complete release."""
    first = _latest(served_city)
    assert _sha256sum_ok(first)
    manifest = json.loads((first / "release.json").read_text(encoding="utf-8"))
    assert manifest["contents"]["status"] == "complete", manifest["contents"]["gaps"]
    return served_city


def _inject_and_recover(city, rel_file: str, damage, needs: tuple[str, ...]) -> None:
    path = city.src / "files" / rel_file
    good = path.read_bytes()
    latest_before = _latest(city)
    releases_before = sorted(p.name for p in (city.out / "releases").iterdir())
    damage(path, good)
    _bump_distribution(city.src / "catalog.jsonld", rel_file, path)
    try:
        bad = _run(city)
    finally:  # the served city is shared with the other whole-city fault tests: always give the good file back
        path.write_bytes(good)
        _bump_distribution(city.src / "catalog.jsonld", rel_file, path)
    try:
        assert bad.returncode == 1, (bad.stdout[-3000:], bad.stderr[-3000:])
        err = bad.stderr
        for n in needs:
            assert n in err, (n, err[-3000:])
        assert "DagsterExecutionStepExecutionError" not in err and "Error occurred while executing" not in err
        # the release refused itself: it names the part and that nothing was published
        assert "not published" in err and latest_before.name in err, err[-3000:]
        assert _latest(city) == latest_before and _sha256sum_ok(latest_before)
        assert sorted(p.name for p in (city.out / "releases").iterdir()) == releases_before
    finally:  # the good file back: the next run rebuilds what failed (also for the tests after this one)
        again = _run(city)
    assert again.returncode == 0, (again.stdout[-3000:], again.stderr[-3000:])
    assert f"content unchanged, no new release (latest: {latest_before.name})" in again.stdout, again.stdout[-3000:]
    assert _latest(city) == latest_before and _sha256sum_ok(latest_before)


def test_a_truncated_laz_tile_publishes_nothing_and_the_next_run_recovers(city):
    def truncate(path: Path, good: bytes) -> None:
        path.write_bytes(good[: len(good) // 2])

    _inject_and_recover(city, "las_32_681_5644_1_th.laz", truncate,
                        needs=("staging/point_cloud", "32_681_5644", "las_32_681_5644_1_th.laz", "Fix:"))


def test_a_tree_file_that_lost_its_id_column_publishes_nothing_and_the_next_run_recovers(city):
    def rename_id(path: Path, good: bytes) -> None:
        text = good.decode("utf-8")
        head, rest = text.split("\n", 1)
        path.write_text(head.replace("baumnummer", "baum_nr") + "\n" + rest, encoding="utf-8")

    _inject_and_recover(city, "baumkataster.csv", rename_id,
                        needs=("staging/trees", "column 'baumnummer' (configured for 'tree_id') is not in the file",
                               "Fix: correct 'sources.trees.columns.tree_id'"))
