"""LoD2 building reconstruction from footprints and LiDAR (pure core, no Dagster).

Pipeline per building: points inside the footprint above ground, outliers removed
(:mod:`.points`); roof planes segmented (:mod:`.planes`); parametric roof forms fitted on
rectangular footprints and rectilinear splits (:mod:`.fit`); a generic multi-plane roof for the
rest (:mod:`.generic`); an LoD1 block where the points cannot carry a roof (:mod:`.build`);
the truth-free summary of the result (:mod:`.summary`).
"""

from .build import (ALGORITHM_VERSION, METHODS, BuildingResult, build_lod1, build_parametric, ground_height,
                    point_roof_distances, reconstruct_building, reconstruct_tile, roof_height_from_solids,
                    split_footprint)
from .fit import Rect, fit_footprint, fit_rect, rect_of
from .generic import generic_roof_solid, partition_footprint
from .planes import Plane, segment_planes
from .points import TilePoints, clean_building_points, points_by_footprint, read_tile_points

__all__ = ["ALGORITHM_VERSION", "METHODS", "BuildingResult", "build_lod1", "build_parametric", "ground_height",
           "point_roof_distances", "reconstruct_building", "reconstruct_tile", "roof_height_from_solids",
           "split_footprint", "Rect", "fit_footprint",
           "fit_rect", "rect_of", "generic_roof_solid", "partition_footprint", "Plane", "segment_planes",
           "TilePoints", "clean_building_points", "points_by_footprint", "read_tile_points"]
