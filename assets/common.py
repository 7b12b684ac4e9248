"""Helpers shared by the assets: settings, catalog client, metadata for the Dagster UI."""

from __future__ import annotations

import base64
import io
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import dagster as dg

from citymodel.config import Settings


def catalog_client(settings: Settings):
    """The catalog resource of the configured deployment (HTTP or local file, per URL scheme)."""
    from resources.catalog import CatalogResource

    return CatalogResource.from_settings(settings)


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = round(time.perf_counter() - t0, 3)


def bbox_metadata(bounds) -> dg.MetadataValue:
    minx, miny, maxx, maxy = (round(float(v), 2) for v in bounds)
    return dg.MetadataValue.json({"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy})


def png_markdown(fig) -> dg.MetadataValue:
    """A matplotlib figure as an inline picture in the Dagster UI (markdown with a data URL)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{data})")


def new_figure(w: float = 4.0, h: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def write_json_atomic(path: Path, obj: Any) -> Path:
    from citymodel.fileio import atomic_write_text

    return atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
