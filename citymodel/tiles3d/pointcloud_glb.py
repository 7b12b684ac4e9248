"""glTF 2.0 point content of 3D Tiles 1.1: one primitive of mode 0 (POINTS) per tile.

Attributes (each element 4-byte aligned, as glTF requires of vertex attributes):

- ``POSITION``: FLOAT VEC3 in the tile's local frame, glTF's y-up axes (``east, up, -north``);
  the tileset's root ``transform`` takes the frame to ECEF after the y-up to z-up rotation that 3D
  Tiles applies to glTF content. Positions are within a kilometre of the frame's origin, so
  float32 keeps them to 0.1 mm;
- ``COLOR_0``: UNSIGNED_BYTE normalised VEC3 (byte stride 4);
- ``_CLASSIFICATION``: UNSIGNED_BYTE SCALAR (ASPRS class; stride 4) and ``_INTENSITY``:
  UNSIGNED_SHORT SCALAR (LAS intensity; stride 4), application-specific attributes that are also
  ``EXT_structural_metadata`` property attributes of the class ``point`` (properties
  ``classification`` and ``intensity``), so that viewers can style and pick by them.

:func:`point_glb_buffer` gives the BIN buffer with writable views of the vertex data (a compiled
loop fills them in place) and :func:`point_glb_head` the bytes before it (GLB header, JSON chunk,
BIN chunk header): the file is written without another copy.
"""

from __future__ import annotations

import json
import struct
from typing import Sequence

import numpy as np

__all__ = ["POINT_SCHEMA", "point_glb_buffer", "point_glb_head", "point_glb_layout"]

#: The ``EXT_structural_metadata`` schema of the point content.
POINT_SCHEMA = {
    "id": "citymodel_pointcloud",
    "name": "Point cloud attributes",
    "classes": {"point": {
        "name": "LiDAR point",
        "properties": {
            "classification": {"type": "SCALAR", "componentType": "UINT8",
                               "description": "ASPRS classification (2 ground, 3-5 vegetation, 6 building, "
                                              "9 water, ...)"},
            "intensity": {"type": "SCALAR", "componentType": "UINT16",
                          "description": "LAS return intensity (sensor units)"},
        }}},
}

_ARRAY_BUFFER = 34962


def _align8(n: int) -> int:
    return (n + 7) // 8 * 8


def point_glb_layout(n: int) -> tuple[list[int], int]:
    """Byte offsets of the four vertex sections (positions, colours, classes, intensities) and the
    BIN length for ``n`` points (every section starts on 8 bytes)."""
    sizes = [12 * n, 4 * n, 4 * n, 4 * n]
    offs, o = [], 0
    for s in sizes:
        offs.append(o)
        o = _align8(o + s)
    return offs, o


def point_glb_buffer(n: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The BIN buffer of ``n`` points (zeroed uint8) and its vertex views to fill:
    ``pos`` (n, 3) float32, ``rgb`` (n, 4) uint8 (R, G, B, unused), ``cls`` (n, 4) uint8 (class,
    unused x3) and ``intensity`` (n, 2) uint16 (intensity, unused)."""
    offs, length = point_glb_layout(n)
    buf = np.zeros(length, dtype=np.uint8)
    pos = buf[offs[0]:offs[0] + 12 * n].view(np.float32).reshape(n, 3)
    rgb = buf[offs[1]:offs[1] + 4 * n].reshape(n, 4)
    cls = buf[offs[2]:offs[2] + 4 * n].reshape(n, 4)
    inten = buf[offs[3]:offs[3] + 4 * n].view(np.uint16).reshape(n, 2)
    return buf, (pos, rgb, cls, inten)


def point_glb_head(n: int, pos_min: Sequence[float], pos_max: Sequence[float],
                   generator: str = "citymodel.tiles3d") -> bytes:
    """GLB header, JSON chunk and BIN chunk header of ``n`` points; the file is this followed by
    the buffer of :func:`point_glb_buffer`. ``pos_min``/``pos_max`` are the exact bounds of the
    positions (glTF requires them)."""
    offs, length = point_glb_layout(n)
    views = [
        {"buffer": 0, "byteOffset": offs[0], "byteLength": 12 * n, "target": _ARRAY_BUFFER},
        {"buffer": 0, "byteOffset": offs[1], "byteLength": 4 * n, "byteStride": 4, "target": _ARRAY_BUFFER},
        {"buffer": 0, "byteOffset": offs[2], "byteLength": 4 * n, "byteStride": 4, "target": _ARRAY_BUFFER},
        {"buffer": 0, "byteOffset": offs[3], "byteLength": 4 * n, "byteStride": 4, "target": _ARRAY_BUFFER},
    ]
    accessors = [
        {"bufferView": 0, "componentType": 5126, "count": n, "type": "VEC3",
         "min": [float(v) for v in pos_min], "max": [float(v) for v in pos_max]},
        {"bufferView": 1, "componentType": 5121, "normalized": True, "count": n, "type": "VEC3"},
        {"bufferView": 2, "componentType": 5121, "count": n, "type": "SCALAR"},
        {"bufferView": 3, "componentType": 5123, "count": n, "type": "SCALAR"},
    ]
    doc = {
        "asset": {"version": "2.0", "generator": generator},
        "extensionsUsed": ["EXT_structural_metadata"],
        "extensions": {"EXT_structural_metadata": {
            "schema": POINT_SCHEMA,
            "propertyAttributes": [{"class": "point", "properties": {
                "classification": {"attribute": "_CLASSIFICATION"}, "intensity": {"attribute": "_INTENSITY"}}}]}},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"name": "points", "mesh": 0}],
        "meshes": [{"name": "points", "primitives": [{
            "attributes": {"POSITION": 0, "COLOR_0": 1, "_CLASSIFICATION": 2, "_INTENSITY": 3}, "mode": 0,
            "extensions": {"EXT_structural_metadata": {"propertyAttributes": [0]}}}]}],
        "accessors": accessors, "bufferViews": views, "buffers": [{"byteLength": length}],
    }
    js = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + length
    head = b"".join([struct.pack("<4sII", b"glTF", 2, total), struct.pack("<I4s", len(js), b"JSON"), js,
                     struct.pack("<I4s", length, b"BIN\0")])
    return head
