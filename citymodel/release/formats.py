"""What a file of a release is, by its name: media type, EU file-type code, label, specification.

Used for the ``dct:format``/``dcat:mediaType`` of the catalog (:mod:`.dcat`) and the format column
of ``index.html``.
"""

from __future__ import annotations

from pathlib import PurePosixPath

#: Specifications referenced with dct:conformsTo.
SPECS = {
    "cityjson": "https://www.cityjson.org/specs/2.0.1/",
    "cityjsonseq": "https://www.cityjson.org/cityjsonseq/",
    "citygml": "http://www.opengis.net/spec/citygml/2.0",
    "3dtiles": "http://www.opengis.net/doc/CS/3D-Tiles/1.1",
    "geoparquet": "https://geoparquet.org/",
    "geopackage": "http://www.opengis.net/doc/IS/geopackage/1.4",
    "geojson": "https://www.rfc-editor.org/rfc/rfc7946",
}

# (suffix or exact name, media type, registered with IANA, EU file-type code or None, label,
#  spec key). First match wins, so compound suffixes come first.
FILE_KINDS: tuple[tuple[str, str | None, bool, str | None, str, str | None], ...] = (
    ("tileset.json", "application/json", True, "JSON", "3D Tiles", "3dtiles"),
    (".city.jsonl", "application/city+json-seq", False, None, "CityJSONSeq", "cityjsonseq"),
    (".city.json", "application/city+json", True, "JSON", "CityJSON", "cityjson"),
    (".gml", "application/gml+xml", True, "GML", "GML", None),
    (".gpkg", "application/geopackage+sqlite3", True, "GPKG", "GeoPackage", "geopackage"),
    (".parquet", "application/vnd.apache.parquet", True, "PARQUET", "GeoParquet", "geoparquet"),
    (".geojson", "application/geo+json", True, "GEOJSON", "GeoJSON", "geojson"),
    (".csv", "text/csv", True, "CSV", "CSV", None),
    (".tif", "image/tiff", True, "GEOTIFF", "GeoTIFF", None),
    (".tiff", "image/tiff", True, "GEOTIFF", "GeoTIFF", None),
    (".png", "image/png", True, "PNG", "PNG", None),
    (".html", "text/html", True, "HTML", "HTML", None),
    (".jsonld", "application/ld+json", True, "JSON_LD", "JSON-LD", None),
    (".json", "application/json", True, "JSON", "JSON", None),
    (".glb", "model/gltf-binary", True, None, "glTF (binary)", None),
    (".gltf", "model/gltf+json", True, None, "glTF", None),
    (".laz", "application/vnd.laszip", True, "LAZ", "LAZ", None),
    (".las", "application/vnd.las", True, "LAS", "LAS", None),
    (".zip", "application/zip", True, "ZIP", "ZIP", None),
    (".txt", "text/plain", True, "TXT", "Text", None),
    ("SHA256SUMS", "text/plain", True, "TXT", "Text", None),
    (".pnts", "application/octet-stream", True, None, "3D Tiles pnts", None),
    (".b3dm", "application/octet-stream", True, None, "3D Tiles b3dm", None),
)
#: Media types registered with IANA (they get a dcat:mediaType IRI).
REGISTERED_MEDIA_TYPES = {k[1] for k in FILE_KINDS if k[1] and k[2]}
#: EU file-type codes that the table uses (they get a dct:format IRI).
FILE_TYPE_CODES = frozenset(k[3] for k in FILE_KINDS if k[3])


def file_kind(rel_path: str) -> tuple[str | None, bool, str | None, str, str | None]:
    """``(media type, registered with IANA, EU file-type code, label, spec key)`` of a file name."""
    name = PurePosixPath(rel_path).name
    low = name.lower()
    for suffix, media, registered, code, label, spec in FILE_KINDS:
        if low == suffix.lower() or (suffix.startswith(".") and low.endswith(suffix)):
            return media, registered, code, label, spec
    return None, False, None, PurePosixPath(name).suffix.lstrip(".").upper() or "file", None
