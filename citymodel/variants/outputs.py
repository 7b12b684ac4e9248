"""The comparison of a variant as files: JSON, GeoJSON, CSV, GeoTIFF and a static HTML page.

Written into a folder (the variant's ``comparison/``) through the project's atomic writer:

===========================  =================================================================
file                         content
===========================  =================================================================
``comparison.json``          the summary (every figure with unit, method, base), the changes,
                             the impact areas' share of the city's analysis work, parameters
``buildings.csv``            one row per building: status, before / after / difference per layer
``buildings.geojson``        the same as polygons (footprints) in WGS84 (RFC 7946), for the map
                             embeds of CONSUL and DIPAS
``points.geojson``           one point per changed or affected building with the summary text
``facades.geojson``          facade points: sun hours per day and noise, before / after
``roofs.csv``                per roof surface: irradiation before / after
``residents.csv``            residents per noise band before / after
``sightlines.csv``           per sight line: visible before / after; viewsheds
``diff_<layer>.tif``         difference rasters (variant − city) over the extent
``index.html``               the comparison page, German first (English switchable), with maps,
                             plots and tables, for the participation platform to link to
===========================  =================================================================
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import atomic_output, atomic_write_text, json_safe
from .compare import AFFECTED, NOISE_STEP_DB, SOLAR_LOSS_SHARE, SUN_LOSS_H, day_names

STATUS = {"added": ("neu", "added"), "removed": ("entfällt", "removed"), "modified": ("geändert", "modified"),
          "affected": ("betroffen", "affected"), "unchanged": ("unverändert", "unchanged")}
ROLE = {"planning_office": ("Planungsbüro", "planning office"), "citizen": ("Bürgerin oder Bürger", "citizen")}


def _day(lab: str) -> tuple[str, str]:
    return day_names(lab)


def mosaic(pieces: dict[str, tuple[np.ndarray, Any]]) -> tuple[np.ndarray, Any] | None:
    """One raster from tile rasters on the same grid spacing (NaN where no tile is)."""
    from affine import Affine

    if not pieces:
        return None
    arrs = list(pieces.values())
    a0, t0 = arrs[0]
    cell = t0.a
    x0 = min(t.c for _, t in arrs)
    y1 = max(t.f for _, t in arrs)
    x1 = max(t.c + a.shape[-1] * cell for a, t in arrs)
    y0 = min(t.f + a.shape[-2] * t.e for a, t in arrs)
    cols = int(round((x1 - x0) / cell))
    rows = int(round((y1 - y0) / cell))
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    for a, t in arrs:
        c = int(round((t.c - x0) / cell))
        r = int(round((y1 - t.f) / cell))
        out[r:r + a.shape[-2], c:c + a.shape[-1]] = a
    return out, Affine(cell, 0.0, x0, 0.0, -cell, y1)


def _to_wgs84(frame, crs):
    if frame is None or not len(frame):
        return frame
    return frame.to_crs("EPSG:4326")


def _geojson_text(frame) -> str:
    """GeoJSON (RFC 7946) of a GeoDataFrame in WGS84; NaN as null; coordinates to 7 decimals."""
    feats = []
    for rec, geom in zip(frame.drop(columns="geometry").to_dict("records"), frame.geometry):
        feats.append({"type": "Feature", "geometry": None if geom is None else json.loads(_geom_json(geom)),
                      "properties": json_safe(rec)})
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False)


def _geom_json(geom) -> str:
    import shapely

    return shapely.to_geojson(shapely.set_precision(geom, 1e-7))


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _diff_map(arr, transform, buildings, title, unit, vmax) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    rows, cols = arr.shape
    ext = (transform.c, transform.c + cols * transform.a, transform.f + rows * transform.e, transform.f)
    im = ax.imshow(np.ma.masked_invalid(arr), extent=ext, cmap="RdBu", vmin=-vmax, vmax=vmax, interpolation="nearest")
    if buildings is not None and len(buildings):
        import shapely
        from matplotlib.collections import LineCollection

        styles = {"added": ("#d62728", 1.4), "removed": ("#7f7f7f", 1.4), "modified": ("#ff7f0e", 1.4),
                  "affected": ("#333333", 0.4), "unchanged": ("#bbbbbb", 0.3)}
        for st, (colour, width) in styles.items():
            g = buildings.geometry[buildings["variant_status"] == st]
            rings = [np.asarray(r.coords)[:, :2] for geom in g if geom is not None
                     for poly in shapely.get_parts(geom) for r in [poly.exterior]]
            if rings:
                ax.add_collection(LineCollection(rings, colors=colour, linewidths=width))
    fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6)
    ax.set_aspect("equal")
    return _png(fig)


def write_comparison(folder: Path, comp, vstore, analysis, *, base_release: str, variant_meta: dict,
                     viewer_link: str | None = None, parameters: dict | None = None) -> list[Path]:
    """Write the comparison files into ``folder``; returns the paths written."""
    from ..raster import write_geotiff

    folder = Path(folder)
    written: list[Path] = []
    crs = vstore.crs
    summary = {"schema_version": "1.0", "variant": variant_meta, "base_release": base_release,
               **comp.summary, "parameters": parameters or {},
               "thresholds": {"sun_loss_h": SUN_LOSS_H, "solar_loss_share": SOLAR_LOSS_SHARE,
                              "noise_steps_db": list(NOISE_STEP_DB), "affected": AFFECTED},
               "differences": "variant − base release (positive: more)"}
    written.append(atomic_write_text(folder / "comparison.json",
                                     json.dumps(json_safe(summary), ensure_ascii=False, indent=1) + "\n"))
    b = comp.buildings
    cols = [c for c in b.columns if c != "geometry"]
    with atomic_output(folder / "buildings.csv") as tmp:
        pd.DataFrame(b[cols]).to_csv(tmp, index=False)
    written.append(folder / "buildings.csv")
    shown = b[b["variant_status"] != "unchanged"]
    wgs = _to_wgs84(shown[~shown.geometry.isna()], crs)
    written.append(atomic_write_text(folder / "buildings.geojson", _geojson_text(wgs) if wgs is not None and len(wgs)
                                     else json.dumps({"type": "FeatureCollection", "features": []})))
    pts = wgs.copy() if wgs is not None and len(wgs) else None
    if pts is not None:
        pts["geometry"] = pts.geometry.representative_point()
        pts["summary_de"] = [_building_text(r, comp.days, "de") for r in pts.to_dict("records")]
        pts["summary_en"] = [_building_text(r, comp.days, "en") for r in pts.to_dict("records")]
        pts = pts[["building_id", "variant_status", "summary_de", "summary_en", "geometry"]]
    written.append(atomic_write_text(folder / "points.geojson", _geojson_text(pts) if pts is not None
                                     else json.dumps({"type": "FeatureCollection", "features": []})))
    written.append(_facades(folder, comp, crs))
    for name, frame in (("roofs", comp.roofs), ("residents", comp.residents), ("sightlines", comp.sightlines),
                        ("viewsheds", comp.viewsheds), ("facades_sun", comp.facades_sun),
                        ("facades_noise", comp.facades_noise)):
        if frame is not None and len(frame):
            with atomic_output(folder / f"{name}.csv") as tmp:
                pd.DataFrame(frame).drop(columns=["geometry"], errors="ignore").to_csv(tmp, index=False)
            written.append(folder / f"{name}.csv")
    maps = {}
    for name, pieces in comp.rasters.items():
        m = mosaic(pieces)
        if m is None:
            continue
        arr, transform = m
        p = folder / f"diff_{name.removesuffix('_diff')}.tif"
        write_geotiff(p, arr, transform=transform, crs=crs, nodata=float("nan"),
                      tags={"content": f"{name}: variant − base release", "base_release": base_release},
                      band_descriptions=[name])
        written.append(p)
        if np.isfinite(arr).any() and np.nanmax(np.abs(arr)) > 0:
            unit = "h" if name.startswith("sun") else "dB"
            vmax = float(np.nanpercentile(np.abs(arr[np.abs(arr) > 0]), 99)) if (np.abs(arr) > 0).any() else 1.0
            maps[name] = _diff_map(arr, transform, b, name, unit, max(vmax, 0.5 if unit == "dB" else 1.0))
    written.append(atomic_write_text(folder / "index.html", render_page(comp, summary, maps, viewer_link)))
    return written


def _facades(folder: Path, comp, crs) -> Path:
    import geopandas as gpd

    frames = []
    fs = comp.facades_sun
    if len(fs) and "x" in fs:
        diff_cols = [c for c in fs.columns if c.startswith("sun_h_max_") and c.endswith(("_before", "_after", "_diff"))]
        moved = np.zeros(len(fs), dtype=bool)
        for c in diff_cols:
            if c.endswith("_diff"):
                moved |= (pd.to_numeric(fs[c], errors="coerce").abs() >= AFFECTED["sun_h"]).to_numpy()
        new = fs[[c for c in diff_cols if c.endswith("_before")]].isna().all(axis=1).to_numpy()
        changed = fs[moved | new]
        f = changed[["building_id", "surface_index", "storey", "x", "y", "z", *diff_cols]].assign(kind="sun")
        frames.append(gpd.GeoDataFrame(f.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(f["x"], f["y"]), crs=crs))
    fn = comp.facades_noise
    if len(fn):
        d = pd.to_numeric(fn.get("lrt_db_diff", pd.Series(dtype=float)), errors="coerce").abs()
        dn = pd.to_numeric(fn.get("lrn_db_diff", pd.Series(dtype=float)), errors="coerce").abs()
        changed = fn[(d >= AFFECTED["noise_db"]) | (dn >= AFFECTED["noise_db"]) | fn["lrt_db_before"].isna()
                     | fn["lrt_db_after"].isna()]
        cols = [c for c in changed.columns if c.startswith(("lrt_db_", "lrn_db_"))]
        f = changed[["building_id", "x", "y", "z_m", *cols]].assign(kind="noise")
        frames.append(gpd.GeoDataFrame(f.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(f["x"], f["y"]), crs=crs))
    if frames:
        allf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs).to_crs("EPSG:4326")
        text = _geojson_text(allf)
    else:
        text = json.dumps({"type": "FeatureCollection", "features": []})
    return atomic_write_text(folder / "facades.geojson", text)


def _fmt(v, nd=1, signed=False) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(f):
        return "–"
    s = f"{f:+,.{nd}f}" if signed else f"{f:,.{nd}f}"
    return s.replace(",", "\u202f").replace(".", ",")


def _building_text(r: dict, days, lang: str) -> str:
    k = 0 if lang == "de" else 1
    parts = [STATUS.get(r.get("variant_status"), (r.get("variant_status"),) * 2)[k]]
    for lab in days:
        d = r.get(f"sun_{lab}_diff")
        if d is not None and np.isfinite(d) and abs(d) >= 0.25:
            parts.append(f"{'Sonne' if lang == 'de' else 'sun'} {_day(lab)[k]}: {_fmt(d, 1, True)} h")
    d = r.get("lrt_max_db_diff")
    if d is not None and np.isfinite(d) and abs(d) >= 0.1:
        parts.append(f"{'Lärm' if lang == 'de' else 'noise'} LrT: {_fmt(d, 1, True)} dB")
    d = r.get("solar_kwh_a_diff")
    if d is not None and np.isfinite(d) and abs(d) >= 1:
        parts.append(f"{'Solar' if lang == 'de' else 'solar'}: {_fmt(d, 0, True)} kWh/a")
    return "; ".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:0;color:#222;line-height:1.45}
header{background:#1f4e79;color:#fff;padding:1rem 1.5rem}header a{color:#fff}
main{padding:1rem 1.5rem;max-width:72rem}table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}td:first-child,th:first-child{text-align:left}
.neg{color:#b2182b}.pos{color:#2166ac}.lang-en [lang=de]{display:none}.lang-de [lang=en]{display:none}
button{float:right;margin-top:.2rem}figure{display:inline-block;margin:.5rem}.small{font-size:.85rem;color:#555}
ul.summary li{margin:.2rem 0}"""


def _t(de: str, en: str) -> str:
    return f'<span lang="de">{html.escape(de)}</span><span lang="en">{html.escape(en)}</span>'


def _table(frame: pd.DataFrame, columns: list[tuple[str, str, str, int, bool]], limit: int = 40) -> str:
    """``columns``: (column, German header, English header, decimals, signed)."""
    if frame is None or not len(frame):
        return f"<p>{_t('Keine Einträge.', 'No entries.')}</p>"
    head = "".join(f"<th>{_t(de, en)}</th>" for _, de, en, _, _ in columns)
    rows = []
    for r in frame.head(limit).to_dict("records"):
        cells = []
        for c, _, _, nd, signed in columns:
            v = r.get(c)
            if isinstance(v, str) or nd < 0:
                txt = STATUS[v][0] if v in STATUS else str(v if v is not None else "–")
                cells.append(f"<td>{html.escape(txt)}</td>")
            else:
                cls = "" if not signed or v is None or not np.isfinite(float(v)) or float(v) == 0 else \
                    (' class="neg"' if float(v) < 0 else ' class="pos"')
                cells.append(f"<td{cls}>{_fmt(v, nd, signed)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="small">{_t(f"{len(frame) - limit} weitere in der CSV-Datei.", f"{len(frame) - limit} more in the CSV file.")}</p>' \
        if len(frame) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def render_page(comp, summary: dict, maps: dict[str, str], viewer_link: str | None) -> str:
    """The comparison page (static HTML, German first, English switchable, images inline)."""
    meta = summary["variant"]
    role = ROLE.get(meta.get("author_role"), (meta.get("author_role"),) * 2)
    b = comp.buildings
    items = summary.get("items", [])
    lis = "".join(f'<li>{_t(i["text_de"], i["text_en"])} <span class="small">({html.escape(i["method"])})</span></li>'
                  for i in items if not (isinstance(i["value"], (int, float)) and i["value"] == 0))
    zero = [i for i in items if isinstance(i["value"], (int, float)) and i["value"] == 0]
    sections = []
    # sun
    days = comp.days
    sun_cols = [("building_id", "Gebäude", "building", -1, False), ("variant_status", "Status", "status", -1, False)]
    for lab in days:
        de, en = _day(lab)
        sun_cols += [(f"sun_{lab}_before", f"{de} vorher (h)", f"{en} before (h)", 1, False),
                     (f"sun_{lab}_after", f"{de} nachher (h)", f"{en} after (h)", 1, False),
                     (f"sun_{lab}_diff", f"{de} Δ (h)", f"{en} Δ (h)", 1, True)]
    key = f"sun_{days[0]}_diff" if days else None
    sun_t = b[b["variant_status"].isin(["affected", "modified", "added"])].copy()
    if key and key in sun_t:
        sun_t = sun_t.reindex(sun_t[key].abs().sort_values(ascending=False).index)
    imgs = "".join(f'<figure><img src="{maps[k]}" alt="{k}"><figcaption>{_t("Differenz der Sonnenstunden am Boden, " + _day(k.split("_")[2])[0], "Difference of ground sun hours, " + _day(k.split("_")[2])[1])}</figcaption></figure>'
                   for k in maps if k.startswith("sun_hours"))
    sections.append(f"<h2>{_t('Sonne und Schatten', 'Sun and shadow')}</h2>"
                    f"<p>{_t('Stunden direkter Sonne an der sonnigsten Fassade jedes Gebäudes (Wand × Geschoss), vorher und nachher.', 'Hours of direct sun at the sunniest facade (wall × storey) of each building, before and after.')}</p>"
                    + _table(sun_t, sun_cols) + imgs)
    if "din_level_before" in b:
        d = b[(b["din_level_before"] != b["din_level_after"]) & b["din_level_before"].notna()]
        sections.append(f"<h2>{_t('Besonnung nach DIN EN 17037', 'Sunlight exposure, DIN EN 17037')}</h2>" + _table(
            d, [("building_id", "Gebäude", "building", -1, False), ("din_level_before", "Stufe vorher", "level before", -1, False),
                ("din_level_after", "Stufe nachher", "level after", -1, False),
                ("din_hours_before", "h vorher", "h before", 1, False), ("din_hours_after", "h nachher", "h after", 1, False)]))
    if "solar_kwh_a_diff" in b:
        s = b[pd.to_numeric(b["solar_kwh_a_diff"], errors="coerce").abs() > 0.5].copy()
        s = s.reindex(s["solar_kwh_a_diff"].sort_values().index)
        sections.append(f"<h2>{_t('Solarpotenzial der Dächer', 'Solar potential of the roofs')}</h2>" + _table(
            s, [("building_id", "Gebäude", "building", -1, False), ("variant_status", "Status", "status", -1, False),
                ("solar_kwh_a_before", "vorher (kWh/a)", "before (kWh/a)", 0, False),
                ("solar_kwh_a_after", "nachher (kWh/a)", "after (kWh/a)", 0, False),
                ("solar_kwh_a_diff", "Δ (kWh/a)", "Δ (kWh/a)", 0, True)]))
    if "lrt_max_db_diff" in b:
        n = b[pd.to_numeric(b["lrt_max_db_diff"], errors="coerce").abs() >= 0.1].copy()
        n = n.reindex(n["lrt_max_db_diff"].abs().sort_values(ascending=False).index)
        imgs = "".join(f'<figure><img src="{maps[k]}" alt="{k}"><figcaption>{_t("Differenz " + ("LrT (Tag)" if "lrt" in k else "LrN (Nacht)"), "Difference " + ("LrT (day)" if "lrt" in k else "LrN (night)"))}</figcaption></figure>'
                       for k in maps if k.startswith("noise"))
        sections.append(f"<h2>{_t('Straßenverkehrslärm (RLS-19)', 'Road traffic noise (RLS-19)')}</h2>" + _table(
            n, [("building_id", "Gebäude", "building", -1, False), ("lrt_max_db_before", "LrT vorher dB(A)", "LrT before dB(A)", 1, False),
                ("lrt_max_db_after", "LrT nachher", "LrT after", 1, False), ("lrt_max_db_diff", "Δ LrT (dB)", "Δ LrT (dB)", 1, True),
                ("lrn_max_db_diff", "Δ LrN (dB)", "Δ LrN (dB)", 1, True)])
            + f"<h3>{_t('Bewohner je Pegelklasse', 'Residents per level band')}</h3>" + _table(
            comp.residents, [("indicator", "Kenngröße", "indicator", -1, False), ("band_lo_db", "ab dB(A)", "from dB(A)", 0, False),
                             ("band_hi_db", "bis dB(A)", "to dB(A)", 0, False), ("residents_before", "vorher", "before", 1, False),
                             ("residents_after", "nachher", "after", 1, False), ("residents_diff", "Δ", "Δ", 1, True)]) + imgs)
    if len(comp.sightlines):
        sections.append(f"<h2>{_t('Sichtachsen', 'Sight lines')}</h2>" + _table(
            comp.sightlines, [("observer_id", "Standort", "observer", -1, False), ("target_id", "Ziel", "target", -1, False),
                              ("visible_before", "sichtbar vorher", "visible before", -1, False),
                              ("visible_after", "sichtbar nachher", "visible after", -1, False), ("change", "Änderung", "change", -1, False)])
            + _table(comp.viewsheds, [("observer_id", "Standort", "observer", -1, False),
                                      ("visible_area_m2_before", "sichtbare Fläche vorher (m²)", "visible area before (m²)", 0, False),
                                      ("visible_area_m2_after", "nachher (m²)", "after (m²)", 0, False),
                                      ("visible_area_m2_diff", "Δ (m²)", "Δ (m²)", 0, True)]))
    fc = [c for c in b.columns if c.startswith("flood_depth_max_m_")]
    if fc:
        f = b[b["variant_status"].isin(["added", "modified"])]
        sections.append(f"<h2>{_t('Hochwasser', 'Flood')}</h2>" + _table(
            f, [("building_id", "Gebäude", "building", -1, False), ("variant_status", "Status", "status", -1, False)]
            + [(c, f"Wassertiefe {c.removeprefix('flood_depth_max_m_').upper()} (m)",
                f"water depth {c.removeprefix('flood_depth_max_m_').upper()} (m)", 2, False) for c in fc]))
    work = summary.get("work_share", {})
    params = summary.get("parameters", {})
    viewer = f' · <a href="{html.escape(viewer_link)}">{_t("In 3D ansehen", "View in 3D")}</a>' if viewer_link else ""
    files = " · ".join(f'<a href="{n}">{n}</a>' for n in ("comparison.json", "buildings.csv", "buildings.geojson",
                                                            "points.geojson", "facades.geojson"))
    title = meta.get("title", meta.get("id"))
    return f"""<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – Vergleich</title><style>{_CSS}</style></head>
<body class="lang-de"><header><button onclick="var b=document.body;b.className=b.className==='lang-de'?'lang-en':'lang-de';document.documentElement.lang=b.className.slice(5)">Deutsch / English</button>
<h1>{html.escape(title)} <span class="small" style="color:#ddd">(Version {meta.get('version')})</span></h1>
<p>{_t('Vergleich mit dem Stadtmodell', 'Compared with the city model')} {html.escape(str(summary.get('base_release')))} ·
{_t(role[0], role[1])} · {html.escape(str(meta.get('created', '')))}{viewer}</p></header><main>
<p>{html.escape(meta.get('description') or '')}</p>
<h2>{_t('Zusammenfassung', 'Summary')}</h2><ul class="summary">{lis or '<li>' + _t('Keine messbaren Änderungen.', 'No measurable changes.') + '</li>'}</ul>
<p class="small">{_t('Ohne Änderung: ', 'Unchanged: ')}{html.escape('; '.join(i['text_de'] for i in zero))}</p>
{''.join(sections)}
<h2>{_t('Methode und Parameter', 'Method and parameters')}</h2>
<p class="small">{_t('Differenzen: Variante minus Stadtmodell. Die Variante wurde nur dort neu berechnet, wo ihre Änderungen wirken können (Wirkungsbereich je Ebene); überall sonst gelten die Werte des Stadtmodells. Anteil der neu berechneten Arbeit: ', 'Differences: variant minus city model. The variant was recomputed only where its changes can act (impact area per layer); elsewhere the city model values stand. Share of the analysis work recomputed: ')}{html.escape(json.dumps({k: round(v, 3) for k, v in work.items()}))}</p>
<pre class="small">{html.escape(json.dumps(json_safe(params), indent=1, ensure_ascii=False))}</pre>
<p>{_t('Dateien', 'Files')}: {files}</p>
</main></body></html>
"""


LAYER_NAMES = {"sun_hours": ("Sonne an Fassaden", "Sun on facades"), "din17037": ("DIN EN 17037", "DIN EN 17037"),
               "solar": ("Solare Einstrahlung", "Solar irradiation"), "noise": ("Lärm", "Noise"),
               "sightlines": ("Sichtachsen", "Sight lines"), "flood": ("Hochwasser", "Flood")}


def render_overview(entries: list[dict], summaries: dict[str, list[dict]], viewer_href: str | None = None) -> str:
    """The variants side by side: one column per current variant version, one row per summary figure
    (the same keys as each variant's ``comparison.json``), the figure's sentence in each cell.

    Parameters
    ----------
    entries : list of dict
        The current entries of ``variants/index.json`` (``key``, ``title``, ``version``, ``author_role``,
        ``created``, ``base_release``, ``comparison``, ``id``).
    summaries : dict
        Variant key -> its summary items (``layer``, ``key``, ``value``, ``text_de``, ``text_en``).
    viewer_href : str, optional
        The city's viewer relative to the page; each column links it on its variant.
    """
    rows: list[tuple[str, str]] = []
    for e in entries:
        for i in summaries.get(e["key"], []):
            if (i["layer"], i["key"]) not in rows:
                rows.append((i["layer"], i["key"]))
    head = "".join(
        f'<th>{html.escape(e["title"])}<br><span class="small">{_t("Version", "version")} {e["version"]} · '
        f'{_t(*ROLE.get(e["author_role"], (e["author_role"], e["author_role"])))}</span><br>'
        f'<a href="{html.escape(e["comparison"])}">{_t("Vergleich", "Comparison")}</a>'
        + (f' · <a href="{html.escape(viewer_href)}#variant={html.escape(e["id"])}@{e["version"]}">{_t("3D", "3D")}</a>'
           if viewer_href else "") + "</th>" for e in entries)
    body = []
    for layer, key in rows:
        cells = []
        for e in entries:
            item = next((i for i in summaries.get(e["key"], []) if (i["layer"], i["key"]) == (layer, key)), None)
            if item is None:
                cells.append("<td>–</td>")
                continue
            v = item["value"]
            cls = "" if not isinstance(v, (int, float)) or v == 0 else ' class="hit"'
            cells.append(f"<td{cls}>{_t(item['text_de'], item['text_en'])}</td>")
        name = LAYER_NAMES.get(layer, (layer, layer))
        body.append(f"<tr><th>{_t(*name)}</th>{''.join(cells)}</tr>")
    bases = sorted({str(e.get("base_release")) for e in entries})
    table = (f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>" if entries
             else f"<p>{_t('Noch keine Variante veröffentlicht.', 'No variant published yet.')}</p>")
    return f"""<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Planungsvarianten im Vergleich</title><style>{_CSS}td{{text-align:left;vertical-align:top}}td.hit{{background:#fff4d6}}</style></head>
<body class="lang-de"><header><button onclick="var b=document.body;b.className=b.className==='lang-de'?'lang-en':'lang-de';document.documentElement.lang=b.className.slice(5)">Deutsch / English</button>
<h1>{_t('Planungsvarianten im Vergleich', 'Planning variants side by side')}</h1>
<p>{_t('Jede Spalte: eine Variante, verglichen mit dem Stadtmodell', 'Each column: one variant, compared with the city model')} {html.escape(', '.join(bases))}</p></header><main>
{table}
<p class="small">{_t('Hervorgehoben: Kennzahlen, die sich ändern. Jede Zahl nennt Methode und Parameter auf der Vergleichsseite der Variante; Maschinenlesbar: index.json.', 'Highlighted: figures that change. Each figure states its method and parameters on the variant comparison page; machine-readable: index.json.')}</p>
</main></body></html>
"""
