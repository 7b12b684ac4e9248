"""Layer configurations of a release for the portals cities already run.

- **Masterportal** (Hamburg's portal software, used by many German cities): ``services.json`` is a
  list of layer entries; a 3D tileset is an entry with ``"typ": "TileSet3D"``, a ``url`` (the
  tileset folder or its ``tileset.json``), ``gfiAttributes`` (attribute -> label shown on click),
  ``cesium3DTilesetOptions`` and ``datasets`` metadata (``bbox`` in the portal's CRS). A portal adds
  them to its 3D topic tree by id (``config.json``: ``Themenconfig.Fachdaten_3D.Layer``); the snippet
  is written beside.
- **VC Map** (virtualcitySYSTEMS' open-source @vcmap/core and @vcmap/ui): a module configuration
  with ``layers`` (``CesiumTilesetLayer``, ``PointCloudLayer``), ``styles`` (``DeclarativeStyleItem``
  with the same declarative styles as the project's viewer, and their legends), ``viewpoints`` and a
  ``contentTree``.

Both point at absolute URLs: ``viewer.public_url`` of the deployment (where the output folder is
served) + ``latest/`` + the path in the release, so the portals follow the current release.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["masterportal_services", "masterportal_config_snippet", "vcmap_module"]


def _url(base_url: str, rel: str) -> str:
    return base_url.rstrip("/") + "/latest/" + rel.lstrip("/")


def masterportal_services(tilesets: Sequence[Mapping[str, Any]], *, base_url: str, id_prefix: str,
                          bbox: Sequence[float], attribution: str, gfi_attributes: Mapping[str, str],
                          dataset_title: str) -> list[dict]:
    """Masterportal ``services.json`` entries (``typ: TileSet3D``) for the tilesets.

    Parameters
    ----------
    tilesets : sequence of {"name", "title": {"de", "en"}, "url" (path in the release), "kind"}
    base_url : str
        Where the output folder is served (``https://example.org/citymodel/``).
    id_prefix : str
        Prefix of the layer ids (the deployment's name).
    bbox : (minx, miny, maxx, maxy)
        Extent in the processing CRS (Masterportal's metadata ``bbox``).
    attribution : str
        Licence and publisher shown as layer attribution.
    gfi_attributes : mapping
        Feature attribute -> German label (shown when a building is clicked).
    """
    out = []
    for ts in tilesets:
        title = ts["title"]["de"] if isinstance(ts["title"], Mapping) else str(ts["title"])
        entry = {
            "id": f"{id_prefix}_{ts['name']}",
            "name": title,
            "url": _url(base_url, ts["url"]),
            "typ": "TileSet3D",
            "gfiAttributes": dict(gfi_attributes) if ts.get("kind") in ("buildings", "analysis") else "showAll",
            "layerAttribution": attribution or "nicht vorhanden",
            "legend": False,
            "cesium3DTilesetOptions": {"maximumScreenSpaceError": 16 if ts.get("kind") != "pointcloud" else 8},
            "datasets": [{"md_name": f"{dataset_title}: {title}", "bbox": ",".join(f"{v:.2f}" for v in bbox),
                          "kategorie_opendata": ["3D-Stadtmodell"], "kategorie_organisation": attribution}],
        }
        out.append(entry)
    return out


def masterportal_config_snippet(services: Sequence[Mapping[str, Any]]) -> dict:
    """The part of a Masterportal ``config.json`` that shows the layers in its 3D topic tree."""
    return {"Themenconfig": {"Fachdaten_3D": {"Layer": [{"id": s["id"], "visibility": i == 0}
                                                        for i, s in enumerate(services)]}}}


def vcmap_module(tilesets: Sequence[Mapping[str, Any]], styles: Sequence[Mapping[str, Any]], *, base_url: str,
                 name: str, home: Mapping[str, float], attribution: str) -> dict:
    """A VC Map module configuration for the release's tilesets.

    Parameters
    ----------
    tilesets : as for :func:`masterportal_services`
    styles : sequence of viewer colourings ``{"name", "title", "style", "legend"}`` (styles over the
        building metadata; colourings that swap to an analysis tileset are left out)
    home : {"lon", "lat", "height_m", "heading_deg", "pitch_deg", "ground_m"}
        The first view.
    """
    layers, tree, i18n_de, i18n_en = [], [], {}, {}
    style_names = [f"{name}_{s['name']}" for s in styles if "style" in s]
    for ts in tilesets:
        lname = f"{name}_{ts['name']}"
        kind = ts.get("kind")
        layer: dict[str, Any] = {
            "name": lname,
            "type": "PointCloudLayer" if kind == "pointcloud" else "CesiumTilesetLayer",
            "url": _url(base_url, ts["url"]),
            "activeOnStartup": bool(ts.get("show", True)) and kind != "analysis",
            "allowPicking": kind != "pointcloud",
            "screenSpaceError": 16,
            "screenSpaceErrorMobile": 32,
            "copyright": {"provider": attribution},
            "properties": {"title": f"layers.{lname}.title"},
        }
        if kind == "pointcloud":
            layer["pointSize"] = 2
        if kind == "buildings":
            layer["exclusiveGroups"] = [f"{name}_buildings"]
            layer["properties"]["availableStyles"] = style_names
        if kind == "analysis":
            layer["exclusiveGroups"] = [f"{name}_buildings"]
        layers.append(layer)
        tree.append({"name": f"{name}.{ts['name']}", "layerName": lname, "type": "LayerContentTreeItem"})
        title = ts["title"]
        i18n_de[lname] = {"title": title["de"] if isinstance(title, Mapping) else str(title)}
        i18n_en[lname] = {"title": title["en"] if isinstance(title, Mapping) else str(title)}
    vc_styles = []
    for s in styles:
        if "style" not in s:
            continue
        legend = s.get("legend") or {}
        items = []
        for it in legend.get("items", []):
            label = it.get("label", "")
            if isinstance(label, Mapping):
                label = label.get("de", "")
            if not label and "value" in it:
                label = f"{it['value']} {legend.get('unit', '')}".strip()
            items.append({"color": it.get("color", "#000000"), "title": label})
        vc_styles.append({"type": "DeclarativeStyleItem", "name": f"{name}_{s['name']}",
                          "title": s["title"]["de"] if isinstance(s["title"], Mapping) else s["title"],
                          "declarativeStyle": {"show": "true", **s["style"]}, "legend": items})
    distance = max(200.0, (home["height_m"] - home.get("ground_m", 0.0)) / 0.5736)
    viewpoint = {"type": "ViewPoint", "name": f"{name}_home", "cameraPosition": [home["lon"], home["lat"], home["height_m"]],
                 "heading": home.get("heading_deg", 0.0), "pitch": home.get("pitch_deg", -35.0), "roll": 0.0,
                 "distance": round(distance, 1), "animate": False}
    return {"name": name, "startingViewpointName": viewpoint["name"], "layers": layers, "styles": vc_styles,
            "viewpoints": [viewpoint], "contentTree": tree,
            "i18n": [{"name": f"{name}_i18n", "de": {"layers": i18n_de}, "en": {"layers": i18n_en}}]}
