"""The point records of a staged tile: one output point format and header for a tile's sources, and
the conversion of source chunks into it (exact integer shifts of X, Y, Z where scales agree).

The staged file keeps the sources' point format family (LAS 1.2 formats 0-5 or LAS 1.4 formats 6-10,
without waveform packets), carries the processing CRS and adds the float32 extra dimension
:data:`HAG_DIMENSION` (height above the DTM).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import laspy
import numpy as np
import pyproj

from ..tiles import Tile
from .reading import FileStream, LasInfo

HAG_DIMENSION = "HeightAboveGround"
"""Name of the float32 extra dimension of the staged file: height above the DTM in metres."""


_LEGACY_TO_14 = {0: 6, 1: 6, 2: 7, 3: 7, 4: 6, 5: 7, 6: 6, 7: 7, 8: 8, 9: 6, 10: 7}
_NO_WAVE = {4: 1, 5: 3, 9: 6, 10: 7}


def _output_point_format(formats: Sequence[int]) -> int:
    """One point format for the staged file: the sources' family, without waveform packets."""
    fs = [_NO_WAVE.get(f, f) for f in formats]
    if any(f >= 6 for f in fs):
        fs = [_LEGACY_TO_14[f] for f in fs]
    return max(fs)


def output_header(infos: Sequence[LasInfo], streams: Sequence[FileStream], proc: pyproj.CRS,
                  tile: Tile) -> laspy.LasHeader:
    """The header of the staged file of ``tile`` from the sources ``infos`` (read through ``streams``).

    Point format: the sources' family without waveform packets; scales: the finest of the sources
    (1 mm horizontally where any source is reprojected; at least 0.1 mm); offsets: the tile's
    south-west corner rounded down to whole kilometres, z 0; the CRS record of ``proc``; the extra
    dimension :data:`HAG_DIMENSION`.
    """
    fmt = _output_point_format([i.point_format for i in infos])
    header = laspy.LasHeader(point_format=fmt, version="1.4" if fmt >= 6 else "1.2")
    any_reproj = any(s.reprojected for s in streams)
    sx = min(i.scales[0] for i in infos)
    sy = min(i.scales[1] for i in infos)
    sz = min(i.scales[2] * s.z_factor for i, s in zip(infos, streams))
    if any_reproj:
        sx = sy = 0.001
    header.scales = np.array([max(sx, 1e-4), max(sy, 1e-4), max(sz, 1e-4)])
    minx, miny, _, _ = tile.bounds
    header.offsets = np.array([math.floor(minx / 1000.0) * 1000.0, math.floor(miny / 1000.0) * 1000.0, 0.0])
    header.add_extra_dims([laspy.ExtraBytesParams(name=HAG_DIMENSION, type=np.float32,
                                                  description="height above DTM (m)")])
    header.add_crs(proc)
    return header


def convert_chunk(rec: laspy.ScaleAwarePointRecord, x: np.ndarray | None, y: np.ndarray | None,
                  z: np.ndarray | None, header: laspy.LasHeader, stream: FileStream) -> np.ndarray:
    """The raw output-format array of one chunk (HAG left at 0).

    ``x, y, z`` are the processing-CRS coordinates, or None for an :attr:`FileStream.integer_xyz`
    stream (then they are the record's own scaled coordinates, computed only where needed).
    """
    n = len(rec)
    src_fmt, dst_fmt = rec.point_format.id, header.point_format.id
    src_dt, dst_dt = rec.array.dtype, header.point_format.dtype()
    if is_prefix(src_dt, dst_dt):
        # the source record is the leading part of the output record (same point format, the
        # output only adds HeightAboveGround): one copy of bytes instead of a copy per field
        out = np.zeros(n, dtype=dst_dt)
        src = np.ascontiguousarray(rec.array)
        out.view(np.uint8).reshape(n, dst_dt.itemsize)[:, :src_dt.itemsize] = \
            src.view(np.uint8).reshape(n, src_dt.itemsize)
    elif (src_fmt >= 6) == (dst_fmt >= 6):
        out = np.zeros(n, dtype=header.point_format.dtype())
        src_names = set(rec.array.dtype.names)
        for name in out.dtype.names:
            if name in src_names and name not in ("X", "Y", "Z"):
                out[name] = rec.array[name]
    else:
        rec_out = laspy.ScaleAwarePointRecord.zeros(n, header=header)
        src_dims = set(rec.point_format.dimension_names)
        for name in header.point_format.standard_dimension_names:
            if name in src_dims and name not in ("X", "Y", "Z"):
                rec_out[name] = rec[name]
        out = rec_out.array
    sc, off = header.scales, header.offsets
    for i, (dim, v) in enumerate((("X", x), ("Y", y), ("Z", z))):
        shift = _integer_shift(rec, header, stream, i)
        if shift is not None:      # same scale, offsets a whole number of units apart: exact integers
            out[dim] = rec.array[dim] + shift
        else:
            if v is None:
                v = rec.array[dim] * float(rec.scales[i]) + float(rec.offsets[i])
            out[dim] = np.round((v - off[i]) / sc[i]).astype(np.int32)
    return out


def integer_shifts(rec: laspy.ScaleAwarePointRecord, header: laspy.LasHeader,
                   stream: FileStream) -> np.ndarray | None:
    """``(X, Y, Z)`` output minus input integer shifts when all three are exact, else None."""
    shifts = [_integer_shift(rec, header, stream, i) for i in range(3)]
    return None if any(v is None for v in shifts) else np.array(shifts, dtype=np.int64)


def is_prefix(src: np.dtype, dst: np.dtype) -> bool:
    """Every field of ``src`` is in ``dst`` at the same offset with the same type, and ``dst`` only adds fields."""
    if src.names is None or dst.names is None or len(src.names) > len(dst.names):
        return False
    return all(a == b and src.fields[a][:2] == dst.fields[b][:2] for a, b in zip(src.names, dst.names))


def _integer_shift(rec: laspy.ScaleAwarePointRecord, header: laspy.LasHeader, stream: FileStream,
                   axis: int) -> int | None:
    """``X_out - X_in`` when it is the same integer for every point of the axis, else None."""
    if stream.reprojected and axis < 2:
        return None
    if axis == 2 and stream.z_factor != 1.0:
        return None
    s_in, s_out = float(rec.scales[axis]), float(header.scales[axis])
    if s_in != s_out:
        return None
    d = (float(rec.offsets[axis]) - float(header.offsets[axis])) / s_out
    if abs(d - round(d)) > 1e-6 or abs(d) > 2**30:
        return None
    return int(round(d))

