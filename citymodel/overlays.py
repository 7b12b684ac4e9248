"""Ground overlays for the viewer: analysis rasters as colour-mapped PNG images in EPSG:4326.

A release (and a variant version) publishes its ground layers (sun hours, noise grid, flood depth;
a variant its differences) as ``overlays/index.json`` plus one PNG per layer::

    {"overlays": [{"name": "sun_hours_mar21", "title": {"de": ..., "en": ...}, "unit": "h",
                   "image": "sun_hours_mar21.png", "rectangle_deg": [west, south, east, north],
                   "legend": [{"from": 0, "to": 1.5, "color": "#26264d", "label": "0–1,5 h"}, ...],
                   "legend_kind": "classes", "source": "data/analysis/sun_hours.tif", "band": 1}]}

The image is the raster reprojected to EPSG:4326 (nearest neighbour, so every pixel keeps a value of
the source), coloured by :class:`citymodel.legends.ColorClasses` (the same definition the legend is
written from) and transparent where the raster has no value or the value is in no class. A viewer
drapes it on the terrain over ``rectangle_deg``.

:func:`render_overlay` is the pure core (array in, RGBA array and rectangle out);
:func:`write_overlay` reads a GeoTIFF band, renders and writes the PNG; :func:`write_overlay_index`
writes the index. The variant pipeline calls the same functions for its difference layers.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from affine import Affine

from .errors import CRSError, ConfigError, SourceDataError, dataset_error
from .fileio import atomic_write_bytes, atomic_write_text
from .legends import ColorClasses

__all__ = ["OverlayImage", "render_overlay", "write_overlay", "write_overlay_index", "png_bytes", "OVERLAY_CRS"]

DATASET = "ground overlay"
#: CRS of the published images.
OVERLAY_CRS = "EPSG:4326"
#: Largest image side (pixels); larger rasters are rendered at a coarser resolution.
MAX_SIDE_PX = 4096


@dataclass
class OverlayImage:
    """A colour-mapped overlay.

    Attributes
    ----------
    rgba : (h, w, 4) uint8
        Row 0 is the north edge.
    rectangle_deg : (west, south, east, north)
        Extent of the image in degrees (EPSG:4326).
    values : (h, w) float
        The reprojected values (NaN where none), for checks.
    """

    rgba: np.ndarray
    rectangle_deg: tuple[float, float, float, float]
    values: np.ndarray


def render_overlay(values: np.ndarray, transform: Any, crs: Any, classes: ColorClasses, *,
                   nodata: float | None = None, max_side_px: int = MAX_SIDE_PX, name: str = "overlay") -> OverlayImage:
    """Reproject a raster to EPSG:4326 and colour it by classes.

    Parameters
    ----------
    values : (rows, cols) array
        The raster (row 0 north, like a GeoTIFF).
    transform : affine.Affine
        Pixel to ``crs`` coordinates (north-up: no rotation).
    crs : str or rasterio CRS
        CRS of the raster.
    classes : ColorClasses
    nodata : float, optional
        Value meaning "no value" (besides NaN).
    max_side_px : int
        Largest side of the image; the resolution is coarsened to fit.
    name : str
        Used in error messages.

    Returns
    -------
    OverlayImage

    Raises
    ------
    CRSError
        No CRS.
    SourceDataError
        Not a 2D raster, a rotated transform.
    """
    from rasterio.crs import CRS
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, reproject, transform_bounds

    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1:
        raise dataset_error(SourceDataError, DATASET, f"values of shape {a.shape} are not a 2D raster",
                            "pass one band (rows, cols)", name)
    if crs is None or str(crs) == "":
        raise dataset_error(CRSError, DATASET, "the raster has no CRS", "write the GeoTIFF with its CRS", name)
    if abs(transform.b) > 1e-12 or abs(transform.d) > 1e-12:
        raise dataset_error(SourceDataError, DATASET, "the raster's transform is rotated",
                            "write a north-up GeoTIFF", name)
    a = a.copy()
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        a[a == nodata] = np.nan
    src_crs = CRS.from_user_input(crs)
    rows, cols = a.shape
    left, bottom, right, top = array_bounds(rows, cols, transform)
    # the rectangle holds the whole raster (edges densified); pixels about as large as the source's
    west, south, east, north = transform_bounds(src_crs, OVERLAY_CRS, left, bottom, right, top, densify_pts=21)
    if src_crs.is_geographic:
        res_x, res_y = abs(transform.a), abs(transform.e)
    else:
        m_per_deg = 111_320.0
        res_y = abs(transform.e) / m_per_deg
        res_x = abs(transform.a) / (m_per_deg * max(math.cos(math.radians((south + north) / 2)), 1e-6))
    w = max(1, int(math.ceil((east - west) / res_x - 1e-9)))
    h = max(1, int(math.ceil((north - south) / res_y - 1e-9)))
    scale = max(w, h) / max_side_px
    if scale > 1:
        w, h = max(1, int(math.ceil(w / scale))), max(1, int(math.ceil(h / scale)))
    res_x, res_y = (east - west) / w, (north - south) / h
    dst_t = Affine(res_x, 0.0, west, 0.0, -res_y, north)
    out = np.full((h, w), np.nan, dtype=np.float64)
    reproject(source=a, destination=out, src_transform=transform, src_crs=src_crs, dst_transform=dst_t,
              dst_crs=OVERLAY_CRS, resampling=Resampling.nearest, src_nodata=np.nan, dst_nodata=np.nan)
    rgba = classes.colors_of(out)
    rect = (float(dst_t.c), float(dst_t.f + h * dst_t.e), float(dst_t.c + w * dst_t.a), float(dst_t.f))
    return OverlayImage(rgba=rgba, rectangle_deg=rect, values=out)


def png_bytes(rgba: np.ndarray) -> bytes:
    """An RGBA array as PNG bytes (Pillow, optimised)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _band_index(ds, band: int | str, path: Path) -> int:
    if isinstance(band, int):
        if 1 <= band <= ds.count:
            return band
        raise dataset_error(SourceDataError, DATASET, f"band {band} does not exist ({ds.count} bands)",
                            f"give a band from 1 to {ds.count}", str(path))
    names = [d or "" for d in ds.descriptions]
    if band in names:
        return names.index(band) + 1
    raise dataset_error(SourceDataError, DATASET, f"no band described as {band!r} (bands: {names})",
                        "give a band number or one of the descriptions", str(path))


def write_overlay(src: str | Path, out_dir: str | Path, name: str, classes: ColorClasses, *,
                  band: int | str = 1, title: Mapping[str, str] | str | None = None, unit: str | None = None,
                  source: str | None = None, extras: Mapping[str, Any] | None = None,
                  max_side_px: int = MAX_SIDE_PX) -> dict:
    """Render one band of a GeoTIFF as ``out_dir/<name>.png`` and return its index entry.

    Parameters
    ----------
    src : path
        GeoTIFF (any projected or geographic CRS).
    out_dir : path
        The ``overlays/`` folder.
    name : str
        Name of the overlay (file name and id in the index; ``[a-z0-9_-]``).
    classes : ColorClasses
        Colours and legend.
    band : int or str
        Band number (1-based) or band description (e.g. ``"LrT"``).
    title : {"de", "en"} or str
    unit : str, optional
        Default: the classes' unit.
    source : str, optional
        The source's path as published (e.g. ``data/analysis/noise.tif``), recorded in the entry.
    extras : mapping, optional
        More entry fields (``day``, ``scenario``, ``method``).

    Returns
    -------
    dict
        The entry for ``overlays/index.json``.

    Raises
    ------
    SourceDataError
        The file is missing or unreadable, the band does not exist.
    ConfigError
        A name that is not a safe file name.
    """
    import rasterio

    src = Path(src)
    if not name or not all(c.isalnum() and c.isascii() or c in "_-" for c in name):
        raise dataset_error(ConfigError, DATASET, f"overlay name {name!r} is not [a-z0-9_-]",
                            "give a plain name like 'noise_lrt'", name)
    if not src.is_file():
        raise dataset_error(SourceDataError, DATASET, f"raster {src} does not exist", "materialize the layer first",
                            name)
    try:
        with rasterio.open(src) as ds:
            b = _band_index(ds, band, src)
            values = ds.read(b, masked=False).astype(np.float64)
            img = render_overlay(values, ds.transform, ds.crs, classes, nodata=ds.nodata, max_side_px=max_side_px,
                                 name=name)
    except rasterio.errors.RasterioIOError as exc:
        raise dataset_error(SourceDataError, DATASET, f"cannot read {src}: {exc}", "publish a valid GeoTIFF",
                            name) from exc
    out = Path(out_dir) / f"{name}.png"
    atomic_write_bytes(out, png_bytes(img.rgba))
    finite = img.values[np.isfinite(img.values)]
    entry = {"name": name, "title": dict(title) if isinstance(title, Mapping) else (title or name),
             "unit": classes.unit if unit is None else unit, "image": out.name,
             "rectangle_deg": [round(x, 8) for x in img.rectangle_deg], "crs": OVERLAY_CRS,
             "size_px": [int(img.rgba.shape[1]), int(img.rgba.shape[0])],
             "legend_kind": "classes", "legend": classes.legend(), "quantity": classes.quantity,
             "value_range": [float(finite.min()), float(finite.max())] if finite.size else None,
             "band": b}
    if source:
        entry["source"] = source
    if extras:
        entry.update(dict(extras))
    return entry


def write_overlay_index(out_dir: str | Path, entries: Sequence[Mapping[str, Any]],
                        extras: Mapping[str, Any] | None = None) -> Path:
    """Write ``out_dir/index.json`` (``{"schema_version": "1.0", "overlays": [...]}``)."""
    import json

    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise dataset_error(ConfigError, DATASET, f"overlay names repeat: {names}", "give each overlay its own name")
    doc = {"schema_version": "1.0", "overlays": [dict(e) for e in entries], **dict(extras or {})}
    return atomic_write_text(Path(out_dir) / "index.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
