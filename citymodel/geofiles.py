"""Open vector data files written from GeoDataFrames: GeoPackage, GeoParquet and CSV.

Written by the buildings, analysis and publish stages. Every writer is atomic (through
:mod:`citymodel.fileio`: a failed write leaves no file behind and the old one in place) and
deterministic where the format allows it: the same data gives the same bytes, so an unchanged
dataset does not make a new release (see :mod:`citymodel.release`). A write that fails raises a
:class:`~citymodel.errors.ReleaseError` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ReleaseError, dataset_error
from .fileio import atomic_output, atomic_write_bytes


def buildings_csv(frame, path: str | os.PathLike | None = None, *, wkt: bool = False,
                  wkt_precision: int = 3) -> str | Path:
    """Attributes of ``frame`` as CSV (UTF-8, ``,``-separated, ``\\n`` line ends, header row).

    The geometry column is dropped, or with ``wkt=True`` written as ``geometry_wkt`` (in the
    frame's CRS, rounded to ``wkt_precision`` decimals). List, dict and array values become JSON
    text. With ``path`` the file is written atomically and its path returned, else the text.
    """
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(frame).copy()
    geom_col = getattr(frame, "_geometry_column_name", None) if hasattr(frame, "geometry") else None
    if geom_col is not None and geom_col in df.columns:
        geoms = df.pop(geom_col)
        if wkt:
            import shapely
            df["geometry_wkt"] = shapely.to_wkt(np.asarray(geoms, dtype=object),
                                                rounding_precision=wkt_precision, trim=True)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = [json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, ensure_ascii=False,
                                  default=str)
                       if isinstance(v, (list, dict, tuple, np.ndarray)) else v for v in df[col]]
    text = df.to_csv(index=False, lineterminator="\n")
    if path is None:
        return text
    return atomic_write_bytes(path, text.encode("utf-8"))


def _stable_last_change(last_change: datetime | str | None) -> str:
    if isinstance(last_change, datetime):
        return last_change.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(last_change, str):
        return last_change
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return "2000-01-01T00:00:00.000Z"


def write_geopackage(frame, path: str | os.PathLike, *, layer: str | None = None,
                     last_change: datetime | str | None = None) -> Path:
    """Write a GeoDataFrame as a one-layer GeoPackage, atomically (temporary file, then rename).

    The layer is named ``layer`` or the file stem (``buildings`` for ``buildings.gpkg``). The
    GeoPackage ``last_change`` timestamp is pinned (``last_change``, else ``SOURCE_DATE_EPOCH``,
    else 2000-01-01) so that the same data gives the same bytes, which keeps unchanged releases
    from being republished.
    """
    import pyogrio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = layer or path.name.split(".")[0]
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _stable_last_change(last_change)})
    try:
        with atomic_output(path, suffix=".gpkg") as tmp:
            tmp.unlink()  # GDAL creates the GeoPackage file itself rather than opening one
            try:
                frame.to_file(tmp, driver="GPKG", layer=name, engine="pyogrio")
            finally:
                for p in (Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                    if p.exists():
                        p.unlink()
    except Exception as exc:
        raise dataset_error(ReleaseError, path.name, f"writing the GeoPackage {path} failed "
                            f"({type(exc).__name__}: {exc})",
                            "make the columns GeoPackage types (no lists/dicts: JSON-encode them first)") from exc
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    return path


def write_geoparquet(frame, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write a GeoDataFrame as GeoParquet, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_output(path, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, **kwargs)
    except Exception as exc:
        raise dataset_error(ReleaseError, path.name, f"writing the GeoParquet {path} failed "
                            f"({type(exc).__name__}: {exc})",
                            "give every column one Arrow type (e.g. JSON-encode mixed list/dict values)") from exc
    return path
