"""Staging of the vector roles: read, normalise, reproject and validate vector/tabular sources.

Pure core (no dagster). Three public steps:

* :func:`read_role` reads one source file (GeoPackage, GeoJSON, zipped Shapefile, CSV), renames the
  source columns to the canonical names of the role (:data:`ROLE_SCHEMAS`), casts them, keeps extra
  source columns as ``src_<name>`` and reprojects to the processing CRS (``always_xy`` semantics).
* :func:`validate_records` splits a staged frame into the usable records and a quarantine table
  that lists, per rejected record, *every* reason why it cannot be used. Nothing is dropped silently
  and nothing is repaired silently.
* :func:`frame_summary` gives count, bbox, CRS and geometry types for asset metadata.

CRS rules
---------
A CRS in the file wins. If ``sources.<role>.crs`` is configured and the file has a *different* CRS,
that is a :class:`~citymodel.errors.CRSError` naming both. A file without a CRS uses the configured
one; without either, a :class:`~citymodel.errors.CRSError` names the key ``sources.<role>.crs``.
A GeoJSON without the (legacy) ``crs`` member is RFC 7946 WGS84 only when no CRS is configured and
its coordinates fit longitude/latitude; otherwise its CRS counts as missing. CSV files carry no CRS.

Axis order of CSV/WKT coordinates
---------------------------------
WKT and ``x``/``y`` columns in a CSV are read in the order given by ``options.axis_order``:
``authority`` (the CRS's own axis order; EPSG:3044, the CRS of Jena's tree cadastre, is
northing-first, so ``POINT (5645000 682000)`` is northing 5645000, easting 682000) or ``xy``
(easting/longitude first). The default is ``authority``. ``easting``/``northing`` columns are
unambiguous and never swapped. GeoPackage, GeoJSON and Shapefile coordinates are always read in
the GIS order in which GDAL gives them (easting first).

CSV geometry comes from the canonical key ``geometry_wkt`` (a WKT column), or from the canonical
keys ``x``/``y`` (first/second coordinate as written) or ``easting``/``northing``; each maps to a
source column through ``sources.<role>.columns`` like every other canonical column. CSV reader
options: ``sep`` (default ``,``), ``decimal`` (default ``.``), ``encoding`` (default ``utf-8``),
``axis_order``; ``format`` (``gpkg``, ``geojson``, ``shp``, ``csv``) overrides detection by suffix.

Casting problems (``storeys = 'drei'``) are not turned into silent nulls: the value becomes null
and the problem is written to the column ``_invalid_values`` of the staged frame, which
:func:`validate_records` turns into a quarantine reason (and drops).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .config import QualitySettings, SourceSettings
from .errors import ConfigError, CRSError, SourceDataError, dataset_error

# ------------------------------------------------------------------------------------------------
# Canonical schemas

#: canonical staged schema per role: column -> dtype (``str``, ``float``, ``Int64``)
ROLE_SCHEMAS: dict[str, dict[str, str]] = {
    "buildings": {"building_id": "str", "function_code": "str", "storeys": "Int64", "roof_form": "str"},
    "trees": {"tree_id": "str", "height_m": "float", "crown_diameter_m": "float",
              "trunk_circumference_cm": "float", "species": "str", "vitality": "str"},
    "roads": {"road_id": "str", "name": "str", "dtv": "float", "m_day": "float", "m_night": "float",
              "p1_day": "float", "p2_day": "float", "pmc_day": "float",
              "p1_night": "float", "p2_night": "float", "pmc_night": "float",
              "speed_car_kmh": "float", "speed_truck_kmh": "float", "surface": "str"},
    "flood_zones": {"zone_id": "str", "scenario": "str", "water_level_m": "float"},
    "viewpoints": {"viewpoint_id": "str", "name": "str", "kind": "str", "eye_height_m": "float",
                   "target_id": "str"},
}

#: the vector roles this module stages
VECTOR_ROLES: tuple[str, ...] = tuple(ROLE_SCHEMAS)

#: id column per role
ID_COLUMN: dict[str, str] = {"buildings": "building_id", "trees": "tree_id", "roads": "road_id",
                             "flood_zones": "zone_id", "viewpoints": "viewpoint_id"}

#: allowed geometry types per role
GEOMETRY_TYPES: dict[str, tuple[str, ...]] = {
    "buildings": ("Polygon", "MultiPolygon"),
    "trees": ("Point",),
    "roads": ("LineString", "MultiLineString"),
    "flood_zones": ("Polygon", "MultiPolygon"),
    "viewpoints": ("Point",),
}

#: default canonical -> source column names (the sample city's source names); used where
#: ``sources.<role>.columns`` says nothing and the canonical name itself is not in the file
DEFAULT_COLUMNS: dict[str, dict[str, str]] = {
    "buildings": {"building_id": "gml_id", "function_code": "gebaeudefunktion", "storeys": "anzahl_og",
                  "roof_form": "dachform"},
    "trees": {"tree_id": "baumnummer", "height_m": "baumhoehe", "species": "ga_lang",
              "trunk_circumference_cm": "st_umfang", "crown_diameter_m": "kr_durchm",
              "vitality": "vitalitaet", "geometry_wkt": "geometrie"},
    "roads": {"road_id": "strassen_id", "name": "name", "dtv": "dtv", "m_day": "m_tag",
              "m_night": "m_nacht", "p1_day": "p1_tag", "p2_day": "p2_tag", "pmc_day": "pkrad_tag",
              "p1_night": "p1_nacht", "p2_night": "p2_nacht", "pmc_night": "pkrad_nacht",
              "speed_car_kmh": "v_pkw", "speed_truck_kmh": "v_lkw", "surface": "belag"},
    "flood_zones": {"zone_id": "gebiet_id", "scenario": "szenario", "water_level_m": "wsp_m"},
    "viewpoints": {"viewpoint_id": "sp_id", "name": "name", "kind": "art", "eye_height_m": "augenhoehe_m",
                   "target_id": "ziel_id"},
}

#: value translations applied after renaming (lower-cased source value -> canonical value)
VALUE_MAPS: dict[str, dict[str, dict[str, str]]] = {
    "viewpoints": {"kind": {"beobachter": "observer", "ziel": "target",
                            "observer": "observer", "target": "target"}},
}

#: canonical geometry keys of CSV sources
CSV_GEOMETRY_KEYS = ("geometry_wkt", "x", "y", "easting", "northing")

#: numeric columns a record of the role cannot do without (an empty cell quarantines the record);
#: every other numeric column is optional (an empty cell is null, NaN)
REQUIRED_VALUES: dict[str, tuple[str, ...]] = {"trees": ("height_m", "crown_diameter_m")}

INVALID_COLUMN = "_invalid_values"
QUARANTINE_COLUMNS = ["dataset", "role", "record_id", "reason", "geometry_wkt", "values_json", "reason_codes"]

_SHARE_COLUMNS = ("p1_day", "p2_day", "pmc_day", "p1_night", "p2_night", "pmc_night")
_SUFFIX_FORMATS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".zip": "shp",
                   ".shp": "shp", ".csv": "csv", ".txt": "csv", ".tsv": "csv"}


# ------------------------------------------------------------------------------------------------
# CRS helpers

def crs_label(crs: Any) -> str | None:
    """``EPSG:<code>`` where the CRS has an EPSG code, else its shortest string; None for no CRS."""
    if crs is None:
        return None
    crs = CRS.from_user_input(crs)
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return f"EPSG:{code}"
    auth = crs.to_authority(min_confidence=70)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_string()


def same_crs(a: Any, b: Any) -> bool:
    """True if two CRSs are the same (axis order ignored, EPSG codes compared where both have one)."""
    a, b = CRS.from_user_input(a), CRS.from_user_input(b)
    if a.equals(b, ignore_axis_order=True):
        return True
    ea, eb = a.to_epsg(min_confidence=70), b.to_epsg(min_confidence=70)
    return ea is not None and ea == eb


def _first_axis_north(crs: CRS) -> bool:
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def _parse_crs(value: str, role: str, dataset: str, key: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except Exception as exc:  # pyproj.exceptions.CRSError
        raise dataset_error(CRSError, dataset, f"'{value}' given at '{key}' is not a CRS pyproj knows ({exc})",
                            f"set '{key}' to an EPSG code such as EPSG:25832") from exc


# ------------------------------------------------------------------------------------------------
# Reading

def read_role(role: str, path: str | Path, source: SourceSettings, processing_crs: str,
              dataset_id: str | None = None, *, max_features: int | None = None,
              max_file_bytes: int | None = None):
    """Read one vector/tabular source and stage it in the canonical schema of its role.

    Parameters
    ----------
    role : str
        One of :data:`VECTOR_ROLES`.
    path : str or Path
        The downloaded file: ``.gpkg``, ``.geojson``/``.json``, ``.zip`` (Shapefile), ``.shp``,
        ``.csv``.
    source : SourceSettings
        ``sources.<role>`` of the deployment: ``crs`` (used where the file has none), ``columns``
        (canonical -> source), ``layer`` (GeoPackage layer / shapefile inside the zip),
        ``options`` (CSV ``sep``/``decimal``/``encoding``, ``axis_order``, ``format``).
    processing_crs : str
        Target CRS, e.g. ``EPSG:25832``.
    dataset_id : str, optional
        Dataset identifier used in error messages; defaults to ``source.dataset``.
    max_features : int, optional
        ``quality.max_features`` of the role: a file with more records fails before any geometry
        is read (GeoPackage, Shapefile and GeoJSON are counted by GDAL, CSV rows after reading
        the text).
    max_file_bytes : int, optional
        ``quality.max_file_bytes`` of the role: a larger file fails before it is opened.

    Returns
    -------
    geopandas.GeoDataFrame
        Canonical columns (typed), ``src_*`` extra columns, ``_invalid_values`` (cast problems or
        null), geometry; CRS = ``processing_crs``; one row per source record, in source order.

    Raises
    ------
    SourceDataError
        Unreadable file, unknown format, missing id column, limits exceeded (permanent).
    """
    import geopandas as gpd

    if role not in ROLE_SCHEMAS:
        raise ConfigError(f"role '{role}' is not a vector role. Fix: use one of {list(VECTOR_ROLES)}")
    dataset = dataset_id or source.dataset
    path = Path(path)
    if not path.is_file():
        raise dataset_error(SourceDataError, dataset, f"file '{path}' does not exist",
                            "download the source again (materialize its raw asset)")
    check_file_size(path, role, dataset, max_file_bytes)
    fmt = str(source.options.get("format") or _SUFFIX_FORMATS.get(path.suffix.lower(), "")).lower()
    target = _parse_crs(processing_crs, role, dataset, "processing_crs")
    configured = (_parse_crs(source.crs, role, dataset, f"sources.{role}.crs") if source.crs else None)

    if fmt == "csv":
        frame, geometry = _read_csv(role, path, source, dataset, configured, max_features)
        file_crs = None
    elif fmt in ("gpkg", "geojson", "shp"):
        frame, geometry, file_crs = _read_ogr(role, path, fmt, source, dataset, configured, max_features)
    else:
        raise dataset_error(SourceDataError, dataset,
                            f"cannot tell the format of '{path.name}' (suffix '{path.suffix}')",
                            f"use .gpkg, .geojson, .zip (Shapefile) or .csv, or set "
                            f"'sources.{role}.options.format'")

    src_crs = _resolve_crs(role, dataset, file_crs, configured)
    staged = _to_canonical(role, frame, source, dataset)
    gdf = gpd.GeoDataFrame(staged, geometry=gpd.GeoSeries(geometry, index=staged.index), crs=src_crs)
    if not same_crs(src_crs, target) or crs_label(src_crs) != crs_label(target):
        gdf = gdf.to_crs(target)  # geopandas transforms with always_xy=True
    else:
        gdf = gdf.set_crs(target, allow_override=True)
    gdf.attrs.update({"dataset": dataset, "role": role, "source_crs": crs_label(src_crs)})
    return gdf


def check_file_size(path: Path, role: str, dataset: str, max_file_bytes: int | None) -> None:
    """Refuse a data file larger than ``quality.max_file_bytes`` of its role (before opening it).

    Raises
    ------
    SourceDataError
        Names the file, its size and the limit.
    """
    if max_file_bytes is None:
        return
    size = Path(path).stat().st_size
    if size > max_file_bytes:
        raise dataset_error(SourceDataError, dataset,
                            f"'{Path(path).name}' has {size} bytes, more than quality.max_file_bytes.{role} "
                            f"= {max_file_bytes}; it was not read",
                            f"check that the catalog names the right file; if it does, raise "
                            f"quality.max_file_bytes.{role} in the deployment file", record=Path(path).name)


def check_feature_count(count: int, role: str, dataset: str, max_features: int | None,
                        where: str, when: str = "before reading any geometry") -> None:
    """Refuse more records than ``quality.max_features`` of the role (called before the geometry
    is read where the format allows; ``when`` says at which point staging stopped).

    Raises
    ------
    SourceDataError
        Names the count, the limit and the fix.
    """
    if max_features is None or count <= max_features:
        return
    raise dataset_error(SourceDataError, dataset,
                        f"{where} holds {count} or more records, more than quality.max_features.{role} = "
                        f"{max_features}; staging stopped {when} (so many records would take hours to "
                        f"process and are most likely not what the role should hold)",
                        f"check the source (e.g. a flood of tiny or duplicated features); if the count is "
                        f"genuine, raise quality.max_features.{role} in the deployment file")


def _resolve_crs(role: str, dataset: str, file_crs: CRS | None, configured: CRS | None) -> CRS:
    key = f"sources.{role}.crs"
    if file_crs is not None:
        if configured is not None and not same_crs(file_crs, configured):
            raise dataset_error(
                CRSError, dataset,
                f"the file declares CRS {crs_label(file_crs)} but '{key}' says {crs_label(configured)}",
                f"remove '{key}' (a CRS in the file wins) or correct it if the file's CRS is wrong at the source")
        return file_crs
    if configured is not None:
        return configured
    raise dataset_error(CRSError, dataset, "the source has no CRS and none is configured",
                        f"set '{key}' in the deployment file to the CRS of the source (e.g. EPSG:25832)")


def _read_ogr(role, path, fmt, source, dataset, configured, max_features=None):
    import pyogrio

    layer = source.layer
    uri = str(path)
    if fmt == "shp" and path.suffix.lower() == ".zip":
        uri = _zip_shapefile_uri(role, path, source, dataset)
        layer = None
    elif fmt == "gpkg":
        try:
            layers = [str(name) for name in pyogrio.list_layers(uri)[:, 0]]
        except Exception as exc:
            raise dataset_error(SourceDataError, dataset, f"'{path.name}' is not a readable GeoPackage ({exc})",
                                "download the source again or check that it is a GeoPackage") from exc
        if layer is None:
            if len(layers) != 1:
                raise dataset_error(SourceDataError, dataset,
                                    f"'{path.name}' holds {len(layers)} layers {layers}",
                                    f"set 'sources.{role}.layer' to the layer to read")
            layer = layers[0]
        elif layer not in layers:
            raise dataset_error(SourceDataError, dataset, f"'{path.name}' has no layer '{layer}' (layers: {layers})",
                                f"set 'sources.{role}.layer' to one of {layers}")
    else:
        layer = None
    if max_features is not None:
        try:
            count = int(pyogrio.read_info(uri, layer=layer, force_feature_count=True)["features"])
        except Exception as exc:
            raise dataset_error(SourceDataError, dataset, f"'{path.name}' cannot be read as {fmt} ({exc})",
                                "download the source again; if it persists, report the broken file to the "
                                "publisher") from exc
        check_feature_count(count, role, dataset, max_features, f"'{path.name}'")
    try:
        gdf = pyogrio.read_dataframe(uri, layer=layer)
    except Exception as exc:
        raise dataset_error(SourceDataError, dataset, f"'{path.name}' cannot be read as {fmt} ({exc})",
                            "download the source again; if it persists, report the broken file to the publisher"
                            ) from exc
    file_crs = CRS.from_user_input(gdf.crs) if gdf.crs is not None else None
    geometry = np.asarray(gdf.geometry.values, dtype=object)
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    if fmt == "geojson" and file_crs is not None and not _geojson_has_crs_member(path):
        # GDAL reports WGS84 for every GeoJSON without a "crs" member (RFC 7946). Honour that only
        # where no CRS is configured and the coordinates are longitude/latitude.
        if configured is not None:
            file_crs = None
        else:
            bounds = shapely.total_bounds(geometry)
            if not (np.all(np.isfinite(bounds)) and -180 <= bounds[0] and bounds[2] <= 180
                    and -90 <= bounds[1] and bounds[3] <= 90):
                file_crs = None
    return frame, geometry, file_crs


def _geojson_has_crs_member(path: Path) -> bool:
    """Whether a GeoJSON document has a top-level ``crs`` member (the legacy 2008 spec)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(1 << 20).decode("utf-8", errors="replace")
    feat = head.find('"features"')
    if feat >= 0 and '"crs"' in head[:feat]:
        return True
    if size <= 64 << 20:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            doc = json.load(fh)
        return isinstance(doc, dict) and doc.get("crs") is not None
    with path.open("rb") as fh:
        fh.seek(max(0, size - (64 << 10)))
        tail = fh.read().decode("utf-8", errors="replace")
    return '"crs"' in tail[tail.rfind("]"):]


def _zip_shapefile_uri(role, path, source, dataset) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise dataset_error(SourceDataError, dataset, f"'{path.name}' is not a valid zip archive",
                            "download the source again") from exc
    shps = [n for n in names if n.lower().endswith(".shp")]
    if source.layer:
        shps = [n for n in shps if Path(n).stem == source.layer or n == source.layer]
    if len(shps) != 1:
        raise dataset_error(SourceDataError, dataset,
                            f"'{path.name}' holds {len(shps)} matching shapefiles "
                            f"{[n for n in names if n.lower().endswith('.shp')]}",
                            f"set 'sources.{role}.layer' to the shapefile's name (without .shp)")
    shp = shps[0]
    stem = shp[:-4]
    lower = {n.lower() for n in names}
    missing = [ext for ext in (".shx", ".dbf") if (stem + ext).lower() not in lower]
    if missing:
        raise dataset_error(SourceDataError, dataset,
                            f"'{path.name}' lacks {', '.join(stem + e for e in missing)} beside '{shp}'",
                            "ask the publisher for the complete shapefile (.shp, .shx, .dbf, .prj)")
    return f"/vsizip/{path.resolve()}/{shp}"


def _read_csv(role, path, source, dataset, configured, max_features=None):
    opts = source.options
    try:
        frame = pd.read_csv(path, sep=opts.get("sep", ","), encoding=opts.get("encoding", "utf-8"),
                            dtype=str, keep_default_na=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise dataset_error(SourceDataError, dataset, f"'{path.name}' cannot be read as CSV ({exc})",
                            f"check 'sources.{role}.options' (sep, decimal, encoding) against the file") from exc
    check_feature_count(len(frame), role, dataset, max_features, f"'{path.name}'")
    frame.columns = [str(c).strip() for c in frame.columns]
    if configured is None:
        raise dataset_error(CRSError, dataset, "the source (CSV) has no CRS and none is configured",
                            f"set 'sources.{role}.crs' in the deployment file to the CRS of the coordinates")
    axis_order = str(opts.get("axis_order", "authority")).lower()
    if axis_order not in ("authority", "xy"):
        raise ConfigError(f"dataset '{dataset}': 'sources.{role}.options.axis_order' is '{axis_order}'. "
                          f"Fix: use 'authority' (the CRS's axis order) or 'xy' (easting first)")
    swap = axis_order == "authority" and _first_axis_north(configured)
    decimal = opts.get("decimal", ".")

    cols = _column_map(role, frame.columns, source, dataset, keys=CSV_GEOMETRY_KEYS)
    n = len(frame)
    geometry = np.full(n, None, dtype=object)
    problems = pd.Series([None] * n, index=frame.index, dtype=object)
    used = []
    if "geometry_wkt" in cols:
        col = cols["geometry_wkt"]
        used.append(col)
        text = frame[col]
        present = text.notna() & (text.astype(str).str.strip() != "")
        parsed = shapely.from_wkt(np.where(present, text.astype(object), None), on_invalid="ignore")
        bad = present.to_numpy() & pd.isna(parsed)
        for i in np.flatnonzero(bad):
            problems.iat[i] = f"{col} '{_short(text.iat[i])}' is not valid WKT"
        if swap:
            parsed = shapely.transform(parsed, _swap_xy, include_z=None)
        geometry = np.asarray(parsed, dtype=object)
    elif ("x" in cols and "y" in cols) or ("easting" in cols and "northing" in cols):
        if "easting" in cols and "northing" in cols:
            ccol, dcol, do_swap = cols["easting"], cols["northing"], False
        else:
            ccol, dcol, do_swap = cols["x"], cols["y"], swap
        used += [ccol, dcol]
        a, bad_a = _cast_float(frame[ccol], decimal)
        b, bad_b = _cast_float(frame[dcol], decimal)
        for mask, col, src in ((bad_a, ccol, frame[ccol]), (bad_b, dcol, frame[dcol])):
            for i in np.flatnonzero(mask.to_numpy()):
                problems.iat[i] = _join(problems.iat[i], f"{col} '{_short(src.iat[i])}' is not a number")
        x, y = (b, a) if do_swap else (a, b)
        ok = (x.notna() & y.notna()).to_numpy()
        pts = shapely.points(np.column_stack([x.to_numpy(dtype=float), y.to_numpy(dtype=float)]))
        geometry = np.where(ok, pts, None)
    else:
        raise dataset_error(SourceDataError, dataset,
                            f"the CSV has no geometry column (columns: {list(frame.columns)})",
                            f"map 'geometry_wkt' (a WKT column) or 'x'/'y' (or 'easting'/'northing') in "
                            f"'sources.{role}.columns'")
    frame = frame.drop(columns=used)
    frame[INVALID_COLUMN] = problems
    frame.attrs["decimal"] = decimal
    return frame, geometry


def _swap_xy(coords: np.ndarray) -> np.ndarray:
    out = coords.copy()
    out[:, 0], out[:, 1] = coords[:, 1], coords[:, 0]
    return out


def _column_map(role: str, available, source: SourceSettings, dataset: str,
                keys: tuple[str, ...] = ()) -> dict[str, str]:
    """canonical -> source column for the columns that can be found."""
    available = list(available)
    wanted = list(ROLE_SCHEMAS[role]) + [k for k in keys if k not in ROLE_SCHEMAS[role]]
    out: dict[str, str] = {}
    for canon in wanted:
        if canon in source.columns:
            col = source.columns[canon]
            if col not in available:
                raise dataset_error(SourceDataError, dataset,
                                    f"column '{col}' (configured for '{canon}') is not in the file "
                                    f"(columns: {available})",
                                    f"correct 'sources.{role}.columns.{canon}'")
            out[canon] = col
        else:
            # the canonical name, the default source name, then both cut to the 10 characters of a
            # Shapefile's DBF (``strassen_id`` is stored as ``strassen_i``)
            default = DEFAULT_COLUMNS[role].get(canon)
            for cand in (canon, default, canon[:10], default and default[:10]):
                if cand and cand in available and cand not in out.values():
                    out[canon] = cand
                    break
    unknown = sorted(set(source.columns) - set(wanted) - set(CSV_GEOMETRY_KEYS))
    if unknown:
        raise ConfigError(f"dataset '{dataset}': 'sources.{role}.columns' names unknown canonical column(s) "
                          f"{unknown}. Fix: use keys from {wanted + [k for k in CSV_GEOMETRY_KEYS if k not in wanted]}")
    return out


def _to_canonical(role: str, frame: pd.DataFrame, source: SourceSettings, dataset: str) -> pd.DataFrame:
    schema = ROLE_SCHEMAS[role]
    problems = (frame[INVALID_COLUMN] if INVALID_COLUMN in frame.columns
                else pd.Series([None] * len(frame), index=frame.index, dtype=object))
    frame = frame.drop(columns=[INVALID_COLUMN], errors="ignore")
    cols = _column_map(role, frame.columns, source, dataset)
    id_col = ID_COLUMN[role]
    if id_col not in cols:
        raise dataset_error(SourceDataError, dataset,
                            f"no id column for '{id_col}' (tried '{DEFAULT_COLUMNS[role][id_col]}' and "
                            f"'{id_col}'; columns: {list(frame.columns)})",
                            f"set 'sources.{role}.columns.{id_col}' to the source's id column")
    decimal = source.options.get("decimal", frame.attrs.get("decimal", "."))
    out = pd.DataFrame(index=frame.index)
    for canon, kind in schema.items():
        if canon not in cols:
            out[canon] = _null_series(kind, frame.index)
            continue
        raw = frame[cols[canon]]
        if kind == "str":
            values, bad = _cast_str(raw), None
        elif kind == "float":
            values, bad = _cast_float(raw, decimal)
        else:
            values, bad = _cast_int(raw, decimal)
        vmap = VALUE_MAPS.get(role, {}).get(canon)
        if vmap is not None:
            low = values.str.strip().str.lower()
            mapped = low.map(vmap)
            unmapped = values.notna() & mapped.isna()
            for i in np.flatnonzero(unmapped.to_numpy()):
                problems.iat[i] = _join(problems.iat[i], f"{canon} '{_short(raw.iat[i])}' is not one of "
                                                         f"{sorted(set(vmap))}")
            values = mapped.astype("str")
        if bad is not None:
            what = "a whole number" if kind == "Int64" else "a number"
            for i in np.flatnonzero(bad.to_numpy()):
                problems.iat[i] = _join(problems.iat[i],
                                        f"{canon} '{_short(raw.iat[i])}' (column '{cols[canon]}') is not {what}")
        out[canon] = values
    used = set(cols.values())
    for col in frame.columns:
        if col not in used:
            out[f"src_{col}"] = frame[col]
    out[INVALID_COLUMN] = problems.astype(object)
    return out.reset_index(drop=True)


def _null_series(kind: str, index) -> pd.Series:
    if kind == "str":
        return pd.Series(np.nan, index=index, dtype="str")
    if kind == "Int64":
        return pd.Series(pd.NA, index=index, dtype="Int64")
    return pd.Series(np.nan, index=index, dtype="float64")


def _cast_str(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        out = raw.astype(object).where(raw.notna(), None).map(lambda v: None if v is None else str(v))
    elif pd.api.types.is_integer_dtype(raw):  # exact, also beyond 2**53 (long numeric ids)
        ints = raw.astype("Int64")
        out = ints.astype(object).where(ints.notna(), None).map(lambda v: None if v is None else str(v))
    elif pd.api.types.is_numeric_dtype(raw):
        f = pd.to_numeric(raw, errors="coerce").astype("float64")
        integral = f.notna() & np.isfinite(f) & (f == np.round(f))
        out = pd.Series([None] * len(raw), index=raw.index, dtype=object)
        out[integral] = f[integral].astype("int64").astype(str)
        other = f.notna() & ~integral
        out[other] = f[other].astype(str)
    else:
        out = raw.astype(object).map(lambda v: None if _missing(v) else (str(v).strip() or None))
    return out.astype("str")


def _cast_float(raw: pd.Series, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Values as float64 and the mask of non-null values that are not numbers."""
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(object)
    if pd.api.types.is_numeric_dtype(raw):
        out = pd.to_numeric(raw, errors="coerce").astype("float64")
        return out, pd.Series(False, index=raw.index)
    # an empty or blank cell is a missing value (null), not an error; pandas may give it as None,
    # NaN or "" depending on the reader, so every form is mapped to None first
    # (plain lists: pandas may turn a None of a mapped object column into NaN or a string dtype)
    text = [None if _missing(v) else (str(v).strip() or None) for v in raw.tolist()]
    if decimal != ".":
        # only the decimal mark is translated: "1.234,5" stays unreadable (flagged), never 1234.5 by guess
        text = [None if v is None else v.replace(decimal, ".") for v in text]
    out = pd.to_numeric(pd.Series(text, index=raw.index, dtype=object), errors="coerce").astype("float64")
    bad = pd.Series([v is not None for v in text], index=raw.index) & out.isna()
    return out, bad


def _missing(v: Any) -> bool:
    """None, NaN, pandas NA or NaT: no value."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _cast_int(raw: pd.Series, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    f, bad = _cast_float(raw, decimal)
    frac = f.notna() & (~np.isfinite(f) | (f != np.round(f)))
    bad = bad | frac
    f = f.where(~frac)
    return f.round().astype("Int64"), bad


def _short(value: Any, n: int = 60) -> str:
    s = str(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def _join(a: str | None, b: str) -> str:
    return b if a is None or (isinstance(a, float) and math.isnan(a)) else f"{a}; {b}"


# ------------------------------------------------------------------------------------------------
# Validation

#: reason code of a building outside the deployment's extent (:func:`validate_records`)
OUTSIDE_EXTENT = "outside_extent"


def validate_records(role: str, gdf, quality: QualitySettings, dataset_id: str | None = None,
                     extent: tuple[float, float, float, float] | None = None, margin_m: float = 0.0):
    """Split a staged frame into usable records and a quarantine table.

    Every record gets all the reasons why it cannot be used: missing or duplicate id (all records
    sharing an id are quarantined; the reason names the other rows), cast problems from
    :func:`read_role`, missing/empty/invalid geometry (shapely's ``is_valid_reason``), wrong geometry
    type, a geometry in the wrong axis order (with ``extent``: outside the extent grown by
    ``margin_m``, but inside it with x and y swapped; :func:`axis_order_suspects`), a building footprint smaller than ``min_footprint_area_m2``, an empty cell in a required
    numeric column (:data:`REQUIRED_VALUES`: a tree's height and crown diameter; empty optional
    cells are null), out-of-range values (storeys ``0..storeys_max``, tree height
    ``> 0 .. tree_height_max_m``, crown diameter ``> 0``, traffic volumes and shares ``>= 0``,
    shares ``<= 100``, speeds ``> 0``, eye height ``>= 0``), a road with neither hourly volumes
    (``m_day`` and ``m_night``) nor ``dtv``, a flood zone without water level, a viewpoint kind
    other than observer/target, a building whose footprint's representative point (shapely's
    ``point_on_surface``, the point that places it in a tile) lies outside ``extent`` (reason code
    ``outside_extent``: no tile would build it). Geometry is never repaired.

    Parameters
    ----------
    role : str
        One of :data:`VECTOR_ROLES`.
    gdf : geopandas.GeoDataFrame
        The output of :func:`read_role`.
    quality : QualitySettings
        Limits (``storeys_max``, ``tree_height_max_m``, ``min_footprint_area_m2``).
    dataset_id : str, optional
        Written to the ``dataset`` column of the quarantine; defaults to
        ``gdf.attrs['dataset']`` or the role.
    extent : (minx, miny, maxx, maxy), optional
        The deployment's extent in the processing CRS (half-open, as tiles are); buildings outside
        it are quarantined. Not checked when omitted. Any record outside it (grown by ``margin_m``)
        that lies inside it with x and y swapped is quarantined (``axis_order``); other records
        outside it are kept (a cadastre may cover the whole city).
    margin_m : float
        How far beyond the extent a record still counts as inside for the axis-order check
        (e.g. the analysis scene margin).

    Returns
    -------
    valid : geopandas.GeoDataFrame
        The usable records (``_invalid_values`` dropped, index reset).
    quarantine : pandas.DataFrame
        One row per rejected record: ``dataset``, ``role``, ``record_id``, ``reason`` (all reasons,
        ``; ``-separated), ``geometry_wkt``, ``values_json`` (the record's attributes and its
        ``_row`` in the source), ``reason_codes`` (comma-separated short codes, for counting).
    """
    if role not in ROLE_SCHEMAS:
        raise ConfigError(f"role '{role}' is not a vector role. Fix: use one of {list(VECTOR_ROLES)}")
    dataset = dataset_id or gdf.attrs.get("dataset") or role
    missing_cols = [c for c in ROLE_SCHEMAS[role] if c not in gdf.columns]
    if missing_cols:
        raise dataset_error(SourceDataError, dataset, f"staged frame lacks canonical column(s) {missing_cols}",
                            "stage the source with citymodel.vector.read_role first")
    n = len(gdf)
    reasons: list[list[tuple[str, str]]] = [[] for _ in range(n)]

    def flag(mask, code: str, text) -> None:
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            reasons[i].append((code, text(i) if callable(text) else text))

    id_col = ID_COLUMN[role]
    ids = gdf[id_col]
    id_missing = ids.isna().to_numpy() | (ids.astype(object).map(lambda v: isinstance(v, str) and not v.strip())
                                          ).to_numpy()
    flag(id_missing, "missing_id", f"missing {id_col}")
    dup = ids.duplicated(keep=False).to_numpy() & ~id_missing
    if dup.any():
        groups: dict[Any, list[int]] = {}
        for i in np.flatnonzero(dup):
            groups.setdefault(ids.iat[i], []).append(i)
        flag(dup, "duplicate_id", lambda i: (f"duplicate {id_col} '{ids.iat[i]}': also used by row(s) "
                                             f"{', '.join(str(j) for j in groups[ids.iat[i]] if j != i)}"))

    if INVALID_COLUMN in gdf.columns:
        inv = gdf[INVALID_COLUMN]
        has = inv.notna().to_numpy()
        for i in np.flatnonzero(has):
            for part in str(inv.iat[i]).split("; "):
                reasons[i].append(("invalid_value", part))

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    is_null = pd.isna(geoms) | np.array([g is None for g in geoms], dtype=bool)
    geoms_nn = np.where(is_null, None, geoms)
    empty = ~is_null & shapely.is_empty(geoms_nn)
    flag(is_null, "missing_geometry", "missing geometry")
    flag(empty, "empty_geometry", "empty geometry")
    present = ~is_null & ~empty
    types = shapely.get_type_id(geoms_nn)
    type_names = np.array(["None", "Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                           "MultiLineString", "MultiPolygon", "GeometryCollection"], dtype=object)
    names = np.where(types >= 0, type_names[np.clip(types + 1, 0, 8)], "None")
    allowed = GEOMETRY_TYPES[role]
    wrong = present & ~np.isin(names, allowed)
    flag(wrong, "wrong_geometry_type", lambda i: f"geometry type {names[i]}, expected {'/'.join(allowed)}")
    valid = shapely.is_valid(geoms_nn)
    invalid = present & ~wrong & ~valid
    if invalid.any():
        why = shapely.is_valid_reason(np.where(invalid, geoms_nn, None))
        flag(invalid, "invalid_geometry", lambda i: f"invalid geometry: {why[i]}")

    if extent is not None:
        swapped = present & axis_order_suspects(geoms_nn, extent, margin_m)
        fix = _axis_order_fix(role)
        flag(swapped, "axis_order",
             lambda i: (f"outside the extent [{', '.join(f'{v:.0f}' for v in extent)}], but inside it with x and y "
                        f"swapped: the coordinates are most likely in the other axis order. Fix: {fix}"))

    def num(col):
        return gdf[col].astype("float64").to_numpy()

    def rng(col, lo=None, hi=None, lo_open=False, code="out_of_range", unit=""):
        v = num(col)
        bad = np.zeros(n, dtype=bool)
        ok = ~np.isnan(v)
        if lo is not None:
            bad |= ok & ((v <= lo) if lo_open else (v < lo))
        if hi is not None:
            bad |= ok & (v > hi)
        lo_txt = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
        hi_txt = "" if hi is None else f"<= {hi:g}"
        cond = " and ".join(t for t in (lo_txt, hi_txt) if t)
        flag(bad, code, lambda i: f"{col} = {v[i]:g}{unit} out of range (must be {cond})")

    for col in REQUIRED_VALUES.get(role, ()):
        flag(np.isnan(num(col)), "missing_value",
             f"{col} is missing (an empty cell): the record cannot be used without it")

    if role == "buildings":
        rng("storeys", 0, quality.storeys_max)
        min_area = float(getattr(quality, "min_footprint_area_m2", 0.0) or 0.0)
        if min_area > 0:
            usable = present & ~wrong & valid
            area = shapely.area(np.where(usable, geoms_nn, None))
            small = usable & (np.nan_to_num(area, nan=np.inf) < min_area)
            flag(small, "too_small", lambda i: f"footprint area {area[i]:.2f} m² is below "
                                               f"quality.min_footprint_area_m2 = {min_area:g} m²")
        if extent is not None:
            x0, y0, x1, y1 = (float(v) for v in extent)
            placeable = present & ~wrong & valid
            rp = np.full((n, 2), np.nan)
            if placeable.any():
                rp[placeable] = shapely.get_coordinates(shapely.point_on_surface(geoms_nn[placeable]))
            outside = placeable & ~((x0 <= rp[:, 0]) & (rp[:, 0] < x1) & (y0 <= rp[:, 1]) & (rp[:, 1] < y1))
            flag(outside, OUTSIDE_EXTENT,
                 lambda i: f"outside the extent: the footprint's representative point ({rp[i, 0]:.1f}, "
                           f"{rp[i, 1]:.1f}) is not in extent [{x0:g}, {y0:g}, {x1:g}, {y1:g}], so no tile "
                           f"would build it (widen 'extent' to include it)")
    elif role == "trees":
        rng("height_m", 0, quality.tree_height_max_m, lo_open=True, unit=" m")
        rng("crown_diameter_m", 0, lo_open=True, unit=" m")
        rng("trunk_circumference_cm", 0, unit=" cm")
    elif role == "roads":
        for col in ("dtv", "m_day", "m_night"):
            rng(col, 0)
        for col in _SHARE_COLUMNS:
            rng(col, 0, 100, unit=" %")
        for col in ("speed_car_kmh", "speed_truck_kmh"):
            rng(col, 0, lo_open=True, unit=" km/h")
        hourly = ~np.isnan(num("m_day")) & ~np.isnan(num("m_night"))
        flag(~hourly & np.isnan(num("dtv")), "no_traffic_volume",
             "no traffic volume: needs hourly volumes (m_day and m_night) or dtv")
    elif role == "flood_zones":
        flag(np.isnan(num("water_level_m")), "missing_water_level", "flood zone without water level (water_level_m)")
    elif role == "viewpoints":
        rng("eye_height_m", 0, unit=" m")

    bad_rows = np.array([bool(r) for r in reasons], dtype=bool)
    keep = gdf.loc[~bad_rows].drop(columns=[INVALID_COLUMN], errors="ignore").reset_index(drop=True)
    keep.attrs = dict(gdf.attrs)

    rows = []
    value_cols = [c for c in gdf.columns if c not in (gdf.geometry.name, INVALID_COLUMN)]
    for i in np.flatnonzero(bad_rows):
        rec = gdf.iloc[i]
        values = {c: _json_value(rec[c]) for c in value_cols}
        values["_row"] = int(i)
        rid = ids.iat[i]
        g = geoms_nn[i]
        rows.append({
            "dataset": dataset,
            "role": role,
            "record_id": None if id_missing[i] else str(rid),
            "reason": "; ".join(t for _, t in reasons[i]),
            "geometry_wkt": None if g is None else shapely.to_wkt(g, rounding_precision=3, trim=True),
            "values_json": json.dumps(values, ensure_ascii=False, sort_keys=True),
            "reason_codes": ",".join(dict.fromkeys(c for c, _ in reasons[i])),
        })
    quarantine = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    return keep, quarantine


def axis_order_suspects(geoms, extent: tuple[float, float, float, float], margin_m: float = 0.0) -> np.ndarray:
    """True for each geometry that lies outside ``extent`` (grown by ``margin_m``) but inside it
    with its x and y swapped: the sign of coordinates read in the wrong axis order (a northing
    read as the easting). None and empty geometries are False.
    """
    g = np.asarray(geoms, dtype=object)
    ok = np.array([x is not None for x in g], dtype=bool)
    ok[ok] = ~shapely.is_empty(g[ok])
    out = np.zeros(len(g), dtype=bool)
    if not ok.any():
        return out
    x0, y0, x1, y1 = extent
    grown = shapely.box(x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m)
    inside = shapely.box(x0, y0, x1, y1)
    sub = g[ok]
    outside = ~shapely.intersects(sub, grown)
    swapped = shapely.transform(sub, lambda c: c[:, ::-1])
    out[ok] = outside & shapely.intersects(swapped, inside)
    return out


def _axis_order_fix(role: str) -> str:
    return (f"check sources.{role}.crs (a northing-first CRS such as EPSG:3044 reads the first value as the "
            f"northing) and sources.{role}.options.axis_order ('authority' or 'xy'); for x/y columns, map them "
            f"as columns.easting and columns.northing, which are never swapped")


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (int, float, bool, str)):
        return v
    return str(v)


def empty_quarantine() -> pd.DataFrame:
    """A quarantine table with no rows (the columns of :func:`validate_records`)."""
    return pd.DataFrame(columns=QUARANTINE_COLUMNS)


# ------------------------------------------------------------------------------------------------
# Summary

def frame_summary(gdf) -> dict:
    """Count, bbox, CRS and geometry types of a (staged) GeoDataFrame, for asset metadata.

    Returns
    -------
    dict
        ``count`` (int), ``bbox`` ([minx, miny, maxx, maxy] or None when there is no geometry),
        ``crs`` (``EPSG:<code>`` or None), ``geometry_types`` ({type: count}, ``None`` for missing).
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool) & ~pd.isna(geoms)
    present &= ~shapely.is_empty(np.where(present, geoms, None))
    bbox = None
    if present.any():
        b = shapely.total_bounds(geoms[present])
        bbox = [float(x) for x in b]
    not_null = np.array([g is not None for g in geoms], dtype=bool) & ~pd.isna(geoms)
    type_ids = shapely.get_type_id(np.where(not_null, geoms, None))
    id_to_name = {-1: "None", 0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
                  5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
    ids, counts_arr = np.unique(type_ids, return_counts=True)
    counts = {id_to_name[int(k)]: int(v) for k, v in zip(ids, counts_arr)}
    return {"count": int(len(gdf)), "bbox": bbox, "crs": crs_label(gdf.crs), "geometry_types": counts}
