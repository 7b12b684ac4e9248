"""Figures of the 3D viewer on the sample city's latest release, in headless Chromium (software WebGL).

    .venv/bin/python -m benchmarks.bench_viewer [--output DIR] [--rounds 3] [--frames 30]

- the viewer's size in a release (app, CesiumJS, config and building index; overlays, terrain, portal
  configurations) and its share of the release;
- time to the first complete frame: from navigation to every shown tileset and the terrain loaded
  and drawn (home view, buildings + trees + terrain), median of ``--rounds`` page loads with the
  browser cache off;
- frame rate while orbiting: the camera turns around the city's centre, one forced frame per step
  (finished on the GPU, here SwiftShader), for several layer sets; software rendering, so the figure
  to compare is the ratio to buildings alone.

Needs ``make run`` first (a release in ``outputs/``), Debian's chromium + chromium-driver and
selenium. Prints the figures and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

LAYER_SETS = (("buildings", "layers=buildings"),
              ("buildings + terrain", "layers=buildings,terrain"),
              ("buildings + terrain + trees", "layers=buildings,trees,terrain"),
              ("+ noise overlay", "layers=buildings,trees,terrain&ground=noise_lrt"),
              ("+ shadows", "layers=buildings,trees,terrain&shadows=1&time=2025-03-21T15:00"),
              ("+ point cloud", "layers=buildings,trees,terrain,pointcloud"))


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def _site(output_dir: Path) -> tuple[Path, Path, Path | None]:
    """The folder to serve and the release in it; a temporary copy with the viewer where the
    release has none yet."""
    from citymodel.release import latest_release

    rel = latest_release(output_dir)
    if rel is None:
        raise SystemExit(f"no release in {output_dir}: run 'make run' first")
    if (rel / "viewer" / "index.html").is_file():
        return output_dir, rel, None
    from assets.viewer import write_viewer_into
    from citymodel.config import load_config

    tmp = Path(tempfile.mkdtemp(prefix="bench_viewer_"))
    (tmp / "releases").mkdir()

    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(rel, tmp / "releases" / rel.name, copy_function=link)
    os.symlink(f"releases/{rel.name}", tmp / "latest")
    write_viewer_into(tmp / "releases" / rel.name, load_config())
    return tmp, tmp / "releases" / rel.name, tmp


def _wait_complete(driver, timeout_s: float) -> float:
    """Seconds from navigation start until all shown tilesets and the globe are loaded."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        s = driver.execute_script(
            "const a = window.citymodelViewer; if (!a || !a.ready) return null; a.viewer.scene.requestRender();"
            "const s = a.loadStatus(); const shown = Object.values(s.tilesets).filter(r => r.shown);"
            "return {done: s.globeLoaded && shown.every(r => r.allTilesLoaded),"
            " failed: shown.reduce((n, r) => n + r.failed.length, 0), ms: performance.now()};")
        if s and s["failed"]:
            raise SystemExit(f"failed tiles: {s}")
        if s and s["done"]:
            return s["ms"] / 1000.0
        time.sleep(0.25)
    raise SystemExit(f"not complete within {timeout_s} s")


ORBIT_STEP = """
const a = window.citymodelViewer, C = a.Cesium, scene = a.viewer.scene, gl = scene.context._gl;
const e = a.config.extent_deg, n = arguments[0];
const centre = C.Cartesian3.fromDegrees((e[0] + e[2]) / 2, (e[1] + e[3]) / 2, a.config.home.ground_m || 0);
const t0 = performance.now();
a.viewer.camera.rotate(C.Cartesian3.normalize(centre, new C.Cartesian3()), (2 * Math.PI) / n);
a.viewer.render();
gl.finish();
return performance.now() - t0;
"""


def orbit_ms(driver, frames: int) -> float:
    """Mean time (ms) of one frame while the camera turns once around the centre (one call per frame)."""
    driver.execute_script("window.citymodelViewer.viewer.render(); window.citymodelViewer.viewer.scene.context._gl.finish()")
    return statistics.fmean(driver.execute_script(ORBIT_STEP, frames) for _ in range(frames))


def main(argv: list[str] | None = None) -> int:
    from citymodel.config import load_config
    from citymodel.viewer.headless import missing_reason, start_chromium
    from citymodel.viewer.serve import StaticServer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", help="output folder (default: the deployment's output_dir)")
    p.add_argument("--rounds", type=int, default=3, help="page loads for the first-frame time")
    p.add_argument("--frames", type=int, default=24, help="frames per orbit")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    why = missing_reason()
    if why:
        print(f"skipped: {why}")
        return 0
    out = Path(args.output) if args.output else load_config().output_dir
    root, rel, tmp = _site(out)
    try:
        # ---- size
        total, nfiles = _size(rel)
        print(f"release {rel.name}: {total / 1e6:.1f} MB in {nfiles} files")
        for part in ("viewer", "viewer/cesium", "overlays", "terrain", "portals"):
            b, n = _size(rel / part)
            print(f"  {part + '/':16s} {b / 1e6:7.2f} MB  {n:5d} files  {100 * b / total:5.1f} % of the release")
        b_all = sum(_size(rel / q)[0] for q in ("viewer", "overlays", "terrain", "portals"))
        print(f"  viewer parts in all: {b_all / 1e6:.2f} MB ({100 * b_all / total:.1f} %); CesiumJS files are hard-linked "
              "between releases")
        with StaticServer(root) as server:
            url = server.url("latest/viewer/")
            driver = start_chromium(width=args.width, height=args.height)
            try:
                driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
                # ---- time to the first complete frame
                times = []
                for _ in range(args.rounds):
                    driver.get("about:blank")
                    driver.get(url + "#layers=buildings,trees,terrain")
                    times.append(_wait_complete(driver, args.timeout))
                print(f"first complete frame (home view, buildings + trees + terrain, {args.width}x{args.height}): "
                      f"median {statistics.median(times):.1f} s  (rounds: {', '.join(f'{t:.1f}' for t in times)})")
                # ---- orbit frame rate per layer set
                base = None
                for label, h in LAYER_SETS:
                    driver.get("about:blank")
                    driver.get(url + "#" + h)
                    _wait_complete(driver, args.timeout)
                    ms = orbit_ms(driver, args.frames)
                    fps = 1000.0 / ms
                    base = base or fps
                    print(f"orbit {label:30s} {ms:8.1f} ms/frame  {fps:6.2f} frames/s  ratio {fps / base:5.2f}")
            finally:
                driver.quit()
                shutil.rmtree(driver.citymodel_profile, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
