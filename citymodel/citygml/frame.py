"""Buildings read from CityGML as a GeoDataFrame of footprints (:func:`citygml_to_frame`).

One row per building with its attributes and heights, the 3D surfaces of the building and its
parts as compact JSON (:mod:`citymodel.citygml.solids_json`) and the 2D footprint as geometry,
transformed into one target CRS where the files differ.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable

import numpy as np

from citymodel.geometry3d import Solid

from .reader import CityGMLBuilding
from .solids_json import solids_to_json


def _transform_building(b: CityGMLBuilding, transformer: Any) -> None:
    import shapely

    def tr(solid: Solid | None) -> None:
        if solid is None:
            return
        rings = [r for s in solid.surfaces for r in s.rings]
        pts = np.concatenate(rings, axis=0)
        x, y = transformer.transform(pts[:, 0], pts[:, 1])
        new = np.column_stack([x, y, pts[:, 2]])
        k = 0
        for s in solid.surfaces:
            for i, r in enumerate(s.rings):
                s.rings[i] = new[k:k + len(r)]
                k += len(r)

    tr(b.solid)
    if b.footprint is not None:
        b.footprint = shapely.transform(b.footprint, lambda xy: np.column_stack(
            transformer.transform(xy[:, 0], xy[:, 1])))
    for p in b.parts:
        _transform_building(p, transformer)


@lru_cache(maxsize=64)
def _same_crs(a: str, b: str) -> bool:
    import pyproj

    return pyproj.CRS(a) == pyproj.CRS(b)


def citygml_to_frame(buildings: Iterable[CityGMLBuilding], crs: str | None = None):
    """Buildings as a GeoDataFrame of footprints with attributes and 3D surfaces.

    Parameters
    ----------
    buildings
        Output of :func:`read_citygml`.
    crs
        Target CRS; buildings in another horizontal CRS are transformed (x, y with
        ``always_xy=True``; heights kept as they are). Default: the buildings' own CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building: ``building_id, external_id, function_code, roof_type, storeys,
        measured_height_m, ground_height_m, max_z_m, eave_z_m, n_parts, creation_date,
        attributes_json, surfaces_json`` (see :func:`solids_to_json`), ``vertical_crs, reason,
        source_file`` and the footprint as geometry.
    """
    import geopandas as gpd
    import pyproj

    buildings = list(buildings)
    target = crs or next((b.crs for b in buildings if b.crs), None)
    transformers: dict[str, Any] = {}
    rows = []
    geoms = []
    for b in buildings:
        if target and b.crs and not _same_crs(b.crs, target):
            t = transformers.get(b.crs)
            if t is None:
                t = transformers[b.crs] = pyproj.Transformer.from_crs(b.crs, target, always_xy=True)
            _transform_building(b, t)
            b.crs = target
        solids = b.all_solids()
        rows.append({
            "building_id": b.building_id,
            "external_id": b.external_id,
            "function_code": b.function,
            "roof_type": b.roof_type,
            "storeys": b.storeys,
            "measured_height_m": b.measured_height_m,
            "ground_height_m": b.ground_height_m,
            "max_z_m": b.max_z_m,
            "eave_z_m": b.eave_z_m,
            "n_parts": len(b.parts),
            "creation_date": b.creation_date,
            "attributes_json": json.dumps(b.attributes, ensure_ascii=False, sort_keys=True),
            "surfaces_json": solids_to_json(solids) if solids else None,
            "vertical_crs": b.vertical_crs,
            "reason": b.reason,
            "source_file": b.source_file,
        })
        geoms.append(b.footprint)
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=target)
    if len(frame):
        frame["storeys"] = frame["storeys"].astype("Int64")
        for col in ("measured_height_m", "ground_height_m", "max_z_m", "eave_z_m"):
            frame[col] = frame[col].astype(float)
    return frame
