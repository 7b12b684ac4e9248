"""Which catalog distributions feed which asset: the link between the source contract and tiles.

LiDAR is published per 1 km tile (Thuringia: ``las_32_{E}_{N}_1_th.laz``, E and N in km). A tile
is staged from its own file and, for the halo, its neighbours. Distributions whose names carry no
tile numbers (e.g. the Delft crops) all feed every tile; staging then picks files by their header
bounds.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from .catalog import Dataset, Distribution, fingerprint, local_name, select_distributions
from .tiles import Tile

_TILE_IN_NAME = re.compile(r"(?:^|[_-])(?:\d{2}_)?(\d{3,4})_(\d{4,5})(?:_\d+)?(?:[_.-]|$)")


def tile_numbers_in_name(name: str) -> tuple[int, int] | None:
    """(E km, N km) named in a LiDAR file name such as ``las_32_682_5645_1_th.laz``, else None."""
    m = _TILE_IN_NAME.search(name.lower())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def lidar_distributions_for_tile(dataset: Dataset, tile: Tile, halo_m: float) -> list[Distribution]:
    """The LiDAR distributions needed for ``tile`` plus its halo."""
    dists = select_distributions(dataset, "lidar")
    named = [(d, tile_numbers_in_name(local_name(d))) for d in dists]
    if not all(n is not None for _, n in named):
        return dists
    minx, miny, maxx, maxy = tile.bounds_with_halo(halo_m)
    out = []
    for d, (e, n) in named:  # type: ignore[misc]
        x0, y0 = e * 1000.0, n * 1000.0
        if x0 < maxx and x0 + 1000.0 > minx and y0 < maxy and y0 + 1000.0 > miny:
            out.append(d)
    return out


def distributions_fingerprint(dists: list[Distribution]) -> str:
    """Fingerprint of a set of distributions (same rule as :func:`citymodel.catalog.fingerprint`)."""
    return fingerprint(Dataset(identifier="_", title="_", distributions=list(dists)))


@dataclass(frozen=True)
class SourceVersion:
    """What the refresh compares: the fingerprint of what a source asset would download."""

    role: str
    dataset: str
    tile: str | None
    fingerprint: str


def source_version(dataset: Dataset, role: str, tile: Tile | None = None,
                   halo_m: float = 0.0) -> SourceVersion:
    if role == "lidar" and tile is not None:
        fp = distributions_fingerprint(lidar_distributions_for_tile(dataset, tile, halo_m))
    else:
        fp = fingerprint(dataset)
    return SourceVersion(role, dataset.identifier, tile.id if tile else None, fp)


def not_configured_version(role: str) -> str:
    return hashlib.sha256(json.dumps(["not configured", role]).encode()).hexdigest()
