"""Stage ``sources``: verified downloads of every role's distributions from the catalog.

One asset per role (``sources/<role>``); LiDAR is partitioned by tile. Each materialization records
the catalog fingerprint of what it fetched as its data version, which the refresh compares to
decide what changed. Unchanged files are not transferred again (conditional requests).
"""


from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from citymodel.catalog import extract_zip, format_of, select_distributions
from citymodel.config import ROLES
from citymodel.sources import lidar_distributions_for_tile, not_configured_version, source_version
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from .common import catalog_client, timer, write_json_atomic

SOURCE_CODE_VERSION = "1"
VECTOR_SOURCE_ROLES = ("buildings", "lod2_reference", "trees", "roads", "flood_zones", "viewpoints")
#: roles whose files are used as they are (not staged): planning variants published by the city
FILE_SOURCE_ROLES = ("variants",)
NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def manifest_path(raw_dir: Path, role: str, tile: str | None = None) -> Path:
    return raw_dir / "_manifests" / (f"{role}__{tile}.json" if tile else f"{role}.json")


def _download(client, dataset, dists, role: str, raw_dir: Path) -> dict:
    files, changed, total = [], False, 0
    for d in dists:
        fmt = format_of(d, role=role, dataset=dataset.identifier)
        res = client.download(dataset.identifier, d, role=role)
        changed |= res.changed
        total += res.bytes
        entry = {"path": str(res.path), "format": fmt, "bytes": res.bytes, "sha256": res.sha256,
                 "changed": res.changed, "url": d.url}
        if fmt == "zip":
            out = res.path.parent / (res.path.name + ".d")
            if res.changed or not out.exists():
                entry["members"] = [str(p) for p in extract_zip(res.path, out, dataset=dataset.identifier)]
            else:
                entry["members"] = sorted(str(p) for p in out.rglob("*") if p.is_file())
        files.append(entry)
    return {"files": files, "changed": changed, "bytes": total}


def _build_source_asset(role: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["sources", role],
        group_name="sources",
        code_version=SOURCE_CODE_VERSION,
        retry_policy=NETWORK_RETRY,
        kinds={"dcat"},
        description=f"The '{role}' distributions of the catalog, downloaded and verified "
                    f"(size, checksum); unchanged files are not transferred again.",
    )
    def _source(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
        s = settings.load()
        src = s.source(role)
        if src is None:
            write_json_atomic(manifest_path(s.raw_dir, role), {"role": role, "configured": False, "files": []})
            return dg.MaterializeResult(metadata={"configured": False},
                                        data_version=dg.DataVersion(not_configured_version(role)))
        with timer() as t:
            client = catalog_client(s)
            dataset = client.dataset(src.dataset)
            version = source_version(dataset, role)
            result = _download(client, dataset, select_distributions(dataset, role), role, s.raw_dir)
        manifest = {"role": role, "configured": True, "dataset": dataset.identifier,
                    "modified": str(dataset.modified), "fingerprint": version.fingerprint, **result}
        write_json_atomic(manifest_path(s.raw_dir, role), manifest)
        context.log.info(f"{role}: {len(result['files'])} file(s), changed={result['changed']}")
        return dg.MaterializeResult(
            metadata={"dataset": dataset.identifier, "title": dataset.title,
                      "files": len(result["files"]), "bytes": result["bytes"],
                      "changed": result["changed"], "modified": str(dataset.modified),
                      "seconds": t["seconds"],
                      "paths": dg.MetadataValue.json([f["path"] for f in result["files"]])},
            data_version=dg.DataVersion(version.fingerprint))

    return _source


def select_distributions(dataset, role):
    from citymodel.catalog import select_distributions

    return select_distributions(dataset, role)


@dg.asset(
    key=["sources", "lidar"],
    group_name="sources",
    partitions_def=TILES,
    code_version=SOURCE_CODE_VERSION,
    retry_policy=NETWORK_RETRY,
    kinds={"dcat", "laz"},
    description="The LiDAR files of one tile and its neighbours (for the halo), downloaded and verified.",
)
def lidar_source(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    s = settings.load()
    src = s.source("lidar")
    tile = s.tile(context.partition_key)
    with timer() as t:
        client = catalog_client(s)
        dataset = client.dataset(src.dataset)
        dists = lidar_distributions_for_tile(dataset, tile, s.lidar.halo_m)
        version = source_version(dataset, "lidar", tile, s.lidar.halo_m)
        result = _download(client, dataset, dists, "lidar", s.raw_dir)
    manifest = {"role": "lidar", "configured": True, "dataset": dataset.identifier, "tile": tile.id,
                "fingerprint": version.fingerprint, **result}
    write_json_atomic(manifest_path(s.raw_dir, "lidar", tile.id), manifest)
    return dg.MaterializeResult(
        metadata={"dataset": dataset.identifier, "tile": tile.id, "files": len(result["files"]),
                  "bytes": result["bytes"], "changed": result["changed"], "seconds": t["seconds"],
                  "paths": dg.MetadataValue.json([f["path"] for f in result["files"]])},
        data_version=dg.DataVersion(version.fingerprint))


source_assets = [_build_source_asset(r) for r in (*VECTOR_SOURCE_ROLES, *FILE_SOURCE_ROLES)] + [lidar_source]
assert set(VECTOR_SOURCE_ROLES) | set(FILE_SOURCE_ROLES) | {"lidar", "dtm"} == set(ROLES)
