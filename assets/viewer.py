"""Stage ``publish``: the viewer's parts of a release (the 3D viewer, its ground overlays, terrain and
portal configurations). Gathers the deployment's inputs and calls :mod:`citymodel.viewer.parts`."""

from __future__ import annotations

from pathlib import Path

from citymodel.config import Settings

__all__ = ["viewer_inputs", "add_viewer_to_release", "write_viewer_into", "day_lengths_h"]


def day_lengths_h(settings: Settings) -> dict[str, float]:
    """Hours the sun is above the horizon on each configured day, computed as the analysis tiles
    compute the top stop of their sun-hours ramp (same sun path, same time step)."""
    from citymodel.analysis.parameters import day_sun_path

    if not settings.analysis.sun.days:
        return {}
    sun = day_sun_path(settings)
    return {f"{date.month:02d}-{date.day:02d}": float(sun.above_horizon[sun.day_mask(date)].sum() * sun.step_h)
            for date in sun.dates}


def viewer_inputs(settings: Settings):
    """The :class:`citymodel.viewer.parts.ViewerInputs` of a deployment."""
    import geopandas as gpd

    from citymodel.dtm import DtmMosaic
    from citymodel.tiles3d.geo import resolve_geoid
    from citymodel.viewer.bundle import viewer_source
    from citymodel.viewer.parts import ViewerInputs

    from .buildings import buildings_dir
    from .staging import point_cloud_paths

    s = settings
    dtm = [p for t in s.tile_ids if (p := point_cloud_paths(s, t)[1]).exists()]
    table = None
    bp = buildings_dir(s) / "buildings.parquet"
    if bp.exists():
        table = gpd.read_parquet(bp)
        if "method" in table:
            table = table[table["method"].astype(str) != "rejected"]
    base_map = s.viewer.base_map.model_dump() if s.viewer.base_map else None
    return ViewerInputs(
        name=s.name, title=s.title or s.name, crs=s.processing_crs, vertical_crs=s.vertical_crs, extent=s.extent,
        geoid=resolve_geoid("auto"), timezone=s.timezone, year=s.analysis.year, sun_days=list(s.analysis.sun.days),
        storey_height_m=s.analysis.storey_height_m, source=viewer_source(),
        dtm_sample=DtmMosaic(dtm) if dtm else None, day_lengths_h=day_lengths_h(s),
        noise_lower_db=s.analysis.noise.isophone_lower_db, noise_step_db=s.analysis.noise.isophone_step_db,
        terrain_cell_m=s.viewer.terrain_cell_m, buildings=table, base_map=base_map,
        public_url=s.viewer.public_url or "http://127.0.0.1:8765/",
        attribution=f"{s.publish.publisher}, {s.publish.license}")


def write_viewer_into(release_dir: Path, settings: Settings):
    """Write the viewer's parts into a release folder (see :func:`citymodel.viewer.parts.write_viewer_parts`)."""
    from citymodel.viewer.parts import write_viewer_parts

    return write_viewer_parts(release_dir, viewer_inputs(settings))


def add_viewer_to_release(builder, settings: Settings):
    """Write and register the viewer's parts in an open release; None where the deployment turns
    the viewer off or CesiumJS is not installed (the reason is returned in the note)."""
    from citymodel.viewer.bundle import viewer_source

    if not settings.viewer.enabled:
        return None, "viewer.enabled is false"
    why = viewer_source().missing()
    if why:
        return None, why
    release_dir = builder.register_folder("viewer", dataset="viewer-3d", entry="index.html",
                                          title="3D-Viewer (CesiumJS, offline) / 3D viewer",
                                          media_type="text/html", format="HTML").parent
    parts = write_viewer_into(release_dir, settings)
    if parts.overlays:
        builder.register_folder("overlays", dataset="viewer-overlays", entry="index.json",
                                title="Bodenebenen des Viewers (PNG, EPSG:4326) / ground overlays",
                                media_type="application/json", format="JSON")
    if parts.terrain:
        builder.register_folder("terrain", dataset="viewer-terrain", entry="heightmap.json",
                                title="Gelände des Viewers (Höhengitter, ellipsoidisch) / viewer terrain",
                                media_type="application/json", format="JSON")
    builder.register_folder("portals", dataset="portal-configs", entry="masterportal/services.json",
                            title="Layer für Masterportal und VC Map / portal layer configurations",
                            media_type="application/json", format="JSON")
    return parts, ""
