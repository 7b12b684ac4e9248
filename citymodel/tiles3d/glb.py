"""A small glTF 2.0 binary (GLB) writer with the 3D Tiles metadata extensions.

Written for this project (py3dtiles' mesh API has no ``EXT_mesh_features`` /
``EXT_structural_metadata``): :class:`GltfBuilder` collects buffer views and accessors in one
binary buffer (every view aligned to 8 bytes, as ``EXT_structural_metadata`` requires), and
:func:`add_property_table` encodes a property table (SCALAR and STRING properties) of a class.

Extensions written by the callers:
- ``EXT_mesh_features``: feature id vertex attributes ``_FEATURE_ID_n`` (FLOAT, exact below 2^24);
- ``EXT_structural_metadata``: the schema and property tables;
- ``EXT_mesh_gpu_instancing`` and ``EXT_instance_features`` for instanced trees.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, dataset_error

__all__ = ["GltfBuilder", "PropertySpec", "add_property_table", "schema_class", "read_glb",
           "ARRAY_BUFFER", "ELEMENT_ARRAY_BUFFER"]

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

_COMPONENT = {
    np.dtype(np.int8): 5120, np.dtype(np.uint8): 5121, np.dtype(np.int16): 5122,
    np.dtype(np.uint16): 5123, np.dtype(np.uint32): 5125, np.dtype(np.float32): 5126,
}
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_META_DTYPE = {
    "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
    "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64, "FLOAT32": np.float32,
    "FLOAT64": np.float64,
}


def _pad(n: int, align: int) -> int:
    return (align - n % align) % align


class GltfBuilder:
    """Collects a glTF document and its single binary buffer; :meth:`to_glb` writes the GLB."""

    def __init__(self, generator: str = "citymodel.tiles3d") -> None:
        self.gltf: dict[str, Any] = {"asset": {"version": "2.0", "generator": generator},
                                     "scene": 0, "scenes": [{"nodes": []}], "nodes": [], "meshes": [],
                                     "materials": [], "accessors": [], "bufferViews": [], "buffers": []}
        self._parts: list[bytes] = []
        self._length = 0

    # ------------------------------------------------------------------ buffers
    def add_view(self, data: bytes, target: int | None = None, byte_stride: int | None = None) -> int:
        """Append ``data`` as a buffer view (aligned to 8 bytes); returns its index.

        Empty data becomes one zero byte (glTF forbids views of length 0; e.g. a STRING property
        whose values are all empty has only offsets).
        """
        if not data:
            data = b"\0"
        pad = _pad(self._length, 8)
        if pad:
            self._parts.append(b"\0" * pad)
            self._length += pad
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self._length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        if byte_stride is not None:
            view["byteStride"] = byte_stride
        self._parts.append(bytes(data))
        self._length += len(data)
        self.gltf["bufferViews"].append(view)
        return len(self.gltf["bufferViews"]) - 1

    def add_accessor(self, array: np.ndarray, *, target: int | None = ARRAY_BUFFER, normalized: bool = False,
                     min_max: bool = False, type_: str | None = None) -> int:
        """Append an accessor over a new buffer view holding ``array`` (n,) or (n, k)."""
        a = np.ascontiguousarray(array)
        if a.dtype not in _COMPONENT:
            raise TypeError(f"dtype {a.dtype} is not a glTF component type")
        k = 1 if a.ndim == 1 else a.shape[1]
        view = self.add_view(a.tobytes(), target)
        acc: dict[str, Any] = {"bufferView": view, "componentType": _COMPONENT[a.dtype], "count": int(a.shape[0]),
                               "type": type_ or _TYPE[k]}
        if normalized:
            acc["normalized"] = True
        if min_max and a.shape[0]:
            flat = a.reshape(a.shape[0], k)
            lo, hi = flat.min(axis=0), flat.max(axis=0)
            cast = float if a.dtype.kind == "f" else int
            acc["min"] = [cast(v) for v in lo]
            acc["max"] = [cast(v) for v in hi]
        self.gltf["accessors"].append(acc)
        return len(self.gltf["accessors"]) - 1

    def use_extension(self, name: str, required: bool = False) -> None:
        used = self.gltf.setdefault("extensionsUsed", [])
        if name not in used:
            used.append(name)
        if required:
            req = self.gltf.setdefault("extensionsRequired", [])
            if name not in req:
                req.append(name)

    def add_material(self, rgba: Sequence[float], name: str, *, roughness: float = 0.9,
                     double_sided: bool = False) -> int:
        self.gltf["materials"].append({"name": name, "pbrMetallicRoughness": {
            "baseColorFactor": [float(c) for c in rgba], "metallicFactor": 0.0, "roughnessFactor": roughness},
            "doubleSided": double_sided})
        return len(self.gltf["materials"]) - 1

    # ------------------------------------------------------------------ output
    def to_glb(self) -> bytes:
        """The GLB bytes (JSON chunk padded with spaces, BIN chunk with zeros)."""
        doc = dict(self.gltf)
        if self._length:
            doc["buffers"] = [{"byteLength": self._length}]
        else:
            doc.pop("buffers", None)
            doc.pop("bufferViews", None)
        for key in ("materials", "accessors", "bufferViews", "meshes", "nodes"):
            if key in doc and not doc[key]:
                doc.pop(key)
        js = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        js += b" " * _pad(len(js), 4)
        binary = b"".join(self._parts)
        binary += b"\0" * _pad(len(binary), 4)
        total = 12 + 8 + len(js) + (8 + len(binary) if binary else 0)
        out = [struct.pack("<4sII", b"glTF", 2, total), struct.pack("<I4s", len(js), b"JSON"), js]
        if binary:
            out += [struct.pack("<I4s", len(binary), b"BIN\0"), binary]
        return b"".join(out)


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """Split GLB bytes into (JSON document, BIN chunk); for tests and checks."""
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError("not a glTF 2.0 binary")
    jlen, jtype = struct.unpack_from("<I4s", data, 12)
    doc = json.loads(data[20:20 + jlen].decode("utf-8"))
    binary = b""
    off = 20 + jlen
    if off < total:
        blen, _ = struct.unpack_from("<I4s", data, off)
        binary = data[off + 8: off + 8 + blen]
    return doc, binary


# ---------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class PropertySpec:
    """One property of a metadata class (``EXT_structural_metadata``).

    Parameters
    ----------
    name : str
        Property id in the schema (``eaveHeight``).
    type : {"SCALAR", "STRING"}
    component_type : str, optional
        For SCALAR: INT8 ... UINT64, FLOAT32, FLOAT64.
    no_data : number or str, optional
        Value written where a record has none (and declared as ``noData``).
    sources : tuple of str
        Keys looked up in a record's attributes, in order (default: the name and its snake_case
        form, ``solarKwhA`` -> ``("solarKwhA", "solar_kwh_a")``).
    description : str
    """

    name: str
    type: str = "SCALAR"
    component_type: str | None = "FLOAT32"
    no_data: Any = None
    sources: tuple[str, ...] = ()
    description: str = ""
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in ("SCALAR", "STRING"):
            raise dataset_error(ConfigError, "3D Tiles properties", f"property {self.name!r} has type {self.type!r}",
                                "use SCALAR or STRING", self.name)
        if self.type == "SCALAR" and self.component_type not in _META_DTYPE:
            raise dataset_error(ConfigError, "3D Tiles properties",
                                f"property {self.name!r} has component type {self.component_type!r}",
                                f"use one of {sorted(_META_DTYPE)}", self.name)
        if not self.sources:
            snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.name).lower()
            object.__setattr__(self, "sources", (self.name,) if snake == self.name else (self.name, snake))

    @classmethod
    def coerce(cls, spec: "PropertySpec | str | tuple | Mapping") -> "PropertySpec":
        """A spec from a PropertySpec, a name (FLOAT32), a tuple ``(name, type_or_component)`` or a dict."""
        if isinstance(spec, PropertySpec):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, tuple):
            name, kind = spec[0], (spec[1] if len(spec) > 1 else "FLOAT32")
            if kind == "STRING":
                return cls(name, "STRING", None, *spec[2:])
            return cls(name, "SCALAR", kind, *spec[2:])
        if isinstance(spec, Mapping):
            d = dict(spec)
            if "sources" in d:
                d["sources"] = tuple(d["sources"])
            return cls(**d)
        raise dataset_error(ConfigError, "3D Tiles properties", f"cannot read property spec {spec!r}",
                            "give PropertySpec, a name, (name, type) or a dict")

    def schema(self) -> dict:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "SCALAR":
            out["componentType"] = self.component_type
        if self.no_data is not None:
            out["noData"] = self.no_data
        if self.description:
            out["description"] = self.description
        if self.required:
            out["required"] = True
        return out

    def value_of(self, attrs: Mapping[str, Any]) -> Any:
        for key in self.sources:
            if key in attrs:
                return attrs[key]
        return None


def schema_class(specs: Sequence[PropertySpec], description: str = "") -> dict:
    cls: dict[str, Any] = {"properties": {s.name: s.schema() for s in specs}}
    if description:
        cls["description"] = description
    return cls


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(np.isnan(v))
    except (TypeError, ValueError):
        return False


def add_property_table(builder: GltfBuilder, class_name: str, specs: Sequence[PropertySpec],
                       rows: Sequence[Mapping[str, Any]], *, dataset: str = "3D Tiles",
                       ids: Sequence[str] | None = None) -> dict:
    """Encode ``rows`` (attribute dicts, one per feature) as a property table of ``class_name``.

    Missing values become the spec's ``no_data``; a missing value of a property without
    ``no_data`` (or a value that does not fit its type) raises an error naming the record.
    """
    count = len(rows)
    props: dict[str, Any] = {}
    for spec in specs:
        raw = [spec.value_of(r) for r in rows]
        if spec.type == "STRING":
            texts = []
            for i, v in enumerate(raw):
                if _is_missing(v):
                    if spec.no_data is None:
                        raise dataset_error(ConfigError, dataset, f"property {spec.name!r} is missing",
                                            f"give '{spec.sources[0]}' in the attributes or declare a noData",
                                            ids[i] if ids is not None else str(i))
                    v = spec.no_data
                texts.append(str(v).encode("utf-8"))
            offsets = np.zeros(count + 1, dtype=np.uint32)
            offsets[1:] = np.cumsum([len(t) for t in texts], dtype=np.uint64)
            props[spec.name] = {"values": builder.add_view(b"".join(texts)),
                                "stringOffsets": builder.add_view(offsets.tobytes())}
        else:
            dtype = np.dtype(_META_DTYPE[spec.component_type])
            vals = np.empty(count, dtype=np.float64)
            for i, v in enumerate(raw):
                if _is_missing(v):
                    if spec.no_data is None:
                        raise dataset_error(ConfigError, dataset, f"property {spec.name!r} is missing",
                                            f"give '{spec.sources[0]}' in the attributes or declare a noData",
                                            ids[i] if ids is not None else str(i))
                    v = spec.no_data
                try:
                    vals[i] = float(v)
                except (TypeError, ValueError):
                    raise dataset_error(ConfigError, dataset, f"property {spec.name!r} value {v!r} is not a "
                                        "number", f"give a number for '{spec.sources[0]}'",
                                        ids[i] if ids is not None else str(i)) from None
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                bad = (vals != np.round(vals)) | (vals < info.min) | (vals > info.max)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise dataset_error(ConfigError, dataset, f"property {spec.name!r} value {vals[i]!r} does "
                                        f"not fit {spec.component_type}", "give whole numbers in range or "
                                        "change the property's component type",
                                        ids[i] if ids is not None else str(i))
            props[spec.name] = {"values": builder.add_view(vals.astype(dtype).tobytes())}
    return {"class": class_name, "count": count, "properties": props}
