"""The CRS of LAS/LAZ files: which one applies, checks against the configuration and the processing CRS.

CRS rules (:func:`resolve_las_crs`)
-----------------------------------
* A CRS record in the file that parses wins. A configured override that differs from it is an
  error (:class:`~citymodel.errors.CRSError` naming both), not a warning.
* No CRS record: the configured override (``sources.lidar.crs``); without one, ``CRSError``.
* A CRS record that is present but cannot be understood (broken WKT, GeoTIFF keys of a
  user-defined projection): ``CRSError`` unless an override is configured; then the override is
  used and the resolution says so (``source='override'`` and a ``note``).
* Only the horizontal part is compared and transformed. Heights stay as they are, converted to
  metres where the file's CRS is in feet (the vertical axis unit if the CRS has one, else the
  horizontal unit, which is how US state-plane LiDAR stores heights).
* A geographic CRS (EPSG:4326) is accepted and always transformed to the processing CRS, which must
  be projected and in metres; a geographic file whose coordinates are not valid longitudes and
  latitudes is rejected.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import laspy
import pyproj
from laspy.vlrs.known import GeoKeyDirectoryVlr, WktCoordinateSystemVlr

from ..errors import ConfigError, CRSError, dataset_error
from .lasfile import open_las_header

log = logging.getLogger(__name__)

CRS_CONFIG_KEY = "sources.lidar.crs"


@dataclass(frozen=True)
class CrsResolution:
    """The CRS that applies to one LAS/LAZ file and where it came from.

    Attributes
    ----------
    crs : pyproj.CRS
    source : str
        ``'file-wkt'``, ``'file-geotiff'`` (the file's own record) or ``'override'`` (configuration).
    note : str
        Human-readable remark (e.g. why the override was used); empty when there is nothing to say.
    """

    crs: pyproj.CRS
    source: str
    note: str = ""


def horizontal_crs(crs: pyproj.CRS) -> pyproj.CRS:
    """The horizontal part of a compound CRS; any other CRS as it is."""
    if crs.is_compound:
        for sub in crs.sub_crs_list:
            if not sub.is_vertical:
                return sub
    return crs


def same_horizontal_crs(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    """True when the horizontal parts of ``a`` and ``b`` are the same CRS.

    Equivalence as PROJ judges it (names ignored, axis order of geographic CRSs ignored), or the
    same EPSG code identified with at least 70 % confidence (ESRI-flavoured WKT from LAS files).
    """
    ha, hb = horizontal_crs(a), horizontal_crs(b)
    if ha.equals(hb, ignore_axis_order=True):
        return True
    ea, eb = ha.to_epsg(min_confidence=70), hb.to_epsg(min_confidence=70)
    return ea is not None and ea == eb


def crs_label(crs: pyproj.CRS) -> str:
    """``EPSG:<code> (<name>)`` where PROJ identifies the code with 70 % confidence, else the quoted name
    (for messages and statistics)."""
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code} ({crs.name})" if code else f"'{crs.name}'"


def _parse_override(crs_override: str | pyproj.CRS | None, dataset: str) -> pyproj.CRS | None:
    if crs_override is None or isinstance(crs_override, pyproj.CRS):
        return crs_override
    try:
        return pyproj.CRS.from_user_input(crs_override)
    except pyproj.exceptions.CRSError as exc:
        raise dataset_error(ConfigError, dataset, f"the configured CRS '{crs_override}' is not a CRS ({exc})",
                            f"set {CRS_CONFIG_KEY} to an EPSG code such as 'EPSG:25832'") from exc


def parse_processing_crs(processing_crs: str | pyproj.CRS, dataset: str) -> pyproj.CRS:
    """The processing CRS as a :class:`pyproj.CRS`, checked to be projected and in metres.

    Raises
    ------
    ConfigError
        ``processing_crs`` is not a CRS.
    CRSError
        It is not a projected CRS in metres.
    """
    try:
        crs = pyproj.CRS.from_user_input(processing_crs)
    except pyproj.exceptions.CRSError as exc:
        raise dataset_error(ConfigError, dataset, f"processing CRS '{processing_crs}' is not a CRS ({exc})",
                            "set processing_crs to a projected CRS in metres, e.g. EPSG:25832") from exc
    h = horizontal_crs(crs)
    if not h.is_projected or abs(h.axis_info[0].unit_conversion_factor - 1.0) > 1e-12:
        raise dataset_error(CRSError, dataset, f"processing CRS {crs_label(crs)} is not a projected CRS in "
                            "metres (geographic coordinates are only accepted as a source, with reprojection)",
                            "set processing_crs to a projected CRS in metres, e.g. EPSG:25832")
    return crs


def _file_crs_records(header: laspy.LasHeader) -> list[tuple[str, pyproj.CRS | None, str]]:
    """(kind, parsed CRS or None, problem) for every CRS record of the header, WKT first."""
    records = list(header.vlrs.get_by_id("LASF_Projection"))
    if header.evlrs is not None:
        records.extend(header.evlrs.get_by_id("LASF_Projection"))
    out: list[tuple[str, pyproj.CRS | None, str]] = []
    for rec in records:
        if isinstance(rec, WktCoordinateSystemVlr):
            kind = "file-wkt"
        elif isinstance(rec, GeoKeyDirectoryVlr):
            kind = "file-geotiff"
        else:
            continue
        try:
            crs = rec.parse_crs()
            problem = "" if crs is not None else "record present but not understood"
        except Exception as exc:  # pyproj.CRSError, laspy errors on malformed keys
            crs, problem = None, f"record present but unparsable ({type(exc).__name__}: {exc})"
        out.append((kind, crs, problem))
    out.sort(key=lambda r: 0 if r[0] == "file-wkt" else 1)
    return out


def resolve_las_crs(path: str | os.PathLike, dataset: str, crs_override: str | pyproj.CRS | None = None,
                    header: laspy.LasHeader | None = None) -> CrsResolution:
    """Decide the CRS of one LAS/LAZ file (rules in the module docstring).

    Parameters
    ----------
    path : path-like
        The LAS/LAZ file (only its header is read; pass ``header`` to skip even that).
    dataset : str
        Dataset name for error messages (the lidar role's dataset id).
    crs_override : str or pyproj.CRS, optional
        The configured ``sources.lidar.crs``.

    Raises
    ------
    CRSError
        No usable CRS and no override, or the file's CRS differs from the override.
    SourceDataError
        The file is not LAS/LAZ or cannot be opened.
    """
    path = Path(path)
    override = _parse_override(crs_override, dataset)
    if header is None:
        header = open_las_header(path, dataset)
    records = _file_crs_records(header)
    parsed = [(kind, crs) for kind, crs, _ in records if crs is not None]
    problems = [f"{kind}: {p}" for kind, crs, p in records if crs is None]
    if parsed:
        kind, crs = parsed[0]
        if override is not None and not same_horizontal_crs(crs, override):
            raise dataset_error(
                CRSError, dataset,
                f"the file's CRS record says {crs_label(crs)} but the configuration says {crs_label(override)}",
                f"remove or correct {CRS_CONFIG_KEY} (it only applies to files without a CRS record), "
                "or repair the file's CRS record", record=str(path))
        note = f"ignored unusable record(s): {'; '.join(problems)}" if problems else ""
        return CrsResolution(crs, kind, note)
    if override is not None:
        if problems:
            note = (f"CRS record(s) could not be used ({'; '.join(problems)}); "
                    f"used configured {CRS_CONFIG_KEY} = {crs_label(override)}")
            log.warning("dataset '%s', file '%s': %s", dataset, path, note)
        else:
            note = f"file has no CRS record; used configured {CRS_CONFIG_KEY} = {crs_label(override)}"
        return CrsResolution(override, "override", note)
    if problems:
        raise dataset_error(CRSError, dataset, f"the file's CRS record cannot be used ({'; '.join(problems)})",
                            f"set {CRS_CONFIG_KEY} in the deployment file to the file's CRS "
                            "(e.g. 'EPSG:25832'), or repair the file's CRS record", record=str(path))
    raise dataset_error(CRSError, dataset, "the file has no CRS record and no CRS is configured for it",
                        f"set {CRS_CONFIG_KEY} in the deployment file to the CRS of the files "
                        "(e.g. 'EPSG:25832' for Thuringia, 'EPSG:28992' for AHN)", record=str(path))


def read_las_crs(path: str | os.PathLike, dataset: str,
                 crs_override: str | pyproj.CRS | None = None) -> pyproj.CRS:
    """The CRS of a LAS/LAZ file, following the project's CRS rules (see :func:`resolve_las_crs`)."""
    return resolve_las_crs(path, dataset, crs_override).crs


def z_factor_to_m(crs: pyproj.CRS) -> float:
    """Factor that turns the file's heights into metres."""
    if crs.is_compound:
        for sub in crs.sub_crs_list:
            if sub.is_vertical:
                return float(sub.axis_info[0].unit_conversion_factor)
    h = horizontal_crs(crs)
    if h.is_projected and h.axis_info:
        return float(h.axis_info[0].unit_conversion_factor)
    return 1.0
