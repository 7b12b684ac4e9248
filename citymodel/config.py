"""The deployment configuration: one YAML file selected by ``CITYMODEL_CONFIG``.

Without ``CITYMODEL_CONFIG`` the bundled sample city's file (``config/sample_city.yaml``) is used.
Relative paths in the file are resolved against the folder that holds the file. The file is read
at run time (never at import), see :func:`load_config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .tiles import Tile, tiles_for_extent

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "sample_city.yaml"
ENV_VAR = "CITYMODEL_CONFIG"

ROLES = ("buildings", "lidar", "lod2_reference", "trees", "roads", "flood_zones", "viewpoints", "variants", "weather")
REQUIRED_ROLES = ("buildings", "lidar")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


GIB = 1 << 30


class CatalogSettings(_Strict):
    url: str = Field(description="DCAT-AP catalog: http(s) URL or local path of a JSON-LD file")
    timeout_s: float = Field(30.0, gt=0, description="timeout of one HTTP request; also the window over "
                             "which min_rate_bytes_s is measured")
    retries: int = Field(3, ge=0, description="retries on timeouts, connection errors and 5xx")
    backoff_s: float = Field(1.0, ge=0, description="first backoff; doubles on every retry")
    allowed_hosts: list[str] | None = Field(
        None, description="hosts (``name`` or ``name:port``) that download URLs and redirects may name; "
        "empty: the catalog's own host (for a catalog on disk: the host of each download URL, no "
        "redirect to another host)")
    allow_insecure_http: bool = Field(False, description="allow plain-http download URLs and redirects "
                                      "under an https catalog (a scheme downgrade; refused by default)")
    download_deadline_s: float = Field(3600.0, gt=0, description="total time one download (all its "
                                       "retries included) or one catalog read may take")
    min_rate_bytes_s: float = Field(10_000.0, ge=0, description="a transfer slower than this over "
                                    "timeout_s seconds is cut off (0: no minimum)")
    max_catalog_bytes: int = Field(256 << 20, gt=0, description="largest catalog document read")
    zip_max_members: int = Field(10_000, gt=0, description="most members a downloaded zip may hold")
    zip_max_total_bytes: int = Field(20 * GIB, gt=0, description="largest total uncompressed size of a zip")
    zip_max_ratio: float = Field(200.0, gt=1, description="highest compression ratio (uncompressed / "
                                 "compressed) of a zip and of each of its members above 1 MiB")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        out = []
        for h in v:
            h = str(h).strip().lower()
            if not h or "/" in h or "@" in h:
                raise ValueError(f"'{h}' is not a host name (give e.g. 'opendata.jena.de' or "
                                 f"'geoportal.example:8443', without scheme or path)")
            out.append(h)
        return out


class SourceSettings(_Strict):
    dataset: str = Field(description="dct:identifier of the dataset in the catalog")
    crs: str | None = Field(None, description="CRS to assume where the source has none (e.g. EPSG:28992)")
    vertical_crs: str | None = Field(None, description="height reference of the source, informative")
    columns: dict[str, str] = Field(default_factory=dict,
                                    description="canonical column -> source column")
    layer: str | None = Field(None, description="layer inside a GeoPackage or archive")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="reader options, e.g. CSV {sep: ';', decimal: ','}")
    required: bool = True


class LidarSettings(_Strict):
    chunk_points: int = Field(1_000_000, gt=0, description="points read per chunk")
    halo_m: float = Field(25.0, ge=0, description="points beyond the tile edge kept for edge buildings")
    staged_format: Literal["las", "laz"] = Field(
        "las", description="staged points of tile + halo: 'las' (uncompressed: no re-compression, fast "
        "reads downstream, about 3.5x the disk) or 'laz' (lazrs-compressed, slower staging)")
    dtm_resolution_m: float = Field(1.0, gt=0)
    min_density_m2: float = Field(4.0, ge=0, description="blocking check: points per m² of the covered "
                                  "area below this fail")
    min_coverage_share: float = Field(
        0.6, ge=0, le=1, description="blocking check: share of tile ∩ extent (2 m cells) holding points; "
        "below this the tile fails (a missing strip, a truncated or misplaced file, every point at one spot). "
        "Water leaves cells empty: Delft's canals 6-13 % of the cells inside the data, 17-26 % with an extent "
        "drawn a little larger than the data; 0.6 keeps those and stops the gross failures")
    required_classes: list[int] = Field(default_factory=lambda: [2])


#: default ``quality.max_features`` per role: more records than this fail staging at once
DEFAULT_MAX_FEATURES: dict[str, int] = {
    "buildings": 1_000_000, "lod2_reference": 1_000_000, "trees": 2_000_000, "roads": 1_000_000,
    "flood_zones": 100_000, "viewpoints": 10_000}
#: default ``quality.max_file_bytes`` per role: a larger download or data file is refused
DEFAULT_MAX_FILE_BYTES: dict[str, int] = {
    "buildings": 4 * GIB, "lidar": 8 * GIB, "lod2_reference": 4 * GIB, "trees": 1 * GIB,
    "roads": 2 * GIB, "flood_zones": 2 * GIB, "viewpoints": 256 << 20}


def _per_role(value: Any, defaults: dict[str, int], key: str) -> dict[str, int]:
    """A number for every role, or a mapping role -> number merged over ``defaults``."""
    if value is None:
        return dict(defaults)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {r: int(value) for r in defaults}
    if not isinstance(value, dict):
        raise ValueError(f"give a number or a mapping role -> number (e.g. {{buildings: 500000}})")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ValueError(f"unknown role(s) {unknown} in {key}; roles are {sorted(defaults)}")
    out = dict(defaults)
    for r, n in value.items():
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n <= 0:
            raise ValueError(f"{key}.{r} must be a positive number, not {n!r}")
        out[r] = int(n)
    return out


#: default ``quality.blocking``: per error class, the share of delivered records that may show it
#: before the suite's check fails (the records themselves are quarantined either way)
DEFAULT_BLOCKING_SHARES: dict[str, float] = {
    "missing_id": 0.0, "duplicate_id": 0.0, "invalid_geometry": 0.01, "wrong_geometry_type": 0.01,
    "missing_value": 0.05, "out_of_range": 0.05}


class QualitySettings(_Strict):
    storeys_max: int = 60
    tree_height_max_m: float = 60.0
    max_features: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_FEATURES),
                                         description="per role: more records than this fail staging "
                                         "before any geometry is read")
    max_file_bytes: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_FILE_BYTES),
                                           description="per role (or one number for all): a larger "
                                           "download or data file is refused")
    min_footprint_area_m2: float = Field(2.0, ge=0, description="building footprints smaller than this "
                                         "are quarantined")
    max_quarantine_share: float = Field(0.05, ge=0, le=1,
                                        description="blocking: share of quarantined records above this fails")
    blocking: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_BLOCKING_SHARES),
        description="per error class (missing_id, duplicate_id, invalid_geometry, wrong_geometry_type, "
        "missing_value, out_of_range): the share of the delivered records that may show it before the "
        "suite's check fails; 0 = none")
    max_fallback_share: float = Field(0.1, ge=0, le=1,
                                      description="blocking, per tile: share of buildings that fall back to "
                                      "LoD1 for lack of points above this fails (from 3 buildings on)")
    schema_dir: Path | None = Field(None, description="folder holding the official JSON schemas "
                                    "(cityjson-2.0.2/, 3d-tiles-1.1/); without it schema checks are skipped")

    @field_validator("blocking", mode="before")
    @classmethod
    def _blocking(cls, v: Any) -> dict[str, float]:
        if v is None:
            return dict(DEFAULT_BLOCKING_SHARES)
        if not isinstance(v, dict):
            raise ValueError("give a mapping error class -> share, e.g. {duplicate_id: 0, invalid_geometry: 0.01}")
        unknown = sorted(set(v) - set(DEFAULT_BLOCKING_SHARES))
        if unknown:
            raise ValueError(f"unknown error class(es) {unknown} in quality.blocking; classes are "
                             f"{sorted(DEFAULT_BLOCKING_SHARES)}")
        out = dict(DEFAULT_BLOCKING_SHARES)
        for k, share in v.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
                raise ValueError(f"quality.blocking.{k} must be a share between 0 and 1, not {share!r}")
            out[k] = float(share)
        return out

    @field_validator("max_features", mode="before")
    @classmethod
    def _max_features(cls, v: Any) -> dict[str, int]:
        return _per_role(v, DEFAULT_MAX_FEATURES, "quality.max_features")

    @field_validator("max_file_bytes", mode="before")
    @classmethod
    def _max_file_bytes(cls, v: Any) -> dict[str, int]:
        return _per_role(v, DEFAULT_MAX_FILE_BYTES, "quality.max_file_bytes")


class ScheduleSettings(_Strict):
    cron: str = "0 2 * * *"
    timezone: str = "Europe/Berlin"


#: Short names of the usual open-data licences -> their DCAT-AP.de licence IRI (``publish.license``
#: takes either). Vocabulary: https://www.dcat-ap.de/def/licenses/
LICENSE_NAMES: dict[str, str] = {
    "dl-de/by-2-0": "http://dcat-ap.de/def/licenses/dl-by-de/2.0",
    "dl-de/zero-2-0": "http://dcat-ap.de/def/licenses/dl-zero-de/2.0",
    "cc-by-4.0": "http://dcat-ap.de/def/licenses/cc-by/4.0",
    "cc-by-sa-4.0": "http://dcat-ap.de/def/licenses/cc-by-sa/4.0",
    "cc0-1.0": "http://dcat-ap.de/def/licenses/cc-zero",
    "odbl-1.0": "http://dcat-ap.de/def/licenses/odbl",
}

#: The keys every deployment file must set (they go into every release's catalog).
PUBLICATION_KEYS = ("publisher", "license", "contact")
class CelerySettings(_Strict):
    broker_url_env: str = Field("CITYMODEL_CELERY_BROKER", description="environment variable holding the Celery "
                                "broker URL (e.g. redis://host:6379/0); never the URL itself")
    backend_url_env: str = Field("CITYMODEL_CELERY_BACKEND", description="environment variable holding the Celery "
                                 "result backend URL (e.g. redis://host:6379/1)")


class OrchestrationSettings(_Strict):
    """How runs are executed: the Dagster instance, concurrency and the engine."""

    dagster_home: Path | None = Field(None, description="the Dagster instance folder shared by `make ui` and "
                                      "`citymodel run` (default: <output_dir>/dagster_home)")
    max_concurrent_runs: int | None = Field(None, ge=1, description="runs in progress at once (queued run "
                                            "coordinator; `citymodel run`'s tile runs); default: CPU cores")
    pools: dict[str, int] = Field(default_factory=dict, description="concurrency pool -> steps of that pool "
                                  "running at once across all runs (memory-heavy steps: lod2, raycast, noise, lidar)")
    engine: Literal["in_process", "multiprocess", "celery"] = Field(
        "in_process", description="executor of a run's steps: in_process (one process per run), multiprocess "
        "(a process per step), celery (steps on Celery workers; needs postgres_url_env and the celery settings)")
    postgres_url_env: str | None = Field(None, description="environment variable holding a PostgreSQL URL: run, "
                                         "event and schedule storage of the instance there (default: SQLite in "
                                         "dagster_home)")
    celery: CelerySettings = CelerySettings()

    @model_validator(mode="after")
    def _celery_needs_postgres(self) -> "OrchestrationSettings":
        if self.engine == "celery" and not self.postgres_url_env:
            raise ValueError("engine 'celery' runs steps in other processes and hosts that must share the "
                             "instance: set postgres_url_env (the name of an environment variable holding "
                             "the PostgreSQL URL)")
        return self

    @field_validator("pools")
    @classmethod
    def _positive_pools(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if not isinstance(n, int) or n < 1}
        if bad:
            raise ValueError(f"pool limits must be whole numbers >= 1, got {bad}")
        return v

    def concurrent_runs(self) -> int:
        """``max_concurrent_runs``, or the number of CPU cores available to this process."""
        if self.max_concurrent_runs is not None:
            return self.max_concurrent_runs
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)


class PublishSettings(_Strict):
    license: str | None = Field(None, description="licence of the published data: a licence IRI or one of "
                                "the short names of LICENSE_NAMES (e.g. dl-de/by-2-0); required")
    keep_releases: int = Field(5, ge=1)
    publisher: str | None = Field(None, description="the publishing body, named in every catalog and as the "
                                  "attribution of dl-de/by (e.g. 'Stadt Jena, Fachdienst Geoinformation'); required")
    contact: str | None = Field(None, description="contact point of the published data: an e-mail address "
                                "(written as mailto:) or a web page URL; required")
    pointcloud_tiler: Literal["own", "py3dtiles"] = Field(
        "own", description="point-cloud 3D Tiles: 'own' (the project's octree tiler, glTF points, streamed) or "
        "'py3dtiles' (the py3dtiles CLI, .pnts; slower, kept as the reference)")
    allow_carry_over: list[str] = Field(default_factory=list, description=(
        "assets (e.g. pointcloud_tiles or publish/pointcloud_tiles) whose earlier results may be published "
        "when their rebuild failed; the release says which parts are old"))
    allow_gaps: bool = Field(False, description="publish even when parts failed or are old; the release "
                             "says which parts are missing or old")
    min_buildings: int = Field(1, ge=0, description="a release with fewer buildings is refused")
    min_points: int = Field(1, ge=0, description="a release with fewer LiDAR points is refused")
    min_coverage_share: float = Field(1.0, ge=0, le=1, description="a release is refused when the share of "
                                      "tiles without a failed part is below this")
    min_free_mb: float = Field(100.0, ge=0, description="free space (MB) that must remain on the release "
                               "folder's disk after a release is written; old releases are pruned first")

    @field_validator("license")
    @classmethod
    def _license(cls, v: str | None) -> str | None:
        if v is None or not str(v).strip():
            return None
        v = str(v).strip()
        if v.lower() in LICENSE_NAMES:
            return LICENSE_NAMES[v.lower()]
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"'{v}' is neither a licence IRI nor one of the short names {sorted(LICENSE_NAMES)}")
        return v

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str | None) -> str | None:
        if v is None or not str(v).strip():
            return None
        v = str(v).strip()
        if v.startswith(("mailto:", "http://", "https://")):
            return v
        if "@" in v and " " not in v:
            return "mailto:" + v
        raise ValueError(f"'{v}' is neither an e-mail address nor an http(s) URL")

    @field_validator("publisher")
    @classmethod
    def _publisher(cls, v: str | None) -> str | None:
        return str(v).strip() or None if v is not None else None

    def missing(self) -> list[str]:
        """The keys of :data:`PUBLICATION_KEYS` that are not set (``publish.<key>``)."""
        return [f"publish.{k}" for k in PUBLICATION_KEYS if not getattr(self, k)]


class RefreshSettings(_Strict):
    lock_wait_s: float = Field(0.0, ge=0, description="how long `citymodel run` waits for another refresh of "
                               "the same output folder before it gives up (0: give up at once)")


def _month_day(text: str) -> tuple[int, int]:
    """'MM-DD' -> (month, day); a ValueError that says what is wrong otherwise."""
    import datetime as _dt

    try:
        m, d = (int(p) for p in str(text).split("-"))
        _dt.date(2024, m, d)  # a leap year: 02-29 is a valid day
    except (ValueError, TypeError):
        raise ValueError(f"'{text}' is not a day as 'MM-DD' (e.g. '03-21')") from None
    return m, d


class SunSettings(_Strict):
    days: list[str] = Field(default_factory=lambda: ["03-21", "06-21", "12-21"],
                            description="days of the sun-hours layer as 'MM-DD' (of `analysis.year`); one "
                                        "GeoTIFF band and one facade column per day")
    time_step_min: float = Field(15.0, gt=0, le=60, description="time step of the sun path (minutes)")
    cell_m: float = Field(1.0, gt=0, description="cell size of the ground sun-hours grid (m)")
    facade_spacing_m: float | None = Field(None, gt=0, description="facade points every this many metres "
                                           "along a wall; empty: one point in the middle of each wall and storey")
    din17037_date: str = Field("03-21", description="day of the DIN EN 17037 sunlight check as 'MM-DD', "
                               "between 02-01 and 03-21 (the standard's window)")
    din17037_step_min: float = Field(5.0, gt=0, le=30, description="time step of the DIN EN 17037 check (minutes)")
    din17037_min_elevation_deg: float = Field(0.0, ge=0, le=30, description="sun below this elevation does not "
                                              "count for DIN EN 17037 (national annex; 0 = the horizon)")

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("give at least one day, e.g. ['03-21', '06-21', '12-21']")
        for d in v:
            _month_day(d)
        if len(set(v)) != len(v):
            raise ValueError(f"days {v} repeat a day; give each day once")
        return v

    @field_validator("din17037_date")
    @classmethod
    def _din_date(cls, v: str) -> str:
        m, d = _month_day(v)
        if not ((m, d) >= (2, 1) and (m, d) <= (3, 21)):
            raise ValueError(f"'{v}' is outside the DIN EN 17037 window 02-01 .. 03-21; choose e.g. '03-21'")
        return v


class SolarSettings(_Strict):
    spacing_m: float = Field(1.0, gt=0, description="sample spacing on each roof surface (m)")
    sun_bin_deg: float = Field(3.0, gt=0, le=15, description="azimuth/elevation bins of the year's sun "
                               "positions; one shading ray per roof point and bin (degrees)")
    model: str = Field("haydavies", pattern="^(isotropic|haydavies)$",
                       description="sky diffuse transposition model: haydavies (circumsolar part with the beam) "
                                   "or isotropic (underestimates south roofs by 3-4 %)")
    albedo: float = Field(0.2, ge=0, le=1, description="ground reflectance for the ground-reflected part")
    min_area_m2: float = Field(10.0, ge=0, description="roof surfaces smaller than this are classed 'too small'")
    climate: Literal["weather", "monthly_means", "clear_sky"] = Field(
        "weather", description="weather: hourly typical-year data of the 'weather' role (DWD TRY, EPW, PVGIS TMY), "
        "or monthly_means where no weather dataset is configured; monthly_means: the clear-sky year scaled per "
        "month to monthly_ghi_kwh_m2; clear_sky: the clear sky alone (an upper bound, labelled so)")
    monthly_ghi_kwh_m2: list[float] = Field(
        default_factory=lambda: [23.0, 40.0, 75.0, 117.0, 153.0, 165.0, 164.0, 141.0, 95.0, 56.0, 26.0, 17.0],
        description="long-term monthly global horizontal irradiation, January to December (kWh/m²); default: "
                    "DWD area means of Germany (1,072 kWh/m²·a, within Jena's 1,070-1,100), see README")

    @field_validator("monthly_ghi_kwh_m2")
    @classmethod
    def _twelve(cls, v: list[float]) -> list[float]:
        if len(v) != 12 or any(not (0 < x <= 400) for x in v):
            raise ValueError(f"give twelve monthly sums between 0 and 400 kWh/m² (January to December), got {v}")
        return v


class NoiseAnalysisSettings(_Strict):
    grid_spacing_m: float = Field(10.0, gt=0, description="spacing of the RLS-19 receiver grid (m)")
    grid_height_m: float = Field(4.0, gt=0, description="height of the grid receivers above the terrain (m)")
    max_distance_m: float = Field(2000.0, gt=0, description="roads farther than this from a receiver are ignored (m)")
    building_height: str = Field("mean", pattern="^(ridge|eave|mean)$",
                                 description="flat top of the 2.5D screening blocks: ridge, eave or mean of "
                                             "both (above the building's ground height)")
    road_type: str = Field("gemeindestrasse", description="RLS-19 Table 2 road class for roads with DTV only "
                           "(a road_type column of the roads overrides it)")
    isophone_step_db: float = Field(5.0, gt=0, description="step of the isophone bands (dB)")
    isophone_lower_db: float = Field(45.0, description="lowest isophone drawn (dB(A))")
    reflection_order: int = Field(1, ge=0, le=1, description="reflections at building facades: 1 = first order "
                                  "(mirror sources), 0 = none")
    reflection_distance_m: float = Field(100.0, gt=0, le=200, description="a reflection counts where the "
                                         "reflection point lies within this distance of the source and of the "
                                         "receiver (m)")
    facade_type: Literal["facade", "absorbing", "highly_absorbing"] = Field(
        "facade", description="reflection loss of the facades after RLS-19 Table 8: facade 0.5 dB (building "
        "facades, reflecting walls), absorbing 3 dB, highly_absorbing 5 dB")


class FloodAnalysisSettings(_Strict):
    floor_offset_m: float = Field(0.3, ge=0, description="height of the ground floor above the terrain: a "
                                  "building whose maximum depth exceeds it has its ground floor flooded (m)")
    sample_spacing_m: float = Field(1.0, gt=0, description="spacing of the depth samples on and in a footprint (m)")
    scenarios: list[str] | None = Field(None, description="scenarios to compute (e.g. [HQ100, HQextrem]); "
                                        "empty: every scenario of the flood zones")


class SightlineSettings(_Strict):
    viewshed_radius_m: float = Field(300.0, gt=0, description="radius of the viewshed around each observer (m)")
    viewshed_cell_m: float = Field(1.0, gt=0, description="cell size of the viewshed rasters (m)")
    target_height_m: float = Field(1.5, ge=0, description="height above the terrain of the viewshed targets (m)")
    target_tolerance_m: float = Field(0.5, ge=0, description="hits this close to a target do not block (m)")
    crowns_block: bool = Field(True, description="tree crowns block sight lines")


class TrafficChangeSettings(_Strict):
    label: str = Field(description="short description shown with the result, e.g. 'Löbdergraben: half the traffic'")
    road_name: str | None = Field(None, description="change every road segment with this name (column 'name' "
                                  "of the staged roads)")
    road_ids: list[str] = Field(default_factory=list, description="change these road_id values (with or "
                                "instead of road_name)")
    factor: float | None = Field(None, ge=0, description="multiply the traffic volumes (dtv, m_day, m_night), "
                                 "e.g. 0.5 halves the traffic")
    speed_car_kmh: float | None = Field(None, gt=0, le=130, description="new car speed (km/h)")
    speed_truck_kmh: float | None = Field(None, gt=0, le=130, description="new truck speed (km/h)")
    surface: str | None = Field(None, description="new road surface (an RLS-19 surface, e.g. 'SMA')")

    @model_validator(mode="after")
    def _complete(self) -> "TrafficChangeSettings":
        if not self.road_name and not self.road_ids:
            raise ValueError("name the changed road: give road_name or road_ids")
        if self.factor is None and self.speed_car_kmh is None and self.speed_truck_kmh is None \
                and self.surface is None:
            raise ValueError("the change changes nothing: give factor, speed_car_kmh, speed_truck_kmh or surface")
        return self


class AnalysisSettings(_Strict):
    year: int = Field(2025, ge=1900, le=2200, description="year of the sun positions (days and solar year)")
    storey_height_m: float = Field(3.0, gt=0, description="storey height for facade points per storey (m)")
    scene_margin_m: float = Field(150.0, ge=0, description="buildings, trees and terrain this far beyond a "
                                  "tile take part in its shading, screening and sight lines (m)")
    terrain_cell_m: float = Field(2.0, gt=0, description="cell size of the terrain mesh of the ray-casting "
                                  "scene and of the terrain used by noise (m)")
    crown_transmissivity: float = Field(0.0, ge=0, le=1, description="share of direct light passing a tree "
                                        "crown (0 = opaque)")
    sun: SunSettings = SunSettings()
    solar: SolarSettings = SolarSettings()
    noise: NoiseAnalysisSettings = NoiseAnalysisSettings()
    flood: FloodAnalysisSettings = FloodAnalysisSettings()
    sightlines: SightlineSettings = SightlineSettings()
    traffic_change: TrafficChangeSettings | None = Field(None, description="the demonstration traffic change "
                                                         "(empty: no traffic-change layer)")


class VariantSettings(_Strict):
    inbox_dir: Path | None = Field(None, description="the watched inbox folder of variant files (default "
                                   "<output_dir>/variants/inbox)")
    inbox_settle_s: float = Field(2.0, ge=0, description="inbox files younger than this are left for the next "
                                  "look (a file still being copied)")
    max_file_bytes: int = Field(20_000_000, gt=0, description="larger variant files are rejected before parsing")
    max_features: int = Field(5000, gt=0, description="most changes (features) in one variant file")
    max_vertices: int = Field(500_000, gt=0, description="most coordinates in one file (footprints, lines, "
                              "CityJSON vertices)")
    max_nesting_depth: int = Field(64, gt=0, description="deepest nesting of JSON arrays and objects")
    min_footprint_area_m2: float = Field(10.0, ge=0, description="smallest footprint of a new or changed building")
    overlap_tolerance_m2: float = Field(0.5, ge=0, description="new footprints may overlap others by at most this "
                                        "area (touching edges, rounding)")
    storey_height_min_m: float = Field(2.2, gt=0, description="with storeys and eave height both given: the eave "
                                       "must lie between storeys x this ...")
    storey_height_max_m: float = Field(4.5, gt=0, description="... and storeys x this (m)")

    @model_validator(mode="after")
    def _storeys(self) -> "VariantSettings":
        if self.storey_height_min_m > self.storey_height_max_m:
            raise ValueError("storey_height_min_m must not exceed storey_height_max_m")
        return self


class BaseMapSettings(_Strict):
    type: Literal["wms", "wmts"] = Field(description="'wms' (GetMap) or 'wmts' (KVP or REST template)")
    url: str = Field(description="service URL (http/https), e.g. the state's orthophoto WMS")
    layers: str | None = Field(None, description="WMS: comma-separated layer names")
    layer: str | None = Field(None, description="WMTS: layer identifier")
    tile_matrix_set: str | None = Field(None, description="WMTS: tile matrix set (Web Mercator)")
    style: str = Field("default", description="WMTS style")
    format: str = Field("image/png", description="image format")
    title: str = Field("Hintergrundkarte", description="name shown in the viewer's layer list")
    attribution: str = Field("", description="credit shown with the map")

    @model_validator(mode="after")
    def _complete(self) -> "BaseMapSettings":
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"viewer.base_map.url '{self.url}' is not an http(s) URL")
        if self.type == "wms" and not self.layers:
            raise ValueError("viewer.base_map of type 'wms' needs 'layers'")
        if self.type == "wmts" and not (self.layer and self.tile_matrix_set):
            raise ValueError("viewer.base_map of type 'wmts' needs 'layer' and 'tile_matrix_set'")
        return self


class ViewerSettings(_Strict):
    enabled: bool = Field(True, description="publish the 3D viewer in every release")
    base_map: BaseMapSettings | None = Field(None, description="optional online base map (WMS/WMTS); none "
                                             "by default: the viewer then fetches nothing from the internet")
    public_url: str | None = Field(None, description="URL under which the output folder is served (portal "
                                   "layer configurations point there); default http://127.0.0.1:8765/")
    terrain_cell_m: float = Field(2.0, gt=0, description="grid spacing of the viewer's terrain heightmap (m)")

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"viewer.public_url '{v}' is not an http(s) URL")
        return v if v.endswith("/") else v + "/"


class Settings(_Strict):
    name: str = Field(description="short name of the deployment (used in file names and titles)")
    title: str = ""
    processing_crs: str = "EPSG:25832"
    vertical_crs: str = "EPSG:7837"
    extent: tuple[float, float, float, float] = Field(
        description="minx, miny, maxx, maxy in the processing CRS; defines the tile set")
    tile_size_m: float = 1000.0
    tile_prefix: str = "32"
    timezone: str = "Europe/Berlin"
    output_dir: Path = Path("../outputs")
    catalog: CatalogSettings
    sources: dict[str, SourceSettings]
    lidar: LidarSettings = LidarSettings()
    quality: QualitySettings = QualitySettings()
    schedule: ScheduleSettings = ScheduleSettings()
    publish: PublishSettings = PublishSettings()
    refresh: RefreshSettings = RefreshSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    variants: VariantSettings = VariantSettings()
    viewer: ViewerSettings = ViewerSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("sources")
    @classmethod
    def _known_roles(cls, v: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        if "dtm" in v:
            raise ValueError("role 'dtm' is not read by any stage: the terrain model is derived from each "
                             "LiDAR tile's ground points (class 2, `lidar.dtm_resolution_m`) and published as "
                             "staging/dtm. Fix: remove 'dtm' from sources (its dataset may stay in the catalog)")
        unknown = sorted(set(v) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; known roles are {list(ROLES)}")
        missing = [r for r in REQUIRED_ROLES if r not in v]
        if missing:
            raise ValueError(f"role(s) {missing} must be configured")
        return v

    # ----------------------------------------------------------------------------------------
    @property
    def tiles(self) -> list[Tile]:
        return tiles_for_extent(self.extent, self.tile_size_m, self.tile_prefix)

    @property
    def tile_ids(self) -> list[str]:
        return [t.id for t in self.tiles]

    def tile(self, tile_id: str) -> Tile:
        for t in self.tiles:
            if t.id == tile_id:
                return t
        raise ConfigError(f"tile '{tile_id}' is not in the configured extent {self.extent}. "
                          f"Fix: use one of {self.tile_ids} or widen 'extent'")

    def source(self, role: str) -> SourceSettings | None:
        return self.sources.get(role)

    @property
    def output_root(self) -> Path:
        return self.output_dir

    @property
    def staging_dir(self) -> Path:
        return self.output_dir / "staging"

    @property
    def raw_dir(self) -> Path:
        return self.output_dir / "raw"

    @property
    def quality_dir(self) -> Path:
        return self.output_dir / "quality"

    @property
    def warehouse_path(self) -> Path:
        return self.output_dir / "warehouse.duckdb"

    @property
    def variants_inbox_dir(self) -> Path:
        """The watched inbox of variant files (``variants.inbox_dir``, default ``<output_dir>/variants/inbox``)."""
        return self.variants.inbox_dir if self.variants.inbox_dir is not None else \
            self.output_dir / "variants" / "inbox"


def _resolve(base: Path, value: str | Path) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else (base / p).resolve()


def load_config(path: str | os.PathLike | None = None) -> Settings:
    """Read the deployment file.

    ``path`` wins; otherwise ``$CITYMODEL_CONFIG``; otherwise the bundled sample city's file.
    The environment variable ``CITYMODEL_OUTPUT_DIR`` overrides ``output_dir`` (tests, CI).
    """
    if path is None:
        path = os.environ.get(ENV_VAR) or DEFAULT_CONFIG
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file '{path}' does not exist. Fix: set {ENV_VAR} to a deployment "
                          f"YAML file (see README, 'Configuration') or unset it to use the sample city")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file '{path}' is not valid YAML: {exc}. Fix: correct the file") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file '{path}' must hold a mapping at the top level")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError(f"configuration file '{path}' is invalid:\n" + "\n".join(lines)
                          + "\nFix: correct these keys (README, 'Configuration', lists every key)") from exc
    missing = settings.publish.missing()
    if missing:
        raise ConfigError(
            f"configuration file '{path}': {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
            f"Every release names who publishes the data, under which licence and whom to ask (DCAT-AP: "
            f"dct:publisher, dct:license, dcat:contactPoint); nothing is assumed. Fix: add to the file\n"
            f"  publish:\n    publisher: \"Stadt Musterstadt, Fachdienst Geoinformation\"\n"
            f"    license: dl-de/by-2-0        # or a licence IRI; short names: {', '.join(sorted(LICENSE_NAMES))}\n"
            f"    contact: geodaten@musterstadt.de   # or a web page URL\n"
            f"(citymodel init --publisher ... --license ... --contact ... writes them)")
    base = path.resolve().parent
    out = os.environ.get("CITYMODEL_OUTPUT_DIR")
    settings.output_dir = _resolve(Path.cwd(), out) if out else _resolve(base, settings.output_dir)
    if settings.quality.schema_dir is not None:
        settings.quality.schema_dir = _resolve(base, settings.quality.schema_dir)
    if settings.variants.inbox_dir is not None:
        settings.variants.inbox_dir = _resolve(base, settings.variants.inbox_dir)
    url = settings.catalog.url
    if "://" not in url:
        settings.catalog.url = str(_resolve(base, url))
    if settings.orchestration.dagster_home is not None:
        settings.orchestration.dagster_home = _resolve(base, settings.orchestration.dagster_home)
    settings.config_path = path.resolve()
    return settings
