"""The fixed 1 km tile grid of the processing CRS.

Tiles are aligned to the state LiDAR tiles (Thuringia: ``las_32_{E}_{N}_1_th`` with E, N in km,
EPSG:25832). A tile id is ``{prefix}_{E_km}_{N_km}`` (``32_682_5645``), or ``{E_km}_{N_km}`` when
the prefix is empty. The tile set is derived from the configured extent, never from data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, order=True)
class Tile:
    """One grid tile; ``e_km``/``n_km`` are the lower-left corner in km."""

    e_km: int
    n_km: int
    size_m: float = 1000.0
    prefix: str = "32"

    @property
    def id(self) -> str:
        base = f"{self.e_km}_{self.n_km}"
        return f"{self.prefix}_{base}" if self.prefix else base

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the processing CRS, metres."""
        x0 = self.e_km * 1000.0
        y0 = self.n_km * 1000.0
        return (x0, y0, x0 + self.size_m, y0 + self.size_m)

    def bounds_with_halo(self, halo_m: float) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = self.bounds
        return (minx - halo_m, miny - halo_m, maxx + halo_m, maxy + halo_m)

    @property
    def lidar_name(self) -> str:
        """Thuringian LiDAR file stem of this tile, e.g. ``las_32_682_5645_1_th``."""
        return f"las_{self.id}_1_th"


_TILE_RE = re.compile(r"^(?:(?P<prefix>[A-Za-z0-9]+)_)?(?P<e>-?\d+)_(?P<n>-?\d+)$")


def parse_tile_id(tile_id: str, size_m: float = 1000.0) -> Tile:
    m = _TILE_RE.match(tile_id)
    if not m:
        raise ConfigError(f"'{tile_id}' is not a tile id. Fix: use the form 32_682_5645 (prefix_Ekm_Nkm)")
    return Tile(int(m["e"]), int(m["n"]), size_m, m["prefix"] or "")


def tiles_for_extent(extent: tuple[float, float, float, float], size_m: float = 1000.0,
                     prefix: str = "32") -> list[Tile]:
    """All tiles that intersect ``extent`` (minx, miny, maxx, maxy), sorted by id."""
    minx, miny, maxx, maxy = extent
    if not (maxx > minx and maxy > miny):
        raise ConfigError(f"extent {extent} is empty. Fix: set extent to [minx, miny, maxx, maxy] with max > min")
    if size_m != 1000.0:
        raise ConfigError("only 1 km tiles are supported (tile ids are in km). Fix: set tile_size_m: 1000")
    step = size_m
    e0 = math.floor(minx / step)
    n0 = math.floor(miny / step)
    e1 = math.ceil(maxx / step)
    n1 = math.ceil(maxy / step)
    return sorted(Tile(e, n, size_m, prefix) for e in range(e0, e1) for n in range(n0, n1))


def tile_of_point(x: float, y: float, size_m: float = 1000.0, prefix: str = "32") -> Tile:
    return Tile(math.floor(x / size_m), math.floor(y / size_m), size_m, prefix)
