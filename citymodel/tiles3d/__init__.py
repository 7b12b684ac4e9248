"""3D Tiles 1.1 writers: buildings (GLB with EXT_mesh_features / EXT_structural_metadata), trees
(EXT_mesh_gpu_instancing) and point clouds (the project's octree tiler with glTF point content, or
py3dtiles), with heights made ellipsoidal through a geoid model (:mod:`citymodel.tiles3d.geo`)."""

from .buildings import BUILDING_PROPERTIES, TilesetInfo, triangulate_solid, write_building_tiles
from .geo import GeoTransformer, GeoidModel, resolve_geoid
from .glb import PropertySpec, read_glb
from .tileset import Region, validate_tileset_schema

__all__ = ["write_building_tiles", "write_tree_tiles", "write_pointcloud_tiles", "TilesetInfo",
           "BUILDING_PROPERTIES", "triangulate_solid", "GeoTransformer", "GeoidModel", "resolve_geoid",
           "PropertySpec", "read_glb", "Region", "validate_tileset_schema"]


def __getattr__(name):  # lazy: trees and point clouds pull in more
    if name == "write_tree_tiles":
        from .trees import write_tree_tiles
        return write_tree_tiles
    if name == "write_pointcloud_tiles":
        from .pointcloud import write_pointcloud_tiles
        return write_pointcloud_tiles
    raise AttributeError(name)
