"""A city's (or a tile's) reconstructed buildings summarised for the UI and the quality report.

The truth-free measure is the distance between each building's points and its roof
(``point_to_roof_median_m``, ``point_to_roof_p90_m`` per building, see
:func:`citymodel.lod2.build.point_roof_distances`): on real data there is no ground truth, but a
roof far from its own points is wrong whatever the reason (a missed roof part, a roof at a low
patch, a neighbour's points, trees). Its summary is the median over buildings of their medians,
and the median and 90th percentile over buildings of their 90th percentiles, with the buildings
whose points lie farthest from their roofs listed first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FAR_FROM_ROOF_M", "quality_summary"]

#: a building whose points' 90th-percentile distance to its roof exceeds this is listed as far off
FAR_FROM_ROOF_M = 1.0


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _r(v, nd: int = 3):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), nd)


def quality_summary(table: pd.DataFrame, worst: int = 10) -> dict[str, Any]:
    """Summary of a table of :meth:`BuildingResult.attributes` rows (JSON-ready).

    Parameters
    ----------
    table : DataFrame
        One row per building (the tile or city attribute table); ``validity_codes`` may be a list
        or its string form.
    worst : int
        How many of the buildings farthest from their roofs are listed.

    Returns
    -------
    dict
        ``buildings``, ``methods`` (counts), ``valid_share``, ``lod1_fallback_share``,
        ``height_sources`` of the LoD1 blocks (counts), ``roof_types`` (counts), ``slender``
        (towers, masts), ``point_to_roof`` (``buildings`` measured, ``median_of_medians_m``,
        ``median_p90_m``, ``p90_p90_m``, ``far_share`` and ``far_threshold_m``, ``farthest``: id,
        p90, method, roof type).
    """
    n = int(len(table))
    out: dict[str, Any] = {"buildings": n}
    if n == 0:
        return out
    method = table.get("method", pd.Series(["?"] * n)).astype(str)
    built = method != "rejected"
    codes = table.get("validity_codes", pd.Series([""] * n))
    valid = codes.map(lambda c: len(c) == 0 if isinstance(c, (list, tuple, np.ndarray))
                      else str(c).strip("[] ") == "")
    out["methods"] = {str(k): int(v) for k, v in method.value_counts().items()}
    out["valid_share"] = _r(float(valid[built].mean()) if built.any() else 1.0, 4)
    lod1 = method == "lod1_fallback"
    out["lod1_fallback_share"] = _r(float(lod1[built].mean()) if built.any() else 0.0, 4)
    if "height_source" in table:
        src = table.loc[lod1, "height_source"].fillna("").astype(str)
        out["height_sources"] = {str(k) or "(none)": int(v) for k, v in src.value_counts().items()}
    if "roofType" in table:
        rt = _num(table.loc[built, "roofType"]).dropna().astype(int)
        out["roof_types"] = {str(k): int(v) for k, v in rt.value_counts().sort_index().items()}
    if "structure" in table:
        out["slender"] = int((table["structure"].fillna("").astype(str) == "slender").sum())
    if "point_to_roof_p90_m" in table:
        med = _num(table["point_to_roof_median_m"])
        p90 = _num(table["point_to_roof_p90_m"])
        ok = np.isfinite(med.to_numpy(float)) & np.isfinite(p90.to_numpy(float))
        d = {"buildings": int(ok.sum()), "far_threshold_m": FAR_FROM_ROOF_M}
        if ok.any():
            d.update(median_of_medians_m=_r(float(np.median(med[ok]))), median_p90_m=_r(float(np.median(p90[ok]))),
                     p90_p90_m=_r(float(np.percentile(p90[ok], 90))),
                     far_share=_r(float((p90[ok] > FAR_FROM_ROOF_M).mean()), 4))
            order = np.argsort(-p90.to_numpy(float)[ok], kind="stable")[:worst]
            rows = table[ok].iloc[order]
            d["farthest"] = [{"building_id": str(r.get("building_id")), "p90_m": _r(r.get("point_to_roof_p90_m")),
                              "median_m": _r(r.get("point_to_roof_median_m")), "method": r.get("method"),
                              "roofType": None if pd.isna(r.get("roofType")) else int(r.get("roofType"))}
                             for r in rows.to_dict("records")]
        out["point_to_roof"] = d
    return out
