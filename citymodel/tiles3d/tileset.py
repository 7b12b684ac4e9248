"""3D Tiles 1.1 tileset structure: regions, the quadtree above content tiles, geometric errors,
atomic writing and schema validation of ``tileset.json``.

Geometric error rule
--------------------
A leaf (its content is the full-detail model) has ``geometricError`` 0. A tile without content
whose children hold the content gets ``diagonal_m / GEOMETRIC_ERROR_DIVISOR`` (its horizontal
diagonal over 16). With a viewer's default maximum screen-space error of 16 px on a 1080 px high
screen with a 60° field of view, a tile is refined (its children loaded) when the camera is closer
than about 3.6 tile diagonals: a 1 km tile's buildings appear from about 5 km away, a 250 m
sub-tile's from about 1.3 km. The tileset's own ``geometricError`` is twice the root's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..fileio import atomic_write_bytes

__all__ = ["Region", "GEOMETRIC_ERROR_DIVISOR", "write_json_atomic", "write_bytes_atomic",
           "validate_tileset_schema", "quadtree_parents", "column_major", "tileset_document"]

GEOMETRIC_ERROR_DIVISOR = 16.0
_EARTH_R = 6378137.0


@dataclass(frozen=True)
class Region:
    """A 3D Tiles ``region``: west, south, east, north (radians), min/max ellipsoidal height (m)."""

    west: float
    south: float
    east: float
    north: float
    min_h: float
    max_h: float

    @classmethod
    def from_geodetic(cls, lon_deg: np.ndarray, lat_deg: np.ndarray, h_m: np.ndarray,
                      pad_m: float = 0.05) -> "Region":
        """The region holding all points, padded by ``pad_m`` on every side (float32 rounding)."""
        lat0 = math.radians(float(np.mean(lat_deg)))
        dlat = pad_m / _EARTH_R
        dlon = dlat / max(math.cos(lat0), 1e-6)
        return cls(math.radians(float(np.min(lon_deg))) - dlon, math.radians(float(np.min(lat_deg))) - dlat,
                   math.radians(float(np.max(lon_deg))) + dlon, math.radians(float(np.max(lat_deg))) + dlat,
                   float(np.min(h_m)) - pad_m, float(np.max(h_m)) + pad_m)

    def union(self, other: "Region") -> "Region":
        return Region(min(self.west, other.west), min(self.south, other.south), max(self.east, other.east),
                      max(self.north, other.north), min(self.min_h, other.min_h), max(self.max_h, other.max_h))

    def to_json(self) -> dict:
        return {"region": [self.west, self.south, self.east, self.north, self.min_h, self.max_h]}

    def contains(self, lon_deg: np.ndarray, lat_deg: np.ndarray, h_m: np.ndarray, tol_m: float = 0.0) -> np.ndarray:
        """Boolean mask of points inside (within ``tol_m``)."""
        t = tol_m / _EARTH_R
        lon, lat = np.radians(lon_deg), np.radians(lat_deg)
        return ((lon >= self.west - t) & (lon <= self.east + t) & (lat >= self.south - t)
                & (lat <= self.north + t) & (h_m >= self.min_h - tol_m) & (h_m <= self.max_h + tol_m))

    @property
    def diagonal_m(self) -> float:
        """Approximate horizontal diagonal (m)."""
        lat = 0.5 * (self.south + self.north)
        dx = (self.east - self.west) * _EARTH_R * math.cos(lat)
        dy = (self.north - self.south) * _EARTH_R
        return math.hypot(dx, dy)


def column_major(matrix4: np.ndarray) -> list[float]:
    """A 4x4 matrix as the column-major list 3D Tiles and glTF use."""
    return [float(v) for v in np.asarray(matrix4, dtype=float).T.reshape(-1)]


def quadtree_parents(keys: Iterable[tuple[int, int]]) -> list[tuple[int, int, int, list]]:
    """Levels of a quadtree over grid cells ``(e, n)``: ``[(level, e, n, child keys), ...]``.

    Level 1 groups 2x2 cells, level 2 groups 4x4, ... up to the level with a single node.
    Returned bottom-up; the last entry is the root.
    """
    level_keys = sorted(set(keys))
    out: list[tuple[int, int, int, list]] = []
    level = 0
    while True:
        if len(level_keys) <= 1 and level > 0:
            break
        level += 1
        groups: dict[tuple[int, int], list] = {}
        for e, n in level_keys:
            groups.setdefault((e // 2, n // 2), []).append((e, n))
        for (e, n), ch in sorted(groups.items()):
            out.append((level, e, n, ch))
        level_keys = sorted(groups)
        if len(groups) == 1:
            break
    return out


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` atomically with the project's one writer (:func:`citymodel.fileio.atomic_write_bytes`:
    readers never see half a file; the mode follows the umask, 0644 under the usual one)."""
    atomic_write_bytes(path, data)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it (readers never see half a file)."""
    write_bytes_atomic(path, json.dumps(obj, indent=1, allow_nan=False).encode("utf-8"))


def tileset_document(root: dict, *, extras: dict, schema: dict | None = None,
                     geometric_error: float | None = None) -> dict:
    """A 3D Tiles 1.1 ``tileset.json`` around ``root``."""
    doc: dict[str, Any] = {"asset": {"version": "1.1", "generator": "citymodel.tiles3d", "extras": extras},
                           "geometricError": float(geometric_error if geometric_error is not None
                                                   else 2.0 * root.get("geometricError", 0.0)),
                           "root": root}
    if schema is not None:
        doc["schema"] = schema
    return doc


def validate_tileset_schema(obj_or_path: dict | str | Path, schema_dir: str | Path) -> list[str]:
    """Validate a tileset against the official 3D Tiles 1.1 JSON schemas; returns error messages.

    ``schema_dir`` is the folder holding ``tileset.schema.json`` (draft 2020-12); every schema
    there is registered under its ``$id`` and its file name so that relative ``$ref``s resolve.
    """
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    schema_dir = Path(schema_dir).resolve()
    if isinstance(obj_or_path, (str, Path)):
        obj = json.loads(Path(obj_or_path).read_text(encoding="utf-8"))
    else:
        obj = obj_or_path
    resources = []
    for p in schema_dir.rglob("*.schema.json"):
        doc = dict(json.loads(p.read_text(encoding="utf-8")))
        doc["$id"] = p.as_uri()  # the schemas' own $ids are relative: resolve them by file location
        resources.append((p.as_uri(), Resource.from_contents(doc, default_specification=DRAFT202012)))
    registry = Registry().with_resources(resources)
    root = registry.contents((schema_dir / "tileset.schema.json").as_uri())
    validator = jsonschema.Draft202012Validator(root, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
