"""Stage ``sources``: verified downloads of every role's distributions from the catalog.

One asset per role (``sources/<role>``); LiDAR is partitioned by tile. Each materialization records
the catalog fingerprint of what it fetched as its data version, which the refresh compares to
decide what changed. Unchanged files are not transferred again (conditional requests). A zip is
checked and extracted into a fresh folder per version before its download is recorded; after a
successful download, the role's folder in ``raw/`` keeps only what the catalog lists. Only
transient errors are retried by the step's RetryPolicy; permanent ones (refused URL, 404, unsafe
zip, limits, checksum) fail the step at once.
"""


from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from citymodel.catalog import (ZipLimits, extraction_dir, format_of, prune_extractions, select_distributions,
                               unpack_version, zip_verifier)
from citymodel.config import ROLES
from citymodel.sources import lidar_distributions_for_tile, not_configured_version, source_version
from pipelines.partitions import TILES
from resources.settings import SettingsResource

from .common import catalog_client, no_retry_on_permanent_errors, timer, write_json_atomic

SOURCE_CODE_VERSION = "1"
VECTOR_SOURCE_ROLES = ("buildings", "lod2_reference", "trees", "roads", "flood_zones", "viewpoints", "weather")
#: roles whose files are used as they are (not staged): planning variants published by the city
FILE_SOURCE_ROLES = ("variants",)
NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def manifest_path(raw_dir: Path, role: str, tile: str | None = None) -> Path:
    return raw_dir / "_manifests" / (f"{role}__{tile}.json" if tile else f"{role}.json")


def _download(client, dataset, dists, role: str, settings) -> dict:
    """Download ``dists`` (zips checked and extracted into a folder per version before they are
    recorded); the manifest's ``files``."""
    limits = zip_limits(settings)
    max_bytes = settings.quality.max_file_bytes.get(role)
    files, changed, total = [], False, 0
    for d in dists:
        fmt = format_of(d, role=role, dataset=dataset.identifier)
        verify = zip_verifier(dataset=dataset.identifier, limits=limits) if fmt == "zip" else None
        res = client.download(dataset.identifier, d, role=role, max_bytes=max_bytes, verify=verify)
        changed |= res.changed
        total += res.bytes
        entry = {"path": str(res.path), "format": fmt, "bytes": res.bytes, "sha256": res.sha256,
                 "changed": res.changed, "url": d.url}
        if fmt == "zip":
            members = unpack_version(res.path, res.path, res.sha256, dataset=dataset.identifier,
                                     limits=limits)
            prune_extractions(res.path, keep=extraction_dir(res.path, res.sha256))
            entry["members"] = [str(p) for p in members]
        files.append(entry)
    return {"files": files, "changed": changed, "bytes": total}


def zip_limits(settings) -> ZipLimits:
    """The zip limits of the deployment (``catalog.zip_max_*``)."""
    c = settings.catalog
    return ZipLimits(max_members=c.zip_max_members, max_total_bytes=c.zip_max_total_bytes,
                     max_ratio=c.zip_max_ratio)


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
        with timer() as t, no_retry_on_permanent_errors():
            client = catalog_client(s)
            dataset = client.dataset(src.dataset)
            version = source_version(dataset, role)
            result = _download(client, dataset, select_distributions(dataset, role), role, s)
            client.prune(src.dataset, role)   # raw/ keeps only what the catalog lists
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
    with timer() as t, no_retry_on_permanent_errors():
        client = catalog_client(s)
        dataset = client.dataset(src.dataset)
        dists = lidar_distributions_for_tile(dataset, tile, s.lidar.halo_m)
        version = source_version(dataset, "lidar", tile, s.lidar.halo_m)
        result = _download(client, dataset, dists, "lidar", s)
        client.prune(src.dataset, "lidar")   # every tile's files the catalog lists stay
    manifest = {"role": "lidar", "configured": True, "dataset": dataset.identifier, "tile": tile.id,
                "fingerprint": version.fingerprint, **result}
    write_json_atomic(manifest_path(s.raw_dir, "lidar", tile.id), manifest)
    return dg.MaterializeResult(
        metadata={"dataset": dataset.identifier, "tile": tile.id, "files": len(result["files"]),
                  "bytes": result["bytes"], "changed": result["changed"], "seconds": t["seconds"],
                  "paths": dg.MetadataValue.json([f["path"] for f in result["files"]])},
        data_version=dg.DataVersion(version.fingerprint))


source_assets = [_build_source_asset(r) for r in (*VECTOR_SOURCE_ROLES, *FILE_SOURCE_ROLES)] + [lidar_source]
assert set(VECTOR_SOURCE_ROLES) | set(FILE_SOURCE_ROLES) | {"lidar"} == set(ROLES)
