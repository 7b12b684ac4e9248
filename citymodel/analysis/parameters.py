"""The deployment's analysis settings as the parameters of :mod:`citymodel.analysis.layers`.

The city's tile assets and the variant assets read the same settings through these functions, so a
variant is analysed with exactly the parameters of the city it is compared with.
"""

from __future__ import annotations

from ..config import Settings
from .layers import (FacadeSunParameters, FloodParameters, NoiseLayerParameters, SceneParameters,
                     SightlineParameters, SolarParameters)


def month_day(day: str) -> tuple[int, int]:
    """``'03-21'`` -> ``(3, 21)``."""
    m, d = (int(p) for p in day.split("-"))
    return m, d


def scene_parameters(settings: Settings) -> SceneParameters:
    """The scene of the tile layers (sun hours, facades, irradiation)."""
    a = settings.analysis
    return SceneParameters(crown_transmissivity=a.crown_transmissivity, terrain_step_m=a.terrain_cell_m,
                           terrain_far_step_m=4 * a.terrain_cell_m)


def sightline_scene_parameters(settings: Settings) -> SceneParameters:
    a = settings.analysis
    return SceneParameters(crown_transmissivity=a.crown_transmissivity, terrain_step_m=a.terrain_cell_m)


def facade_sun_parameters(settings: Settings) -> FacadeSunParameters:
    a = settings.analysis
    return FacadeSunParameters(storey_height_m=a.storey_height_m, spacing_m=a.sun.facade_spacing_m,
                               din17037_date=month_day(a.sun.din17037_date), din17037_step_min=a.sun.din17037_step_min,
                               din17037_min_elevation_deg=a.sun.din17037_min_elevation_deg, year=a.year,
                               timezone=settings.timezone)


def solar_parameters(settings: Settings) -> SolarParameters:
    s = settings.analysis.solar
    return SolarParameters(spacing_m=s.spacing_m, model=s.model, albedo=s.albedo, sun_bin_deg=s.sun_bin_deg,
                           min_area_m2=s.min_area_m2)


def noise_parameters(settings: Settings) -> NoiseLayerParameters:
    n = settings.analysis.noise
    return NoiseLayerParameters(grid_spacing_m=n.grid_spacing_m, grid_height_m=n.grid_height_m,
                                max_distance_m=n.max_distance_m, building_height=n.building_height,
                                road_type=n.road_type, isophone_step_db=n.isophone_step_db,
                                isophone_lower_db=n.isophone_lower_db, storey_height_m=settings.analysis.storey_height_m,
                                reflection_order=n.reflection_order, reflection_distance_m=n.reflection_distance_m,
                                facade_type=n.facade_type)


def flood_parameters(settings: Settings) -> FloodParameters:
    f = settings.analysis.flood
    return FloodParameters(floor_offset_m=f.floor_offset_m, sample_spacing_m=f.sample_spacing_m,
                           scenarios=tuple(f.scenarios) if f.scenarios else None)


def sightline_parameters(settings: Settings) -> SightlineParameters:
    a = settings.analysis.sightlines
    return SightlineParameters(viewshed_radius_m=a.viewshed_radius_m, viewshed_cell_m=a.viewshed_cell_m,
                               target_height_m=a.target_height_m, target_tolerance_m=a.target_tolerance_m,
                               crowns_block=a.crowns_block)


def sun_path(settings: Settings, days: list[str], step_min: float):
    """The sun path of some days (``'MM-DD'``) at the deployment's site, time zone and year."""
    from .sun import sun_path as _sun_path

    return _sun_path(settings.extent, settings.processing_crs, dates=[month_day(d) for d in days],
                     step_min=step_min, tz=settings.timezone, year=settings.analysis.year)


def day_sun_path(settings: Settings):
    """The sun path of the configured sun-hours days."""
    return sun_path(settings, settings.analysis.sun.days, settings.analysis.sun.time_step_min)


def din17037_sun_path(settings: Settings):
    """The sun path of the DIN EN 17037 day at its time step."""
    a = settings.analysis.sun
    return sun_path(settings, [a.din17037_date], a.din17037_step_min)


def solar_sky(settings: Settings):
    """The year of sun and irradiance the irradiation layer uses (``analysis.solar.climate``).

    ``weather``: the staged weather dataset of the ``weather`` role hour by hour; where the
    deployment configures no ``weather`` role, the monthly means (and the year says so).
    ``monthly_means``: the clear-sky year scaled to ``analysis.solar.monthly_ghi_kwh_m2``.
    ``clear_sky``: the clear sky alone. The city and its planning variants both call this.

    Raises
    ------
    SourceDataError
        A ``weather`` role is configured but its data is not staged.
    """
    from ..errors import SourceDataError, dataset_error
    from ..store import CityStore
    from .climate import clear_sky_year, monthly_means_year, weather_year
    from .sun import grid_convergence_deg, site_location

    a = settings.analysis
    lat, lon = site_location(settings.extent, settings.processing_crs)
    site = dict(latitude=lat, longitude=lon, convergence_deg=grid_convergence_deg(lat, lon, settings.processing_crs),
                year=a.year, tz=settings.timezone)
    climate = a.solar.climate
    src = settings.source("weather")
    if climate == "weather" and src is not None:
        data = CityStore(settings).weather()
        if data is None:
            raise dataset_error(SourceDataError, src.dataset, "the weather dataset is configured but not staged",
                                "materialize staging/weather (or set analysis.solar.climate: monthly_means)")
        return weather_year(data, source=src.dataset, **site)
    if climate in ("weather", "monthly_means"):
        why = "analysis.solar.monthly_ghi_kwh_m2" + (" (no weather dataset configured)" if climate == "weather" else "")
        return monthly_means_year(a.solar.monthly_ghi_kwh_m2, source=why, **site)
    return clear_sky_year(**site)


def solar_climate_text(settings: Settings, climate: str) -> dict[str, str]:
    """Which climate the solar layer used, in words (``climate``, ``climate_label`` in English,
    ``climate_label_de`` in German) for legends, catalogs and pages: the weather dataset's name or
    the annual sum of the monthly means."""
    from .climate import CLIMATES

    if climate not in CLIMATES:
        return {"climate": climate, "climate_label": climate, "climate_label_de": climate}
    de, en = CLIMATES[climate]
    src = settings.source("weather")
    if climate == "weather" and src is not None:
        de, en = f"{de} (Datensatz {src.dataset})", f"{en} (dataset {src.dataset})"
    elif climate == "monthly_means":
        total = sum(settings.analysis.solar.monthly_ghi_kwh_m2)
        de = f"{de} ({total:,.0f} kWh/m² im Jahr)".replace(",", ".")
        en = f"{en} ({total:,.0f} kWh/m²·a)"
    return {"climate": climate, "climate_label": en, "climate_label_de": de}
