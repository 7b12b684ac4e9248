"""City-scale benchmark (issue #16 item 5): the whole graph on N full-density 1 km tiles like Jena's.

    .venv/bin/python -m benchmarks.bench_city_scale [--tiles 2] [--density 11] [--quick]
                                                    [--analysis default|sample] [--keep DIR]

1. Generates ``--tiles`` adjacent 1 km tiles (:mod:`citymodel.samplecity.scale`: LiDAR LAZ at
   ``--density`` points/m², about 300 ALKIS-like buildings per km² with storeys, trees, roads with
   traffic, flood zones, a DCAT-AP catalog) and a deployment file (the documented analysis defaults,
   as a real deployment would use them; ``--analysis sample``: the sample city's coarser settings).
   ``--quick``: 500 m of each tile only, for a test of the benchmark itself.
2. Runs the whole graph with ``citymodel run`` in a fresh process (as the nightly run would), with
   the concurrency the deployment configures; then re-samples one tile's LiDAR (a re-flown tile,
   new checksum and date in the catalog) and runs again: a night with one changed tile.
3. Prints, per run: seconds per stage per tile and of the city-wide steps, wall and CPU (CPU per
   step from the Dagster event log's step start/end and the step process's CPU time, sampled from
   /proc every 0.5 s), peak memory per process (VmHWM of every process of the run), the load
   average; then the extrapolation to Jena (115 tiles from scratch on 2 cores, a night with 5
   changed tiles) and, on paper, Thuringia (about 16,200 tiles) on a 32-core server and a cluster.

CPU seconds are the load-independent figure: the machine may be shared (the load average is printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.cli import executable, fresh_environment

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: what the extrapolation assumes (printed with it)
JENA_TILES = 115
JENA_BUILDINGS = 35_000
NIGHT_CHANGED_TILES = 5
NEIGHBOURS_PER_TILE = 8            # worst case: the changed tiles do not touch each other
THURINGIA_TILES = 16_200
SERVER_CORES = 32
SERVER_CONCURRENT_RUNS = 30        # issue #16: a 32-core server runs 30 tiles at once
CLUSTER_SERVERS = (4, 16)
GOAL_JENA_H = 2.0
GOAL_NIGHT_MIN = 10.0
GOAL_MEMORY_GB = 2.0
#: stages of the steps whose key has no stage prefix (multi-asset ops)
STEP_STAGES = {"lidar_tile": "staging"}


# =============================================================================================
def _read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process: user + system, all threads) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def _read_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:120]
    except OSError:
        return "?"


class ProcessMonitor(threading.Thread):
    """Samples the CPU time and the memory high-water mark of a process and all its descendants."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = root_pid
        self.interval_s = interval_s
        self.cpu: dict[int, list[tuple[float, float]]] = defaultdict(list)
        self.hwm_kb: dict[int, int] = {}
        self.cmd: dict[int, str] = {}
        self.load: list[float] = []
        self._halt = threading.Event()

    def _tree(self) -> list[int]:
        parent: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _read_stat(int(name))
                if st:
                    parent[int(name)] = st[0]
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in parent.items():
            children[ppid].append(pid)
        out, stack = [], [self.root]
        while stack:
            pid = stack.pop()
            out.append(pid)
            stack.extend(children.get(pid, []))
        return out

    def sample(self) -> None:
        now = time.time()
        for pid in self._tree():
            st = _read_stat(pid)
            if st is None:
                continue
            self.cpu[pid].append((now, st[1]))
            self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), _read_hwm_kb(pid))
            if pid not in self.cmd:
                self.cmd[pid] = _cmdline(pid)
        self.load.append(os.getloadavg()[0])

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()   # (not _stop: threading.Thread has a method of that name)
        self.join()

    def cpu_between(self, pid: int, t0: float, t1: float) -> float | None:
        """CPU seconds ``pid`` spent between ``t0`` and ``t1`` (linear between samples)."""
        s = self.cpu.get(pid)
        if not s:
            return None

        def at(t: float) -> float:
            if t <= s[0][0]:
                return s[0][1]
            if t >= s[-1][0]:
                return s[-1][1]
            lo, hi = 0, len(s) - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if s[mid][0] <= t:
                    lo = mid
                else:
                    hi = mid
            (ta, ca), (tb, cb) = s[lo], s[hi]
            return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else ca

        return max(0.0, at(t1) - at(t0))


# =============================================================================================
@dataclass
class Step:
    run_id: str
    tile: str | None
    neighbours_phase: bool
    step_key: str
    wall_s: float
    cpu_s: float | None
    pid: int
    ok: bool

    @property
    def stage(self) -> str:
        if "__" in self.step_key:
            return self.step_key.split("__")[0]
        return STEP_STAGES.get(self.step_key, "other")


@dataclass
class RunResult:
    label: str
    wall_s: float
    cpu_s: float                     # the whole process tree (getrusage of the waited children)
    peak_rss_mb: dict[str, float]    # process -> VmHWM (MB)
    load: tuple[float, float, float]  # min, mean, max of the 1-min load average during the run
    steps: list[Step] = field(default_factory=list)
    returncode: int = 0
    stdout: str = ""

    def cpu_of(self, pred) -> float:
        return sum((s.cpu_s if s.cpu_s is not None else s.wall_s) for s in self.steps if pred(s))

    def wall_of(self, pred) -> float:
        return sum(s.wall_s for s in self.steps if pred(s))


def run_refresh(label: str, exe: str, cfg: Path, env: dict, started_after: float) -> RunResult:
    """``citymodel --config cfg run`` in a fresh process, monitored; its steps from the instance."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, "--config", str(cfg), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    mon = ProcessMonitor(proc.pid)
    mon.start()
    out, _ = proc.communicate()
    mon.stop()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    peaks: dict[str, float] = {}
    for pid, kb in mon.hwm_kb.items():
        name = f"{pid} {mon.cmd.get(pid, '?')}"
        peaks[name] = kb / 1024.0
    loads = mon.load or [os.getloadavg()[0]]
    res = RunResult(label, wall, cpu, peaks, (min(loads), sum(loads) / len(loads), max(loads)),
                    returncode=proc.returncode, stdout=out)
    res.steps = instance_steps(env["DAGSTER_HOME"], started_after, mon)
    raw = Path(env["DAGSTER_HOME"]).parent / f"bench_{label.split(':')[0].replace(' ', '_')}.json"
    raw.write_text(json.dumps({"label": label, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peaks,
                               "load": res.load, "returncode": proc.returncode,
                               "steps": [s.__dict__ for s in res.steps],
                               "cpu_samples": {str(k): v for k, v in mon.cpu.items()}}), encoding="utf-8")
    return res


def instance_steps(dagster_home: str, started_after: float, mon: ProcessMonitor) -> list[Step]:
    """Every step of the runs created after ``started_after`` (epoch s), with wall and CPU seconds."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = dagster_home
    instance = dg.DagsterInstance.get()
    records = instance.get_run_records(filters=dg.RunsFilter(
        created_after=dt.datetime.fromtimestamp(started_after, dt.timezone.utc)))
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    steps: list[Step] = []
    for rec in records:
        run = rec.dagster_run
        tile = run.tags.get("dagster/partition")
        phase = "reads neighbours" in run.tags.get("citymodel/reason", "")
        start: dict[str, tuple[float, int]] = {}
        for e in instance.all_logs(run.run_id, of_type=kinds):
            et = e.dagster_event.event_type
            if et == dg.DagsterEventType.STEP_START:
                start[e.step_key] = (e.timestamp, e.dagster_event.pid)
            elif e.step_key in start:
                t0, pid = start.pop(e.step_key)
                steps.append(Step(run.run_id, tile, phase, e.step_key, e.timestamp - t0,
                                  mon.cpu_between(pid, t0, e.timestamp), pid,
                                  et == dg.DagsterEventType.STEP_SUCCESS))
    instance.dispose()
    return steps


# =============================================================================================
def _fmt_s(v: float) -> str:
    return f"{v:8.1f}"


def report_run(r: RunResult, n_tiles: int) -> None:
    tiles = sorted({s.tile for s in r.steps if s.tile})
    print(f"\n== {r.label}: {r.wall_s:.0f} s wall, {r.cpu_s:.0f} CPU s (whole process tree), "
          f"load average {r.load[0]:.1f}-{r.load[2]:.1f} (mean {r.load[1]:.1f}) on {os.cpu_count()} cores; "
          f"exit status {r.returncode}")
    failed = [s for s in r.steps if not s.ok]
    if failed:
        print(f"   FAILED steps: {', '.join(f'{s.step_key} [{s.tile}]' for s in failed)}")
    print(f"   tiles run: {', '.join(tiles) or '-'}")
    by_stage: dict[tuple[str, str], list[Step]] = defaultdict(list)
    for s in r.steps:
        by_stage[(s.stage, "tile" if s.tile else "city")].append(s)
    print(f"   {'stage':<10} {'kind':<5} {'steps':>5} {'wall s':>8} {'CPU s':>8} {'CPU s/tile':>10}")
    for (stage, kind), ss in sorted(by_stage.items(), key=lambda kv: (kv[0][1] != "tile", kv[0][0])):
        wall = sum(s.wall_s for s in ss)
        cpu = sum((s.cpu_s if s.cpu_s is not None else s.wall_s) for s in ss)
        per_tile = f"{cpu / len({s.tile for s in ss}):10.1f}" if kind == "tile" else " " * 10
        print(f"   {stage:<10} {kind:<5} {len(ss):5d} {_fmt_s(wall)} {_fmt_s(cpu)} {per_tile}")
    step_cpu = r.cpu_of(lambda s: True)
    print(f"   steps in all: {r.wall_of(lambda s: True):.1f} s wall, {step_cpu:.1f} CPU s; outside the steps "
          f"(start-up, imports, catalog, plan, step overhead): {max(0.0, r.cpu_s - step_cpu):.1f} CPU s")
    print("   slowest steps (CPU s): " + ", ".join(
        f"{s.step_key}[{s.tile or '-'}] {s.cpu_s if s.cpu_s is not None else s.wall_s:.1f}"
        for s in sorted(r.steps, key=lambda s: -(s.cpu_s or s.wall_s))[:8]))
    peaks = sorted(r.peak_rss_mb.items(), key=lambda kv: -kv[1])
    print("   peak memory per process (VmHWM): " + "; ".join(f"{mb:.0f} MB  {name[:70]}" for name, mb in peaks[:4]))


@dataclass
class Extrapolation:
    tile_cpu_s: float            # all tile steps of one tile (own + neighbour-reading), run 1
    city_cpu_s: float            # city-wide (unpartitioned) steps of run 1, for the generated buildings
    startup_cpu_s: float         # outside the steps, per refresh process
    changed_tile_cpu_s: float    # run 2: every tile step of the changed tile
    neighbour_cpu_s: float       # run 2: the neighbour-reading steps of one unchanged neighbour tile
    night_city_cpu_s: float      # run 2: city-wide steps
    night_startup_cpu_s: float   # run 2: outside the steps
    buildings: int
    peak_mb: float
    wall_per_cpu: float          # run 1 wall / CPU (shows the load)
    neighbour_reading_cpu_s: float | None = None   # run 2: only the neighbour-reading steps of a neighbour


def extrapolate(r1: RunResult, r2: RunResult, changed: str, n_buildings: int) -> Extrapolation:
    tiles1 = sorted({s.tile for s in r1.steps if s.tile})
    tile_cpu = r1.cpu_of(lambda s: s.tile is not None) / max(1, len(tiles1))
    city_cpu = r1.cpu_of(lambda s: s.tile is None)
    startup = max(0.0, r1.cpu_s - r1.cpu_of(lambda s: True))
    changed_cpu = r2.cpu_of(lambda s: s.tile == changed)
    others = sorted({s.tile for s in r2.steps if s.tile and s.tile != changed})
    if others:
        neighbour = r2.cpu_of(lambda s: s.tile is not None and s.tile != changed) / len(others)
    else:
        # one tile only: a neighbour re-runs its neighbour-reading steps; take them from run 1
        neighbour = r1.cpu_of(lambda s: s.tile is not None and s.neighbours_phase) / max(1, len(tiles1))
    night_city = r2.cpu_of(lambda s: s.tile is None)
    peak = max(list(r1.peak_rss_mb.values()) + list(r2.peak_rss_mb.values()) + [0.0])
    night_startup = max(0.0, r2.cpu_s - r2.cpu_of(lambda s: True))
    reading = (r2.cpu_of(lambda s: s.tile is not None and s.tile != changed and s.neighbours_phase) / len(others)
               if others else None)
    return Extrapolation(tile_cpu, city_cpu, startup, changed_cpu, neighbour, night_city, night_startup,
                         n_buildings, peak, r1.wall_s / max(r1.cpu_s, 1e-9), reading)


def report_extrapolation(x: Extrapolation, n_tiles: int) -> dict:
    scale = JENA_BUILDINGS / max(1, x.buildings)
    jena_tiles_cpu = JENA_TILES * x.tile_cpu_s
    jena_city_cpu = x.city_cpu_s * scale
    jena_h = (jena_tiles_cpu / 2 + jena_city_cpu + x.startup_cpu_s) / 3600
    night_tiles_cpu = NIGHT_CHANGED_TILES * (x.changed_tile_cpu_s + NEIGHBOURS_PER_TILE * x.neighbour_cpu_s)
    night_city_cpu = x.night_city_cpu_s * scale
    night_min = (night_tiles_cpu / 2 + night_city_cpu + x.night_startup_cpu_s) / 60
    th_tiles_cpu = THURINGIA_TILES * x.tile_cpu_s
    th_city_cpu = x.city_cpu_s * THURINGIA_TILES * (JENA_BUILDINGS / JENA_TILES) / max(1, x.buildings)
    th_server_h = (th_tiles_cpu / SERVER_CONCURRENT_RUNS + th_city_cpu) / 3600
    print("\n== Extrapolation (CPU seconds, load-independent)")
    print(f"   measured: {x.tile_cpu_s:.0f} CPU s per tile (all tile steps), {x.city_cpu_s:.0f} CPU s city-wide for "
          f"{x.buildings} buildings, {x.startup_cpu_s:.0f} CPU s start-up/plan per refresh; night: "
          f"{x.changed_tile_cpu_s:.0f} CPU s for the changed tile, {x.neighbour_cpu_s:.0f} CPU s per neighbour "
          f"tile, {x.night_city_cpu_s:.0f} CPU s city-wide, {x.night_startup_cpu_s:.0f} CPU s start-up/plan")
    print("   assumptions: tile work is linear in tiles and scales per core (2 tiles at once on 2 cores use"
          " both fully: wall = CPU / cores); city-wide steps run on one core and scale with the buildings"
          f" ({JENA_BUILDINGS:,} in Jena = {scale:.1f}x the generated ones); a changed tile also re-runs"
          f" what run 2 measured on each of its {NEIGHBOURS_PER_TILE} neighbours (no two changed tiles touch);"
          " downloads are not counted (local catalog); wall on a busy machine is longer by the load"
          f" (this run: {x.wall_per_cpu:.1f} s wall per CPU s)")
    print(f"   Jena from scratch, {JENA_TILES} tiles on 2 cores: {jena_tiles_cpu / 2 / 3600:.2f} h tiles + "
          f"{jena_city_cpu / 3600:.2f} h city-wide = {jena_h:.2f} h   (goal < {GOAL_JENA_H:.0f} h)")
    print(f"   a night with {NIGHT_CHANGED_TILES} changed tiles, 2 cores: {night_min:.1f} min   "
          f"(goal < {GOAL_NIGHT_MIN:.0f} min)")
    night_reading_min = None
    if x.neighbour_reading_cpu_s is not None:
        tiles_cpu = NIGHT_CHANGED_TILES * (x.changed_tile_cpu_s + NEIGHBOURS_PER_TILE * x.neighbour_reading_cpu_s)
        night_reading_min = (tiles_cpu / 2 + night_city_cpu + x.night_startup_cpu_s) / 60
        print(f"     if a neighbour re-ran only its neighbour-reading steps ({x.neighbour_reading_cpu_s:.0f} CPU s; "
              f"issue #16's check; today its LiDAR source changes with the halo and it is rebuilt whole): "
              f"{night_reading_min:.1f} min")
    print(f"   peak memory per process: {x.peak_mb / 1024:.2f} GB   (goal <= {GOAL_MEMORY_GB:.0f} GB)")
    print(f"   Thuringia on paper, {THURINGIA_TILES:,} tiles, Jena's building density everywhere (an upper bound:"
          f" rural tiles hold far fewer buildings): {th_tiles_cpu / 3600:,.0f} CPU h of tiles + "
          f"{th_city_cpu / 3600:,.0f} CPU h city-wide")
    print(f"     one {SERVER_CORES}-core server ({SERVER_CONCURRENT_RUNS} tile runs at once): {th_server_h:.1f} h"
          f" = {th_server_h / 24:.1f} days (city-wide steps serial: {th_city_cpu / 3600:.1f} h of it)")
    cluster = {}
    for k in CLUSTER_SERVERS:
        h = (th_tiles_cpu / (SERVER_CONCURRENT_RUNS * k) + th_city_cpu) / 3600
        cluster[k] = h
        print(f"     a cluster of {k} such servers (Celery workers, shared storage): {h:.1f} h "
              f"(tiles {th_tiles_cpu / (SERVER_CONCURRENT_RUNS * k) / 3600:.1f} h + city-wide serial)")
    return {"jena_h": jena_h, "night_min": night_min, "night_neighbour_reading_only_min": night_reading_min, "peak_gb": x.peak_mb / 1024,
            "thuringia_server_h": th_server_h, "thuringia_cluster_h": cluster,
            "tile_cpu_s": x.tile_cpu_s, "city_cpu_s": x.city_cpu_s, "buildings": x.buildings,
            "startup_cpu_s": x.startup_cpu_s, "changed_tile_cpu_s": x.changed_tile_cpu_s,
            "neighbour_cpu_s": x.neighbour_cpu_s, "night_city_cpu_s": x.night_city_cpu_s,
            "night_startup_cpu_s": x.night_startup_cpu_s}


def load_run(path: Path) -> RunResult:
    """A run as :func:`run_refresh` recorded it beside the instance (``bench_run_N.json``)."""
    d = json.loads(path.read_text(encoding="utf-8"))
    r = RunResult(d["label"], d["wall_s"], d["cpu_s"], d["peak_rss_mb"], tuple(d["load"]), returncode=d["returncode"])
    r.steps = [Step(**s) for s in d["steps"]]
    return r


def report_only(work: Path) -> int:
    """Print the report again from a kept work folder (``--keep DIR --report-only``)."""
    import pyogrio

    if not (work / "out" / "bench_run_1.json").is_file():    # --second-run-only was used
        from citymodel.samplecity.scale import load_scale_city

        r2 = load_run(work / "out" / "bench_run_2.json")
        tiles = sorted({s.tile for s in r2.steps if s.tile})
        city = load_scale_city(work / "city", len(tiles))
        run2_ids = {s.run_id for s in r2.steps}
        first = [s for s in instance_steps(str(work / "out" / "dagster_home"), 0.0, ProcessMonitor(os.getpid()))
                 if s.run_id not in run2_ids]
        second_run_report(city, first, r2, city.tile_ids[-1])
        return 0
    r1 = load_run(work / "out" / "bench_run_1.json")
    n_tiles = len({s.tile for s in r1.steps if s.tile})
    changed = sorted({s.tile for s in r1.steps if s.tile})[-1]
    buildings = pyogrio.read_info(work / "city" / "files" / "gebaeude.gpkg", layer="gebaeude")["features"]
    report_run(r1, n_tiles)
    if (work / "out" / "bench_run_2.json").is_file():
        r2 = load_run(work / "out" / "bench_run_2.json")
        report_run(r2, n_tiles)
        x = extrapolate(r1, r2, changed, buildings)
    else:
        x = night_from_first_run(r1, buildings)
        print("\n(no second run recorded: the night is estimated from the first run: a changed tile costs all of a"
              " tile's steps, a neighbour its neighbour-reading steps, and the city-wide runs that follow the tiles"
              " run again)")
    report_extrapolation(x, n_tiles)
    return 0


def night_from_first_run(r1: RunResult, n_buildings: int) -> Extrapolation:
    """The extrapolation when only the first run was measured (see :func:`report_only`)."""
    tiles = sorted({s.tile for s in r1.steps if s.tile})
    tile_cpu = r1.cpu_of(lambda s: s.tile is not None) / max(1, len(tiles))
    neighbour = r1.cpu_of(lambda s: s.tile is not None and s.neighbours_phase) / max(1, len(tiles))
    gathering = {s.run_id for s in r1.steps if s.tile is None and s.stage not in ("sources", "staging")}
    startup = max(0.0, r1.cpu_s - r1.cpu_of(lambda s: True))
    return Extrapolation(tile_cpu, r1.cpu_of(lambda s: s.tile is None), startup, tile_cpu, neighbour,
                         r1.cpu_of(lambda s: s.run_id in gathering), startup, n_buildings,
                         max(list(r1.peak_rss_mb.values()) + [0.0]), r1.wall_s / max(r1.cpu_s, 1e-9))


def second_run_only(work: Path, args) -> int:
    """The night with one changed tile on a kept folder whose first run is done but was not recorded.

    The first run's wall seconds per step come from the instance (no CPU seconds); the changed
    tile re-runs every tile step, so its CPU seconds stand for a tile from scratch.
    """
    import dagster as dg

    from citymodel.samplecity.scale import change_tile, load_scale_city

    city = load_scale_city(work / "city", args.tiles, density_m2=args.density,
                           tile_area_m=500.0 if args.quick else 1000.0)
    out_dir, cfg = work / "out", work / "citymodel.yaml"
    env = dict(os.environ, DAGSTER_HOME=str(out_dir / "dagster_home"))
    env.pop("CITYMODEL_CONFIG", None)
    env.pop("CITYMODEL_OUTPUT_DIR", None)
    first = instance_steps(env["DAGSTER_HOME"], 0.0, ProcessMonitor(os.getpid()))
    r1 = RunResult("run 1: everything from scratch (wall seconds from the instance; CPU not recorded)",
                   float("nan"), float("nan"), {}, (float("nan"),) * 3, steps=first)
    print(f"city: {city.n_buildings} buildings, {len(city.tile_ids)} tiles; first run: {len(first)} steps")
    by_stage: dict[tuple[str, str], float] = defaultdict(float)
    for s in first:
        by_stage[(s.stage, s.tile or "city")] += s.wall_s
    print("run 1 wall seconds per stage and tile (under load): " + "; ".join(
        f"{st} [{t}] {w:.0f}" for (st, t), w in sorted(by_stage.items())))
    changed = city.tile_ids[-1]
    tic = time.perf_counter()
    change_tile(city, changed)
    print(f"re-flown tile {changed}: {city.points[changed]:,} points in {time.perf_counter() - tic:.0f} s")
    r2 = run_refresh(f"run 2: a night with one changed tile ({changed})", executable(), cfg, env, time.time() - 1)
    if r2.returncode != 0:
        print(r2.stdout[-4000:])
    figures = second_run_report(city, first, r2, changed)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0 if r2.returncode == 0 else 1


def second_run_report(city, first: list[Step], r2: RunResult, changed: str) -> dict:
    """Report of :func:`second_run_only` (also from the kept ``bench_run_2.json``)."""
    report_run(r2, len(city.tile_ids))
    own = {s.step_key for s in first if s.tile == changed}
    again = {s.step_key for s in r2.steps if s.tile == changed}
    print(f"the changed tile re-ran {len(again)} of its {len(own)} steps of the first run"
          f"{'' if own <= again else ' (missing: ' + ', '.join(sorted(own - again)) + ')'}")
    tile_cpu = r2.cpu_of(lambda s: s.tile == changed)
    others = sorted({s.tile for s in r2.steps if s.tile and s.tile != changed})
    neighbour = r2.cpu_of(lambda s: s.tile is not None and s.tile != changed) / max(1, len(others))
    night_city = r2.cpu_of(lambda s: s.tile is None)
    steps_cpu, steps_wall = r2.cpu_of(lambda s: True), r2.wall_of(lambda s: True)
    ratio = steps_cpu / max(steps_wall, 1e-9)
    staging_est = ratio * sum(s.wall_s for s in first if s.tile is None and s.stage in ("sources", "staging"))
    print(f"city-wide from scratch: {night_city:.0f} CPU s of the city-wide results (measured) + about "
          f"{staging_est:.0f} CPU s of unpartitioned sources and staging (run 1's wall x run 2's CPU/wall "
          f"{ratio:.2f})")
    startup = max(0.0, r2.cpu_s - steps_cpu)
    reading = r2.cpu_of(lambda s: s.tile is not None and s.tile != changed and s.neighbours_phase) / max(1, len(others))
    x = Extrapolation(tile_cpu, night_city + staging_est, startup, tile_cpu, neighbour, night_city, startup,
                      city.n_buildings, max(list(r2.peak_rss_mb.values()) + [0.0]), r2.wall_s / max(r2.cpu_s, 1e-9),
                      reading)
    figures = report_extrapolation(x, len(city.tile_ids))
    figures.update(mode="second-run-only", run2_wall_s=r2.wall_s, run2_cpu_s=r2.cpu_s, load_run2=r2.load,
                   date=dt.date.today().isoformat(), points=city.points, tiles=len(city.tile_ids))
    return figures


# =============================================================================================
def main(argv: list[str] | None = None) -> int:
    from citymodel.samplecity.scale import DENSITY_M2, change_tile, generate_scale_city

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiles", type=int, default=2, help="number of 1 km tiles (default 2)")
    p.add_argument("--density", type=float, default=DENSITY_M2, help=f"points per m² (default {DENSITY_M2})")
    p.add_argument("--quick", action="store_true", help="500 m of each tile only (a test of the benchmark)")
    p.add_argument("--analysis", choices=("default", "sample"), default="default",
                   help="analysis settings: the documented defaults (default) or the sample city's coarser ones")
    p.add_argument("--keep", help="work folder to keep (default: a temporary folder, removed at the end); "
                                  "LiDAR files found there are reused (same parameters!), the outputs are not")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--report-only", action="store_true", help="print the report of the runs kept in --keep DIR")
    p.add_argument("--second-run-only", action="store_true",
                   help="with --keep DIR whose first run is done (but was not recorded): only the night with one "
                        "changed tile, measured; its changed tile stands for a tile built from scratch")
    args = p.parse_args(argv)
    if args.report_only:
        if not args.keep:
            p.error("--report-only needs --keep DIR")
        return report_only(Path(args.keep))
    if args.second_run_only:
        if not args.keep:
            p.error("--second-run-only needs --keep DIR")
        return second_run_only(Path(args.keep).resolve(), args)

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_city_scale_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"city-scale benchmark: {args.tiles} tile(s) at {args.density} points/m²"
              f"{' (quick: 500 m per tile)' if args.quick else ''}, analysis settings: {args.analysis}; "
              f"work folder {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        city = generate_scale_city(work / "city", args.tiles, density_m2=args.density,
                                   tile_area_m=500.0 if args.quick else 1000.0, reuse_lidar=bool(args.keep),
                                   verbose=True)
        shutil.rmtree(work / "out", ignore_errors=True)   # a kept folder: start from scratch
        print(f"generated in {time.perf_counter() - t0:.0f} s ({time.process_time() - cpu0:.0f} CPU s): "
              f"{city.n_buildings} buildings ({city.buildings_per_km2:.0f}/km²), " + ", ".join(
                  f"{t} {city.points[t] / 1e6:.1f} M points ({city.density_of(t):.1f}/m²)" for t in city.tile_ids))
        out_dir = work / "out"
        cfg = work / "citymodel.yaml"
        raw = city.deployment(out_dir, analysis=args.analysis, schema_dir=ROOT.parent / "shared" / "schemas")
        cfg.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        exe, env = executable(), fresh_environment(DAGSTER_HOME=str(out_dir / "dagster_home"))

        r1 = run_refresh("run 1: everything from scratch", exe, cfg, env, time.time() - 1)
        report_run(r1, len(city.tile_ids))
        if r1.returncode != 0:
            print(r1.stdout[-4000:])
        changed = city.tile_ids[-1]
        tic = time.perf_counter()
        change_tile(city, changed)
        print(f"\nre-flown tile {changed}: {city.points[changed]:,} points in {time.perf_counter() - tic:.0f} s")
        r2 = run_refresh(f"run 2: a night with one changed tile ({changed})", exe, cfg, env, time.time() - 1)
        report_run(r2, len(city.tile_ids))
        if r2.returncode != 0:
            print(r2.stdout[-4000:])
        x = extrapolate(r1, r2, changed, city.n_buildings)
        figures = report_extrapolation(x, len(city.tile_ids))
        figures.update(tiles=len(city.tile_ids), density_m2=args.density, quick=args.quick, analysis=args.analysis,
                       run1_wall_s=r1.wall_s, run1_cpu_s=r1.cpu_s, run2_wall_s=r2.wall_s, run2_cpu_s=r2.cpu_s,
                       load_run1=r1.load, load_run2=r2.load, date=dt.date.today().isoformat(),
                       points=city.points, buildings_per_km2=city.buildings_per_km2)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
        return 0 if r1.returncode == 0 and r2.returncode == 0 else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
