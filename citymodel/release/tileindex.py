"""The tile index of a release (``data/tile_index.geojson``): one lon/lat polygon per tile with links
to the tile's files, and a map picture of it for ``index.html``."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..tiles import Tile, parse_tile_id


def tile_index(tiles: Iterable[Tile | str], links: Mapping[str, Mapping[str, str]]
               | Callable[[Tile], Mapping[str, str]] | None = None, *, crs: str = "EPSG:25832",
               precision: int = 7, segment_m: float = 100.0) -> dict:
    """GeoJSON FeatureCollection (RFC 7946, lon/lat WGS84): one polygon per tile.

    Parameters
    ----------
    tiles : iterable of Tile or tile id
    links : mapping tile id -> {name: relative path or URL}, or callable(Tile) -> mapping
        Files of the tile, e.g. ``{"cityjsonseq": "data/tiles/32_682_5645.city.jsonl"}``;
        stored in ``properties.links``.
    crs : str
        The processing CRS of the tile grid.
    precision : int
        Decimals of lon/lat (7: about 1 cm).
    segment_m : float
        Tile edges are densified to this spacing before the transformation.
    """
    import numpy as np
    import shapely
    from pyproj import Transformer
    from shapely.geometry.polygon import orient

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    feats = []
    all_x, all_y = [], []
    for t in tiles:
        tile = parse_tile_id(t) if isinstance(t, str) else t
        minx, miny, maxx, maxy = tile.bounds
        ring = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), segment_m)
        xy = shapely.get_coordinates(ring)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        poly = orient(shapely.Polygon(np.column_stack([np.round(lon, precision), np.round(lat, precision)])), 1.0)
        all_x.extend(lon)
        all_y.extend(lat)
        if links is None:
            lk: Mapping[str, str] = {}
        elif callable(links):
            lk = links(tile)
        else:
            lk = links.get(tile.id, {})
        feats.append({
            "type": "Feature", "id": tile.id,
            "geometry": shapely.geometry.mapping(poly),
            "properties": {"tile_id": tile.id, "crs": crs, "minx": minx, "miny": miny,
                           "maxx": maxx, "maxy": maxy, "links": dict(lk)},
        })
    for f in feats:  # mapping() gives tuples; make it plain JSON lists
        f["geometry"] = json.loads(json.dumps(f["geometry"]))
    out: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
    if feats:
        out["bbox"] = [round(min(all_x), precision), round(min(all_y), precision),
                       round(max(all_x), precision), round(max(all_y), precision)]
    return out


def tile_index_png(geojson: Mapping, title: str) -> bytes:
    """A map picture of the tile index (lon/lat, aspect corrected), as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import shapely.geometry

    feats = list(geojson.get("features") or [])
    if not feats:
        raise ValueError("the tile index has no features")
    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lats = []
    for f in feats:
        g = shapely.geometry.shape(f["geometry"])
        polys = getattr(g, "geoms", [g])
        for p in polys:
            x, y = p.exterior.xy
            ax.fill(x, y, facecolor="#cfe0f1", edgecolor="#1f3b57", linewidth=1.2)
        c = g.representative_point()
        lats.append(c.y)
        label = str((f.get("properties") or {}).get("tile_id", f.get("id", "")))
        ax.text(c.x, c.y, label, ha="center", va="center", fontsize=8, color="#1f3b57")
    mean_lat = sum(lats) / len(lats)
    ax.set_aspect(1.0 / max(math.cos(math.radians(mean_lat)), 1e-6))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_title(f"{title}: {len(feats)} tiles")
    ax.ticklabel_format(useOffset=False)
    ax.grid(True, color="#dde2e8", linewidth=0.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
