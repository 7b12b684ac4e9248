"""Great-expectations suites per staged role and for the LiDAR tile statistics (no dagster).

Each suite is first declared as plain data (:func:`suite_specs`: a list of :class:`ExpectationSpec`,
pure Python, no great-expectations import) so that Dagster can declare one asset check per
expectation at load time (:func:`check_specs`). :func:`run_suite` turns the specs into a
great-expectations 1.x suite and validates a pandas frame with it: an ephemeral context, a pandas
data source, a dataframe asset, a whole-dataframe batch definition and a validation definition,
built once per process and per suite (cached), then run per frame. great-expectations is imported
lazily (it costs about 3 s).

Vector roles are validated on the records *as delivered* (the output of
:func:`citymodel.vector.read_role`, before :func:`citymodel.vector.validate_records` quarantines
any), so that the id, geometry and range expectations can fail; each counts one error class of
the quarantine (:func:`error_class`) and fails when more than ``quality.blocking[class]`` of the
records show it (great-expectations' ``mostly``); ``not_empty`` is judged on the records left
after quarantine.
geometry is checked through columns added to a copy by :func:`suite_frame`: ``geom_valid`` (bool),
``geom_type`` (str), ``crs`` (``EPSG:<code>``). The LiDAR suite (role ``"lidar"``) runs over one row
per tile with the columns :data:`LIDAR_COLUMNS`.

Blocking vs. warning
--------------------
Blocking (severity ``ERROR``; a failure must stop publishing): table not empty, schema (columns
present, column types), CRS equals the processing CRS, ids not null and unique, geometry valid and
of the role's type, a flood zone's water level present, LiDAR point density, coverage of tile ∩
extent and required classes.
Warning only (severity ``WARN``): value ranges (``validate_records`` already quarantines records
out of range, so these fail only for frames that bypassed it), the share of records that carry
optional attributes, plausible LiDAR heights.

To Dagster
----------
``for c in run_suite(role, frame, settings).check_results(): AssetCheckResult(check_name=c["name"],
passed=c["passed"], severity=AssetCheckSeverity(c["severity"]), metadata=c["metadata"])``, with
``AssetCheckSpec(name=s["name"], asset=..., blocking=s["blocking"], description=s["description"])``
for ``s in check_specs(role, settings)``. The share of quarantined records is one more blocking
check outside great-expectations: :func:`quarantine_check` (name ``quarantine_share``), declared
with :func:`check_specs` ``(..., include_quarantine=True)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from citymodel.vector import GEOMETRY_TYPES, ID_COLUMN, ROLE_SCHEMAS, crs_label
from citymodel.fileio import json_safe

#: roles with a suite
SUITE_ROLES: tuple[str, ...] = tuple(ROLE_SCHEMAS) + ("lidar",)

#: columns of the LiDAR tile statistics frame (plus ``class_<c>_count`` per required class)
LIDAR_COLUMNS: dict[str, str] = {"tile_id": "str", "point_count": "int64", "density_m2": "float64",
                                 "coverage_share": "float64", "z_min_m": "float64", "z_max_m": "float64"}

#: plausible terrain/point heights in metres (outside: a wrong unit, CRS or outliers)
Z_PLAUSIBLE_M: tuple[float, float] = (-500.0, 9000.0)

#: warn when fewer than this share of records carry an optional attribute
OPTIONAL_PRESENT_SHARE = 0.5

#: optional attributes whose presence share is watched, per role
OPTIONAL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "buildings": ("function_code", "storeys", "roof_form"),
    "trees": ("height_m", "crown_diameter_m", "species"),
    "roads": ("speed_car_kmh", "speed_truck_kmh", "surface"),
    "flood_zones": ("scenario",),
    "viewpoints": ("eye_height_m",),
}

# great-expectations' name for the pandas dtype of each canonical type (it reports Int64 as int64)
_GX_TYPE = {"str": "str", "float": "float64", "Int64": "int64", "int64": "int64", "float64": "float64",
            "bool": "bool"}
_GEOM_COLUMNS = {"geom_valid": "bool", "geom_type": "str", "crs": "str"}

ERROR = "ERROR"
WARN = "WARN"


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, independent of great-expectations.

    ``name`` is the Dagster check name (``[a-z0-9_]``, unique within the role), ``expectation``
    the great-expectations class name (``ExpectColumnValuesToBeBetween``), ``kwargs`` its
    arguments.
    """

    name: str
    expectation: str
    kwargs: dict
    blocking: bool
    description: str

    @property
    def severity(self) -> str:
        return ERROR if self.blocking else WARN


@dataclass
class SuiteResult:
    """Outcome of one suite over one frame.

    ``success``: every expectation passed; ``blocking``: at least one blocking expectation failed
    (publishing must stop); ``expectations``: one dict per expectation with ``name``, ``success``,
    ``observed``, ``kwargs``, ``blocking``, ``severity``, ``expectation``, ``description``.
    """

    role: str
    success: bool
    expectations: list[dict]
    blocking: bool
    row_count: int = 0
    suite_name: str = ""
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``fail`` (a blocking expectation failed), ``warn`` (only warnings failed) or ``pass``."""
        return "fail" if self.blocking else ("warn" if not self.success else "pass")

    def expectation(self, name: str) -> dict:
        for e in self.expectations:
            if e["name"] == name:
                return e
        raise KeyError(f"suite '{self.role}' has no expectation '{name}' "
                       f"(has {[e['name'] for e in self.expectations]})")

    def check_results(self) -> list[dict]:
        """One dict per expectation, shaped for ``dagster.AssetCheckResult``:
        ``name``, ``passed``, ``severity`` (``ERROR``/``WARN``), ``blocking``, ``description``,
        ``metadata`` (JSON-safe: observed value, arguments, expectation type, row count)."""
        out = []
        for e in self.expectations:
            meta = {"expectation": e["expectation"], "observed": e["observed"], "kwargs": e["kwargs"],
                    "row_count": self.row_count}
            out.append({"name": e["name"], "passed": bool(e["success"]), "severity": e["severity"],
                        "blocking": e["blocking"], "description": e["description"], "metadata": meta})
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status
        return d


# ------------------------------------------------------------------------------------------------
# Suite declarations (pure)

def _processing_crs_label(settings) -> str:
    return crs_label(settings.processing_crs)


def suite_specs(role: str, settings) -> list[ExpectationSpec]:
    """The expectations of a role's suite (no great-expectations import).

    Parameters
    ----------
    role : str
        A vector role (``buildings``, ``trees``, ``roads``, ``flood_zones``, ``viewpoints``) or
        ``lidar``.
    settings : citymodel.config.Settings
        Uses ``processing_crs``, ``quality`` and ``lidar``.
    """
    if role == "lidar":
        return _lidar_specs(settings)
    if role not in ROLE_SCHEMAS:
        raise KeyError(f"no quality suite for role '{role}'. Fix: use one of {list(SUITE_ROLES)}")
    schema = ROLE_SCHEMAS[role]
    q = settings.quality
    specs = [
        ExpectationSpec("not_empty", "ExpectTableRowCountToBeBetween", {"min_value": 1}, True,
                        "the staged table holds at least one record"),
        ExpectationSpec("schema_columns", "ExpectTableColumnsToMatchSet",
                        {"column_set": list(schema) + list(_GEOM_COLUMNS), "exact_match": False}, True,
                        "every canonical column is present"),
    ]
    for col, kind in schema.items():
        specs.append(ExpectationSpec(f"type_{col}", "ExpectColumnValuesToBeOfType",
                                     {"column": col, "type_": _GX_TYPE[kind]}, True,
                                     f"column {col} has type {kind}"))
    id_col = ID_COLUMN[role]
    specs += [
        ExpectationSpec(f"{id_col}_not_null", "ExpectColumnValuesToNotBeNull", {"column": id_col}, True,
                        f"every record has a {id_col}"),
        ExpectationSpec(f"{id_col}_unique", "ExpectColumnValuesToBeUnique", {"column": id_col}, True,
                        f"{id_col} is unique"),
        ExpectationSpec("geometry_valid", "ExpectColumnValuesToBeInSet",
                        {"column": "geom_valid", "value_set": [True]}, True,
                        "every geometry is present, non-empty and valid (OGC simple features)"),
        ExpectationSpec("geometry_type", "ExpectColumnValuesToBeInSet",
                        {"column": "geom_type", "value_set": list(GEOMETRY_TYPES[role])}, True,
                        f"geometry types are {'/'.join(GEOMETRY_TYPES[role])}"),
        ExpectationSpec("crs_is_processing_crs", "ExpectColumnValuesToBeInSet",
                        {"column": "crs", "value_set": [_processing_crs_label(settings)]}, True,
                        f"the table is in the processing CRS {_processing_crs_label(settings)}"),
    ]

    def rng(col, lo=None, hi=None, strict_min=False, unit=""):
        kw = {"column": col}
        if lo is not None:
            kw["min_value"] = float(lo)
            if strict_min:
                kw["strict_min"] = True
        if hi is not None:
            kw["max_value"] = float(hi)
        desc = " and ".join(t for t in ((f"> {lo:g}" if strict_min else f">= {lo:g}") if lo is not None else "",
                                        f"<= {hi:g}" if hi is not None else "") if t)
        specs.append(ExpectationSpec(f"{col}_range", "ExpectColumnValuesToBeBetween", kw, False,
                                     f"{col} {desc}{unit}"))

    if role == "buildings":
        rng("storeys", 0, q.storeys_max)
    elif role == "trees":
        rng("height_m", 0, q.tree_height_max_m, unit=" m")
        rng("crown_diameter_m", 0, unit=" m")
        rng("trunk_circumference_cm", 0, unit=" cm")
        specs.append(ExpectationSpec(
            CROWN_CHECK, "ExpectColumnValuesToBeInSet", {"column": "crown_diameter_estimated", "value_set": [False]},
            False, "every tree has a measured crown diameter; trees without one got one from the trunk "
                   "(25 × stem diameter, Coombes et al. 2019) or the height (half of it) and are counted here"))
    elif role == "roads":
        for col in ("dtv", "m_day", "m_night"):
            rng(col, 0, unit=" veh")
        for col in ("p1_day", "p2_day", "pmc_day", "p1_night", "p2_night", "pmc_night"):
            rng(col, 0, 100, unit=" %")
        for col in ("speed_car_kmh", "speed_truck_kmh"):
            rng(col, 0, strict_min=True, unit=" km/h")
    elif role == "flood_zones":
        specs.append(ExpectationSpec("water_level_m_not_null", "ExpectColumnValuesToNotBeNull",
                                     {"column": "water_level_m"}, True,
                                     "every flood zone has a water surface elevation"))
    elif role == "viewpoints":
        specs.append(ExpectationSpec("kind_known", "ExpectColumnValuesToBeInSet",
                                     {"column": "kind", "value_set": ["observer", "target"]}, False,
                                     "kind is observer or target"))
        rng("eye_height_m", 0, unit=" m")
    specs = [_with_tolerance(sp, error_class(sp.name, role), q) for sp in specs]
    for col in OPTIONAL_ATTRIBUTES.get(role, ()):
        specs.append(ExpectationSpec(f"{col}_present_share", "ExpectColumnValuesToNotBeNull",
                                     {"column": col, "mostly": OPTIONAL_PRESENT_SHARE}, False,
                                     f"at least {OPTIONAL_PRESENT_SHARE:.0%} of the records carry {col}"))
    return specs


def error_class(check_name: str, role: str) -> str | None:
    """The error class (a quarantine reason code, key of ``quality.blocking``) that an expectation
    of a vector role's suite counts, or None for table-level expectations (not empty, columns,
    types, CRS)."""
    id_col = ID_COLUMN.get(role)
    if check_name == f"{id_col}_not_null":
        return "missing_id"
    if check_name == f"{id_col}_unique":
        return "duplicate_id"
    if check_name == "geometry_valid":
        return "invalid_geometry"
    if check_name == "geometry_type":
        return "wrong_geometry_type"
    if check_name == "water_level_m_not_null":
        return "missing_value"
    if check_name.endswith("_range") or check_name == "kind_known":
        return "out_of_range"
    return None


def _with_tolerance(spec: ExpectationSpec, cls: str | None, quality) -> ExpectationSpec:
    """``spec`` with great-expectations' ``mostly`` = 1 - ``quality.blocking[cls]`` (the share of
    records that may fail it); unchanged for a tolerance of 0 or no class."""
    if cls is None:
        return spec
    share = float((getattr(quality, "blocking", None) or {}).get(cls, 0.0))
    desc = f"{spec.description} (error class {cls}: at most {share:.1%} of the delivered records, quality.blocking)"
    if share <= 0:
        return ExpectationSpec(spec.name, spec.expectation, spec.kwargs, spec.blocking, desc)
    return ExpectationSpec(spec.name, spec.expectation, {**spec.kwargs, "mostly": round(1.0 - share, 9)},
                           spec.blocking, desc)


def _lidar_specs(settings) -> list[ExpectationSpec]:
    lid = settings.lidar
    zlo, zhi = Z_PLAUSIBLE_M
    cols = list(LIDAR_COLUMNS) + [f"class_{c}_count" for c in lid.required_classes]
    specs = [
        ExpectationSpec("not_empty", "ExpectTableRowCountToBeBetween", {"min_value": 1}, True,
                        "statistics of at least one tile"),
        ExpectationSpec("schema_columns", "ExpectTableColumnsToMatchSet",
                        {"column_set": cols, "exact_match": False}, True, "every statistics column is present"),
        ExpectationSpec("tile_id_not_null", "ExpectColumnValuesToNotBeNull", {"column": "tile_id"}, True,
                        "every row names its tile"),
        ExpectationSpec("tile_id_unique", "ExpectColumnValuesToBeUnique", {"column": "tile_id"}, True,
                        "one row per tile"),
        ExpectationSpec("density", "ExpectColumnValuesToBeBetween",
                        {"column": "density_m2", "min_value": float(lid.min_density_m2)}, True,
                        f"point density >= {lid.min_density_m2:g} points/m² of the covered area "
                        f"(lidar.min_density_m2)"),
        ExpectationSpec("coverage", "ExpectColumnValuesToBeBetween",
                        {"column": "coverage_share", "min_value": float(lid.min_coverage_share)}, True,
                        f"at least {lid.min_coverage_share:.0%} of tile ∩ extent holds points "
                        f"(lidar.min_coverage_share)"),
    ]
    for c in lid.required_classes:
        specs.append(ExpectationSpec(f"class_{c}_present", "ExpectColumnValuesToBeBetween",
                                     {"column": f"class_{c}_count", "min_value": 1}, True,
                                     f"the tile holds points of class {c} (lidar.required_classes)"))
    specs += [
        ExpectationSpec("z_min_plausible", "ExpectColumnValuesToBeBetween",
                        {"column": "z_min_m", "min_value": zlo, "max_value": zhi}, False,
                        f"lowest point within {zlo:g}..{zhi:g} m"),
        ExpectationSpec("z_max_plausible", "ExpectColumnValuesToBeBetween",
                        {"column": "z_max_m", "min_value": zlo, "max_value": zhi}, False,
                        f"highest point within {zlo:g}..{zhi:g} m"),
        ExpectationSpec("z_order", "ExpectColumnPairValuesAToBeGreaterThanB",
                        {"column_A": "z_max_m", "column_B": "z_min_m", "or_equal": True}, False,
                        "z_max_m >= z_min_m"),
    ]
    return specs


def check_specs(role: str, settings, include_quarantine: bool = False) -> list[dict]:
    """``name``, ``blocking``, ``severity``, ``description`` of each expectation, for declaring
    Dagster ``AssetCheckSpec``s at load time (no great-expectations import). With
    ``include_quarantine`` the :func:`quarantine_check` is appended (vector roles)."""
    out = [{"name": s.name, "blocking": s.blocking, "severity": s.severity, "description": s.description}
           for s in suite_specs(role, settings)]
    if include_quarantine:
        out.append({"name": QUARANTINE_CHECK, "blocking": True, "severity": ERROR,
                    "description": "at most quality.max_quarantine_share of the records are quarantined"})
    return out


QUARANTINE_CHECK = "quarantine_share"
#: the warning check that counts trees whose crown diameter was estimated (citymodel.trees)
CROWN_CHECK = "crown_diameter_measured"


def quarantine_check(records: int, quarantined: int, quality, outside_extent: int = 0,
                     reasons: dict[str, int] | None = None) -> dict:
    """The blocking check on the share of quarantined records, in the shape of
    :meth:`SuiteResult.check_results` (and of the report's ``checks``).

    Parameters
    ----------
    records : int
        Records read from the source (valid + quarantined).
    quarantined : int
        Records in the quarantine.
    quality : citymodel.config.QualitySettings
        ``max_quarantine_share`` is the limit (share, 0..1).
    outside_extent : int
        Quarantined records whose only reason is that they lie outside the deployment's extent
        (a source that covers more than the city is not faulty): left out of the share on both
        sides and reported in the metadata.
    reasons : dict, optional
        The most frequent quarantine reasons with their counts: in the metadata (``top_reasons``)
        and, where the check fails, in the description, so that the failure says why.
    """
    considered = records - outside_extent
    bad = quarantined - outside_extent
    share = bad / considered if considered else 0.0
    limit = float(quality.max_quarantine_share)
    passed = bool(share <= limit)
    desc = f"at most {limit:.1%} of the records are quarantined (quality.max_quarantine_share)"
    meta = {"records": int(records), "quarantined": int(quarantined), "share": round(share, 6), "max_share": limit,
            "outside_extent": int(outside_extent)}
    if reasons:
        meta["top_reasons"] = {str(k): int(v) for k, v in reasons.items()}
        if not passed:
            top, count = next(iter(meta["top_reasons"].items()))
            desc += f"; {bad} of {considered} are, most often ({count}x) because: {top}"
    return {"name": QUARANTINE_CHECK, "passed": passed, "severity": ERROR, "blocking": True,
            "description": desc, "metadata": meta}


NO_POINTS_FALLBACK_CHECK = "fallback_no_points_share"
#: the no-points fallback check fails only from this many buildings on (one new house in a tile of
#: five is not a broken point cloud)
NO_POINTS_FALLBACK_MIN_COUNT = 3


def no_points_fallback_check(methods, reasons, building_ids, quality) -> dict:
    """The blocking check on the LoD1 fallbacks of one tile caused by missing points.

    A building falls back to a LoD1 block when its footprint lies outside the point cloud or holds
    too few points (:func:`citymodel.lod2.build.lacks_points`). A few do so in any city (buildings
    newer than the flight, small sheds); a tile whose points are missing, misplaced or all at one
    spot makes most of its buildings fall back, and the release must not say "pass" then. Fails
    when more than ``quality.max_fallback_share`` of the tile's buildings, and at least
    :data:`NO_POINTS_FALLBACK_MIN_COUNT`, fell back for lack of points.

    Parameters
    ----------
    methods, reasons, building_ids : sequences
        ``method``, ``fallback_reason`` and ``building_id`` of each reconstructed building.
    quality : citymodel.config.QualitySettings
        ``max_fallback_share`` (0..1).
    """
    from citymodel.lod2.build import lacks_points

    rows = [(str(b), str(m), r) for b, m, r in zip(building_ids, methods, reasons) if str(m) != "rejected"]
    lacking = [b for b, m, r in rows if m == "lod1_fallback" and lacks_points(r)]
    n = len(rows)
    share = len(lacking) / n if n else 0.0
    limit = float(quality.max_fallback_share)
    failed = share > limit and len(lacking) >= NO_POINTS_FALLBACK_MIN_COUNT
    return {"name": NO_POINTS_FALLBACK_CHECK, "passed": not failed, "severity": ERROR, "blocking": True,
            "description": f"at most {limit:.0%} of the buildings fall back to LoD1 for lack of points "
                           f"(quality.max_fallback_share)",
            "metadata": {"buildings": n, "lacking_points": len(lacking), "share": round(share, 6),
                         "max_share": limit, "examples": lacking[:20]}}


def blocking_map(role: str, settings) -> dict[str, bool]:
    """expectation name -> blocking, for one role."""
    return {s.name: s.blocking for s in suite_specs(role, settings)}


# ------------------------------------------------------------------------------------------------
# Frames

def suite_frame(gdf) -> pd.DataFrame:
    """A plain pandas copy of a staged GeoDataFrame with the geometry as checkable columns.

    Returns
    -------
    pandas.DataFrame
        The attribute columns plus ``geom_valid`` (bool: present, non-empty and valid),
        ``geom_type`` (str, ``None`` for a missing geometry) and ``crs`` (``EPSG:<code>`` or
        ``none``).
    """
    import shapely

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool) & ~pd.isna(geoms)
    g = np.where(present, geoms, None)
    valid = present & ~shapely.is_empty(g) & shapely.is_valid(g)
    names = np.array(["None", "Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"], dtype=object)
    type_ids = shapely.get_type_id(g)
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).copy()
    df["geom_valid"] = valid.astype(bool)
    df["geom_type"] = pd.Series(names[type_ids + 1], index=df.index, dtype="str")
    df["crs"] = pd.Series(crs_label(gdf.crs) or "none", index=df.index, dtype="str")
    return df


# ------------------------------------------------------------------------------------------------
# great-expectations (lazy, cached per process)

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"context": None, "datasource": None, "definitions": {}}


def _context():
    if _STATE["context"] is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        _STATE["context"] = ctx
        _STATE["datasource"] = ctx.data_sources.add_pandas("citymodel")
    return _STATE["context"]


def _validation_definition(role: str, specs: list[ExpectationSpec]):
    fingerprint = hashlib.sha1(json.dumps([asdict(s) for s in specs], sort_keys=True, default=str)
                               .encode()).hexdigest()[:10]
    key = f"{role}_{fingerprint}"
    vd = _STATE["definitions"].get(key)
    if vd is not None:
        return key, vd
    import great_expectations as gx

    ctx = _context()
    asset = _STATE["datasource"].add_dataframe_asset(name=key)
    batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name=key))
    for s in specs:
        cls = getattr(gx.expectations, s.expectation)
        suite.add_expectation(cls(**s.kwargs, meta={"check": s.name}))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(data=batch, suite=suite, name=key))
    _STATE["definitions"][key] = vd
    return key, vd


def run_suite(role: str, frame, settings, staged_rows: int | None = None) -> SuiteResult:
    """Validate a frame with the role's suite.

    Parameters
    ----------
    role : str
        A vector role or ``lidar``.
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        A vector role's staged valid frame (a GeoDataFrame is turned into a checkable frame with
        :func:`suite_frame`; a DataFrame must already carry ``geom_valid``/``geom_type``/``crs``),
        or the LiDAR statistics, one row per tile (:data:`LIDAR_COLUMNS` + ``class_<c>_count``).
    settings : citymodel.config.Settings
        Uses ``processing_crs``, ``quality`` and ``lidar``.
    staged_rows : int, optional
        With a vector role's records *as delivered* in ``frame`` (before quarantine, so that the
        id, geometry and range expectations can fail): the number of records left after
        quarantine, on which ``not_empty`` is judged instead (a table whose every record is
        quarantined is empty).

    Returns
    -------
    SuiteResult
        Expectations in declaration order; ``blocking`` is True when a blocking one failed.
    """
    specs = suite_specs(role, settings)
    if hasattr(frame, "geometry") and role != "lidar":
        frame = suite_frame(frame)
    frame = pd.DataFrame(frame)
    if role == "trees" and "crown_diameter_estimated" not in frame.columns:
        frame["crown_diameter_estimated"] = False  # staged without citymodel.trees.fill_crown_diameters
    with _LOCK:
        key, vd = _validation_definition(role, specs)
        result = vd.run(batch_parameters={"dataframe": frame})
    by_name = {}
    for r in result.results:
        by_name[r.expectation_config.meta.get("check")] = r
    expectations = []
    for s in specs:
        r = by_name.get(s.name)
        success = bool(r is not None and r.success)
        observed = _observed(r) if r is not None else {"error": "expectation did not run"}
        expectations.append({"name": s.name, "success": success, "observed": observed,
                             "kwargs": _json_safe(s.kwargs), "blocking": s.blocking, "severity": s.severity,
                             "expectation": s.expectation, "description": s.description})
    if staged_rows is not None:
        for e in expectations:
            if e["name"] == "not_empty":
                e["success"] = bool(staged_rows >= 1)
                e["observed"] = {"delivered_records": int(len(frame)), "staged_records": int(staged_rows)}
    failed = [e["name"] for e in expectations if not e["success"] and e["blocking"]]
    warnings = [e["name"] for e in expectations if not e["success"] and not e["blocking"]]
    return SuiteResult(role=role, success=not failed and not warnings, expectations=expectations,
                       blocking=bool(failed), row_count=int(len(frame)), suite_name=key, failed=failed,
                       warnings=warnings)


def _observed(r) -> Any:
    res = dict(r.result or {})
    exc = r.exception_info or {}
    if exc.get("raised_exception"):
        return {"error": str(exc.get("exception_message"))}
    if "observed_value" in res:
        out: dict[str, Any] = {"observed_value": res["observed_value"]}
        if "details" in res:
            out["details"] = res["details"]
        return _json_safe(out)
    keys = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
    out = {k: res[k] for k in keys if k in res}
    if "partial_unexpected_list" in res:
        out["unexpected_examples"] = list(res["partial_unexpected_list"])[:20]
    if "partial_unexpected_index_list" in res:
        out["unexpected_rows"] = list(res["partial_unexpected_index_list"])[:20]
    return _json_safe(out)


def _json_safe(v: Any) -> Any:
    return json_safe(v)
