"""What is in a folder of geodata: one :class:`FileFacts` per data file, read from headers only.

LAZ/LAS: the header (bounds, point count, CRS record); GeoPackage, GeoJSON, zipped Shapefile:
GDAL's layer information (geometry type, fields, CRS, bounds, feature count); CSV: separator,
decimal mark, columns and the first rows; CityGML (``.gml``/``.xml`` or inside a zip): the
namespace and the ``srsName``. Nothing is staged; every file gets its size, SHA-256 and
modification date for the catalog.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..fileio import sha256_file

#: file suffixes init looks at (others are listed as skipped)
DATA_SUFFIXES = (".laz", ".las", ".gpkg", ".geojson", ".json", ".csv", ".tsv", ".zip", ".gml", ".xml", ".shp")

#: files of a Shapefile beside its .shp (only a zip of them can be downloaded as one distribution)
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".fix")

_CITYGML_NS = re.compile(rb"http://www\.opengis\.net/citygml/\d")
_SRS_NAME = re.compile(rb'srsName="([^"]+)"')


@dataclass
class FileFacts:
    """What init knows about one file (``kind``: ``lidar``, ``vector``, ``csv``, ``citygml``,
    ``variant`` or ``unsupported``; ``problem`` says why a file cannot be used)."""

    path: Path
    rel: str
    size: int
    sha256: str
    modified: datetime
    kind: str
    format: str
    crs: str | None = None
    vertical_crs: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    geometry_type: str | None = None
    fields: list[str] = field(default_factory=list)
    count: int | None = None
    layer: str | None = None
    layers: list[str] = field(default_factory=list)
    csv_sep: str | None = None
    csv_decimal: str | None = None
    csv_encoding: str | None = None
    rows: list[dict] = field(default_factory=list)
    problem: str | None = None
    url: str | None = None   # where the file stays (init --url); None: the file in the folder


def epsg_label(crs) -> str | None:
    """``EPSG:<code>`` of a pyproj CRS (or anything pyproj reads), else its name; None for None."""
    if crs is None:
        return None
    from pyproj import CRS

    try:
        c = CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - an unreadable CRS is reported as missing
        return None
    code = c.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else c.to_string()


def _split_compound(crs):
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    if c.is_compound:
        subs = c.sub_crs_list
        return epsg_label(subs[0]), epsg_label(subs[1]) if len(subs) > 1 else None
    return epsg_label(c), None


def scan_folder(root: str | Path, exclude: tuple[str, ...] = ()) -> tuple[list[FileFacts], list[str]]:
    """Every data file below ``root`` (sorted by relative path) and the files skipped with why.

    ``exclude``: relative paths (files or folders) not to look at (the catalog, the deployment
    file and the output folder that init itself writes).
    """
    root = Path(root).resolve()
    facts, skipped = [], []
    excl = tuple(e.strip("/") for e in exclude if e)
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if any(rel == e or rel.startswith(e + "/") for e in excl):
            continue
        suffix = p.suffix.lower()
        if suffix in _SHAPEFILE_PARTS:
            continue
        if suffix in (".tif", ".tiff"):
            skipped.append(f"{rel}: a raster (a terrain model?): not used, the terrain model is derived from "
                           f"the LiDAR tiles' ground points")
            continue
        if suffix not in DATA_SUFFIXES:
            skipped.append(f"{rel}: not a supported format (LAZ/LAS, GeoPackage, GeoJSON, CSV, zipped "
                           f"Shapefile, CityGML)")
            continue
        facts.append(inspect_file(p, rel))
    return facts, skipped


def inspect_file(path: Path, rel: str) -> FileFacts:
    """The :class:`FileFacts` of one file (never raises for a broken file: ``problem`` says why)."""
    st = path.stat()
    base = dict(path=path, rel=rel, size=st.st_size, sha256=sha256_file(path),
                modified=datetime.fromtimestamp(int(st.st_mtime), tz=timezone.utc))
    suffix = path.suffix.lower()
    try:
        if suffix in (".laz", ".las"):
            return _lidar(base, suffix[1:])
        if suffix in (".csv", ".tsv"):
            return _csv(base)
        if suffix in (".gml", ".xml"):
            head = path.open("rb").read(65536)
            return _citygml(base, head, "citygml") if _CITYGML_NS.search(head) else FileFacts(
                **base, kind="unsupported", format="xml", problem="XML but not CityGML")
        if suffix == ".shp":
            return FileFacts(**base, kind="unsupported", format="shp",
                             problem="a bare Shapefile: one catalog distribution must hold all its parts. "
                                     "Fix: zip the .shp, .shx, .dbf and .prj together and put the zip here")
        if suffix == ".zip":
            return _zip(base)
        if suffix in (".json", ".geojson"):
            head = path.open("rb").read(65536)
            if b'"variant"' in head:
                try:
                    doc = json.loads(path.read_text(encoding="utf-8"))
                    if isinstance(doc, dict) and isinstance(doc.get("variant"), dict):
                        return FileFacts(**base, kind="variant", format="geojson")
                except (ValueError, UnicodeDecodeError):
                    pass
        return _vector(base, str(path), "gpkg" if suffix == ".gpkg" else "geojson")
    except Exception as exc:  # noqa: BLE001 - a broken file is listed with its reason
        return FileFacts(**base, kind="unsupported", format=suffix[1:], problem=f"cannot be read: {exc}")


def _lidar(base: dict, fmt: str) -> FileFacts:
    import laspy

    with laspy.open(base["path"]) as reader:
        h = reader.header
        try:
            crs = h.parse_crs()
        except Exception:  # noqa: BLE001 - a broken CRS record is a missing one
            crs = None
        horizontal, vertical = _split_compound(crs) if crs is not None else (None, None)
        return FileFacts(**base, kind="lidar", format=fmt, crs=horizontal, vertical_crs=vertical,
                         bounds=(float(h.mins[0]), float(h.mins[1]), float(h.maxs[0]), float(h.maxs[1])),
                         count=int(h.point_count))


def _vector(base: dict, uri: str, fmt: str, layer: str | None = None) -> FileFacts:
    import pyogrio

    layers = [str(name) for name, gtype in pyogrio.list_layers(uri) if gtype]
    if not layers:
        return FileFacts(**base, kind="unsupported", format=fmt, problem="no layer with geometry")
    layer = layer or layers[0]
    info = pyogrio.read_info(uri, layer=layer, force_feature_count=True, force_total_bounds=True)
    bounds = info.get("total_bounds")
    return FileFacts(**base, kind="vector", format=fmt, crs=epsg_label(info.get("crs")),
                     bounds=tuple(float(v) for v in bounds) if bounds is not None else None,
                     geometry_type=str(info.get("geometry_type") or ""), fields=[str(f) for f in info["fields"]],
                     count=int(info.get("features") or 0), layer=layer if len(layers) > 1 else None,
                     layers=layers)


def _zip(base: dict) -> FileFacts:
    with zipfile.ZipFile(base["path"]) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        shps = [n for n in names if n.lower().endswith(".shp")]
        if shps:
            return _vector(base, f"/vsizip/{base['path']}/{shps[0]}", "zip")
        gml = [n for n in names if n.lower().endswith((".gml", ".xml"))]
        for n in gml:
            with zf.open(n) as fh:
                head = fh.read(65536)
            if _CITYGML_NS.search(head):
                return _citygml(base, head, "zip")
        laz = [n for n in names if n.lower().endswith((".laz", ".las"))]
        if laz:
            return FileFacts(**base, kind="lidar", format="zip")
    return FileFacts(**base, kind="unsupported", format="zip",
                     problem="a zip without a Shapefile, CityGML or LAZ inside")


def _citygml(base: dict, head: bytes, fmt: str) -> FileFacts:
    m = _SRS_NAME.search(head)
    crs = None
    if m:
        srs = m.group(1).decode("ascii", "replace")
        code = re.search(r"(\d{4,5})(?!.*\d{4,5})", srs.split("*")[0])
        crs = epsg_label(f"EPSG:{code.group(1)}") if code else None
    return FileFacts(**base, kind="citygml", format=fmt, crs=crs)


def _csv(base: dict) -> FileFacts:
    raw = base["path"].open("rb").read(262144)
    text, encoding = "", "utf-8"
    for enc in ("utf-8", "cp1252"):
        try:
            text = raw.decode("utf-8-sig" if enc == "utf-8" else enc)
            encoding = enc
            break
        except UnicodeDecodeError:
            continue
    lines = text.splitlines()
    if len(raw) == 262144 and lines:
        lines = lines[:-1]  # the last line may be cut
    head = "\n".join(lines[:50])
    try:
        sep = csv.Sniffer().sniff(head, delimiters=";,\t|").delimiter
    except csv.Error:
        sep = ";" if head.count(";") > head.count(",") else ","
    reader = csv.DictReader(io.StringIO("\n".join(lines[:201])), delimiter=sep)
    rows = [dict(r) for r in reader]
    fields = [str(f).strip() for f in (reader.fieldnames or [])]
    decimal = "."
    numeric_comma = re.compile(r"^-?\d+,\d+$")
    for r in rows[:50]:
        if any(isinstance(v, str) and numeric_comma.match(v.strip()) for v in r.values()):
            decimal = ","
            break
    with base["path"].open("rb") as fh:
        lines_total = sum(1 for line in fh if line.strip())
    return FileFacts(**base, kind="csv", format="csv", fields=fields, count=max(lines_total - 1, 0), csv_sep=sep,
                     csv_decimal=decimal, csv_encoding=encoding, rows=rows)
