"""Publishing an assessed variant version beside the city's releases.

Each version has its own folder, built and switched like the city's releases (the same
:class:`citymodel.release.ReleaseBuilder`: a partial folder, checksums, DCAT-AP catalog, then an atomic
switch), so a re-assessment against a new base release replaces what readers see atomically::

    variants/index.json                                the current version of every variant
    variants/index.html                                the current versions side by side (German / English)
    variants/<id>/<version>/latest -> releases/<build>/   the published assessment of that version
    variants/<id>/<version>/releases/<build>/
        variant.json, variant.geojson, schemas/variant-1.0.schema.json,
        tiles/buildings/tileset.json, comparison/..., data/variant.city.json, data/variant.gml,
        catalog.jsonld, SHA256SUMS, release.json, index.html

``variant.json`` names the base release, the changed ids (``replaced_ids``: what a viewer hides in the
base tileset when it shows the variant), a first camera view and the summary.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Settings
from ..fileio import atomic_write_text, json_safe
from . import SCHEMA_VERSION, schema_text
from .registry import current_submissions, list_submissions, submission_dir, variants_dir


def version_dir(settings: Settings, variant_id: str, version: int) -> Path:
    return variants_dir(settings) / variant_id / str(int(version))


def published(settings: Settings, variant_id: str, version: int) -> Path | None:
    """The published assessment of a version (its ``latest``), or None."""
    from ..release import latest_release

    d = version_dir(settings, variant_id, version)
    return latest_release(d) if d.is_dir() else None


def publish_variant(settings: Settings, vstore, work: Path, *, base_release: str, camera: dict):
    """Publish the version's work folder (model, comparison, tiles) atomically; a ReleaseInfo."""
    from ..release import ReleaseBuilder, extent_wkt_crs84

    v = vstore.variant
    m = v.meta
    comp = json.loads((work / "comparison" / "comparison.json").read_text(encoding="utf-8"))
    replaced = sorted(set(vstore.removed_ids) | set(vstore.modified_ids) |
                      {b for b, st in _statuses(work).items() if st == "affected"})
    doc = {"schema_version": SCHEMA_VERSION, "id": m.id, "version": v.version, "key": v.key, "title": m.title,
           "description": m.description, "author_role": m.author_role, "created": m.created,
           "parent": {"id": m.parent_id, "version": m.parent_version} if m.parent_id else None,
           "base_release": base_release, "added_ids": vstore.added_ids, "removed_ids": vstore.removed_ids,
           "modified_ids": vstore.modified_ids, "replaced_ids": replaced, "camera": camera,
           "summary": comp.get("items", []), "changes": v.summary(), "work_share": comp.get("work_share", {}),
           "comparison": "comparison/index.html", "tileset": "tiles/buildings/tileset.json",
           "overlays": "overlays/index.json" if (work / "overlays" / "index.json").exists() else None}
    role = {"planning_office": "Planungsbüro", "citizen": "Bürgerin/Bürger"}.get(m.author_role, m.author_role)
    rb = ReleaseBuilder(version_dir(settings, m.id, v.version), keep=3, license=settings.publish.license,
                        publisher=settings.publish.publisher, contact=settings.publish.contact,
                        title=f"Planungsvariante: {m.title} (Version {v.version})",
                        description=f"{m.description} — eingereicht von: {role}; verglichen mit dem Stadtmodell "
                                    f"{base_release}.",
                        spatial_wkt=extent_wkt_crs84(settings.extent, settings.processing_crs),
                        crs=settings.processing_crs, vertical_crs=settings.vertical_crs,
                        keywords=("Planungsvariante", "Bürgerbeteiligung", "3D-Stadtmodell"),
                        version_notes=f"base release {base_release}")
    rb.begin()
    try:
        rb.dataset("variant", f"Variantendatei {m.id} v{v.version}", "Die eingereichte Variante (GeoJSON, "
                   "Schema 1.0) und ihr Schema.")
        rb.write_json("variant.json", json_safe(doc), indent=1, dataset="variant", title="Variante: Metadaten",
                      media_type="application/json", format="JSON")
        rb.add_file(submission_dir(settings, m.id, v.version) / "variant.geojson", "variant.geojson",
                    dataset="variant", title="Variantendatei (GeoJSON)", media_type="application/geo+json",
                    format="GeoJSON")
        rb.write_text(f"schemas/variant-{SCHEMA_VERSION}.schema.json", schema_text(), dataset="variant",
                      title="JSON-Schema der Variantendateien", media_type="application/schema+json", format="JSON")
        rb.dataset("variant-model", "Gebäude der Variante (LoD2)", "Neue und geänderte Gebäude, CityJSON 2.0 und "
                   "CityGML 2.0, parametrisches LoD2-Modell.")
        for name, media, fmt in (("variant.city.json", "application/city+json", "CityJSON"),
                                 ("variant.gml", "application/gml+xml", "GML")):
            rb.add_file(work / "model" / name, f"data/{name}", dataset="variant-model", media_type=media, format=fmt)
        rb.dataset("variant-3dtiles", "3D Tiles der Variante", "Neue, geänderte, entfallende und betroffene "
                   "Gebäude mit Analysewerten und Differenzen (3D Tiles 1.1).")
        rb.add_folder(work / "tiles" / "buildings", "tiles/buildings", dataset="variant-3dtiles",
                      entry="tileset.json", title="Gebäude der Variante (3D Tiles 1.1)")
        rb.dataset("variant-comparison", "Vergleich mit dem Stadtmodell", "Was sich für wen ändert: Sonne, "
                   "Besonnung nach DIN EN 17037, Solarpotenzial, Lärm, Sichtachsen, Hochwasser; je Gebäude, "
                   "Fassade und Dach; Differenzraster; Zusammenfassung.")
        rb.add_folder(work / "comparison", "comparison", dataset="variant-comparison", entry="index.html",
                      title="Vergleichsseite und Vergleichsdaten")
        if (work / "overlays" / "index.json").exists():
            rb.add_folder(work / "overlays", "overlays", dataset="variant-comparison", entry="index.json",
                          title="Differenzebenen für den 3D-Viewer")
        info = rb.finalize([])
    except Exception:
        rb.abort(remove=False)
        raise
    return info


def _statuses(work: Path) -> dict[str, str]:
    import pandas as pd

    p = work / "comparison_buildings.parquet"
    if not p.exists():
        return {}
    t = pd.read_parquet(p, columns=["building_id", "variant_status"])
    return dict(zip(t["building_id"].astype(str), t["variant_status"].astype(str)))


def index_entries(settings: Settings) -> list[tuple[dict, list[dict]]]:
    """Every published version (current ones first per id) as its ``variants/index.json`` entry (paths
    relative to ``variants/``) with the summary of its ``variant.json`` (each file read once)."""
    current = {(s.id, s.version) for s in current_submissions(settings)}
    out = []
    for s in list_submissions(settings):
        pub = published(settings, s.id, s.version)
        if pub is None:
            continue
        meta = json.loads((pub / "variant.json").read_text(encoding="utf-8"))
        out.append(({"id": s.id, "version": s.version, "key": s.key, "title": s.title,
                     "description": meta.get("description", ""), "author_role": s.author_role,
                     "created": s.created, "base_release": meta.get("base_release"),
                     "current": (s.id, s.version) in current, "path": f"{s.id}/{s.version}/latest/",
                     "changes": meta.get("changes", {}),
                     "comparison": f"{s.id}/{s.version}/latest/comparison/index.html"},
                    meta.get("summary", [])))
    out.sort(key=lambda es: (es[0]["id"], -es[0]["version"]))
    return out


def write_index(settings: Settings) -> dict:
    """``variants/index.json``: what is published now, and ``variants/index.html``: the current versions
    side by side (each atomically replaced)."""
    from .outputs import render_overview

    published_versions = index_entries(settings)
    doc = {"schema_version": SCHEMA_VERSION, "variants": [e for e, _ in published_versions]}
    folder = variants_dir(settings)
    atomic_write_text(folder / "index.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    current = [(e, summary) for e, summary in published_versions if e["current"]]
    atomic_write_text(folder / "index.html", render_overview([e for e, _ in current],
                                                             {e["key"]: summary for e, summary in current},
                                                             "../latest/viewer/index.html"))
    return doc


def stale_variants(settings: Settings) -> list[tuple[str, str]]:
    """``(partition key, city release)`` of every current variant version that is not yet published
    against the city's current release (new submissions, and all of them after a new city release)."""
    from ..release import latest_release

    cur = latest_release(settings.output_dir)
    if cur is None:
        return []
    out = []
    for s in current_submissions(settings):
        pub = published(settings, s.id, s.version)
        base = None
        if pub is not None:
            try:
                base = json.loads((pub / "variant.json").read_text(encoding="utf-8")).get("base_release")
            except (OSError, ValueError):
                base = None
        if base != cur.name:
            out.append((s.key, cur.name))
    return out


def release_listing(settings: Settings) -> dict | None:
    """What the city's next release says of the published variants (``data/variants.json``), or None
    without any: id, version, title, author role, created, and paths relative to the output folder.
    No base release in it: the listing must not change the city release's content digest when a
    variant is re-assessed against that very release."""
    p = variants_dir(settings) / "index.json"
    if not p.is_file():
        return None
    entries = [e for e in json.loads(p.read_text(encoding="utf-8")).get("variants", []) if e.get("current")]
    if not entries:
        return None
    keep = ("id", "version", "title", "description", "author_role", "created")
    return {"schema_version": SCHEMA_VERSION, "overview": "variants/index.html",
            "variants": [{**{k: e.get(k) for k in keep}, "path": f"variants/{e['path']}",
                          "comparison": f"variants/{e['comparison']}",
                          "viewer": f"viewer/index.html#variant={e['id']}@{e['version']}"} for e in entries]}
