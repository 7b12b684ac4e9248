"""Group ``variants``: the variant files the city publishes in its catalog, submitted like any other.

``variants/catalog_submissions`` reads the files that ``sources/variants`` downloaded (the catalog
role ``variants``: a dataset whose distributions are variant files, GeoJSON or CityJSON, or zips of
them) and submits each through :func:`citymodel.variants.registry.submit`: the same validation as the
inbox and the CLI. Accepted versions become variant partitions; rejected files get their rejection
report (``variants/rejected/``). A rejected file does not fail the asset (the city's refresh goes on);
the metadata lists both. Files submitted before (the same bytes) are their existing version.

It belongs to the city's refresh (tag ``citymodel/city_intake``: the refresh plan, ``city_refresh``
and the ``city_automation`` sensor take it; ``variant_assess`` does not). Newly accepted versions are
assessed by the ``variant_rebase`` sensor (every current version not yet published against the city's
current release).
"""


import json
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.refresh import CITY_INTAKE_TAG
from resources.settings import SettingsResource

from .buildings import MODEL_KEY
from .common import timer
from .sources import manifest_path

CATALOG_SUBMISSIONS_KEY = dg.AssetKey(["variants", "catalog_submissions"])
VARIANT_SUFFIXES = (".geojson", ".json", ".city.json")


def downloaded_variant_files(manifest: dict) -> list[Path]:
    """The variant files of a ``sources/variants`` manifest (zip members with a variant suffix)."""
    out: list[Path] = []
    for f in manifest.get("files", []):
        if f.get("format") == "zip":
            out += sorted(Path(m) for m in f.get("members", []) if m.lower().endswith(VARIANT_SUFFIXES))
        else:
            out.append(Path(f["path"]))
    return out


@dg.asset(
    key=CATALOG_SUBMISSIONS_KEY,
    deps=[dg.AssetKey(["sources", "variants"]), MODEL_KEY, dg.AssetKey(["staging", "roads"]),
          dg.AssetKey(["staging", "trees"])],
    group_name="variants",
    code_version="1",
    kinds={"geojson"},
    automation_condition=dg.AutomationCondition.eager(),   # after the city's model and the download
    tags={CITY_INTAKE_TAG: "true"},   # part of the city's refresh (not of variant_assess)
    description="The variant files of the catalog (role 'variants') submitted through the one validation: "
                "accepted versions become variant partitions, rejected files get a rejection report.",
)
def catalog_submissions(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    from citymodel.store import CityStore
    from citymodel.variants.registry import submit
    from citymodel.variants.validation import VariantRejected, context_for, rejection, size_problem

    s = settings.load()
    mpath = manifest_path(s.raw_dir, "variants")
    manifest = json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {"configured": False}
    if not manifest.get("configured"):
        return dg.MaterializeResult(metadata={"configured": False, "accepted": 0, "rejected": 0})
    accepted, rejected = [], []
    with timer() as t:
        vctx = context_for(s, CityStore(s))
        for path in downloaded_variant_files(manifest):
            size = path.stat().st_size
            try:
                if size > vctx.limits.max_file_bytes:
                    raise rejection(path.name, "", [size_problem(size, vctx.limits)])
                v = submit(path.read_bytes(), path.name, s, vctx)
            except VariantRejected as r:
                if r.report_path is None:
                    from citymodel.variants.registry import write_rejection

                    r.report_path = write_rejection(s, r.report)
                rejected.append({"file": path.name, "problems": len(r.problems), "report": str(r.report_path)})
                context.log.warning(str(r))
                continue
            vctx = vctx.with_variant(v.id, v.version)
            accepted.append({"file": path.name, "key": v.key, "title": v.meta.title})
    return dg.MaterializeResult(metadata={
        "configured": True, "dataset": manifest.get("dataset", ""), "accepted": len(accepted),
        "rejected": len(rejected), "accepted_files": dg.MetadataValue.json(accepted),
        "rejected_files": dg.MetadataValue.json(rejected), "seconds": t["seconds"]})


variant_intake_assets = [catalog_submissions]
