"""Helpers shared by the assets: settings, catalog client, metadata for the Dagster UI, file writers.

The writers go through :mod:`citymodel.fileio` (the one atomic writer): a failure leaves the old
file in place.
"""

from __future__ import annotations

import base64
import io
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
import numpy as np

from citymodel.config import Settings


def catalog_client(settings: Settings):
    """The catalog resource of the configured deployment (HTTP or local file, per URL scheme)."""
    from resources.catalog import CatalogResource

    return CatalogResource.from_settings(settings)


@contextmanager
def no_retry_on_permanent_errors() -> Iterator[None]:
    """Let only transient errors reach the step's RetryPolicy.

    A permanent error of the core (a 404, an unsafe archive, a refused URL, a parse or schema error,
    a limit; :func:`citymodel.errors.is_transient` is False) ends the step at once as a
    ``dg.Failure`` with ``allow_retries=False`` and the error's own message; a retry would repeat
    it, or find the half-done work of the failed attempt and hide the failure.
    """
    from citymodel.errors import CityModelError, is_transient

    try:
        yield
    except CityModelError as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False,
                         metadata={"error": type(exc).__name__, "permanent": True}) from exc


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


def json_metadata(d: dict) -> dg.MetadataValue:
    """A dict as JSON metadata; numpy numbers and arrays as Python values, anything else as text."""
    return dg.MetadataValue.json(json.loads(json.dumps(d, default=_jsonable)))


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def skipped_check(key, name: str, reason: str) -> dg.AssetCheckResult:
    """A check that did not run (nothing to check: a role not configured, no schemas, a tile
    outside the extent). Dagster has no "skipped" result for a check that was executed, so it
    passes with ``metadata.status = "skipped"`` and the reason; the quality report and the release's
    check list show it as skipped (:func:`check_status`), never as passed."""
    return dg.AssetCheckResult(asset_key=key, check_name=name, passed=True,
                               metadata={"status": SKIPPED, "reason": reason})


SKIPPED = "skipped"


def check_status(passed: bool, metadata: dict | None) -> str:
    """``pass``, ``fail`` or ``skipped`` of a check result from its ``passed`` and metadata
    (values may be dagster MetadataValues)."""
    raw = (metadata or {}).get("status")
    value = getattr(raw, "value", raw)
    if value == SKIPPED or getattr(raw, "text", None) == SKIPPED:
        return SKIPPED
    return "pass" if passed else "fail"


def skipped_result(key, note: str, checks: list[str]) -> dg.MaterializeResult:
    """The result of an asset (or partition) with nothing to compute: ``note`` says why; its checks
    are reported as skipped (:func:`skipped_check`)."""
    return dg.MaterializeResult(metadata={"note": note}, check_results=[skipped_check(key, c, note) for c in checks])


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


def histogram_plot(values, title: str, xlabel: str, ylabel: str, bins: int = 30, weights=None,
                   size: tuple[float, float] = (4.0, 2.5)) -> dg.MetadataValue:
    """A histogram of ``values`` (clip them beforehand where outliers would hide the rest), as
    :func:`png_markdown`."""
    fig, ax = new_figure(*size)
    ax.hist(values, bins=bins, weights=weights)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return png_markdown(fig)


def raster_plot(arr, bounds, title: str, label: str, cmap: str = "viridis", vmin=None, vmax=None):
    """A raster (NaN transparent) over ``bounds`` with a colour bar, as :func:`png_markdown`."""
    fig, ax = new_figure(4, 3.6)
    im = ax.imshow(np.ma.masked_invalid(arr), extent=(bounds[0], bounds[2], bounds[1], bounds[3]),
                   cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=6)
    return png_markdown(fig)


def write_json_atomic(path: Path, obj: Any) -> Path:
    from citymodel.fileio import atomic_write_text

    return atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def write_geoparquet_atomic(frame, path: Path) -> Path:
    """A (Geo)DataFrame as (Geo)Parquet without its index, atomically."""
    from citymodel.fileio import atomic_output

    with atomic_output(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def write_csv_atomic(frame, path: Path) -> Path:
    """A DataFrame as CSV without its index, atomically."""
    from citymodel.fileio import atomic_output

    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def write_table(frame, path: Path, gpkg: Path | None = None, layer: str | None = None) -> None:
    """GeoParquet (and GeoPackage) atomically; list/dict columns JSON-encoded for the GeoPackage."""
    from citymodel.release import write_geopackage

    write_geoparquet_atomic(frame, path)
    if gpkg is not None:
        out = frame.copy()
        for c in out.columns:
            if c != out.geometry.name and out[c].dtype == object and \
                    out[c].map(lambda v: isinstance(v, (list, dict, tuple, np.ndarray))).any():
                out[c] = out[c].map(lambda v: json.dumps(list(v) if isinstance(v, (tuple, np.ndarray)) else v))
        write_geopackage(out, gpkg, layer=layer)


def points_frame(table, crs: str, x="x", y="y"):
    """A table with point coordinates in columns ``x`` and ``y`` as a GeoDataFrame (same rows)."""
    import geopandas as gpd

    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table[x], table[y]), crs=crs)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def latest_check_evaluations(instance, key: dg.AssetCheckKey) -> dict[str | None, object]:
    """The latest evaluation (``passed``, ``metadata``) of the asset check ``key`` per partition.

    Results of partitioned assets' checks carry their tile only on the run (its
    ``dagster/partition`` tag), so a record without a partition takes its run's; the history is
    read newest first, so the first evaluation met per partition is the latest one."""
    storage = instance.event_log_storage
    runs: dict[str, str | None] = {}
    latest: dict[str | None, object] = {}
    for record in storage.get_asset_check_execution_history(key, limit=1000):  # newest first
        if record.event is None or record.event.dagster_event is None:
            continue
        partition = record.partition
        if partition is None:
            if record.run_id not in runs:
                run = instance.get_run_by_id(record.run_id)
                runs[record.run_id] = run.tags.get("dagster/partition") if run is not None else None
            partition = runs[record.run_id]
        if partition in latest:
            continue
        evaluation = record.event.dagster_event.event_specific_data
        if getattr(evaluation, "passed", None) is not None:
            latest[partition] = evaluation
    return latest


def latest_check_results(context, groups: tuple[str, ...], graph) -> list[dict]:
    """The latest result of every asset check of the assets in ``groups`` (key prefixes), per
    partition: ``asset``, ``name``, ``partition``, ``passed``, ``blocking``, ``description``.

    ``graph`` is the whole asset graph (:func:`pipelines.run_state.full_asset_graph`): the run's own
    job knows only the assets it selected, and a report that listed only those would change with
    whichever assets a refresh happened to rebuild."""
    out = []
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        if key.asset_key.path[0] not in groups:
            continue
        spec = graph.get_check_spec(key)
        latest = latest_check_evaluations(context.instance, key)
        for partition, evaluation in sorted(latest.items(), key=lambda kv: str(kv[0])):
            out.append({"asset": key.asset_key.to_user_string(), "name": key.name, "partition": partition,
                        "passed": bool(evaluation.passed), "blocking": bool(spec.blocking),
                        "description": spec.description or ""})
    return out
