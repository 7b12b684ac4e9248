"""What a variant changes for whom: the comparison of a variant's analysis with the city's.

:func:`compare` turns the city's results and a :class:`~citymodel.variants.assess.VariantAnalysis`
into tables: per building (sun hours on the analysed days, DIN EN 17037 level, roof irradiation,
highest facade noise, flood exposure), per facade wall and storey (sun hours), per facade receiver
(noise), per roof surface (irradiation), residents per noise band, sight lines and viewsheds, and
difference rasters (ground sun hours, noise) per tile; plus a summary whose every number states its
unit, method and base ("12 facades lose ≥ 1 h of sun on 21 March").

Differences are variant − city. A building the variant adds has no "before"; one it removes has no
"after". Nothing here writes files (:mod:`citymodel.variants.outputs` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.layers import MONTHS, date_label
from ..analysis.shadow import DIN17037_LEVELS
from ..store import analysis_dir, analysis_tile_files

#: thresholds of the summary (documented in the README and on the comparison page)
SUN_LOSS_H = 1.0          # a facade or building "loses sun" from this many hours
SOLAR_LOSS_SHARE = 0.05   # a building "loses solar yield" from 5 % of its annual irradiation
NOISE_STEP_DB = (1.0, 3.0)  # "louder/quieter by >= 1 dB" and ">= 3 dB" (3 dB: doubling of the traffic)
_MONTH_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember")
_MONTH_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")


def day_names(label: str) -> tuple[str, str]:
    """``'mar21'`` -> ``('21. März', '21 March')``."""
    m, d = MONTHS.index(label[:3]), int(label[3:])
    return f"{d}. {_MONTH_DE[m]}", f"{d} {_MONTH_EN[m]}"


LEVEL_ORDER = {"none": 0, **{name: k + 1 for k, (name, _) in enumerate(reversed(DIN17037_LEVELS))}}


@dataclass
class Comparison:
    """The comparison tables (see the module docstring)."""

    buildings: Any                     # GeoDataFrame: one row per building of the city or the variant
    facades_sun: pd.DataFrame          # per wall and storey
    facades_noise: pd.DataFrame        # per facade receiver
    roofs: pd.DataFrame                # per roof surface
    residents: pd.DataFrame            # per indicator and band: before, after
    sightlines: pd.DataFrame           # per line: visible before, after
    viewsheds: pd.DataFrame            # per observer: visible area before, after
    rasters: dict[str, dict] = field(default_factory=dict)  # name -> {tile: (array, transform)}
    summary: dict = field(default_factory=dict)
    days: list[str] = field(default_factory=list)


def _concat(frames) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read(settings, layer, part, tiles) -> pd.DataFrame:
    """One part of the city's tile results (without geometry), all tiles."""
    import pyarrow.parquet as pq

    out = []
    for t in tiles:
        p = analysis_tile_files(settings, layer, t)[part]
        if not p.exists():
            continue
        if p.suffix == ".csv":
            f = pd.read_csv(p)
        else:
            names = [n for n in pq.read_schema(p).names if n != "geometry"]
            f = pq.read_table(p, columns=names).to_pandas()
        out.append(f.assign(tile_id=t))
    return _concat(out)


def _per_building_sun(walls: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    cols = [f"sun_h_max_{lab}" for lab in labels if f"sun_h_max_{lab}" in walls]
    if not len(walls) or not cols:
        return pd.DataFrame(columns=["building_id"])
    return walls.groupby("building_id")[cols].max().rename(
        columns={f"sun_h_max_{lab}": f"sun_{lab}" for lab in labels}).reset_index()


def _merge_before_after(before: pd.DataFrame, after: pd.DataFrame, keys, cols) -> pd.DataFrame:
    b = before[[*keys, *[c for c in cols if c in before]]].rename(columns={c: f"{c}_before" for c in cols}) \
        if len(before) else pd.DataFrame(columns=[*keys, *[f"{c}_before" for c in cols]])
    a = after[[*keys, *[c for c in cols if c in after]]].rename(columns={c: f"{c}_after" for c in cols}) \
        if len(after) else pd.DataFrame(columns=[*keys, *[f"{c}_after" for c in cols]])
    for f in (a, b):
        for k in keys:
            f[k] = f[k].astype(str) if k == "building_id" else f[k]
    m = b.merge(a, on=list(keys), how="outer")
    for c in cols:
        for s in ("before", "after"):
            if f"{c}_{s}" not in m:
                m[f"{c}_{s}"] = np.nan
        m[f"{c}_diff"] = pd.to_numeric(m[f"{c}_after"], errors="coerce") - pd.to_numeric(m[f"{c}_before"], errors="coerce")
    return m


def compare(vstore, analysis) -> Comparison:
    """The comparison of a variant (``vstore``, ``analysis``) with the city it changes."""
    import geopandas as gpd

    from ..analysis.parameters import day_sun_path

    settings = vstore.settings
    tiles = [t for t in settings.tile_ids if t in analysis.sun or t in analysis.noise or t in analysis.solar]
    labels = [date_label(d) for d in day_sun_path(settings).dates]
    # ------------------------------------------------------------------ facades: sun
    sun_keys = ["building_id", "surface_index", "storey"]
    sun_cols = [f"sun_h_max_{lab}" for lab in labels] + [f"sun_h_mean_{lab}" for lab in labels]
    base_walls = _read(settings, "sun_hours", "facades", analysis.sun.keys())
    var_walls = _concat([t.walls.assign(tile_id=k) for k, t in analysis.sun.items()])
    fs = _merge_before_after(base_walls, var_walls, sun_keys, sun_cols) if len(base_walls) or len(var_walls) \
        else pd.DataFrame()
    if len(fs):
        pos = _concat([var_walls[[*sun_keys, "x", "y", "z"]], base_walls[[*sun_keys, "x", "y", "z"]]]) \
            .drop_duplicates(sun_keys)
        pos["building_id"] = pos["building_id"].astype(str)
        fs = fs.merge(pos, on=sun_keys, how="left")
    # ------------------------------------------------------------------ DIN EN 17037
    base_din = _read(settings, "sun_hours", "din17037", analysis.sun.keys())
    var_din = _concat([t.din for t in analysis.sun.values()])
    din = _merge_before_after(base_din, var_din, ["building_id"], ["sun_hours_best"]) if len(base_din) or len(var_din) \
        else pd.DataFrame(columns=["building_id"])
    lev_b = dict(zip(base_din.get("building_id", pd.Series(dtype=str)).astype(str), base_din.get("level", [])))
    lev_a = dict(zip(var_din.get("building_id", pd.Series(dtype=str)).astype(str), var_din.get("level", [])))
    if len(din):
        din["din_level_before"] = din["building_id"].map(lev_b)
        din["din_level_after"] = din["building_id"].map(lev_a)
    # ------------------------------------------------------------------ roofs
    roof_keys = ["building_id", "surface_index"]
    base_roofs = _read(settings, "solar", "roofs", analysis.solar.keys())
    var_roofs = _concat([pd.DataFrame(r).drop(columns="geometry", errors="ignore") for r in analysis.solar.values()])
    roofs = _merge_before_after(base_roofs, var_roofs, roof_keys, ["irradiation_kwh_a", "irradiation_kwh_m2a", "area_m2"]) \
        if len(base_roofs) or len(var_roofs) else pd.DataFrame(columns=roof_keys)
    # ------------------------------------------------------------------ noise
    nkeys = ["building_id", "x", "y", "z_m"]
    base_fac = _read(settings, "noise", "facades", analysis.noise.keys())
    var_fac = _concat([t.facades for t in analysis.noise.values()])
    for f in (base_fac, var_fac):
        if len(f):
            for c in ("x", "y", "z_m"):
                f[c] = f[c].astype(float).round(3)
    fn = _merge_before_after(base_fac, var_fac, nkeys, ["lrt_db", "lrn_db"]) if len(base_fac) or len(var_fac) \
        else pd.DataFrame(columns=nkeys)
    base_nb = _read(settings, "noise", "buildings", analysis.noise.keys())
    var_nb = _concat([t.per_building for t in analysis.noise.values()])
    nb = _merge_before_after(base_nb, var_nb, ["building_id"], ["lrt_max_db", "lrn_max_db"]) \
        if len(base_nb) or len(var_nb) else pd.DataFrame(columns=["building_id"])
    base_ex = _read(settings, "noise", "exposure", analysis.noise.keys())
    var_ex = _concat([t.exposure for t in analysis.noise.values()])
    band = ["indicator", "band_lo_db", "band_hi_db"]
    residents = pd.DataFrame(columns=[*band, "residents_before", "residents_after", "residents_diff"])
    if len(base_ex) or len(var_ex):
        rb = base_ex.groupby(band, as_index=False)["residents"].sum() if len(base_ex) else pd.DataFrame(columns=[*band, "residents"])
        ra = var_ex.groupby(band, as_index=False)["residents"].sum() if len(var_ex) else pd.DataFrame(columns=[*band, "residents"])
        residents = rb.merge(ra, on=band, how="outer", suffixes=("_before", "_after")).fillna(0.0)
        residents["residents_diff"] = residents["residents_after"] - residents["residents_before"]
        residents = residents.sort_values(band).reset_index(drop=True)
    # ------------------------------------------------------------------ solar per building
    def per_b(roofs_frame, suffix):
        if not len(roofs_frame):
            return pd.DataFrame(columns=["building_id", f"solar_kwh_a_{suffix}"])
        g = roofs_frame.groupby(roofs_frame["building_id"].astype(str))["irradiation_kwh_a"].sum()
        return g.rename(f"solar_kwh_a_{suffix}").reset_index()
    solar_b = per_b(base_roofs, "before").merge(per_b(var_roofs, "after"), on="building_id", how="outer")
    solar_b["solar_kwh_a_diff"] = solar_b["solar_kwh_a_after"] - solar_b["solar_kwh_a_before"]
    # ------------------------------------------------------------------ flood
    flood = pd.DataFrame(columns=["building_id"])
    if analysis.flood is not None and len(analysis.flood):
        f = analysis.flood
        f = f[f["building_id"].astype(str).isin(set(vstore.built))]
        if len(f):
            flood = f.pivot_table(index="building_id", columns="scenario", values="max_depth_m", aggfunc="max")
            flood.columns = [f"flood_depth_max_m_{str(c).lower()}" for c in flood.columns]
            flood = flood.reset_index()
    # ------------------------------------------------------------------ buildings
    base_t = vstore.base.buildings().table
    var_t = vstore.buildings().table
    ids = sorted(set(base_t["building_id"].astype(str)) | set(var_t["building_id"].astype(str)))
    geo = dict(zip(base_t["building_id"].astype(str), base_t.geometry))
    geo.update(dict(zip(var_t["building_id"].astype(str), var_t.geometry)))
    status = {i: "unchanged" for i in ids}
    status.update({i: "removed" for i in vstore.removed_ids})
    status.update({i: "modified" for i in vstore.modified_ids})
    status.update({i: "added" for i in vstore.added_ids})
    table = pd.DataFrame({"building_id": ids, "variant_status": [status[i] for i in ids]})
    sb = _per_building_sun(base_walls, labels).rename(columns={f"sun_{lab}": f"sun_{lab}_before" for lab in labels})
    sa = _per_building_sun(var_walls, labels).rename(columns={f"sun_{lab}": f"sun_{lab}_after" for lab in labels})
    for f in (sb, sa):
        f["building_id"] = f["building_id"].astype(str)
    table = table.merge(sb, on="building_id", how="left").merge(sa, on="building_id", how="left")
    for lab in labels:
        for s in ("before", "after"):
            if f"sun_{lab}_{s}" not in table:
                table[f"sun_{lab}_{s}"] = np.nan
        table[f"sun_{lab}_diff"] = table[f"sun_{lab}_after"] - table[f"sun_{lab}_before"]
    if len(din):
        table = table.merge(din[["building_id", "sun_hours_best_before", "sun_hours_best_after", "sun_hours_best_diff",
                                 "din_level_before", "din_level_after"]].rename(
            columns={"sun_hours_best_before": "din_hours_before", "sun_hours_best_after": "din_hours_after",
                     "sun_hours_best_diff": "din_hours_diff"}), on="building_id", how="left")
    table = table.merge(solar_b, on="building_id", how="left")
    if len(nb):
        table = table.merge(nb[["building_id", "lrt_max_db_before", "lrt_max_db_after", "lrt_max_db_diff",
                                "lrn_max_db_before", "lrn_max_db_after", "lrn_max_db_diff"]], on="building_id", how="left")
    table = table.merge(flood, on="building_id", how="left")
    affected = _affected(table, labels)
    table.loc[(table["variant_status"] == "unchanged") & affected, "variant_status"] = "affected"
    buildings = gpd.GeoDataFrame(table, geometry=[geo.get(i) for i in table["building_id"]], crs=vstore.crs)
    # ------------------------------------------------------------------ sight lines, viewsheds
    lines, sheds = _sightlines(settings, analysis)
    # ------------------------------------------------------------------ rasters
    rasters: dict[str, dict] = {}
    for k, t in analysis.sun.items():
        for i, lab in enumerate(labels):
            rasters.setdefault(f"sun_hours_{lab}_diff", {})[k] = ((t.hours[i] - t.base_hours[i]).astype(np.float32),
                                                                 t.transform)
    for k, t in analysis.noise.items():
        rasters.setdefault("noise_lrt_diff", {})[k] = ((t.lrt - t.base_lrt).astype(np.float32), t.transform)
        rasters.setdefault("noise_lrn_diff", {})[k] = ((t.lrn - t.base_lrn).astype(np.float32), t.transform)
    comp = Comparison(buildings, fs, fn, roofs, residents, lines, sheds, rasters, days=labels)
    comp.summary = summarise(comp, vstore, analysis)
    return comp


#: a building counts as "affected" when a value changes by at least this much (the tables keep
#: every difference; this only decides what the summary, the map layers and the tiles mark)
AFFECTED = {"sun_h": 0.05, "solar_share": 0.005, "noise_db": 0.05}


def _affected(table: pd.DataFrame, labels) -> pd.Series:
    def col(c):
        return pd.to_numeric(table[c], errors="coerce").abs().fillna(0.0) if c in table else pd.Series(0.0, index=table.index)

    m = pd.Series(False, index=table.index)
    for c in [f"sun_{lab}_diff" for lab in labels] + ["din_hours_diff"]:
        m |= col(c) >= AFFECTED["sun_h"]
    if "solar_kwh_a_diff" in table:
        before = pd.to_numeric(table["solar_kwh_a_before"], errors="coerce").abs().fillna(0.0)
        m |= col("solar_kwh_a_diff") >= AFFECTED["solar_share"] * before
    for c in ("lrt_max_db_diff", "lrn_max_db_diff"):
        m |= col(c) >= AFFECTED["noise_db"]
    return m


def _sightlines(settings, analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    import geopandas as gpd

    d = analysis_dir(settings, "sightlines")
    if analysis.sightlines is None or not (d / "sightlines.parquet").exists():
        return pd.DataFrame(), pd.DataFrame()
    base = gpd.read_parquet(d / "sightlines.parquet")
    var = analysis.sightlines
    keys = ["observer_id", "target_id"]
    lines = base[[*keys, "distance_m", "visible", "blocked_by_buildings"]].rename(
        columns={"visible": "visible_before", "blocked_by_buildings": "blocked_by_before"}).merge(
        pd.DataFrame(var)[[*keys, "visible", "blocked_by_buildings"]].rename(
            columns={"visible": "visible_after", "blocked_by_buildings": "blocked_by_after"}), on=keys, how="outer")
    lines["change"] = np.select([lines["visible_before"] & ~lines["visible_after"],
                                 ~lines["visible_before"] & lines["visible_after"]], ["blocked", "freed"], "unchanged")
    base_s = json.loads((d / "viewsheds.json").read_text(encoding="utf-8")) if (d / "viewsheds.json").exists() else {}
    rows = [{"observer_id": k, "visible_area_m2_before": base_s.get(k, {}).get("visible_area_m2"),
             "visible_area_m2_after": analysis.viewsheds.get(k, {}).get("visible_area_m2")}
            for k in sorted(set(base_s) | set(analysis.viewsheds))]
    sheds = pd.DataFrame(rows)
    if len(sheds):
        sheds["visible_area_m2_diff"] = sheds["visible_area_m2_after"] - sheds["visible_area_m2_before"]
    return lines, sheds


def _count(mask) -> int:
    return int(np.asarray(mask, dtype=bool).sum())


def summarise(comp: Comparison, vstore, analysis) -> dict:
    """The summary: per layer, how many lose or gain how much (each figure with unit, method, base)."""
    from ..analysis.rls19 import METHOD as NOISE_METHOD

    b = comp.buildings
    existing = b["variant_status"].isin(["unchanged", "affected", "modified"])
    items: list[dict] = []

    def item(layer, key, value, unit, text_de, text_en, method, base="base release"):
        items.append({"layer": layer, "key": key, "value": value, "unit": unit, "text_de": text_de,
                      "text_en": text_en, "method": method, "base": base})

    sun_method = "ray casting (embree) towards the sun per time step; shading by buildings, tree crowns, terrain"
    for lab in comp.days:
        de, en = day_names(lab)
        fd = pd.to_numeric(comp.facades_sun.get(f"sun_h_max_{lab}_diff", pd.Series(dtype=float)), errors="coerce")
        n_loss = _count(fd <= -SUN_LOSS_H)
        n_gain = _count(fd >= SUN_LOSS_H)
        item("sun_hours", f"facades_lose_{lab}", n_loss, "facades (wall × storey)",
             f"{n_loss} Fassadenabschnitte verlieren ≥ {SUN_LOSS_H:g} h Sonne am {de}",
             f"{n_loss} facade sections lose ≥ {SUN_LOSS_H:g} h of sun on {en}", sun_method)
        item("sun_hours", f"facades_gain_{lab}", n_gain, "facades (wall × storey)",
             f"{n_gain} Fassadenabschnitte gewinnen ≥ {SUN_LOSS_H:g} h Sonne am {de}",
             f"{n_gain} facade sections gain ≥ {SUN_LOSS_H:g} h of sun on {en}", sun_method)
        bd = pd.to_numeric(b.get(f"sun_{lab}_diff", pd.Series(dtype=float)), errors="coerce")
        nb = _count(existing & (bd <= -SUN_LOSS_H))
        item("sun_hours", f"buildings_lose_{lab}", nb, "buildings",
             f"{nb} Gebäude verlieren an ihrer sonnigsten Fassade ≥ {SUN_LOSS_H:g} h Sonne am {de}",
             f"{nb} buildings lose ≥ {SUN_LOSS_H:g} h of sun at their sunniest facade on {en}", sun_method)
    if "din_level_before" in b:
        lb = b["din_level_before"].map(LEVEL_ORDER)
        la = b["din_level_after"].map(LEVEL_ORDER)
        worse = existing & (la < lb)
        below = existing & (lb >= LEVEL_ORDER["minimum"]) & (la < LEVEL_ORDER["minimum"])
        item("din17037", "buildings_level_down", _count(worse), "buildings",
             f"{_count(worse)} Gebäude fallen in der DIN EN 17037 Besonnung um mindestens eine Stufe",
             f"{_count(worse)} buildings drop at least one DIN EN 17037 sunlight level",
             "DIN EN 17037 sunlight exposure: hours of possible sun at the best facade point on the check day")
        item("din17037", "buildings_below_minimum", _count(below), "buildings",
             f"{_count(below)} Gebäude fallen unter die Mindestanforderung (1,5 h)",
             f"{_count(below)} buildings fall below the minimum level (1.5 h)",
             "DIN EN 17037 sunlight exposure, minimum level 1.5 h")
    if "solar_kwh_a_diff" in b:
        sb = pd.to_numeric(b["solar_kwh_a_before"], errors="coerce")
        sd = pd.to_numeric(b["solar_kwh_a_diff"], errors="coerce")
        loss = existing & (sd <= -SOLAR_LOSS_SHARE * sb)
        total = float(np.nansum(sd[existing]))
        item("solar", "buildings_lose_5pct", _count(loss), "buildings",
             f"{_count(loss)} Gebäude verlieren ≥ {SOLAR_LOSS_SHARE:.0%} Einstrahlung auf ihre Dächer",
             f"{_count(loss)} buildings lose ≥ {SOLAR_LOSS_SHARE:.0%} of the irradiation on their roofs",
             "annual irradiation per roof surface, direct shading and sky-view factor")
        item("solar", "existing_roofs_change_kwh_a", round(total, 0), "kWh/a",
             f"Bestandsdächer: {total:+,.0f} kWh/a Einstrahlung", f"existing roofs: {total:+,.0f} kWh/a of irradiation",
             "annual irradiation per roof surface")
        new = float(np.nansum(pd.to_numeric(b.loc[b["variant_status"] == "added", "solar_kwh_a_after"],
                                            errors="coerce")))
        item("solar", "new_roofs_kwh_a", round(new, 0), "kWh/a", f"Neue Dächer: {new:,.0f} kWh/a Einstrahlung",
             f"new roofs: {new:,.0f} kWh/a of irradiation", "annual irradiation per roof surface")
    if "lrt_max_db_diff" in b:
        for step in NOISE_STEP_DB:
            for ind in ("lrt", "lrn"):
                d = pd.to_numeric(b[f"{ind}_max_db_diff"], errors="coerce")
                up, down = _count(existing & (d >= step - 1e-9)), _count(existing & (d <= -step + 1e-9))
                name = "LrT (Tag)" if ind == "lrt" else "LrN (Nacht)"
                item("noise", f"buildings_{ind}_up_{step:g}db", up, "buildings",
                     f"{up} Gebäude werden an der lautesten Fassade um ≥ {step:g} dB lauter ({name})",
                     f"{up} buildings get ≥ {step:g} dB louder at their loudest facade ({ind.upper()})", NOISE_METHOD)
                item("noise", f"buildings_{ind}_down_{step:g}db", down, "buildings",
                     f"{down} Gebäude werden an der lautesten Fassade um ≥ {step:g} dB leiser ({name})",
                     f"{down} buildings get ≥ {step:g} dB quieter at their loudest facade ({ind.upper()})", NOISE_METHOD)
    if len(comp.residents):
        r = comp.residents
        hi = r[(r["indicator"] == "LrT") & (r["band_lo_db"] >= 65)]
        before, after = float(hi["residents_before"].sum()), float(hi["residents_after"].sum())
        item("noise", "residents_lrt_ge_65", {"before": round(before, 1), "after": round(after, 1)}, "residents",
             f"Bewohner mit LrT ≥ 65 dB(A): {before:.0f} → {after:.0f}",
             f"residents at LrT ≥ 65 dB(A): {before:.0f} → {after:.0f}",
             NOISE_METHOD + "; residents estimated from floor area and function (see the noise layer)")
    if len(comp.sightlines):
        for ch in ("blocked", "freed"):
            n = _count(comp.sightlines["change"] == ch)
            item("sightlines", f"lines_{ch}", n, "sight lines",
                 f"{n} Sichtachsen werden {'verstellt' if ch == 'blocked' else 'frei'}",
                 f"{n} sight lines become {ch}", "segment ray casting (embree) between observer and target")
    if len(comp.viewsheds):
        d = float(np.nansum(pd.to_numeric(comp.viewsheds["visible_area_m2_diff"], errors="coerce")))
        item("sightlines", "viewshed_area_change_m2", round(d, 1), "m²", f"Sichtfelder: {d:+,.0f} m² sichtbare Fläche",
             f"viewsheds: {d:+,.0f} m² of visible area", "viewshed ray casting from each observer")
    flood_cols = [c for c in b.columns if c.startswith("flood_depth_max_m_")]
    for c in flood_cols:
        sc = c.removeprefix("flood_depth_max_m_")
        wet = b[(b["variant_status"].isin(["added", "modified"])) & (pd.to_numeric(b[c], errors="coerce") > 0)]
        item("flood", f"new_buildings_flooded_{sc}", len(wet), "buildings",
             f"{len(wet)} neue oder geänderte Gebäude liegen im {sc.upper()}-Überflutungsgebiet"
             + (f" (bis {wet[c].max():.2f} m tief)" if len(wet) else ""),
             f"{len(wet)} new or changed buildings are flooded in {sc.upper()}"
             + (f" (up to {wet[c].max():.2f} m deep)" if len(wet) else ""), "water level − terrain at the footprint")
    changes = vstore.variant.summary()
    return {"changes": changes, "items": items, "work_share": {k: round(v, 4) for k, v in analysis.work_share().items()},
            "impact": analysis.impact.summary() if analysis.impact is not None else {}}
