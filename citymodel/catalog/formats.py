"""File formats of distributions, and which distributions a role can read.

:func:`format_of` names the format of a distribution from ``dct:format``, ``dcat:mediaType`` or
the download URL's extension; :data:`ROLE_FORMATS` lists the formats each role accepts and
:func:`select_distributions` keeps a dataset's distributions in those.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import unquote, urlparse

from ..errors import CatalogError, SourceDataError, dataset_error
from .model import Dataset, Distribution

#: Formats each role accepts (keys of the format detection below).
ROLE_FORMATS: dict[str, frozenset[str]] = {
    "buildings": frozenset({"geojson", "gpkg", "shp", "zip"}),
    "lidar": frozenset({"laz", "las", "zip"}),
    "lod2_reference": frozenset({"citygml", "cityjson", "zip"}),
    "trees": frozenset({"csv", "geojson", "gpkg"}),
    "roads": frozenset({"geojson", "gpkg", "zip"}),
    "flood_zones": frozenset({"geojson", "gpkg", "zip"}),
    "viewpoints": frozenset({"geojson", "gpkg"}),
    "variants": frozenset({"geojson", "cityjson", "zip"}),
    "weather": frozenset({"dwd_try", "epw", "csv", "zip"}),
}

_FORMAT_NAMES = {
    "laz": "laz", "las": "las", "laszip": "laz", "gpkg": "gpkg", "geopackage": "gpkg",
    "geojson": "geojson", "csv": "csv", "zip": "zip", "gml": "citygml", "citygml": "citygml",
    "cityjson": "cityjson", "tiff": "geotiff", "tif": "geotiff", "geotiff": "geotiff",
    "shp": "shp", "shapefile": "shp", "esri shapefile": "shp", "epw": "epw", "dat": "dwd_try",
}
_MEDIA_TYPES = {
    "application/vnd.laszip": "laz", "application/vnd.las": "las",
    "application/geopackage+sqlite3": "gpkg", "application/geo+json": "geojson",
    "application/vnd.geo+json": "geojson", "text/csv": "csv", "application/zip": "zip",
    "application/x-zip-compressed": "zip", "application/gml+xml": "citygml",
    "application/city+json": "cityjson", "image/tiff": "geotiff", "image/geotiff": "geotiff",
    "application/x-shapefile": "shp", "x-gis/x-shapefile": "shp",
}
_EXTENSIONS = {
    ".laz": "laz", ".las": "las", ".gpkg": "gpkg", ".geojson": "geojson", ".csv": "csv",
    ".zip": "zip", ".gml": "citygml", ".cityjson": "cityjson", ".city.json": "cityjson",
    ".tif": "geotiff", ".tiff": "geotiff", ".shp": "shp", ".epw": "epw", ".dat": "dwd_try",
}
#: File extension of each format: the name a download gets when its URL names none.
FORMAT_EXTENSIONS = {"laz": ".laz", "las": ".las", "gpkg": ".gpkg", "geojson": ".geojson",
                     "csv": ".csv", "zip": ".zip", "citygml": ".gml", "cityjson": ".city.json",
                     "geotiff": ".tif", "shp": ".shp", "epw": ".epw", "dwd_try": ".dat"}


def _extension(url: str | None) -> str:
    if not url:
        return ""
    name = unquote(urlparse(url).path).rsplit("/", 1)[-1].lower()
    if name.endswith(".city.json"):
        return ".city.json"
    return os.path.splitext(name)[1]


def format_of(distribution: Distribution, accepted: Iterable[str] | None = None, *,
              role: str | None = None, dataset: str | None = None) -> str:
    """The file format of a distribution, one of :data:`ROLE_FORMATS`' values.

    ``dct:format`` is asked first, then ``dcat:mediaType``, then the download URL's extension; the
    first that names a format among ``accepted`` (default: those of ``role``, else all) wins.

    Raises
    ------
    SourceDataError
        No signal names a known format, or none names an accepted one; the message names the
        media type, format and extension seen.
    """
    if accepted is None:
        accepted = ROLE_FORMATS.get(role, None) if role else None
    accepted_set = set(accepted) if accepted is not None else set(FORMAT_EXTENSIONS)
    fmt = (distribution.format or "").strip().lower()
    media = (distribution.media_type or "").split(";")[0].strip().lower()
    ext = _extension(distribution.url)
    candidates = [_FORMAT_NAMES.get(fmt), _MEDIA_TYPES.get(media), _EXTENSIONS.get(ext)]
    if media == "image/tiff" and "application=geotiff" in (distribution.media_type or ""):
        candidates[1] = "geotiff"
    for c in candidates:
        if c is not None and c in accepted_set:
            return c
    seen = (f"media type {distribution.media_type!r}, format {distribution.format!r}, "
            f"file extension {ext!r} of {distribution.url}")
    who = dataset or role or "distribution"
    known = [c for c in candidates if c]
    if known:
        problem = (f"distribution {distribution.title!r} is {known[0]}, which "
                   f"{'role ' + repr(role) if role else 'the caller'} does not accept "
                   f"(accepted: {', '.join(sorted(accepted_set))}); seen: {seen}")
    else:
        problem = f"distribution {distribution.title!r} has an unknown format; seen: {seen}"
    raise dataset_error(SourceDataError, who, problem,
                        "set dct:format (e.g. LAZ, GeoJSON, GPKG, CSV, ZIP, GML, GeoTIFF) or "
                        "dcat:mediaType of the distribution in the catalog, or configure a dataset "
                        "in a format this role reads")


def select_distributions(dataset: Dataset, role: str | None = None) -> list[Distribution]:
    """The distributions of ``dataset`` in a format ``role`` accepts (all when role is None).

    Raises
    ------
    CatalogError
        The dataset has no distribution at all.
    SourceDataError
        None of its distributions is in an accepted format (names what was seen).
    """
    if not dataset.distributions:
        raise dataset_error(CatalogError, dataset.identifier,
                            "the dataset has no dcat:distribution",
                            "add a distribution with a dcat:downloadURL in the catalog")
    if role is None:
        return list(dataset.distributions)
    out, errors = [], []
    for d in dataset.distributions:
        try:
            format_of(d, role=role, dataset=dataset.identifier)
            out.append(d)
        except SourceDataError as exc:
            errors.append(exc)
    if not out:
        raise errors[0]
    return out

