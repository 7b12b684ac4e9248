"""Compact JSON of 3D solids: several solids sharing one vertex list, surfaces as index rings.

The ``surfaces_json`` column of :func:`citymodel.citygml.citygml_to_frame` holds this form, so a
staged table keeps the buildings' 3D surfaces in one text column (:func:`solids_to_json`,
:func:`solids_from_json`).
"""

from __future__ import annotations

import json

import numpy as np

from citymodel.geometry3d import Solid, Surface


def solids_to_json(solids: list[tuple[str, Solid]], decimals: int = 3) -> str:
    """CityJSON-like JSON of several solids sharing one vertex list.

    ``{"vertices": [[x, y, z], ...], "solids": [{"id", "lod", "surfaces": [{"type", "rings":
    [[i, ...], ...]}]}]}``; coordinates rounded to ``decimals``.
    """
    lookup: dict[tuple[float, float, float], int] = {}
    vertices: list[list[float]] = []
    out_solids = []
    for sid, solid in solids:
        verts, polys, kinds = solid.indexed(decimals)
        remap = np.empty(len(verts), dtype=int)
        for i, v in enumerate(map(tuple, verts.tolist())):
            j = lookup.get(v)
            if j is None:
                j = lookup[v] = len(vertices)
                vertices.append(list(v))
            remap[i] = j
        out_solids.append({"id": sid, "lod": solid.lod, "surfaces": [
            {"type": k, "rings": [remap[r].tolist() for r in poly]} for poly, k in zip(polys, kinds)]})
    return json.dumps({"vertices": vertices, "solids": out_solids}, separators=(",", ":"))


def solids_from_json(text: str) -> list[tuple[str, Solid]]:
    """Inverse of :func:`solids_to_json`: ``[(id, Solid), ...]``."""
    data = json.loads(text)
    verts = np.asarray(data["vertices"], dtype=float).reshape(-1, 3)
    return [(s["id"], Solid([Surface(f["type"], [verts[np.asarray(r, dtype=int)] for r in f["rings"]])
                             for f in s["surfaces"]], lod=s.get("lod", 2)))
            for s in data["solids"]]
