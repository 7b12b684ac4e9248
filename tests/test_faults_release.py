"""Fault injection around publishing, on small hand-made releases: a disk that fills up, files a web
server cannot read, two refreshes at once.

Every fault asserts what the operator sees (the error, in one readable line with the fix), that
``latest`` still verifies with ``sha256sum -c SHA256SUMS``, and that the next good run recovers. The
disk is a real size-limited tmpfs where the machine lets the test mount one (root), and a simulated
``ENOSPC`` at the copy and at the write otherwise (both run where both can). The faults of whole
pipeline runs on the sample city are in ``test_faults_city.py``.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import citymodel.release.builder as builder_mod
from citymodel.errors import ReleaseError
from citymodel.refresh_lock import LOCK_NAME, RefreshBusyError, RefreshLock, current_holder
from citymodel.release import ReleaseBuilder, latest_release, list_releases
from pipelines.cli import fresh_environment

PROJECT = Path(__file__).resolve().parent.parent
MB = 1_000_000


def sha256sum_ok(release: Path) -> bool:
    """``sha256sum -c SHA256SUMS`` in the release folder (coreutils, not our code)."""
    r = subprocess.run(["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], cwd=release,
                       capture_output=True, text=True)
    return r.returncode == 0


_MINUTES = itertools.count()


def _clock():
    """Each release a minute after the one before (ids and ages in order)."""
    return datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc) + timedelta(minutes=next(_MINUTES))


def _release(out: Path, payload_bytes: int, tag: str, *, tiles_src: Path | None = None,
             expected: int | None = None, **kw):
    """A release of one data file of ``payload_bytes`` (random, so not compressible or shared)."""
    rb = ReleaseBuilder(out, title="Test", lock_timeout_s=1, clock=_clock, **kw)
    rb.begin(expected_bytes=expected)
    try:
        rb.write_bytes("data/payload.bin", os.urandom(payload_bytes), dataset="payload")
        rb.write_text("data/tag.txt", tag + "\n", dataset="payload")
        if tiles_src is not None:
            rb.add_folder(tiles_src, "tiles/buildings", dataset="tiles", entry="tileset.json")
        return rb.finalize([{"name": "ok", "passed": True}])
    except Exception as exc:
        error = rb.abort(remove=False, error=exc)
        if error is exc:
            raise
        raise error from exc


def _assert_one_readable_line(msg: str, *, needs: tuple[str, ...]) -> None:
    assert "\n" not in msg and len(msg) < 800, msg
    for n in needs:
        assert n in msg, (n, msg)


# ------------------------------------------------------------------------------------ disk full
@pytest.fixture
def small_disk(tmp_path):
    """``out/releases`` on a 4 MB tmpfs (skipped where mounting is not allowed)."""
    out = tmp_path / "out"
    rel = out / "releases"
    rel.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a size-limited tmpfs needs root; the simulated ENOSPC tests cover this case")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(rel)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the simulated ENOSPC tests cover this case")
    try:
        yield out
    finally:
        subprocess.run(["umount", "-l", str(rel)], capture_output=True)


def test_a_release_that_does_not_fit_is_refused_before_writing(small_disk):
    out = small_disk
    first = _release(out, 1_500_000, "v1", expected=1_600_000, min_free_bytes=100_000)
    assert sha256sum_ok(first.path)
    # 2.5 MB more do not fit beside the current 1.5 MB: nothing can be pruned (the current release stays)
    with pytest.raises(ReleaseError) as err:
        _release(out, 2_500_000, "v2", expected=2_600_000, min_free_bytes=100_000)
    _assert_one_readable_line(str(err.value), needs=("not enough free space", str(out / "releases"),
                                                     "publish.keep_releases", "nothing was written",
                                                     first.release_id, "Fix: free"))
    assert latest_release(out) == first.path.resolve() and sha256sum_ok(first.path)
    assert not [p for p in (out / "releases").iterdir() if p.name.endswith(".partial")]
    # the next good run (a release that fits) recovers
    second = _release(out, 500_000, "v3", expected=600_000, min_free_bytes=100_000)
    assert latest_release(out) == second.path.resolve() and sha256sum_ok(second.path)


def test_old_releases_are_pruned_first_when_space_is_short(small_disk):
    out = small_disk
    ids = [_release(out, 900_000, f"v{i}", expected=1_000_000).release_id for i in range(3)]
    assert list_releases(out) == ids  # 2.7 MB of 4 MiB
    # 2.2 MB more and 0.2 MB to stay free: the two oldest go (never the current one), although keep=5
    # would keep them
    info = _release(out, 2_200_000, "v4", expected=2_300_000, min_free_bytes=200_000)
    assert info.pruned[:2] == ids[:2]
    assert list_releases(out) == [ids[2], info.release_id]
    assert latest_release(out) == info.path.resolve() and sha256sum_ok(info.path)


def test_a_disk_that_fills_while_writing_leaves_latest_intact(small_disk, tmp_path):
    out = small_disk
    first = _release(out, 1_000_000, "v1")
    # a 3D Tiles folder of 150 files on another file system: hard links fail, the copies fill the disk
    tiles = tmp_path / "tiles"
    (tiles / "content").mkdir(parents=True)
    (tiles / "tileset.json").write_text("{}")
    for i in range(150):
        (tiles / "content" / f"{i}.glb").write_bytes(os.urandom(20_000))
    with pytest.raises(ReleaseError) as err:  # no estimate given: the disk really fills up
        _release(out, 1_200_000, "v2", tiles_src=tiles)
    msg = str(err.value)
    _assert_one_readable_line(msg, needs=("became full", "nothing was published", first.release_id,
                                          "publish.keep_releases", "Fix: the release needs more than"))
    assert "shutil.Error" not in msg
    assert latest_release(out) == first.path.resolve() and sha256sum_ok(first.path)
    assert sorted(p.name for p in (out / "releases").iterdir()) == [first.release_id]  # partial removed
    # recovery: with the space freed (the tmpfs grown), the same release goes through
    subprocess.run(["mount", "-o", "remount,size=16m", str(out / "releases")], check=True)
    second = _release(out, 1_200_000, "v2", tiles_src=tiles)
    assert latest_release(out) == second.path.resolve() and sha256sum_ok(second.path)


@pytest.mark.parametrize("where", ["copy", "write", "switch"])
def test_simulated_enospc_is_one_line_and_latest_stays(tmp_path, monkeypatch, where):
    out = tmp_path / "out"
    first = _release(out, 10_000, "v1")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    (tiles / "tileset.json").write_text("{}")
    for i in range(300):
        (tiles / f"{i}.glb").write_bytes(b"x" * 100)
    calls = {"n": 0}

    def full(*args, **kwargs):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, "No space left on device", str(args[-1]) if args else "")

    if where == "copy":  # at the 11th file of the folder
        real = builder_mod._link_or_copy

        def link_or_copy(src, dst):
            calls["n"] += 1
            if calls["n"] > 10:
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
            real(src, dst)

        monkeypatch.setattr(builder_mod, "_link_or_copy", link_or_copy)
    elif where == "write":  # writing catalog.jsonld
        monkeypatch.setattr(builder_mod, "atomic_write_bytes", full)
    else:  # the LATEST pointer file after the symlink switch is prepared
        monkeypatch.setattr(builder_mod.ReleaseBuilder, "_switch_latest", lambda self, rid: full(rid))
    with pytest.raises(ReleaseError) as err:
        _release(out, 10_000, "v2", tiles_src=tiles)
    _assert_one_readable_line(str(err.value), needs=("became full", first.release_id, "Fix:"))
    assert calls["n"] >= 1
    assert latest_release(out) == first.path.resolve() and sha256sum_ok(first.path)
    assert list_releases(out) == [first.release_id]
    assert not [p for p in (out / "releases").iterdir() if p.name != first.release_id]
    monkeypatch.undo()
    second = _release(out, 10_000, "v2", tiles_src=tiles)
    assert latest_release(out) == second.path.resolve() and sha256sum_ok(second.path)


# ------------------------------------------------------------------------------------ file modes
def _modes(root: Path) -> tuple[set[int], set[int]]:
    dirs, files = {stat.S_IMODE(root.stat().st_mode)}, set()
    for p in root.rglob("*"):
        (dirs if p.is_dir() else files).add(stat.S_IMODE(p.lstat().st_mode))
    return dirs, files


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027])
def test_published_files_are_readable_as_the_umask_allows(tmp_path, umask):
    """Whatever a writer did (0600 temporary files, 0700 temporary folders), the published release
    is 0777/0666 minus the umask: 0755/0644 under the usual 022."""
    old = os.umask(umask)
    try:
        tiles = Path(__import__("tempfile").mkdtemp(dir=tmp_path))  # 0700, as mkdtemp makes it
        (tiles / "content").mkdir()
        fd = os.open(tiles / "tileset.json", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"{}")
        os.close(fd)
        (tiles / "content" / "0.glb").write_bytes(b"glTF")
        os.chmod(tiles / "content" / "0.glb", 0o600)
        src = tmp_path / "model.city.json"
        src.write_text("{}")
        os.chmod(src, 0o600)
        out = tmp_path / "out"
        rb = ReleaseBuilder(out, title="Test")
        rb.begin()
        rb.add_file(src, "data/buildings.city.json", dataset="b")
        rb.add_folder(tiles, "tiles/buildings", dataset="t", entry="tileset.json")
        rb.write_text("data/x.csv", "a\n", dataset="b")
        info = rb.finalize([])
        dirs, files = _modes(info.path)
        assert dirs == {0o777 & ~umask} and files == {0o666 & ~umask}, (oct(umask), dirs, files)
        assert sha256sum_ok(info.path)
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_project_writers_follow_the_umask(tmp_path, umask):
    """The writers of the published files go through citymodel.fileio (no 0600 temporary files)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from citymodel.geofiles import write_geopackage
    from citymodel.raster import write_geotiff
    from citymodel.tiles3d.compose import compose_tilesets
    from citymodel.tiles3d.tileset import write_bytes_atomic, write_json_atomic

    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "a.glb", b"glTF")
        write_json_atomic(tmp_path / "t" / "tileset.json", {"asset": {"version": "1.1"}, "geometricError": 1,
                                                           "root": {"boundingVolume": {"box": [0] * 12},
                                                                    "geometricError": 1}})
        compose_tilesets([tmp_path / "t" / "tileset.json"], tmp_path / "root.json")
        write_geotiff(tmp_path / "r.tif", np.zeros((4, 4), np.float32), bounds=(0, 0, 4, 4), crs="EPSG:25832")
        write_geopackage(gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=25832), tmp_path / "g.gpkg")
        for name in ("a.glb", "t/tileset.json", "root.json", "r.tif", "g.gpkg"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    finally:
        os.umask(old)


def test_geotiffs_carry_no_timing_tags(tmp_path):
    """The same raster written twice is the same bytes: run-time figures are not written as tags."""
    import hashlib

    import numpy as np
    import rasterio

    from citymodel.raster import write_geotiff

    digests = []
    for seconds in (1.234, 5.678):
        p = tmp_path / f"{seconds}.tif"
        write_geotiff(p, np.ones((8, 8), np.float32), bounds=(0, 0, 8, 8), crs="EPSG:25832",
                      tags={"method": "ray casting", "seconds": seconds})
        with rasterio.open(p) as r:
            assert r.tags().get("method") == "ray casting" and "seconds" not in r.tags()
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


# ------------------------------------------------------------------------------------ refresh lock
HOLD = """
import sys, time
from citymodel.refresh_lock import RefreshLock
lock = RefreshLock(sys.argv[1], command="citymodel run (test holder)")
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _holder(out: Path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(out), str(seconds)], stdout=subprocess.PIPE, text=True,
                         cwd=PROJECT)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_refresh_gives_up_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, 60)
    try:
        with pytest.raises(RefreshBusyError) as err:
            RefreshLock(out, wait_s=0.3, poll_s=0.05).acquire()
        msg = str(err.value)
        assert f"process {holder.pid} on host {socket.gethostname()}" in msg and "citymodel run (test holder)" in msg
        assert "refresh.lock_wait_s" in msg
        assert current_holder(out).pid == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_refresh_runs_when_the_holder_is_done(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, 1.0)
    t0 = time.monotonic()
    with RefreshLock(out, wait_s=60, poll_s=0.05) as lock:
        waited = time.monotonic() - t0
        assert lock.taken_over is None  # released properly, not taken over
        assert current_holder(out).pid == os.getpid()
    holder.wait()
    assert 0.3 < waited < 30
    assert current_holder(out) is None


def test_the_lock_of_a_killed_refresh_is_taken_over(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    record = json.loads((out / LOCK_NAME).read_text())
    assert record["pid"] == holder.pid  # the dead process's record is still there
    lock = RefreshLock(out, wait_s=0)
    dead = lock.acquire()
    try:
        assert dead is not None and dead.pid == holder.pid
    finally:
        lock.release()


def test_citymodel_run_exits_75_while_another_refresh_holds_the_output_folder(tmp_path):
    """The real command line: it gives up before it plans or runs anything."""
    from conftest import write_config

    out = tmp_path / "out"
    cfg = write_config(tmp_path, str(tmp_path / "no_catalog.jsonld"), out)
    holder = _holder(out, 300)
    try:
        env = fresh_environment(DAGSTER_HOME=str(tmp_path / "dh"))
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", "--config", str(cfg), "run"],
                           capture_output=True, text=True, env=env, cwd=PROJECT, timeout=900)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 75, (r.stdout, r.stderr)
    assert f"another refresh of {out} is running: process {holder.pid}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "releases").exists() and not (out / "raw").exists()  # nothing ran
