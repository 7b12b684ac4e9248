"""A planning variant as the pipeline holds it after validation: metadata and typed changes.

Geometries are shapely objects in the deployment's processing CRS (the submitted file may be in
WGS84; :mod:`citymodel.variants.validation` transforms them). Heights are metres above ground.
``index`` is the position of the change's feature in the submitted file (for messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class VariantMeta:
    id: str
    title: str
    author_role: str  # "planning_office" | "citizen"
    created: str  # ISO 8601
    description: str = ""
    parent_id: str | None = None
    parent_version: int | None = None


@dataclass(frozen=True)
class AddBuilding:
    """A new building: footprint and heights (or storeys) and an AdV roof form, or a designed
    CityJSON building (``design``: the validated CityJSON 2.0 document of this building)."""

    index: int
    id: str
    footprint: Any  # shapely Polygon
    storeys: int | None = None
    eave_height_m: float | None = None
    ridge_height_m: float | None = None
    roof_form: int = 1000
    ridge_direction_deg: float | None = None  # clockwise from grid north
    function_code: str | None = None
    name: str | None = None
    design: dict | None = None


@dataclass(frozen=True)
class RemoveBuilding:
    index: int
    building_id: str


@dataclass(frozen=True)
class ModifyBuilding:
    """New values for an existing building; None keeps the current value."""

    index: int
    building_id: str
    footprint: Any = None
    storeys: int | None = None
    eave_height_m: float | None = None
    ridge_height_m: float | None = None
    roof_form: int | None = None
    ridge_direction_deg: float | None = None
    function_code: str | None = None


#: What a road change may set on a road (besides ``factor``); the canonical columns of the roads role.
ROAD_VALUES = ("dtv", "m_day", "m_night", "p1_day", "p2_day", "pmc_day", "p1_night", "p2_night", "pmc_night",
               "speed_car_kmh", "speed_truck_kmh", "surface", "name")
#: The members of a ``road_change`` that carry values: ``factor`` (multiplies every volume) and the values.
ROAD_CHANGE_KEYS = ("factor",) + ROAD_VALUES


@dataclass(frozen=True)
class RoadChange:
    """New traffic of an existing road (``road_id``) or a new road (``new_id`` with ``geometry``).

    ``values``: any of ``factor`` (multiplies every volume), ``dtv``, ``m_day``, ``m_night``,
    ``p1_day``, ``p2_day``, ``pmc_day``, ``p1_night``, ``p2_night``, ``pmc_night``,
    ``speed_car_kmh``, ``speed_truck_kmh``, ``surface``, ``name``.
    """

    index: int
    road_id: str | None = None
    new_id: str | None = None
    geometry: Any = None  # shapely LineString (new roads; or a new course of an existing one)
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AddTree:
    index: int
    id: str
    point: Any  # shapely Point
    height_m: float
    crown_diameter_m: float | None = None
    species: str | None = None


@dataclass(frozen=True)
class RemoveTree:
    index: int
    tree_id: str


Change = Union[AddBuilding, RemoveBuilding, ModifyBuilding, RoadChange, AddTree, RemoveTree]


@dataclass(frozen=True)
class Variant:
    """A validated variant: metadata, changes, and where it came from.

    ``version`` is assigned when the variant is accepted (a re-submitted id is a new version);
    ``sha256`` is the digest of the submitted bytes.
    """

    meta: VariantMeta
    changes: tuple[Change, ...]
    sha256: str = ""
    source_name: str = ""
    version: int | None = None
    document: dict | None = None  # the submitted GeoJSON (normalised), as published

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def key(self) -> str:
        """``<id>.v<version>``: the variant partition key."""
        return f"{self.meta.id}.v{self.version}"

    def of(self, kind) -> list:
        return [c for c in self.changes if isinstance(c, kind)]

    @property
    def added(self) -> list[AddBuilding]:
        return self.of(AddBuilding)

    @property
    def removed(self) -> list[RemoveBuilding]:
        return self.of(RemoveBuilding)

    @property
    def modified(self) -> list[ModifyBuilding]:
        return self.of(ModifyBuilding)

    @property
    def road_changes(self) -> list[RoadChange]:
        return self.of(RoadChange)

    @property
    def trees_added(self) -> list[AddTree]:
        return self.of(AddTree)

    @property
    def trees_removed(self) -> list[RemoveTree]:
        return self.of(RemoveTree)

    def summary(self) -> dict[str, int]:
        return {"buildings_added": len(self.added), "buildings_removed": len(self.removed),
                "buildings_modified": len(self.modified), "road_changes": len(self.road_changes),
                "trees_added": len(self.trees_added), "trees_removed": len(self.trees_removed)}
