"""Which assets (and tiles) must be rebuilt: the logic behind the nightly schedule and `citymodel run`.

An asset partition is rebuilt when
- its source changed: the catalog's fingerprint of the dataset (per tile for LiDAR: of the
  distributions that feed the tile) differs from the data version recorded at its last download;
- it was never materialized (new asset, new tile);
- its last attempt failed (the latest run that selected it did not materialize it: its step failed or
  was skipped), even when nothing else changed since (e.g. a configuration error that was fixed);
- its code version differs from the one of its last materialization (a changed algorithm);
- or anything upstream of it is rebuilt in the same refresh.
Nothing else runs, so a night without source changes costs one catalog read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import dagster as dg

from .run_state import last_attempt_failed, latest_materialization
from .settings_versions import READS, only_settings_changed

SOURCE_PREFIX = "sources"
VARIANT_GROUP = "variants"
#: tag of the one asset of the variants group that belongs to the city's refresh: the intake of the
#: catalog's variant files (it validates and stores them; the assessment stays outside the refresh)
CITY_INTAKE_TAG = "citymodel/city_intake"
#: tag of tile assets that read their neighbour tiles' upstream results (shading, noise screening)
NEIGHBOUR_TAG = "citymodel/reads_neighbour_tiles"


def _neighbours(tile_id: str, tile_ids: list[str]) -> list[str]:
    """The tiles of ``tile_ids`` that touch ``tile_id`` (8-neighbourhood, itself excluded)."""
    from citymodel.tiles import parse_tile_id

    t = parse_tile_id(tile_id)
    out = []
    for other in tile_ids:
        o = parse_tile_id(other)
        if other != tile_id and abs(o.e_km - t.e_km) <= 1 and abs(o.n_km - t.n_km) <= 1:
            out.append(other)
    return out


@dataclass
class RunSpec:
    """One run of the refresh: asset keys and the tile (None for unpartitioned assets)."""

    asset_keys: list[dg.AssetKey]
    partition_key: str | None = None
    reason: str = ""
    gathers_tiles: bool = False  # unpartitioned assets downstream of tiles (report, release, ...)
    #: runs of the same wave are independent of each other (they may run at once); a wave starts
    #: when the previous one is done: 0 unpartitioned sources and staging, 1 tiles, 2 tile assets that
    #: read neighbour tiles, 3 city-wide results
    wave: int = 0

    @property
    def label(self) -> str:
        keys = ", ".join(k.to_user_string() for k in self.asset_keys)
        return f"[{self.partition_key or '-'}] {keys}"


@dataclass
class RefreshPlan:
    runs: list[RunSpec] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.runs

    def why(self, run: RunSpec) -> dict[str, list[str]]:
        """Why ``run`` is requested: reason -> the asset keys of the run it holds for."""
        out: dict[str, list[str]] = {}
        for k in run.asset_keys:
            name = k.to_user_string()
            reason = self.reasons.get(f"{name}[{run.partition_key or '-'}]", "requested with its run")
            out.setdefault(reason, []).append(name)
        return out

    def summary(self, reasons: bool = True) -> str:
        """One line per run; with ``reasons``, below it why each of its assets is rebuilt."""
        if self.empty:
            return "nothing changed: no run needed"
        lines = []
        for r in self.runs:
            lines.append(r.label)
            if reasons:
                for why, names in self.why(r).items():
                    lines.append(f"    why: {why}: {', '.join(names)}")
        return "\n".join(lines)


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> tuple[dict, int] | None:
    """Tags and storage id (a global, increasing event number) of the latest materialization."""
    m = latest_materialization(instance, key, partition)
    return None if m is None else (m.tags, m.storage_id)


def _upstream_newer(asset_graph, latest, key, part, storage_id, tile_ids, partitioned) -> bool:
    for parent in asset_graph.get(key).parent_keys:
        if parent not in asset_graph.materializable_asset_keys:
            continue
        if parent in partitioned:
            parts = [part] if part is not None else list(tile_ids)
        else:
            parts = [None]
        for p in parts:
            found = latest.get((parent, p))
            if found is not None and found[1] > storage_id:
                return True
    return False


def plan_refresh(instance: dg.DagsterInstance, asset_graph, tile_ids: Iterable[str],
                 source_fingerprints: Callable[[dg.AssetKey, str | None], str | None],
                 force: bool = False) -> RefreshPlan:
    """Plan the runs of one refresh.

    Parameters
    ----------
    asset_graph
        ``Definitions.resolve_asset_graph()``.
    source_fingerprints
        ``(source asset key, tile or None) -> fingerprint`` from the catalog (None: not configured,
        treated as a constant).
    force
        Rebuild everything.
    """
    tile_ids = list(tile_ids)
    # the planning variants are not part of the city's refresh (they are assessed on their own); only
    # the intake of the catalog's variant files is (it reads the catalog like every source)
    keys = sorted((k for k in asset_graph.materializable_asset_keys
                   if asset_graph.get(k).group_name != VARIANT_GROUP
                   or (asset_graph.get(k).tags or {}).get(CITY_INTAKE_TAG) == "true"),
                  key=lambda k: k.to_user_string())
    key_set = set(keys)
    partitioned = {k for k in keys if asset_graph.get(k).partitions_def is not None}
    plan = RefreshPlan()

    # 1. dirty (asset, partition) pairs on their own account
    dirty: set[tuple[dg.AssetKey, str | None]] = set()
    latest: dict[tuple[dg.AssetKey, str | None], tuple[dict, int] | None] = {}
    for key in keys:
        for part in (list(tile_ids) if key in partitioned else [None]):
            latest[(key, part)] = None if force else _latest(instance, key, part)
    for key in keys:
        node = asset_graph.get(key)
        parts: list[str | None] = list(tile_ids) if key in partitioned else [None]
        for part in parts:
            found = latest[(key, part)]
            tags = found[0] if found else None
            why = None
            if force:
                why = "forced"
            elif tags is None:
                why = "never materialized"
            elif _upstream_newer(asset_graph, latest, key, part, found[1], tile_ids, partitioned):
                why = "an upstream asset was materialized after it (e.g. an earlier run failed here)"
            elif last_attempt_failed(instance, key, part, found[1]):
                why = "its last attempt failed"
            elif node.code_version is not None and tags.get("dagster/code_version") != node.code_version:
                was = tags.get("dagster/code_version")
                if only_settings_changed(was, node.code_version):
                    why = f"deployment settings it reads changed (one of {', '.join(READS[key.to_user_string()])})"
                else:
                    why = f"code version {was} -> {node.code_version}"
            elif key.path[0] == SOURCE_PREFIX:
                fp = source_fingerprints(key, part)
                if fp is not None and tags.get("dagster/data_version") != fp:
                    why = "source changed"
            if why:
                dirty.add((key, part))
                plan.reasons[f"{key.to_user_string()}[{part or '-'}]"] = why

    # 2. propagate downstream (a tile feeds the same tile, and its neighbours where the child reads
    #    neighbour tiles; unpartitioned feeds every tile)
    readers = {k for k in keys if (asset_graph.get(k).tags or {}).get(NEIGHBOUR_TAG) == "true"}
    frontier = list(dirty)
    while frontier:
        key, part = frontier.pop()
        for child in asset_graph.get(key).child_keys:
            if child not in key_set:  # not materializable, or a variant asset outside the city's refresh
                continue
            if child in partitioned:
                targets = [part] if part is not None else list(tile_ids)
                if part is not None and child in readers:
                    targets += _neighbours(part, tile_ids)
            else:
                targets = [None]
            for t in targets:
                if (child, t) not in dirty:
                    dirty.add((child, t))
                    plan.reasons.setdefault(f"{child.to_user_string()}[{t or '-'}]",
                                            f"upstream {key.to_user_string()} rebuilt")
                    frontier.append((child, t))

    # 3. order: unpartitioned assets upstream of every partitioned one, then per tile, then the rest
    down_of_partitioned: set[dg.AssetKey] = set()
    stack = list(partitioned)
    while stack:
        k = stack.pop()
        for c in asset_graph.get(k).child_keys:
            if c not in down_of_partitioned and c not in partitioned:
                down_of_partitioned.add(c)
                stack.append(c)
    first = sorted({k for k, p in dirty if p is None and k not in down_of_partitioned},
                   key=lambda k: k.to_user_string())
    last = sorted({k for k, p in dirty if p is None and k in down_of_partitioned},
                  key=lambda k: k.to_user_string())
    if first:
        plan.runs.append(RunSpec(first, None, "unpartitioned sources and staging", wave=0))
    # tile assets that read neighbour tiles run after every tile's own assets are done
    for wave, phase, wanted in ((1, "tile", lambda k: k not in readers),
                                (2, "tile (reads neighbours)", lambda k: k in readers)):
        for t in tile_ids:
            tile_keys = sorted({k for k, p in dirty if p == t and wanted(k)}, key=lambda k: k.to_user_string())
            if tile_keys:
                plan.runs.append(RunSpec(tile_keys, t, f"{phase} {t}", wave=wave))
    if last:
        plan.runs.append(RunSpec(last, None, "city-wide results", gathers_tiles=True, wave=3))
    return plan
