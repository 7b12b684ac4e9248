"""The deployment settings an asset reads, in its Dagster code version.

A changed setting must rebuild exactly the assets that read it (and what depends on them), as a
changed algorithm does: so each asset's code version is its own version plus a digest of the values
of the settings it reads (``"2+cfg-3f9a0c1be2"``). Dagster records the code version with every
materialization; the refresh planner (and Dagster's own "code version changed" status in the UI)
then sees the difference. A new column mapping for the trees rebuilds ``staging/trees`` and what it
feeds; a new noise grid spacing rebuilds ``analysis/noise``, not the LoD2 buildings.

:data:`READS` names, per asset, the settings (dotted paths into the deployment file) it reads;
:data:`NO_REBUILD` the settings that change no published result (where to download from, when to
run, how many runs at once, how long to keep old releases). Every setting is in one of the two:
``tests/test_settings_versions.py`` walks the whole configuration model, so a new setting must be
placed before it can be released.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import dagster as dg

from citymodel.config import Settings

#: what every asset that writes geometry or a named product reads
MODEL = ("name", "title", "processing_crs", "vertical_crs")
#: where the sun is: the site (from the extent), time zone and year
SITE = ("extent", "processing_crs", "timezone", "analysis.year")
#: the 3D scene an analysis casts rays or sound through
SCENE = ("analysis.scene_margin_m", "analysis.terrain_cell_m", "analysis.crown_transmissivity",
         "analysis.storey_height_m")
_VECTOR_QUALITY = ("quality.max_quarantine_share", "quality.blocking")
_ROLE_QUALITY = {"buildings": ("quality.storeys_max", "quality.min_footprint_area_m2"),
                 "trees": ("quality.tree_height_max_m",)}
_LIDAR = ("sources.lidar", "lidar", "quality.max_file_bytes.lidar", "processing_crs",
          "vertical_crs")


def _vector(role: str) -> tuple[str, ...]:
    """What the staging of a vector role reads: its source's mapping, its limits, the extent."""
    return (f"sources.{role}", f"quality.max_features.{role}", f"quality.max_file_bytes.{role}", *_VECTOR_QUALITY,
            *_ROLE_QUALITY.get(role, ()), "extent", "processing_crs", "vertical_crs")


READS: dict[str, tuple[str, ...]] = {
    **{f"staging/{role}": _vector(role)
       for role in ("buildings", "trees", "roads", "flood_zones", "viewpoints", "lod2_reference")},
    "staging/weather": ("sources.weather", *SITE),
    "staging/point_cloud": _LIDAR,
    "staging/dtm": _LIDAR,
    "buildings/lod2": ("quality.max_fallback_share", *MODEL),
    "buildings/model": MODEL,
    "analysis/sun_hours": ("analysis.sun", *SCENE, *SITE),
    "analysis/solar": ("analysis.solar", "sources.weather.dataset", *SCENE, *SITE),
    "analysis/noise": ("analysis.noise", *SCENE, "processing_crs"),
    "analysis/traffic_change": ("analysis.traffic_change", "analysis.noise", *SCENE, "processing_crs"),
    "analysis/flood": ("analysis.flood", "analysis.noise.building_height", "analysis.storey_height_m",
                       "processing_crs"),
    "analysis/sightlines": ("analysis.sightlines", *SCENE, "processing_crs"),
    "analysis/building_values": ("analysis.sun", "analysis.traffic_change", "analysis.flood"),
    "publish/pointcloud_tiles": ("publish.pointcloud_tiler", "lidar.chunk_points", *MODEL),
    "publish/building_tiles": MODEL,
    "publish/tree_tiles": MODEL,
    "publish/analysis_tiles": (*MODEL, "analysis.sun"),
    "publish/release": ("publish", "viewer", "analysis", *MODEL, *SITE),
    "quality/report": ("name", "title"),
    # the intake validates a variant against the limits and the extent; the assessment analyses it
    # as the city is analysed
    "variants/catalog_submissions": ("variants", "sources.variants", "extent", "processing_crs"),
    **{f"variants/{a}": ("variants", "analysis", *MODEL, *SITE)
       for a in ("model", "analysis", "comparison", "tiles", "publication")},
}

#: settings that change no published result (component-wise prefixes)
NO_REBUILD = (
    "catalog",                     # where and how to download: the data itself is fingerprinted
    "schedule", "orchestration", "refresh",   # when, how many at once, how long to wait for another
    "output_dir", "quality.schema_dir", "publish.keep_releases", "publish.min_free_mb",
    "variants.inbox_dir", "variants.inbox_settle_s",
    "tile_size_m", "tile_prefix",  # the tile set: new tiles are new partitions
)
#: settings whose sources are fingerprinted per dataset: the dataset name and whether it is
#: required change what is downloaded (its data version), not how it is processed
_SOURCE_KEYS_NO_REBUILD = ("dataset", "required")


def _covered(path: str, prefixes: Iterable[str]) -> bool:
    parts = path.split(".")
    return any(parts[:len(p.split("."))] == p.split(".") for p in prefixes)


def _no_rebuild(path: str) -> bool:
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "sources" and parts[2] in _SOURCE_KEYS_NO_REBUILD:
        return True
    return _covered(path, NO_REBUILD)


def _value(doc: dict, path: str):
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _prune(value, path: str):
    """``value`` (at ``path``) without the settings of :data:`NO_REBUILD` below it."""
    if isinstance(value, dict):
        return {k: _prune(v, f"{path}.{k}") for k, v in sorted(value.items()) if not _no_rebuild(f"{path}.{k}")}
    return value


def settings_values(settings: Settings, paths: Sequence[str]) -> dict:
    """The values of ``paths`` in the deployment (JSON), less what changes no result."""
    doc = settings.model_dump(mode="json")
    return {p: _prune(_value(doc, p), p) for p in sorted(set(paths))}


def settings_digest(settings: Settings, paths: Sequence[str]) -> str:
    """A short digest of :func:`settings_values` (10 hex digits)."""
    text = json.dumps(settings_values(settings, paths), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


SUFFIX = "+cfg-"


def versioned(code_version: str | None, settings: Settings, key: str) -> str | None:
    """``code_version`` of asset ``key`` with the digest of the settings it reads."""
    paths = READS.get(key)
    if not paths:
        return code_version
    return f"{code_version or '0'}{SUFFIX}{settings_digest(settings, paths)}"


def only_settings_changed(old: str | None, new: str | None) -> bool:
    """True when two code versions differ only in their settings digest."""
    if not old or not new or SUFFIX not in old or SUFFIX not in new:
        return False
    return old.split(SUFFIX)[0] == new.split(SUFFIX)[0] and old != new


def with_settings_versions(assets: list, settings: Settings | None) -> list:
    """The assets with the settings digest in their code versions (unchanged without settings)."""
    if settings is None:
        return assets

    def spec(s: dg.AssetSpec) -> dg.AssetSpec:
        key = s.key.to_user_string()
        return s.replace_attributes(code_version=versioned(s.code_version, settings, key)) if key in READS else s

    out = []
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and a.is_executable and any(
                k.to_user_string() in READS for k in a.keys):
            a = a.map_asset_specs(spec)
        out.append(a)
    return out
