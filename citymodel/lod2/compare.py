"""Compare reconstructed buildings with the official LoD2 and flag what changed.

Buildings are matched by id (the ALKIS id is the official model's id or external reference),
then, for the rest, by footprint overlap. Per matched pair: the difference of the highest roof
point (reconstruction minus official, metres) and the footprint overlap (intersection over union).

Statuses
--------
``unchanged``          matched; |height difference| <= ``height_tol_m`` and IoU >= ``iou_min``
``changed_height``     matched; the roof is higher or lower by more than ``height_tol_m`` (e.g. a
                       storey added)
``changed_footprint``  matched; the footprints overlap by less than ``iou_min`` (extension, rebuild)
``new``                a current footprint without an official counterpart, inside the area the
                       official model covers
``demolished``         an official building without a current footprint
``not_covered``        a current footprint outside the area the official model covers
``not_compared``       an official building whose current footprint exists but was not usable
                       (quarantined by staging), so neither "demolished" nor compared
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

STATUSES = ("unchanged", "changed_height", "changed_footprint", "new", "demolished", "not_covered",
            "not_compared")


def compare_with_official(current, official, coverage=None, *, height_tol_m: float = 1.5,
                          iou_min: float = 0.7, match_iou_min: float = 0.3,
                          excluded_ids=()) -> pd.DataFrame:
    """One row per current building and per unmatched official building.

    Parameters
    ----------
    current : GeoDataFrame
        Reconstructed buildings: ``building_id``, ``top_z_m`` (absolute height of the highest roof
        point), footprint geometry; processing CRS.
    official : GeoDataFrame
        Staged official LoD2 (``citymodel.citygml.citygml_to_frame``): ``building_id``,
        ``external_id``, ``max_z_m``, footprint geometry; same CRS.
    coverage : shapely geometry, optional
        Area the official model covers (default: the union of its footprints' convex hull).
    excluded_ids : iterable of str
        Current buildings left out upstream (quarantined): their official counterparts are
        ``not_compared`` instead of ``demolished``.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, ``official_id``, ``status``, ``height_diff_m``, ``iou``, ``matched_by``.
    """
    cur_ids = [str(v) for v in current["building_id"]]
    off_ids = [str(v) for v in official["building_id"]]
    off_ext = [str(v) if v is not None and v == v else None for v in official.get("external_id", [None] * len(official))]
    cur_geom = np.asarray(current.geometry.values)
    off_geom = np.asarray(official.geometry.values)
    if coverage is None:
        coverage = shapely.convex_hull(shapely.union_all(off_geom)) if len(off_geom) else shapely.Polygon()
    by_id = {}
    for j, (oid, ext) in enumerate(zip(off_ids, off_ext)):
        by_id.setdefault(oid, j)
        if ext:
            by_id.setdefault(ext, j)
    match: dict[int, tuple[int, str]] = {}
    used: set[int] = set()
    for i, bid in enumerate(cur_ids):
        j = by_id.get(bid)
        if j is not None and j not in used:
            match[i] = (j, "id")
            used.add(j)
    tree = shapely.STRtree(off_geom) if len(off_geom) else None
    if tree is not None:
        for i in range(len(cur_ids)):
            if i in match:
                continue
            cand = [j for j in tree.query(cur_geom[i]) if j not in used]
            best, best_iou = None, match_iou_min
            for j in cand:
                iou = _iou(cur_geom[i], off_geom[j])
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best is not None:
                match[i] = (int(best), "overlap")
                used.add(int(best))
    top = np.asarray(current["top_z_m"], dtype=float)
    off_top = np.asarray(official["max_z_m"], dtype=float)
    rows = []
    for i, bid in enumerate(cur_ids):
        if i in match:
            j, how = match[i]
            dz = float(top[i] - off_top[j])
            iou = _iou(cur_geom[i], off_geom[j])
            if np.isfinite(dz) and abs(dz) > height_tol_m:
                status = "changed_height"
            elif iou < iou_min:
                status = "changed_footprint"
            else:
                status = "unchanged"
            rows.append((bid, off_ids[j], status, round(dz, 3), round(iou, 4), how))
        else:
            inside = bool(shapely.intersects(coverage, shapely.point_on_surface(cur_geom[i])))
            rows.append((bid, None, "new" if inside else "not_covered", np.nan, np.nan, None))
    excluded = {str(e) for e in excluded_ids}
    for j, oid in enumerate(off_ids):
        if j not in used:
            gone = oid not in excluded and (off_ext[j] or "") not in excluded
            rows.append((None, oid, "demolished" if gone else "not_compared", np.nan, np.nan, None))
    return pd.DataFrame(rows, columns=["building_id", "official_id", "status", "height_diff_m", "iou", "matched_by"])


def _iou(a, b) -> float:
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def coverage_from_names(names, size_km_default: int = 2) -> shapely.Geometry | None:
    """Area covered by official LoD2 tiles named like ``LoD2_32_680_5644_2_TH`` (E, N in km, size)."""
    import re

    boxes = []
    for n in names:
        m = re.search(r"(?:^|[_-])\d{2}_(\d{3,4})_(\d{4,5})_(\d+)(?:[_.-]|$)", str(n))
        if not m:
            return None
        e, nn, size = int(m.group(1)), int(m.group(2)), int(m.group(3)) or size_km_default
        boxes.append(shapely.box(e * 1000, nn * 1000, (e + size) * 1000, (nn + size) * 1000))
    return shapely.union_all(boxes) if boxes else None
