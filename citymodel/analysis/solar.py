"""Annual solar irradiation on roof surfaces with shading, and solar-cadastre suitability classes.

Method
------
1. A year of sun positions and irradiance, hour by hour (:class:`~citymodel.analysis.climate.SkyYear`:
   DNI, GHI, DHI, extraterrestrial DNI): from a typical-year weather dataset, from a clear-sky year
   scaled to monthly climate means, or the clear sky alone (:mod:`citymodel.analysis.climate`;
   ``analysis.solar.climate``). Every output names the climate it was computed with.
2. Plane-of-array components per roof surface and hour, with the same equations as
   ``pvlib.irradiance.get_total_irradiance``: beam ``DNI cos(AOI)``, sky diffuse isotropic
   ``DHI (1 + cos tilt)/2`` or Hay-Davies (circumsolar part ``DHI A Rb``, ``A = DNI/DNI_extra``),
   ground-reflected ``GHI albedo (1 - cos tilt)/2``. Vectorised over surfaces and hours.
3. Sample points on each roof surface (a grid of ``spacing_m`` in the surface's plane, 0.05 m above
   it). **Direct shading** by ray casting: the year's sun positions above the horizon are binned
   into ``sun_bin_deg`` azimuth/elevation cells; one ray per point and bin (only bins in front of
   the surface) decides whether the beam (and the circumsolar part) of every hour in that bin
   reaches the point. **Diffuse shading**: a sky-view factor from the 145 Tregenza sky patches,
   cosine- and solid-angle-weighted, relative to the unobstructed plane (1 for an open roof; so an
   unshaded roof gets exactly the transposition model's value).
4. Per surface: the mean over its points, in kWh/m²·a, times the area in kWh/a; a suitability class
   relative to the site's maximal yield (an unshaded, south-facing plane at the optimal tilt, same
   model): ``very suitable`` >= 80 %, ``suitable`` >= 60 %, ``less suitable`` below, and
   ``too small`` below ``min_area_m2``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pvlib
import shapely
from shapely.geometry import Polygon

from ..errors import ConfigError
from ..geometry3d import Solid, Surface
from .climate import ClearSkyYear, SkyYear, clear_sky_year
from .scene import Scene

__all__ = ["tregenza_sky", "SkyYear", "ClearSkyYear", "clear_sky_year", "poa_components", "plane_irradiation",
           "roof_surfaces", "roof_irradiation", "SUITABILITY_CLASSES", "optimal_plane_irradiation", "sun_bins",
           "shading_directions"]

#: Suitability classes: (name, minimum share of the site's maximal yield).
SUITABILITY_CLASSES: tuple[tuple[str, float], ...] = (("very suitable", 0.8), ("suitable", 0.6),
                                                      ("less suitable", 0.0))
_TREGENZA = ((6.0, 30), (18.0, 30), (30.0, 24), (42.0, 24), (54.0, 18), (66.0, 12), (78.0, 6), (90.0, 1))


def tregenza_sky() -> tuple[np.ndarray, np.ndarray]:
    """The 145 Tregenza sky patches: unit directions ``(145, 3)`` (x east, y north, z up) and solid
    angles (sr, summing to 2 pi)."""
    dirs, omega = [], []
    for el, n in _TREGENZA:
        lo, hi = np.radians(el - 6.0), np.radians(min(90.0, el + 6.0))
        if n == 1:
            lo = np.radians(84.0)
            dirs.append(np.array([[0.0, 0.0, 1.0]]))
            omega.append(np.array([2 * np.pi * (1 - np.sin(lo))]))
            continue
        az = np.radians((np.arange(n) + 0.5) * 360.0 / n)
        e = np.radians(el)
        dirs.append(np.column_stack([np.cos(e) * np.sin(az), np.cos(e) * np.cos(az), np.full(n, np.sin(e))]))
        omega.append(np.full(n, 2 * np.pi * (np.sin(hi) - np.sin(lo)) / n))
    return np.concatenate(dirs), np.concatenate(omega)


def sun_bins(vectors: np.ndarray, sun_bin_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The year's sun positions binned by azimuth and elevation (``sun_bin_deg``) for shading rays.

    Returns the unit direction of each bin (the mean of its positions) ``(bins, 3)`` and the bin of
    every position. :func:`roof_irradiation` casts one shading ray per sample and bin.
    """
    az_g = np.degrees(np.arctan2(vectors[:, 0], vectors[:, 1])) % 360
    el = np.degrees(np.arcsin(np.clip(vectors[:, 2], -1, 1)))
    key = np.floor(az_g / sun_bin_deg).astype(np.int64) * 1000 + np.floor(el / sun_bin_deg).astype(np.int64)
    ukeys, bin_of_step = np.unique(key, return_inverse=True)
    bin_vec = np.zeros((len(ukeys), 3))
    np.add.at(bin_vec, bin_of_step, vectors)
    bin_vec /= np.linalg.norm(bin_vec, axis=1)[:, None]
    return bin_vec, bin_of_step


def shading_directions(sky: SkyYear, sun_bin_deg: float) -> np.ndarray:
    """Every direction :func:`roof_irradiation` casts shading rays in: the sun bins and the 145
    Tregenza sky patches ``(n, 3)``. What lies in none of these directions from a roof cannot change
    its irradiation (the impact area of a planning variant)."""
    return np.concatenate([sun_bins(sky.vectors, sun_bin_deg)[0], tregenza_sky()[0]])


def _grid_normal(tilt_deg, grid_azimuth_deg) -> np.ndarray:
    t = np.radians(np.asarray(tilt_deg, dtype=float))
    a = np.radians(np.asarray(grid_azimuth_deg, dtype=float))
    return np.column_stack([np.sin(t) * np.sin(a), np.sin(t) * np.cos(a), np.cos(t)]).reshape(-1, 3)


def poa_components(normals: np.ndarray, sky: SkyYear, model: str = "isotropic",
                   albedo: float = 0.2) -> dict[str, np.ndarray]:
    """Plane-of-array irradiance (W/m²) per plane and step: ``(planes, steps)`` arrays.

    Keys: ``beam``, ``circumsolar`` (Hay-Davies only, else zeros), ``sky_iso``, ``ground``.
    """
    n = np.asarray(normals, dtype=float).reshape(-1, 3)
    cos_aoi = np.clip(n @ sky.vectors.T, 0.0, None)                    # (planes, steps)
    cos_tilt = np.clip(n[:, 2], -1, 1)[:, None]
    beam = cos_aoi * sky.dni[None, :]
    ground = sky.ghi[None, :] * albedo * (1 - cos_tilt) / 2
    if model == "isotropic":
        sky_iso = sky.dhi[None, :] * (1 + cos_tilt) / 2
        circ = np.zeros_like(beam)
    elif model == "haydavies":
        a = (sky.dni / sky.dni_extra)[None, :]
        cos_z = np.maximum(np.cos(np.radians(sky.zenith_deg)), 0.01745)[None, :]
        circ = sky.dhi[None, :] * a * cos_aoi / cos_z
        sky_iso = sky.dhi[None, :] * (1 - a) * (1 + cos_tilt) / 2
    else:
        raise ConfigError(f"unknown sky diffuse model {model!r}. Fix: use 'isotropic' or 'haydavies'")
    return {"beam": beam, "circumsolar": circ, "sky_iso": sky_iso, "ground": np.broadcast_to(ground, beam.shape)}


def plane_irradiation(tilt_deg, azimuth_deg, sky: SkyYear, model: str = "isotropic",
                      albedo: float = 0.2) -> np.ndarray:
    """Annual unshaded irradiation (kWh/m²·a) of planes given by tilt and *true* azimuth (degrees)."""
    n = _grid_normal(tilt_deg, np.asarray(azimuth_deg, dtype=float) - sky.convergence_deg)
    c = poa_components(n, sky, model, albedo)
    total = c["beam"] + c["circumsolar"] + c["sky_iso"] + c["ground"]
    return total.sum(axis=1) * sky.step_h / 1000.0


def optimal_plane_irradiation(sky: SkyYear, model: str = "isotropic", albedo: float = 0.2) -> tuple[float, float]:
    """Maximal unshaded annual irradiation at the site: ``(kWh/m²·a, tilt_deg)`` of a south-facing
    plane, tilt searched in 1° steps from 0 to 90."""
    tilts = np.arange(0.0, 91.0)
    irr = plane_irradiation(tilts, np.full(tilts.size, 180.0), sky, model, albedo)
    k = int(np.argmax(irr))
    return float(irr[k]), float(tilts[k])


# ================================================================================== roofs
@dataclass
class RoofSurfaceRecord:
    building_id: str
    surface_index: int      # index among the building's RoofSurfaces (solids in order)
    part_index: int
    surface: Surface


def roof_surfaces(buildings: Mapping[str, Solid | Sequence[Solid]]) -> list[RoofSurfaceRecord]:
    """The RoofSurfaces of every building, numbered per building."""
    out = []
    for bid, solids in buildings.items():
        solids = [solids] if isinstance(solids, Solid) else list(solids)
        k = 0
        for pi, so in enumerate(solids):
            for s in so.surfaces:
                if s.kind == "RoofSurface":
                    out.append(RoofSurfaceRecord(str(bid), k, pi, s))
                    k += 1
    return out


def _surface_samples(surface: Surface, spacing_m: float, offset_m: float) -> np.ndarray:
    """Grid points on a planar polygon (in its plane), lifted ``offset_m`` along its normal."""
    n = surface.normal
    ring = np.asarray(surface.exterior, dtype=float)
    p0 = ring.mean(axis=0)
    ref = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(ref, n)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    to2 = lambda r: np.column_stack([(r - p0) @ e1, (r - p0) @ e2])  # noqa: E731
    poly = Polygon(to2(ring), [to2(np.asarray(h, dtype=float)) for h in surface.rings[1:]])
    if not poly.is_valid:
        poly = poly.buffer(0)
    minx, miny, maxx, maxy = poly.bounds
    us = np.arange(minx + spacing_m / 2, maxx, spacing_m)
    vs = np.arange(miny + spacing_m / 2, maxy, spacing_m)
    U, V = np.meshgrid(us, vs)
    U, V = U.ravel(), V.ravel()
    inside = shapely.contains_xy(poly, U, V)
    if not inside.any():
        rp = poly.representative_point()
        U, V = np.array([rp.x]), np.array([rp.y])
    else:
        U, V = U[inside], V[inside]
    return p0 + U[:, None] * e1 + V[:, None] * e2 + offset_m * n


def _classify(ratio: np.ndarray, area: np.ndarray, min_area_m2: float) -> np.ndarray:
    out = np.full(ratio.shape, SUITABILITY_CLASSES[-1][0], dtype=object)
    for name, lim in reversed(SUITABILITY_CLASSES[:-1]):
        out[ratio >= lim] = name
    out[area < min_area_m2] = "too small"
    return out


def roof_irradiation(scene: Scene, buildings: Mapping[str, Solid | Sequence[Solid]],
                     sky: SkyYear, *, spacing_m: float = 1.0, offset_m: float = 0.05,
                     model: str = "isotropic", albedo: float = 0.2, sun_bin_deg: float = 3.0,
                     min_area_m2: float = 10.0, crs: str | None = None):
    """Annual irradiation per roof surface with direct shading and a sky-view factor.

    Parameters
    ----------
    scene : Scene
        Occluders (buildings incl. these, crowns, terrain).
    buildings : mapping building id -> Solid or list of Solid
        The buildings whose roofs are assessed.
    sky : SkyYear
        The year of sun and irradiance (:mod:`citymodel.analysis.climate`).
    spacing_m : float
        Sample spacing on each roof surface (at least one point per surface).
    model : {'isotropic', 'haydavies'}
        Sky diffuse transposition.
    sun_bin_deg : float
        Azimuth/elevation bin size of the sun positions for shading rays.
    min_area_m2 : float
        Surfaces smaller than this are classed ``too small``.
    crs : str, optional
        CRS of the returned GeoDataFrame.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per roof surface: ``building_id, surface_index, part_index, area_m2, tilt_deg,
        azimuth_deg`` (true north, NaN for flat), ``irradiation_kwh_m2a, irradiation_kwh_a,
        unshaded_kwh_m2a, shading_loss, sky_view_factor, suitability_ratio, suitability``,
        ``samples``, ``climate`` (the climate of ``sky``) and the 2D roof polygon as geometry.
        ``.attrs`` holds method and parameters.
    """
    import geopandas as gpd

    t0 = time.perf_counter()
    if not spacing_m > 0:
        raise ConfigError(f"roof sample spacing {spacing_m} m is not positive. Fix: give e.g. 1.0")
    recs = roof_surfaces(buildings)
    ref_kwh, ref_tilt = optimal_plane_irradiation(sky, model, albedo)
    sky_dirs, sky_omega = tregenza_sky()
    bin_vec, bin_of_step = sun_bins(sky.vectors, sun_bin_deg)
    nb = len(bin_vec)
    onehot = np.zeros((len(sky.times), nb))
    onehot[np.arange(len(sky.times)), bin_of_step] = 1.0

    rows = []
    rays = 0
    # surfaces in batches so that the (surfaces x steps) matrices stay small
    batch = 256
    for b0 in range(0, len(recs), batch):
        chunk = recs[b0:b0 + batch]
        normals = np.array([r.surface.normal for r in chunk])
        comp = poa_components(normals, sky, model, albedo)
        direct_bins = (comp["beam"] + comp["circumsolar"]) @ onehot        # (surfaces, bins) W h/m² per step
        diffuse_iso = comp["sky_iso"].sum(axis=1)
        ground = comp["ground"].sum(axis=1)
        samples = [_surface_samples(r.surface, spacing_m, offset_m) for r in chunk]
        counts = np.array([len(s) for s in samples])
        pts = np.concatenate(samples)
        owner = np.repeat(np.arange(len(chunk)), counts)
        # direct: rays per (point, bin) where the bin carries beam on that surface
        lit_direct = np.zeros(len(pts))
        for j in range(nb):
            w = direct_bins[owner, j]
            idx = np.flatnonzero(w > 0)
            if len(idx) == 0:
                continue
            tr = scene.transmittance(pts[idx], bin_vec[j])
            lit_direct[idx] += w[idx] * tr
            rays += len(idx)
        # diffuse: sky-view factor relative to the open plane
        svf_num = np.zeros(len(pts))
        svf_den = np.zeros(len(pts))
        pn = normals[owner]
        for j in range(len(sky_dirs)):
            c = pn @ sky_dirs[j]
            idx = np.flatnonzero(c > 0)
            if len(idx) == 0:
                continue
            w = sky_omega[j] * c[idx]
            tr = scene.transmittance(pts[idx], sky_dirs[j])
            svf_num[idx] += w * tr
            svf_den[idx] += w
            rays += len(idx)
        svf = np.where(svf_den > 0, svf_num / np.where(svf_den > 0, svf_den, 1), 1.0)
        per_point = lit_direct + diffuse_iso[owner] * svf + ground[owner]
        sums = np.bincount(owner, weights=per_point, minlength=len(chunk))
        svf_mean = np.bincount(owner, weights=svf, minlength=len(chunk)) / counts
        irr = sums / counts * sky.step_h / 1000.0
        unshaded = (direct_bins.sum(axis=1) + diffuse_iso + ground) * sky.step_h / 1000.0
        for k, r in enumerate(chunk):
            s = r.surface
            az = s.azimuth_deg
            rows.append({
                "building_id": r.building_id, "surface_index": r.surface_index, "part_index": r.part_index,
                "area_m2": s.area_m2, "tilt_deg": s.slope_deg,
                "azimuth_deg": (az + sky.convergence_deg) % 360.0 if np.isfinite(az) else np.nan,
                "irradiation_kwh_m2a": irr[k], "irradiation_kwh_a": irr[k] * s.area_m2,
                "unshaded_kwh_m2a": unshaded[k],
                "shading_loss": 1.0 - irr[k] / unshaded[k] if unshaded[k] > 0 else 0.0,
                "sky_view_factor": svf_mean[k], "samples": int(counts[k]),
                "geometry": Polygon(np.asarray(s.exterior)[:, :2],
                                    [np.asarray(h)[:, :2] for h in s.rings[1:]]),
            })
    cols = ["building_id", "surface_index", "part_index", "area_m2", "tilt_deg", "azimuth_deg",
            "irradiation_kwh_m2a", "irradiation_kwh_a", "unshaded_kwh_m2a", "shading_loss", "sky_view_factor",
            "samples", "geometry"]
    gdf = gpd.GeoDataFrame(rows if rows else None, columns=cols, geometry="geometry", crs=crs)
    ratio = gdf["irradiation_kwh_m2a"].to_numpy(float) / ref_kwh if len(gdf) else np.zeros(0)
    gdf.insert(len(cols) - 1, "suitability_ratio", ratio)
    gdf.insert(len(cols), "suitability", _classify(ratio, gdf["area_m2"].to_numpy(float), min_area_m2))
    gdf.insert(len(cols) + 1, "climate", pd.Series([sky.climate] * len(gdf), index=gdf.index, dtype=object))
    gdf.attrs.update({
        "layer": "roof_irradiation", "units": "kWh/m²·a",
        "method": f"{sky.metadata.get('climate_label', 'clear-sky year')}; plane-of-array transposition, direct "
                  "shading by ray casting (binned sun positions), diffuse shading by a Tregenza sky-view factor",
        "transposition_model": model, "albedo": albedo, "spacing_m": spacing_m, "sun_bin_deg": sun_bin_deg,
        "sun_bins": nb, "sky_directions": len(sky_dirs), "reference_kwh_m2a": round(ref_kwh, 3),
        "reference_tilt_deg": ref_tilt, "classes": "very suitable >= 80 %, suitable >= 60 %, less suitable < 60 % "
        f"of the reference; too small < {min_area_m2} m²", "min_area_m2": min_area_m2,
        "rays": int(rays), "seconds": round(time.perf_counter() - t0, 3),
        **sky.metadata, **scene.metadata()})
    return gdf
