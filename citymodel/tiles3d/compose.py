"""A root tileset over per-tile tilesets (external tilesets as content, allowed in 3D Tiles 1.1)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_write_text


def _corners(volume: dict) -> np.ndarray | None:
    if "box" in volume:
        b = np.asarray(volume["box"], dtype=float)
        c, axes = b[:3], b[3:].reshape(3, 3)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        return c + signs @ axes
    return None


def compose_tilesets(children: Sequence[Path], out_path: Path, *, geometric_error: float | None = None,
                     extras: dict | None = None) -> Path:
    """Write ``out_path`` (tileset.json) whose root refines to each child tileset.

    Children's root bounding volumes must be boxes or regions; the root takes a region enclosing
    all regions, or an axis-aligned ECEF box enclosing all boxes. Child URIs are relative.
    """
    out_path = Path(out_path)
    kids, regions, corners, errors = [], [], [], []
    for c in children:
        ts = json.loads(Path(c).read_text(encoding="utf-8"))
        root = ts["root"]
        vol = root["boundingVolume"]
        rel = os.path.relpath(c, out_path.parent).replace(os.sep, "/")
        transform = root.get("transform")
        if "region" in vol:
            regions.append(vol["region"])
        elif "box" in vol:
            k = _corners(vol)
            if transform is not None:
                m = np.asarray(transform, dtype=float).reshape(4, 4).T
                k = (np.c_[k, np.ones(len(k))] @ m.T)[:, :3]
            corners.append(k)
        else:
            raise ValueError(f"{c}: root bounding volume {list(vol)} is not a box or region")
        errors.append(float(ts.get("geometricError", root.get("geometricError", 0.0))))
        if transform is not None and "box" in vol:
            # the external tileset applies its own root transform: give the parent tile the box in
            # the outer (ECEF) frame and no transform, so it is not applied twice
            m = np.asarray(transform, dtype=float).reshape(4, 4).T
            b = np.asarray(vol["box"], dtype=float)
            centre = m[:3, :3] @ b[:3] + m[:3, 3]
            axes = (m[:3, :3] @ b[3:].reshape(3, 3).T).T
            vol = {"box": [*centre.tolist(), *axes.reshape(-1).tolist()]}
        kids.append({"boundingVolume": vol, "geometricError": errors[-1], "content": {"uri": rel}})
    if regions and corners:
        raise ValueError("children mix region and box bounding volumes")
    if regions:
        r = np.asarray(regions, dtype=float)
        volume = {"region": [r[:, 0].min(), r[:, 1].min(), r[:, 2].max(), r[:, 3].max(),
                             r[:, 4].min(), r[:, 5].max()]}
    elif corners:
        allc = np.concatenate(corners)
        lo, hi = allc.min(axis=0), allc.max(axis=0)
        c, h = (lo + hi) / 2, (hi - lo) / 2
        volume = {"box": [*c, h[0], 0, 0, 0, h[1], 0, 0, 0, h[2]]}
    else:
        raise ValueError("no child tilesets")
    ge = geometric_error if geometric_error is not None else max(errors + [0.0]) * 2 or 500.0
    doc = {"asset": {"version": "1.1", **({"extras": extras} if extras else {})}, "geometricError": ge,
           "root": {"boundingVolume": volume, "geometricError": ge, "refine": "ADD", "children": kids}}
    atomic_write_text(out_path, json.dumps(doc, indent=1))
    return out_path
