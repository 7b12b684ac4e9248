"""CityJSON 2.0 and CityJSONSeq: writer and reader (1.0/1.1/2.0).

Writer
    :func:`to_cityjson` / :func:`write_cityjson` build one CityJSON 2.0 document with a shared,
    integer-quantised vertex list (``transform``: scale 0.001 m, translate = minimum corner);
    :func:`write_cityjsonseq` writes CityJSON Text Sequences (``.city.jsonl``): a first line with
    the ``CityJSON`` header (metadata, transform, empty ``CityObjects`` and ``vertices``), then one
    ``CityJSONFeature`` per building with its parts and its own local vertex list.
    Buildings are :class:`CityBuilding` records: id, attributes, one or more
    :class:`~citymodel.geometry3d.Solid` keyed by LoD string (``"1"``, ``"2"``, ``"2.2"``), and
    optional parts written as ``BuildingPart`` children. Files are written atomically.
Reader
    :func:`read_cityjson` reads CityJSON 1.0, 1.1, 2.0 (``.city.json``) and CityJSONSeq
    (``.city.jsonl``) into :class:`CityBuilding` records (vertices decoded with ``transform``).
Schema validation is :mod:`citymodel.cityjson_schema`.

Reference system: CityJSON wants an OGC CRS URL (``https://www.opengis.net/def/crs/EPSG/0/<code>``)
and recommends the 3D (compound) CRS. EPSG has no compound code for ETRS89 / UTM 32N + DHHN2016
(EPSG:25832 + 7837), and the 2.0 schema only accepts ``.../def/crs/...`` URLs (not the OGC
``def/crs-compound?1=...&2=...`` form), so :func:`reference_system_url` returns the compound EPSG
code where one exists (e.g. 25832 + 5783 -> 5555) and otherwise the horizontal CRS, and the height
system is then named in ``metadata.title``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import SourceDataError, dataset_error
from .geometry3d import Solid, Surface, newell_normal
from .fileio import atomic_write_text, json_safe

CITYJSON_VERSION = "2.0"
SEMANTIC_KINDS = ("GroundSurface", "WallSurface", "RoofSurface", "ClosureSurface")


@dataclass
class CityBuilding:
    """A building (or building part) to write or as read.

    Parameters
    ----------
    id : str
        CityObject id, unique in the file.
    attributes : dict
        Written as given (numbers stay numbers, NaN becomes ``null``).
    solids : dict[str, Solid]
        LoD string -> solid, e.g. ``{"1": block, "2.2": lod2}``. A list of solids is accepted too
        (the LoD is then ``str(solid.lod)``).
    parts : list[CityBuilding]
        Written as ``BuildingPart`` children of this building.
    type : str
        ``"Building"`` or ``"BuildingPart"`` (set by the writer/reader for parts).
    """

    id: str
    attributes: dict = field(default_factory=dict)
    solids: dict[str, Solid] = field(default_factory=dict)
    parts: list["CityBuilding"] = field(default_factory=list)
    type: str = "Building"

    def __post_init__(self) -> None:
        if isinstance(self.solids, Solid):
            self.solids = [self.solids]
        if not isinstance(self.solids, Mapping):
            self.solids = {_lod_string(s.lod): s for s in self.solids}
        else:
            self.solids = {_lod_string(k): v for k, v in self.solids.items()}


@dataclass
class CityJSONData:
    """What :func:`read_cityjson` returns."""

    version: str
    metadata: dict
    buildings: list[CityBuilding]
    reference_system: str | None = None
    transform: dict | None = None


# ------------------------------------------------------------------------------- reference system

@lru_cache(maxsize=32)
def reference_system_url(horizontal_epsg: int = 25832, vertical_epsg: int | None = 7837) -> str:
    """OGC CRS URL for ``metadata.referenceSystem``.

    The compound EPSG code of ``horizontal + vertical`` where EPSG defines one (e.g. 25832 + 5783
    -> 5555), else the horizontal CRS (the height system is then named in the title).
    """
    code = horizontal_epsg
    if vertical_epsg is not None:
        try:
            from pyproj import CRS
            from pyproj.database import query_crs_info
            name = f"{CRS.from_epsg(horizontal_epsg).name} + {CRS.from_epsg(vertical_epsg).name}"
            for info in query_crs_info(auth_name="EPSG", pj_types=["COMPOUND_CRS"]):
                if info.name == name:
                    code = int(info.code)
                    break
        except Exception:  # pyproj without its database: fall back to the horizontal code
            code = horizontal_epsg
    return f"https://www.opengis.net/def/crs/EPSG/0/{code}"


def _height_system_note(horizontal_epsg: int, vertical_epsg: int | None) -> str:
    if vertical_epsg is None:
        return ""
    try:
        from pyproj import CRS
        vname = CRS.from_epsg(vertical_epsg).name
    except Exception:
        vname = "vertical CRS"
    return f"heights {vname} (EPSG:{vertical_epsg})"


# ------------------------------------------------------------------------------------- writing

def _lod_string(lod: Any) -> str:
    if isinstance(lod, str):
        s = lod.strip()
    elif isinstance(lod, (int, np.integer)):
        s = str(int(lod))
    elif isinstance(lod, (float, np.floating)):
        s = str(int(lod)) if float(lod).is_integer() else f"{float(lod):.1f}"
    else:
        raise dataset_error(SourceDataError, "buildings", f"LoD {lod!r} is not a number or string",
                            "use '1', '2' or 'X.Y' such as '2.2'")
    allowed = {str(i) for i in range(4)} | {f"{i}.{j}" for i in range(4) for j in range(4)}
    if s not in allowed:
        raise dataset_error(SourceDataError, "buildings", f"LoD {lod!r} is not a CityJSON LoD",
                            "use '0'..'3' or 'X.Y' with X, Y in 0..3 (e.g. '2.2')")
    return s


def _json_value(v: Any) -> Any:
    """JSON-safe attribute value: numpy scalars to Python, NaN/inf to None, containers recursed."""
    return json_safe(v)


def _all_objects(buildings: Iterable[CityBuilding]) -> list[tuple[CityBuilding, CityBuilding | None]]:
    out = []
    for b in buildings:
        out.append((b, None))
        for p in b.parts:
            out.append((p, b))
    return out


def _check_buildings(objs: list[tuple[CityBuilding, CityBuilding | None]]) -> None:
    seen: set[str] = set()
    for b, parent in objs:
        if not isinstance(b.id, str) or not b.id:
            raise dataset_error(SourceDataError, "buildings", f"building id {b.id!r} is not a non-empty "
                                "string", "give every building and part a string id", record=str(b.id))
        if b.id in seen:
            raise dataset_error(SourceDataError, "buildings", "id used twice in one file",
                                "make building and part ids unique", record=b.id)
        seen.add(b.id)
        for lod, s in b.solids.items():
            for k, surf in enumerate(s.surfaces):
                if surf.kind not in SEMANTIC_KINDS:
                    raise dataset_error(SourceDataError, "buildings", f"surface {k} of LoD {lod} has "
                                        f"kind {surf.kind!r}", f"use one of {', '.join(SEMANTIC_KINDS)}",
                                        record=b.id)
                for ring in surf.rings:
                    r = np.asarray(ring, dtype=float)
                    if r.ndim != 2 or r.shape[1] != 3 or len(r) < 3 or not np.isfinite(r).all():
                        raise dataset_error(SourceDataError, "buildings",
                                            f"surface {k} of LoD {lod} has a ring of shape {r.shape} "
                                            "or non-finite coordinates",
                                            "rings must be (n>=3, 3) finite x, y, z arrays", record=b.id)


def _quantise(objs, scale: float, translate: np.ndarray | None):
    """All ring coordinates of all objects -> integer vertices (shared) and index arrays per ring."""
    coords = [np.asarray(r, dtype=float) for b, _ in objs for s in b.solids.values()
              for surf in s.surfaces for r in surf.rings]
    if not coords:
        t = np.zeros(3) if translate is None else translate
        return np.empty((0, 3), dtype=np.int64), [], t
    allc = np.concatenate(coords)
    t = allc.min(axis=0) if translate is None else np.asarray(translate, dtype=float)
    q = np.rint((allc - t) / scale).astype(np.int64)
    uniq, inv = np.unique(q, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    bounds = np.cumsum([0] + [len(c) for c in coords])
    ring_idx = [inv[bounds[i]:bounds[i + 1]] for i in range(len(coords))]
    return uniq, ring_idx, t


def _city_objects(objs, ring_idx: list[np.ndarray], verts_real: np.ndarray) -> dict:
    cos: dict[str, dict] = {}
    it = iter(ring_idx)
    for b, parent in objs:
        geoms = []
        used: list[np.ndarray] = []
        for lod, s in b.solids.items():
            shell = []
            sem_surfaces: list[dict] = []
            sem_lookup: dict[str, int] = {}
            values = []
            for surf in s.surfaces:
                poly = []
                for _ in surf.rings:
                    idx = next(it)
                    used.append(idx)
                    poly.append(idx.tolist())
                shell.append(poly)
                if surf.attributes:
                    sem_surfaces.append({"type": surf.kind, **{str(k): _json_value(v) for k, v in
                                                             surf.attributes.items() if k != "type"}})
                    values.append(len(sem_surfaces) - 1)
                else:
                    if surf.kind not in sem_lookup:
                        sem_lookup[surf.kind] = len(sem_surfaces)
                        sem_surfaces.append({"type": surf.kind})
                    values.append(sem_lookup[surf.kind])
            geoms.append({"type": "Solid", "lod": lod, "boundaries": [shell],
                          "semantics": {"surfaces": sem_surfaces, "values": [values]}})
        co: dict[str, Any] = {"type": "BuildingPart" if parent is not None else "Building",
                              "attributes": {str(k): _json_value(v) for k, v in b.attributes.items()},
                              "geometry": geoms}
        if used:
            pts = verts_real[np.unique(np.concatenate(used))]
            co["geographicalExtent"] = [*map(float, pts.min(axis=0)), *map(float, pts.max(axis=0))]
        if parent is not None:
            co["parents"] = [parent.id]
        elif b.parts:
            co["children"] = [p.id for p in b.parts]
        cos[b.id] = co
    return cos


def _metadata(title: str | None, reference_system: str | None, horizontal_epsg: int,
              vertical_epsg: int | None, point_of_contact: dict | None, reference_date: str | None,
              identifier: str | None, extent: list[float] | None) -> dict:
    rs = reference_system or reference_system_url(horizontal_epsg, vertical_epsg)
    note = ""
    if vertical_epsg is not None and not rs.endswith(f"/{vertical_epsg}") and rs.endswith(
            f"/{horizontal_epsg}"):
        note = _height_system_note(horizontal_epsg, vertical_epsg)
    t = title or "3D city model (LoD1/LoD2 buildings)"
    if note and note not in t:
        t = f"{t}; {note}"
    md: dict[str, Any] = {"title": t, "referenceSystem": rs}
    if extent is not None:
        md["geographicalExtent"] = extent
    if point_of_contact:
        md["pointOfContact"] = dict(point_of_contact)
    if reference_date:
        md["referenceDate"] = reference_date
    if identifier:
        md["identifier"] = identifier
    return md


def to_cityjson(buildings: Iterable[CityBuilding], *, title: str | None = None,
                reference_system: str | None = None, horizontal_epsg: int = 25832,
                vertical_epsg: int | None = 7837, point_of_contact: dict | None = None,
                reference_date: str | None = None, identifier: str | None = None,
                scale: float = 0.001) -> dict:
    """Build a CityJSON 2.0 document (a dict) from buildings.

    Parameters
    ----------
    buildings : iterable of CityBuilding
    title, point_of_contact, reference_date, identifier :
        ``metadata`` members (``pointOfContact`` needs ``contactName`` and ``emailAddress``).
    reference_system : str, optional
        OGC CRS URL; default :func:`reference_system_url` of ``horizontal_epsg``/``vertical_epsg``.
    scale : float
        Quantisation step of the vertices (m); translate is the minimum corner.

    Returns
    -------
    dict
        ``{"type": "CityJSON", "version": "2.0", "transform", "metadata", "CityObjects", "vertices"}``
    """
    objs = _all_objects(buildings)
    _check_buildings(objs)
    verts, ring_idx, t = _quantise(objs, scale, None)
    real = verts * scale + t
    extent = ([*map(float, real.min(axis=0)), *map(float, real.max(axis=0))] if len(real) else None)
    return {
        "type": "CityJSON",
        "version": CITYJSON_VERSION,
        "transform": {"scale": [scale] * 3, "translate": [float(x) for x in t]},
        "metadata": _metadata(title, reference_system, horizontal_epsg, vertical_epsg, point_of_contact,
                              reference_date, identifier, extent),
        "CityObjects": _city_objects(objs, ring_idx, real),
        "vertices": verts.tolist(),
    }


def _atomic_write_text(path: Path, chunks: Iterable[str]) -> Path:
    return atomic_write_text(path, chunks)


def write_cityjson(path: str | Path, buildings: Iterable[CityBuilding], **kwargs: Any) -> Path:
    """Write buildings as one CityJSON 2.0 file (atomically); ``kwargs`` as :func:`to_cityjson`."""
    doc = to_cityjson(buildings, **kwargs)
    return _atomic_write_text(Path(path), [json.dumps(doc, separators=(",", ":"), allow_nan=False)])


def cityjsonseq_lines(buildings: Iterable[CityBuilding], *, title: str | None = None,
                      reference_system: str | None = None, horizontal_epsg: int = 25832,
                      vertical_epsg: int | None = 7837, point_of_contact: dict | None = None,
                      reference_date: str | None = None, identifier: str | None = None,
                      scale: float = 0.001) -> list[dict]:
    """The JSON objects of a CityJSONSeq: the header, then one ``CityJSONFeature`` per building."""
    buildings = list(buildings)
    objs = _all_objects(buildings)
    _check_buildings(objs)
    allv, _, t = _quantise(objs, scale, None)
    real_all = allv * scale + t
    extent = ([*map(float, real_all.min(axis=0)), *map(float, real_all.max(axis=0))]
              if len(real_all) else None)
    header = {"type": "CityJSON", "version": CITYJSON_VERSION,
              "transform": {"scale": [scale] * 3, "translate": [float(x) for x in t]},
              "metadata": _metadata(title, reference_system, horizontal_epsg, vertical_epsg,
                                    point_of_contact, reference_date, identifier, extent),
              "CityObjects": {}, "vertices": []}
    lines = [header]
    for b in buildings:
        fobjs = _all_objects([b])
        verts, ring_idx, _ = _quantise(fobjs, scale, t)
        lines.append({"type": "CityJSONFeature", "id": b.id,
                      "CityObjects": _city_objects(fobjs, ring_idx, verts * scale + t),
                      "vertices": verts.tolist()})
    return lines


def write_cityjsonseq(path: str | Path, buildings: Iterable[CityBuilding], **kwargs: Any) -> Path:
    """Write CityJSONSeq (``.city.jsonl``) atomically; ``kwargs`` as :func:`to_cityjson`."""
    lines = cityjsonseq_lines(buildings, **kwargs)
    return _atomic_write_text(Path(path), (json.dumps(o, separators=(",", ":"), allow_nan=False) + "\n"
                                           for o in lines))


# ------------------------------------------------------------------------------------- reading

def _infer_kind(ring: np.ndarray) -> str:
    n = newell_normal(ring)
    ln = np.linalg.norm(n)
    nz = n[2] / ln if ln > 0 else 0.0
    if nz < -0.9:
        return "GroundSurface"
    if abs(nz) < 0.1 or nz < 0:
        return "WallSurface"
    return "RoofSurface"


def _geometry_to_solid(geom: dict, verts: np.ndarray, dataset: str, record: str) -> Solid | None:
    gtype = geom.get("type")
    b = geom.get("boundaries")
    sem = geom.get("semantics") or {}
    surfaces_sem = sem.get("surfaces") or []
    values = sem.get("values")
    if gtype == "Solid":
        polys = b[0] if b else []
        vals = values[0] if values else None
    elif gtype in ("MultiSurface", "CompositeSurface"):
        polys = b or []
        vals = values
    elif gtype in ("MultiSolid", "CompositeSolid"):
        polys = [p for solid in (b or []) for p in (solid[0] if solid else [])]
        vals = ([v for sv in values for v in (sv[0] if sv else [])] if values else None)
    else:
        return None
    surfaces = []
    try:
        for k, poly in enumerate(polys):
            rings = [verts[np.asarray(r, dtype=np.int64)] for r in poly]
            sem_i = vals[k] if vals is not None and k < len(vals) else None
            attrs: dict = {}
            if sem_i is not None:
                so = surfaces_sem[sem_i]
                kind = so.get("type", "WallSurface")
                attrs = {kk: vv for kk, vv in so.items() if kk not in ("type", "parent", "children")}
            else:
                kind = _infer_kind(rings[0])
                attrs = {"semantics_inferred": True}
            surfaces.append(Surface(kind, rings, attrs))
    except (IndexError, TypeError, ValueError) as exc:
        raise dataset_error(SourceDataError, dataset, f"geometry cannot be decoded ({exc})",
                            "check the boundaries' vertex indices and the semantics values",
                            record=record) from exc
    lod_raw = geom.get("lod", 2)
    try:
        lod_int = int(float(lod_raw))
    except (TypeError, ValueError):
        lod_int = 2
    return Solid(surfaces, lod=lod_int)


def _decode_vertices(vertices: list, transform: dict | None) -> np.ndarray:
    v = np.asarray(vertices, dtype=float).reshape(-1, 3)
    if transform:
        v = v * np.asarray(transform["scale"], dtype=float) + np.asarray(transform["translate"], dtype=float)
    return v


def _buildings_from(city_objects: dict, verts: np.ndarray, dataset: str) -> list[CityBuilding]:
    recs: dict[str, CityBuilding] = {}
    for oid, co in city_objects.items():
        if co.get("type") not in ("Building", "BuildingPart"):
            continue
        solids: dict[str, Solid] = {}
        for geom in co.get("geometry", []) or []:
            s = _geometry_to_solid(geom, verts, dataset, oid)
            if s is None:
                continue
            lod = _lod_string(geom.get("lod", s.lod))
            key = lod
            n = 2
            while key in solids:        # two geometries with the same LoD: keep both
                key = f"{lod}#{n}"
                n += 1
            solids[key] = s
        rec = CityBuilding.__new__(CityBuilding)
        rec.id, rec.attributes, rec.solids, rec.parts, rec.type = (
            oid, dict(co.get("attributes") or {}), solids, [], co["type"])
        recs[oid] = rec
    out = []
    for oid, co in city_objects.items():
        if oid not in recs:
            continue
        parents = co.get("parents") or []
        if recs[oid].type == "BuildingPart" and parents and parents[0] in recs:
            recs[parents[0]].parts.append(recs[oid])
        else:
            out.append(recs[oid])
    return out


def read_cityjson(path: str | Path, *, dataset: str = "cityjson") -> CityJSONData:
    """Read the buildings of a CityJSON 1.0/1.1/2.0 file or a CityJSONSeq (``.jsonl``) file.

    Parameters
    ----------
    path : str or Path
    dataset : str
        Name used in error messages (e.g. the role ``lod2_reference``).

    Returns
    -------
    CityJSONData
        ``version``, ``metadata``, ``reference_system``, ``transform`` and ``buildings``
        (top-level ``Building`` records with their ``BuildingPart`` children in ``parts``;
        coordinates decoded to metres).
    """
    path = Path(path)
    if not path.is_file():
        raise dataset_error(SourceDataError, dataset, f"file {path} not found",
                            "check the path of the CityJSON file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.name.endswith(".jsonl"):
            return _read_seq([json.loads(line) for line in text.splitlines() if line.strip()], dataset)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if "Extra data" not in str(exc):
                raise
            return _read_seq([json.loads(line) for line in text.splitlines() if line.strip()], dataset)
    except json.JSONDecodeError as exc:
        raise dataset_error(SourceDataError, dataset, f"{path.name} is not valid JSON ({exc})",
                            "re-export or re-download the file") from exc
    return read_cityjson_document(doc, dataset=dataset, name=path.name)


def read_cityjson_document(doc: Any, *, dataset: str = "cityjson", name: str = "the document") -> CityJSONData:
    """The buildings of a CityJSON document already parsed from JSON (see :func:`read_cityjson`)."""
    if not isinstance(doc, dict) or doc.get("type") != "CityJSON":
        raise dataset_error(SourceDataError, dataset, f"{name} is not a CityJSON document "
                            "(\"type\" is not \"CityJSON\")", "pass a .city.json or .city.jsonl file")
    verts = _decode_vertices(doc.get("vertices", []), doc.get("transform"))
    md = doc.get("metadata") or {}
    return CityJSONData(str(doc.get("version")), md, _buildings_from(doc.get("CityObjects", {}), verts,
                                                                     dataset),
                        md.get("referenceSystem"), doc.get("transform"))


def _read_seq(objs: list[dict], dataset: str) -> CityJSONData:
    header = objs[0]
    if header.get("type") != "CityJSON":
        raise dataset_error(SourceDataError, dataset, "first line of the CityJSONSeq is not a CityJSON "
                            "header", "write the CityJSON header (metadata, transform) as line 1")
    tr = header.get("transform")
    if not tr:
        raise dataset_error(SourceDataError, dataset, "CityJSONSeq header has no \"transform\"",
                            "write the transform in the first line, as CityJSON 2.0 requires")
    buildings: list[CityBuilding] = []
    for i, f in enumerate(objs[1:], start=2):
        if f.get("type") != "CityJSONFeature":
            raise dataset_error(SourceDataError, dataset, f"line {i} is not a CityJSONFeature",
                                "one CityJSONFeature per line after the header", record=str(f.get("id")))
        verts = _decode_vertices(f.get("vertices", []), tr)
        buildings.extend(_buildings_from(f.get("CityObjects", {}), verts, dataset))
    md = header.get("metadata") or {}
    return CityJSONData(str(header.get("version")), md, buildings, md.get("referenceSystem"), tr)
