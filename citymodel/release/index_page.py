"""``index.html`` of a release: the landing page for people (what is here, how to view and verify it)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .dcat import DistributionEntry
from .formats import file_kind
from .layout import LATEST_LINK, QUALITY_REPORT_PATH, TILE_INDEX_PATH
from .provenance import code_version_label, iso_utc
from .tileindex import tile_index_png
from .titles import entry_texts

if TYPE_CHECKING:
    from .builder import ReleaseBuilder
    from .contents import ReleaseContents

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:1.2em 2em}header h1{margin:0 0 .2em;font-size:1.6em}
header p{margin:.1em 0;opacity:.9}main{max-width:1100px;margin:0 auto;padding:1em 2em 3em}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:.6em 1.4em 1.2em;margin:1.2em 0}
h2{font-size:1.2em;border-bottom:1px solid #e3e7ec;padding-bottom:.3em}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{text-align:left;padding:.35em .5em;
border-bottom:1px solid #eceff3;vertical-align:top}th{background:#f0f3f6}
td.num{text-align:right;white-space:nowrap}code,pre{font-family:ui-monospace,Consolas,monospace;font-size:.88em}
pre{background:#f3f5f8;border:1px solid #e1e5ea;border-radius:4px;padding:.8em;overflow:auto}
.badge{display:inline-block;padding:.15em .7em;border-radius:1em;font-weight:600;color:#fff}
.pass{background:#2e7d32}.warn{background:#b26a00}.fail{background:#c62828}.none{background:#6b7785}
.muted{color:#6b7785}img.map{max-width:100%;border:1px solid #dde2e8;border-radius:4px}
a{color:#1f5f99}
section.viewer{border-color:#1f5f99;border-width:2px}a.open{display:inline-block;background:#1f5f99;color:#fff;
padding:.5em 1.2em;border-radius:4px;font-weight:600;text-decoration:none;margin:.2em .6em .2em 0}
a.open.en{background:#fff;color:#1f5f99;border:1px solid #1f5f99}
"""


def _viewer_section(partial: Path) -> str:
    """The link to the release's 3D viewer, first on the page (German first), where the release has one."""
    if not (partial / "viewer" / "index.html").is_file():
        return ""
    portals = ""
    if (partial / "portals" / "masterportal" / "services.json").is_file():
        portals = ("<p class='muted'>Für Masterportal / for Masterportal: <a href='portals/masterportal/services.json'>"
                   "portals/masterportal/services.json</a> &middot; für VC Map / for VC Map: "
                   "<a href='portals/vcmap/config.json'>portals/vcmap/config.json</a></p>")
    return ("<section class='viewer'><h2>3D-Ansicht <span class='muted'>/ 3D viewer</span></h2>"
            "<p><a class='open' href='viewer/index.html'>3D-Stadtmodell im Browser öffnen</a> "
            "<a class='open en' href='viewer/index.html#lang=en'>Open the 3D city model</a></p>"
            "<p>Gebäude, Bäume, Punktwolke und Gelände mit den Analysen (Sonne, Solar, Lärm, Hochwasser), "
            "Schatten zu jeder Uhrzeit, Varianten im Vergleich, eigene Entwürfe skizzieren. Läuft ohne "
            "Internet über jeden Webserver (z.&nbsp;B. <code>citymodel serve</code> oder "
            "<code>python -m http.server</code> im Ausgabeordner), nicht über <code>file://</code>.</p>"
            "<p class='muted'>Buildings, trees, point cloud and terrain with the analyses (sun, solar, noise, "
            "flood), shadows at any time, variants compared, sketch your own. Works offline from any web server, "
            "not from <code>file://</code>.</p>" + portals + "</section>")


def _variants_section(partial: Path) -> str:
    """The published planning variants (``data/variants.json``), each opened in the viewer."""
    p = partial / "data" / "variants.json"
    if not p.is_file():
        return ""
    e = html.escape
    doc = json.loads(p.read_text(encoding="utf-8"))
    items = "".join(f"<li><a href='{e(v['viewer'])}'>{e(v['title'])}</a> (Version {v['version']}, "
                    f"{e(' / '.join(v['author_role_label'].values()))}) &middot; Vergleich / comparison: "
                    f"<code>{e(v['comparison'])}</code></li>" for v in doc["variants"])
    return ("<section><h2>Planungsvarianten <span class='muted'>/ planning variants</span></h2>"
            f"<ul>{items}</ul><p class='muted'>Alle Varianten nebeneinander / side by side: "
            f"<code>{e(doc['overview'])}</code> im Ausgabeordner (neben <code>latest/</code>) / in the output "
            "folder (beside <code>latest/</code>).</p></section>")


def render_index_page(rb: ReleaseBuilder, release_id: str, created: datetime, hashes: Mapping[str, str],
                      partial: Path, check_rows: list[dict], warnings: list[str], urls: str, *,
                      contents: ReleaseContents | None = None) -> str:
    """The ``index.html`` of a release being published by ``rb``: one self-contained page (no
    scripts, the tile map inlined as PNG) listing the files, viewer snippets, quality and CRS notes;
    with ``contents``, first of all what the release holds (German first): complete, or which
    parts are missing or old, and what the deployment does not compute."""
    e = html.escape
    parts: list[str] = []
    parts.append(f"<!DOCTYPE html>\n<html lang='{e(rb.language)}'><head><meta charset='utf-8'>"
                 f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
                 f"<title>{e(rb.title)}: release {e(release_id)}</title><style>{_CSS}</style></head><body>")
    parts.append(f"<header><h1>{e(rb.title)}</h1><p>Release <code>{e(release_id)}</code> of "
                 f"{e(iso_utc(created))} &middot; published by {e(rb.publisher)} &middot; licence "
                 f"<a style='color:#fff' href='{e(rb.license)}'>{e(_license_label(rb.license))}</a></p>"
                 f"</header><main>")
    if rb.description:
        parts.append(f"<p>{e(rb.description)}</p>")
    if contents is not None:
        parts.append(render_contents_section(contents))
    parts.append(_viewer_section(partial))
    parts.append(_variants_section(partial))

    # --- what is here
    parts.append("<section><h2>What is here</h2><p>Every file of this release is listed in "
                 "<a href='SHA256SUMS'>SHA256SUMS</a> and described in the DCAT-AP catalog "
                 "<a href='catalog.jsonld'>catalog.jsonld</a> (JSON-LD; harvestable by open data portals). "
                 "The 3D Tiles under <code>tiles/</code> are for web viewers, the files under "
                 "<code>data/</code> for GIS and CAD software.</p><table><tr><th>Dataset</th><th>File</th>"
                 "<th>Format</th><th class='num'>Size</th><th>Licence</th><th>SHA-256</th></tr>")
    by_ds: dict[str, list[DistributionEntry]] = {}
    for d in rb.distributions.values():
        if d.dataset:
            by_ds.setdefault(d.dataset, []).append(d)
    for ds_id in sorted(by_ds):
        ds = rb.datasets[ds_id]
        dists = sorted(by_ds[ds_id], key=lambda d: d.rel_path)
        for i, d in enumerate(dists):
            size = (partial / d.rel_path).stat().st_size
            extra = ""
            if d.folder:
                files = [p for p in (partial / d.folder).rglob("*") if p.is_file()]
                size = sum(p.stat().st_size for p in files)
                extra = f" <span class='muted'>(folder, {len(files)} files)</span>"
            texts = entry_texts(ds, getattr(rb, "facts", None))
            head = (f"<td rowspan='{len(dists)}'><b>{e(texts.title_de)}</b><br><span class='muted'>"
                    f"{e(texts.description_de)}</span><br><span class='muted' lang='en'>"
                    f"{e(texts.title_en)}</span></td>") if i == 0 else ""
            lic = ds.license or rb.license
            parts.append(f"<tr>{head}<td><a href='{e(d.rel_path)}'>{e(d.rel_path)}</a>{extra}</td>"
                         f"<td>{e(_format_label(d))}</td><td class='num'>{_human_size(size)}</td>"
                         f"<td><a href='{e(lic)}'>{e(_license_label(lic))}</a></td>"
                         f"<td><code title='{hashes.get(d.rel_path, '')}'>{hashes.get(d.rel_path, '')[:12]}…</code></td></tr>")
    parts.append("</table></section>")

    # --- viewers
    tileset = "tiles/buildings/tileset.json"
    url = (urls + tileset) if urls else tileset
    latest_url = (f"{rb.base_url}{LATEST_LINK}/{tileset}") if rb.base_url else None
    lon, lat = _center(rb)
    cesium = (
        "// CesiumJS (https://cesium.com/platform/cesiumjs/): 3D Tiles 1.1 with per-building metadata\n"
        "const viewer = new Cesium.Viewer(\"cesiumContainer\");\n"
        f"const tileset = await Cesium.Cesium3DTileset.fromUrl(\"{url}\");\n"
        "viewer.scene.primitives.add(tileset);\n"
        "await viewer.zoomTo(tileset);\n"
        "// show the attributes of a clicked building\n"
        "viewer.screenSpaceEventHandler.setInputAction((click) => {\n"
        "  const f = viewer.scene.pick(click.position);\n"
        "  if (f instanceof Cesium.Cesium3DTileFeature) {\n"
        "    console.log(Object.fromEntries(f.getPropertyIds().map((k) => [k, f.getProperty(k)])));\n"
        "  }\n"
        "}, Cesium.ScreenSpaceEventType.LEFT_CLICK);\n")
    deck = (
        "// deck.gl (https://deck.gl) with loaders.gl's 3D Tiles loader\n"
        "import {Deck} from '@deck.gl/core';\n"
        "import {Tile3DLayer} from '@deck.gl/geo-layers';\n"
        "import {Tiles3DLoader} from '@loaders.gl/3d-tiles';\n\n"
        "new Deck({\n"
        f"  initialViewState: {{longitude: {lon:.5f}, latitude: {lat:.5f}, zoom: 15, pitch: 50}},\n"
        "  controller: true,\n"
        "  layers: [new Tile3DLayer({\n"
        "    id: 'buildings',\n"
        f"    data: '{url}',\n"
        "    loader: Tiles3DLoader,\n"
        "    pickable: true\n"
        "  })]\n"
        "});\n")
    parts.append("<section><h2>View the 3D model</h2><p>Load <code>tiles/buildings/tileset.json</code> "
                 "(3D Tiles 1.1, glTF content) in any 3D Tiles viewer. Serve the release over HTTP (e.g. "
                 "<code>python -m http.server</code> in this folder); browsers do not load tiles from "
                 "<code>file://</code>.")
    if latest_url:
        parts.append(f" The address <code>{e(latest_url)}</code> always points to the newest release; "
                     f"the address below is fixed to this one.")
    parts.append(f"</p><h3>CesiumJS</h3><pre>{e(cesium)}</pre><h3>deck.gl</h3><pre>{e(deck)}</pre></section>")

    # --- tile index map
    ti = partial / TILE_INDEX_PATH
    if ti.is_file():
        parts.append("<section><h2>Tile index</h2><p>The model is cut into 1&nbsp;km tiles. "
                     f"<a href='{TILE_INDEX_PATH}'>{TILE_INDEX_PATH}</a> (GeoJSON, WGS84) holds one polygon "
                     "per tile with links to its files.</p>")
        try:
            png = tile_index_png(json.loads(ti.read_text(encoding="utf-8")), rb.title)
            parts.append(f"<img class='map' alt='Map of the tiles' src='data:image/png;base64,"
                         f"{base64.b64encode(png).decode('ascii')}'>")
        except Exception as exc:  # a broken tile index must not stop the release page
            parts.append(f"<p class='muted'>The tile index could not be drawn: {e(str(exc))}</p>")
        parts.append("</section>")

    # --- quality
    parts.append("<section><h2>Quality</h2>")
    report_path = partial / QUALITY_REPORT_PATH
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError:
            report = {}
        status = str(report.get("status", "unknown"))
        summary = report.get("summary") or {}
        css = status if status in ("pass", "warn", "fail") else "none"
        parts.append(f"<p>Quality report status: <span class='badge {css}'>{e(status)}</span> &middot; "
                     f"{summary.get('entries', 0)} checked datasets/tiles ({summary.get('pass', 0)} pass, "
                     f"{summary.get('warn', 0)} warn, {summary.get('fail', 0)} fail), "
                     f"{summary.get('quarantined', 0)} quarantined records. Full report: "
                     f"<a href='quality/report.html'>quality/report.html</a>, "
                     f"<a href='quality/report.json'>report.json</a>.</p>")
        bf = summary.get("blocking_failures") or []
        if bf:
            parts.append("<p>Blocking failures:</p><ul>" + "".join(f"<li>{e(str(x))}</li>" for x in bf) + "</ul>")
        else:
            parts.append("<p>No blocking failures.</p>")
    else:
        parts.append("<p class='muted'>No quality report in this release.</p>")
    if check_rows:
        parts.append("<p>Checks run before publishing:</p><table><tr><th>Check</th><th>Result</th>"
                     "<th>Blocking</th><th>Description</th></tr>")
        for r in check_rows:
            res = ("skipped" if r.get("status") == "skipped" else "pass" if r["passed"]
                   else "fail" if r["blocking"] else "warn")
            css = "none" if res == "skipped" else res
            parts.append(f"<tr><td>{e(r['name'])}</td><td><span class='badge {css}'>{res}</span></td>"
                         f"<td>{'yes' if r['blocking'] else 'no'}</td><td>{e(r['description'])}</td></tr>")
        parts.append("</table>")
    parts.append("</section>")

    # --- CRS notes
    parts.append("<section><h2>Coordinate reference systems and heights</h2><ul>")
    parts.append(f"<li>Files under <code>data/</code>: <b>{e(rb.crs)}</b>"
                 + (f", heights in <b>{e(rb.vertical_crs)}</b> (above sea level)" if rb.vertical_crs else "")
                 + ".</li>")
    parts.append("<li>3D Tiles under <code>tiles/</code>: Earth-centred coordinates (EPSG:4978) with "
                 "ellipsoidal heights (WGS84)"
                 + (f"; heights were converted with the <b>{e(rb.geoid_model)}</b> geoid model, so they "
                    f"differ from the sea-level heights of the data files by the geoid undulation"
                    if rb.geoid_model else "") + ".</li>")
    parts.append(f"<li>Catalog extents (<code>dcat:bbox</code>) and <code>{TILE_INDEX_PATH}</code>: "
                 "longitude/latitude, WGS84 (CRS84).</li></ul></section>")

    # --- verify
    parts.append("<section><h2>Verify your download</h2><p>In the release folder:</p>"
                 "<pre>sha256sum -c SHA256SUMS</pre><p>On macOS <code>shasum -a 256 -c SHA256SUMS</code>; "
                 "on Windows PowerShell <code>Get-FileHash -Algorithm SHA256 data\\buildings.gpkg</code> "
                 "and compare with the line in SHA256SUMS. The catalog carries the same checksums "
                 "(<code>spdx:checksum</code>) and sizes (<code>dcat:byteSize</code>).</p></section>")
    parts.append(f"<p class='muted'>Made by {e(code_version_label())} &middot; release "
                 f"{e(release_id)} &middot; attribution: {e(rb.publisher)}</p></main></body></html>\n")
    return "".join(parts)


def _license_label(iri: str) -> str:
    known = {
        "http://dcat-ap.de/def/licenses/dl-by-de/2.0": "Datenlizenz Deutschland – Namensnennung – 2.0",
        "http://dcat-ap.de/def/licenses/dl-zero-de/2.0": "Datenlizenz Deutschland – Zero – 2.0",
        "http://dcat-ap.de/def/licenses/cc-by/4.0": "CC BY 4.0",
        "http://dcat-ap.de/def/licenses/cc-zero": "CC0",
    }
    return known.get(iri, iri.rstrip("/").rsplit("/", 1)[-1])


def _format_label(d: DistributionEntry) -> str:
    _, _, _, label, _ = file_kind(d.rel_path)
    return label if label else (d.format or "")


def _center(rb: ReleaseBuilder) -> tuple[float, float]:
    import shapely

    wkt = rb.spatial_wkt or next((d.spatial_wkt for d in rb.datasets.values() if d.spatial_wkt), None)
    if not wkt:
        return 0.0, 0.0
    c = shapely.from_wkt(wkt).centroid
    return float(c.x), float(c.y)


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def render_contents_section(contents: ReleaseContents) -> str:
    """The section "Stand und Vollständigkeit / Status and completeness" (German first)."""
    e = html.escape
    gaps = contents.gaps
    css = "warn" if gaps else "pass"
    out = [f"<section id='contents'><h2>Stand und Vollständigkeit <span class='muted'>/ Status and "
           f"completeness</span></h2><p lang='de'><span class='badge {css}'>"
           f"{'unvollständig' if gaps else 'vollständig'}</span> {e(contents.summary('de'))}</p>"
           f"<p lang='en' class='muted'>{e(contents.summary('en'))}</p>"]
    if gaps:
        out.append("<table><tr><th>Teil <span class='muted'>/ part</span></th><th>Kachel <span class='muted'>"
                   "/ tile</span></th><th>Stand <span class='muted'>/ state</span></th></tr>")
        for p in gaps:
            out.append(f"<tr><td>{e(p.asset)}</td><td>{e(p.tile or 'ganze Stadt / whole city')}</td>"
                       f"<td><span lang='de'>{e(p.text('de'))}</span><br><span lang='en' class='muted'>"
                       f"{e(p.text('en'))}</span></td></tr>")
        out.append("</table>")
    counts = contents.counts()
    out.append(f"<p class='muted'>Teile / parts: {counts['fresh']} in diesem Lauf erstellt / built in this "
               f"refresh, {counts['current']} unverändert / unchanged, {counts['carried_over']} übernommen / "
               f"carried over, {counts['degraded']} unvollständig / incomplete, {counts['failed']} fehlend / "
               f"missing"
               + (f"; Lauf / refresh <code>{e(contents.refresh_id)}</code>" if contents.refresh_id else "")
               + ". Einzelheiten / details: <a href='release.json'>release.json</a> (<code>contents</code>).</p>")
    if contents.not_computed:
        out.append("<p>Nicht berechnet <span class='muted'>/ not computed</span>:</p><ul>")
        for n in contents.not_computed:
            out.append(f"<li><span lang='de'>{e(n.text_de)}</span> <span lang='en' class='muted'>"
                       f"/ {e(n.text_en)}</span></li>")
        out.append("</ul>")
    out.append("</section>")
    return "".join(out)
