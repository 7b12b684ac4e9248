"""Traffic change -> noise change (RLS-19) on the same receivers.

A change is either a changed roads frame (the variant's roads) or a list of edits
``{"road_id": ..., "factor": 0.5}`` (scales ``dtv, m_day, m_night``) and/or new values
(``{"road_id": ..., "speed_car_kmh": 30, "surface": "Asphaltbeton"}``); ``{"road_id": ...,
"remove": True}`` removes a road. Only roads whose emission changed are propagated twice; the
rest is computed once and shared, so the difference is exactly that of the changed roads.

Outputs: the difference map (after - before, dB) on the grid, facade differences, and the
buildings whose highest facade level changes by >= 1 dB and by >= 3 dB (day or night), both
reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SourceDataError, dataset_error
from . import noise as nz
from .rls19 import METHOD, road_emissions

_EDITABLE = {"dtv", "m_day", "m_night", "p1_day", "p2_day", "pmc_day", "p1_night", "p2_night", "pmc_night",
             "speed_car_kmh", "speed_truck_kmh", "surface"}


def apply_edits(roads, edits: list[dict], dataset: str = "traffic_change"):
    """Roads after a list of edits (a copy; the input is not changed).

    Raises
    ------
    SourceDataError
        An edit without road_id, for an unknown road, with an unknown field, or a negative factor.
    """
    out = roads.copy()
    ids = out["road_id"].astype(str)
    drop = []
    for n, ed in enumerate(edits):
        rid = ed.get("road_id")
        if rid is None:
            raise dataset_error(SourceDataError, dataset, f"edit #{n} has no road_id", "name the road to change")
        mask = (ids == str(rid)).to_numpy()
        if not mask.any():
            raise dataset_error(SourceDataError, dataset, "edit for a road that does not exist",
                                "use a road_id of the roads dataset", record=str(rid))
        unknown = set(ed) - _EDITABLE - {"road_id", "factor", "remove"}
        if unknown:
            raise dataset_error(SourceDataError, dataset, f"unknown field(s) {sorted(unknown)} in the edit",
                                f"use factor, remove or any of {sorted(_EDITABLE)}", record=str(rid))
        if ed.get("remove"):
            drop.append(mask)
            continue
        if "factor" in ed:
            f = float(ed["factor"])
            if not f >= 0:
                raise dataset_error(SourceDataError, dataset, f"factor {ed['factor']} is negative or not a number",
                                    "give a factor >= 0 (0.5 halves the traffic)", record=str(rid))
            for c in ("dtv", "m_day", "m_night"):
                if c in out:
                    out.loc[mask, c] = pd.to_numeric(out.loc[mask, c], errors="coerce") * f
        for k, v in ed.items():
            if k in _EDITABLE:
                out.loc[mask, k] = v
    if drop:
        out = out.loc[~np.any(drop, axis=0)]
    return out.reset_index(drop=True)


@dataclass
class NoiseChange:
    """After - before on the same receivers (dB); ``method`` "RLS-19"."""

    grid_before: nz.NoiseGrid | None
    grid_after: nz.NoiseGrid | None
    diff_lrt_db: np.ndarray | None
    diff_lrn_db: np.ndarray | None
    facades: pd.DataFrame | None
    buildings: pd.DataFrame | None
    changed_roads: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD

    def summary(self) -> dict[str, Any]:
        b = self.buildings if self.buildings is not None else pd.DataFrame()
        return {"method": self.method, "changed_roads": self.changed_roads,
                "buildings_change_ge_1db": int(b["change_ge_1db"].sum()) if len(b) else 0,
                "buildings_change_ge_3db": int(b["change_ge_3db"].sum()) if len(b) else 0,
                "max_increase_db": float(np.nanmax(self.diff_lrt_db)) if self.diff_lrt_db is not None
                and np.isfinite(self.diff_lrt_db).any() else None,
                "max_decrease_db": float(np.nanmin(self.diff_lrt_db)) if self.diff_lrt_db is not None
                and np.isfinite(self.diff_lrt_db).any() else None}


def _changed(before: pd.DataFrame, after: pd.DataFrame) -> tuple[set, set, set]:
    b = before.set_index(before["road_id"].astype(str))
    a = after.set_index(after["road_id"].astype(str))
    removed = set(b.index) - set(a.index)
    added = set(a.index) - set(b.index)
    changed = set()
    for rid in set(a.index) & set(b.index):
        rb, ra = b.loc[rid], a.loc[rid]
        if not np.isclose(rb["lw_day_db_m"], ra["lw_day_db_m"], equal_nan=True) or \
                not np.isclose(rb["lw_night_db_m"], ra["lw_night_db_m"], equal_nan=True) or \
                not rb.geometry.equals(ra.geometry):
            changed.add(rid)
    return removed, added, changed


def _diff(after_db, before_db):
    a, b = np.asarray(after_db, float), np.asarray(before_db, float)
    with np.errstate(invalid="ignore"):
        d = a - b
    d[np.isneginf(b) & np.isneginf(a)] = 0.0
    return d


def noise_change(roads_before, roads_after=None, edits: list[dict] | None = None, bounds=None,
                 facade_receivers: pd.DataFrame | None = None, buildings=None, dtm=None,
                 params: nz.NoiseParameters = nz.NoiseParameters(), dataset: str = "roads") -> NoiseChange:
    """Noise difference (after - before) of a traffic change, on the grid and/or at facades.

    Parameters
    ----------
    roads_before : geopandas.GeoDataFrame
        Staged ``roads`` of the current city.
    roads_after : geopandas.GeoDataFrame, optional
        The changed roads; or give ``edits``.
    edits : list of dict, optional
        See :func:`apply_edits`.
    bounds : (minx, miny, maxx, maxy), optional
        Grid extent (``params.grid_spacing_m``); no grid without it.
    facade_receivers : pandas.DataFrame, optional
        ``building_id, x, y, z_m, ground_m``; gives per-building changes.
    buildings, dtm, params
        As for :func:`citymodel.analysis.noise.noise_grid`.
    """
    if (roads_after is None) == (edits is None):
        raise dataset_error(SourceDataError, dataset, "give either the changed roads or a list of edits",
                            "pass roads_after=... or edits=[...]")
    if roads_after is None:
        roads_after = apply_edits(roads_before, edits)
    eb = road_emissions(roads_before, dataset)
    ea = road_emissions(roads_after, dataset + " (after)")
    removed, added, changed = _changed(eb, ea)
    ids_b = eb["road_id"].astype(str)
    ids_a = ea["road_id"].astype(str)
    common = eb[~ids_b.isin(removed | changed)]
    old = eb[ids_b.isin(removed | changed)]
    new = ea[ids_a.isin(added | changed)]

    refl = nz.facade_reflectors(buildings, dtm, params)

    def energies(em, x, y, z, g, obs, own=None):
        if len(em) == 0:
            return np.zeros(len(x)), np.zeros(len(x))
        src = nz.line_sources(em, dtm, params)
        return nz.receiver_energies(x, y, z, g, src, obs, params, reflectors=refl, receiver_building=own)

    all_src = nz.line_sources(pd.concat([eb, ea]), dtm, params)
    result = NoiseChange(None, None, None, None, None, None, sorted(removed | added | changed), params.as_dict())
    if bounds is not None:
        rec = nz.grid_receivers(bounds, params, dtm, buildings)
        obs = nz._obstacles_for(buildings, bounds, all_src, dtm, params, 200.0)
        calc = ~rec["in_building"].to_numpy()
        r = rec.loc[calc]
        args = (r["x"], r["y"], r["z_m"], r["ground_m"], obs)
        c = energies(common, *args)
        o = energies(old, *args)
        w = energies(new, *args)
        shape = (int(rec["row"].max()) + 1, int(rec["col"].max()) + 1)
        grids = []
        for e in (o, w):
            lrt = np.full(len(rec), np.nan)
            lrn = np.full(len(rec), np.nan)
            lrt[calc] = nz.energy_to_db(c[0] + e[0])
            lrn[calc] = nz.energy_to_db(c[1] + e[1])
            from affine import Affine

            tr = Affine(params.grid_spacing_m, 0, bounds[0], 0, -params.grid_spacing_m, bounds[3])
            grids.append(nz.NoiseGrid(lrt.reshape(shape), lrn.reshape(shape), tr,
                                      rec.assign(lrt_db=lrt, lrn_db=lrn), params.as_dict()))
        result.grid_before, result.grid_after = grids
        result.diff_lrt_db = _diff(grids[1].lrt_db, grids[0].lrt_db)
        result.diff_lrn_db = _diff(grids[1].lrn_db, grids[0].lrn_db)
    if facade_receivers is not None and len(facade_receivers):
        f = facade_receivers
        x, y = f["x"].to_numpy(float), f["y"].to_numpy(float)
        obs = nz._obstacles_for(buildings, (x.min(), y.min(), x.max(), y.max()), all_src, dtm, params, 200.0)
        own = f["building_id"].astype(str).to_numpy() if "building_id" in f else None
        args = (x, y, f["z_m"], f["ground_m"], obs, own)
        c = energies(common, *args)
        o = energies(old, *args)
        w = energies(new, *args)
        fr = f.assign(lrt_before_db=nz.energy_to_db(c[0] + o[0]), lrn_before_db=nz.energy_to_db(c[1] + o[1]),
                      lrt_after_db=nz.energy_to_db(c[0] + w[0]), lrn_after_db=nz.energy_to_db(c[1] + w[1]))
        fr["diff_lrt_db"] = _diff(fr["lrt_after_db"], fr["lrt_before_db"])
        fr["diff_lrn_db"] = _diff(fr["lrn_after_db"], fr["lrn_before_db"])
        fr["method"] = METHOD
        g = fr.groupby("building_id", sort=True)
        bl = pd.DataFrame({
            "lrt_max_before_db": g["lrt_before_db"].max(), "lrt_max_after_db": g["lrt_after_db"].max(),
            "lrn_max_before_db": g["lrn_before_db"].max(), "lrn_max_after_db": g["lrn_after_db"].max(),
        }).reset_index()
        bl["diff_lrt_db"] = _diff(bl["lrt_max_after_db"], bl["lrt_max_before_db"])
        bl["diff_lrn_db"] = _diff(bl["lrn_max_after_db"], bl["lrn_max_before_db"])
        big = np.maximum(np.abs(bl["diff_lrt_db"].fillna(0)), np.abs(bl["diff_lrn_db"].fillna(0)))
        bl["change_ge_1db"] = big >= 1.0
        bl["change_ge_3db"] = big >= 3.0
        bl["method"] = METHOD
        result.facades, result.buildings = fr, bl
    return result
