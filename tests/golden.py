"""Digests of the published analysis values of a release, to prove that a refactor changes none.

``analysis_digest(release)`` summarises every file of ``data/analysis/`` a release holds: per raster
band and per numeric table column the count of finite values, their sum, sum of squares, minimum and
maximum, and per text column a hash of the sorted values; rows are identified by their key columns
so that a changed row order does not count. Two runs of the same algorithms on the same inputs give
the same digest within float noise (:func:`compare`, relative tolerance 1e-6).

The golden digest of the sample city lives in ``tests/data/analysis_golden.json``. It was made from
the release of the code *before* the analysis seam (issue #12) and must only be renewed on purpose,
when an algorithm changes its results (a new roof model, a new climate): then run::

    .venv/bin/python -m tests.golden OUTPUT_DIR   # OUTPUT_DIR holds latest/ of a sample-city run

and say in the commit which change moved which values.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).parent / "data" / "analysis_golden.json"
#: columns that identify a row in the tables of data/analysis (those present are used)
KEYS = ("building_id", "surface_index", "storey", "scenario", "indicator", "band_lo_db", "observer_id",
        "target_id", "tile_id", "x", "y", "z")


def _stats(v: np.ndarray) -> dict:
    v = v[np.isfinite(v)].astype(np.float64)
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "sum": float(v.sum()), "sumsq": float((v * v).sum()), "min": float(v.min()),
            "max": float(v.max())}


def _table_digest(frame: pd.DataFrame) -> dict:
    frame = pd.DataFrame(frame).drop(columns=[c for c in ("geometry",) if c in frame])
    keys = [k for k in KEYS if k in frame]
    if keys:
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    out = {"rows": int(len(frame))}
    for c in sorted(frame.columns):
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce") if col.dtype == object or str(col.dtype) in ("str", "string") \
            else col
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(num) and num.notna().sum() == col.notna().sum():
            out[c] = _stats(np.asarray(num, dtype=np.float64))
        else:
            text = "\n".join(sorted(col.astype(str)))
            out[c] = {"sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}
    return out


def _raster_digest(path: Path) -> dict:
    import rasterio

    with rasterio.open(path) as r:
        bands = r.read().astype(np.float64)
        nodata = r.nodata
    if nodata is not None and np.isfinite(nodata):
        bands[bands == nodata] = np.nan
    return {"shape": list(bands.shape), **{f"band{i + 1}": _stats(b.ravel()) for i, b in enumerate(bands)}}


def analysis_digest(release: Path) -> dict:
    """Digest of ``release/data/analysis/*`` (rasters, Parquet tables, CSV tables)."""
    import geopandas as gpd

    d = Path(release) / "data" / "analysis"
    out: dict = {}
    for p in sorted(d.iterdir()):
        if p.suffix == ".tif":
            out[p.name] = _raster_digest(p)
        elif p.suffix == ".parquet":
            try:
                out[p.name] = _table_digest(gpd.read_parquet(p))
            except ValueError:
                out[p.name] = _table_digest(pd.read_parquet(p))
        elif p.suffix == ".csv" and not (d / (p.stem + ".parquet")).exists():
            out[p.name] = _table_digest(pd.read_csv(p))
    return out


def compare(got: dict, want: dict, rtol: float = 1e-6, atol: float = 1e-6) -> list[str]:
    """Differences between two digests, as readable lines (empty: equal)."""
    diffs = []
    for name in sorted(set(got) | set(want)):
        if name not in got or name not in want:
            diffs.append(f"{name}: {'missing' if name not in got else 'new'}")
            continue
        g, w = got[name], want[name]
        for k in sorted(set(g) | set(w)):
            a, b = g.get(k), w.get(k)
            if isinstance(a, dict) and isinstance(b, dict):
                for s in sorted(set(a) | set(b)):
                    x, y = a.get(s), b.get(s)
                    if isinstance(x, float) and isinstance(y, float):
                        if not np.isclose(x, y, rtol=rtol, atol=atol):
                            diffs.append(f"{name} {k}.{s}: {x!r} != {y!r}")
                    elif x != y:
                        diffs.append(f"{name} {k}.{s}: {x!r} != {y!r}")
            elif a != b:
                diffs.append(f"{name} {k}: {a!r} != {b!r}")
    return diffs


if __name__ == "__main__":  # pragma: no cover - renew the golden digest on purpose
    out_dir = Path(sys.argv[1])
    digest = analysis_digest(out_dir / "latest")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(digest)} files)")
