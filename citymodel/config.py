"""The deployment configuration: one YAML file selected by ``CITYMODEL_CONFIG``.

Without ``CITYMODEL_CONFIG`` the bundled sample city's file (``config/sample_city.yaml``) is used.
Relative paths in the file are resolved against the folder that holds the file. The file is read
at run time (never at import), see :func:`load_config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .tiles import Tile, tiles_for_extent

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "sample_city.yaml"
ENV_VAR = "CITYMODEL_CONFIG"

ROLES = ("buildings", "lidar", "dtm", "lod2_reference", "trees", "roads", "flood_zones", "viewpoints")
REQUIRED_ROLES = ("buildings", "lidar")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CatalogSettings(_Strict):
    url: str = Field(description="DCAT-AP catalog: http(s) URL or local path of a JSON-LD file")
    timeout_s: float = Field(30.0, gt=0, description="timeout of one HTTP request")
    retries: int = Field(3, ge=0, description="retries on timeouts, connection errors and 5xx")
    backoff_s: float = Field(1.0, ge=0, description="first backoff; doubles on every retry")


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
    dtm_resolution_m: float = Field(1.0, gt=0)
    min_density_m2: float = Field(4.0, ge=0, description="blocking check: points per m² below this fail")
    required_classes: list[int] = Field(default_factory=lambda: [2])


class QualitySettings(_Strict):
    storeys_max: int = 60
    tree_height_max_m: float = 60.0
    max_quarantine_share: float = Field(0.05, ge=0, le=1,
                                        description="blocking: share of quarantined records above this fails")
    schema_dir: Path | None = Field(None, description="folder holding the official JSON schemas "
                                    "(cityjson-2.0.2/, 3d-tiles-1.1/); without it schema checks are skipped")


class ScheduleSettings(_Strict):
    cron: str = "0 2 * * *"
    timezone: str = "Europe/Berlin"


class PublishSettings(_Strict):
    license: str = "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
    keep_releases: int = Field(5, ge=1)
    publisher: str = "Stadt Jena, Fachdienst Geoinformation"


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
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("sources")
    @classmethod
    def _known_roles(cls, v: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
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
    base = path.resolve().parent
    out = os.environ.get("CITYMODEL_OUTPUT_DIR")
    settings.output_dir = _resolve(Path.cwd(), out) if out else _resolve(base, settings.output_dir)
    if settings.quality.schema_dir is not None:
        settings.quality.schema_dir = _resolve(base, settings.quality.schema_dir)
    url = settings.catalog.url
    if "://" not in url:
        settings.catalog.url = str(_resolve(base, url))
    settings.config_path = path.resolve()
    return settings
