"""A QGIS project of a release's 2D layers (``qgis/<name>.qgz``), written without QGIS.

The project file is QGIS 3 XML (``.qgs``) zipped as ``.qgz``, with relative paths
(``../data/...``) so that a downloaded release opens as it is, wherever it is unpacked. Layers
(only those the release holds): the tile index, trees, buildings by roof form and by height, ground
sun hours per day, the DIN EN 17037 level per building, the roof surfaces' solar classes, the noise
grid (LrT, LrN) and isophones in the EU noise-map colours, the water depth per flood scenario.
Styles come from :mod:`.styles` (the same definitions as the SLD files).

:func:`release_layers` finds the layers in a release folder; :func:`project_xml` writes the XML;
:func:`write_qgz` zips it. Checked in the tests by loading it with QGIS's own Python API.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..fileio import atomic_output
from .styles import (RasterStyle, VectorStyle, din17037_style, flood_raster_style, height_style, isophone_style,
                     noise_raster_style, rgba_text, roof_type_style, solar_style, sun_hours_raster_style,
                     tile_index_style, trees_style)

#: QGIS version the XML is written for (QGIS reads projects of older versions)
QGIS_VERSION = "3.22.0-Białowieża"


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the project: a file of the release (``rel_path``), its style and group."""

    id: str
    rel_path: str
    style: VectorStyle | RasterStyle
    group: str
    layer_name: str | None = None
    geometry: str | None = None     # Polygon, LineString, Point (vectors)
    subset: str | None = None       # an OGR attribute filter

    @property
    def is_raster(self) -> bool:
        return isinstance(self.style, RasterStyle)


def _vector_info(path: Path) -> tuple[str | None, str | None, list[str]]:
    import pyogrio

    layers = [(str(n), str(g)) for n, g in pyogrio.list_layers(path) if g]
    if not layers:
        return None, None, []
    name, gtype = layers[0]
    fields = [str(f) for f in pyogrio.read_info(path, layer=name)["fields"]]
    g = gtype.replace("Multi", "").replace(" Z", "").replace("3D ", "")
    return name, g, fields


def release_layers(release_dir: str | Path, days: list[str] | tuple[str, ...] = ()) -> list[ProjectLayer]:
    """The 2D layers of a release folder that the project shows, in drawing order (top first).

    ``days``: the configured sun-hours days (``MM-DD``), naming the bands of ``sun_hours.tif``
    (band descriptions are used where the file has them).
    """
    root = Path(release_dir)
    out: list[ProjectLayer] = []

    def vec(rel, style_fn, group, need=None, subset=None, suffix=""):
        p = root / rel
        if not p.is_file():
            return
        name, geom, fields = _vector_info(p)
        if name is None:
            return
        style = style_fn(fields)
        if style is None or (style.attribute and style.attribute not in fields):
            return
        if need and need not in fields:
            return
        out.append(ProjectLayer(layer_id(style.name, rel), rel, style, group, layer_name=name,
                                geometry=geom, subset=subset))

    vec("data/tile_index.geojson", lambda f: tile_index_style(), "Grundlagen")
    vec("data/trees.gpkg", lambda f: trees_style(), "Grundlagen")
    # noise: isophones (per indicator) and the grid
    iso = root / "data/analysis/noise_isophones.gpkg"
    if iso.is_file():
        for ind in ("LrN", "LrT"):
            vec("data/analysis/noise_isophones.gpkg", lambda f, i=ind: isophone_style(indicator=i), "Lärm",
                need="indicator", subset=f"\"indicator\" = '{ind}'")
    noise = root / "data/analysis/noise.tif"
    if noise.is_file():
        n = _band_count(noise)
        for band, ind in ((2, "LrN"), (1, "LrT")):
            if band <= n:
                st = noise_raster_style(band, ind)
                out.append(ProjectLayer(layer_id(st.name, "data/analysis/noise.tif"), "data/analysis/noise.tif", st,
                                        "Lärm"))
    vec("data/analysis/solar.gpkg", lambda f: solar_style(), "Solarpotenzial")
    vec("data/analysis/building_values.gpkg", lambda f: din17037_style(), "Besonnung")
    sun = root / "data/analysis/sun_hours.tif"
    if sun.is_file():
        desc, top = _band_descriptions_and_max(sun)
        for band in range(len(desc), 0, -1):
            day = (desc[band - 1] or "").removeprefix("sun hours").strip() or (
                days[band - 1] if band - 1 < len(days) else f"Band {band}")
            st = sun_hours_raster_style(band, day, top[band - 1])
            out.append(ProjectLayer(layer_id(f"sun_hours_{band}", "data/analysis/sun_hours.tif"),
                                    "data/analysis/sun_hours.tif", st, "Besonnung"))
    for p in sorted((root / "data/analysis").glob("flood_depth_*.tif")) if (root / "data/analysis").is_dir() else []:
        sc = p.stem.removeprefix("flood_depth_")
        st = flood_raster_style(sc)
        out.append(ProjectLayer(layer_id(st.name, f"data/analysis/{p.name}"), f"data/analysis/{p.name}", st,
                                "Hochwasser"))

    def height_fn(fields):
        col = next((c for c in ("measured_height_m", "ridge_height_m", "height_m") if c in fields), None)
        return height_style(col) if col else None

    vec("data/buildings.gpkg", lambda f: roof_type_style(), "Gebäude")
    vec("data/buildings.gpkg", height_fn, "Gebäude")
    return out


def layer_id(name: str, rel_path: str) -> str:
    """A stable layer id: the style's name and a hash of the file (QGIS replaces short ids by new
    random ones, which would make the project differ on every write)."""
    import hashlib

    return f"{name}_{hashlib.sha1(f'{name}|{rel_path}'.encode()).hexdigest()[:16]}"


def _band_count(path: Path) -> int:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.count


def _band_descriptions_and_max(path: Path) -> tuple[list[str | None], list[float]]:
    import numpy as np
    import rasterio

    with rasterio.open(path) as ds:
        desc = list(ds.descriptions)
        tops = []
        for b in range(1, ds.count + 1):
            a = ds.read(b, masked=True)
            tops.append(float(np.ma.max(a)) if a.count() else 0.0)
    return desc, tops


# ---------------------------------------------------------------------------------------- XML

def _srs(crs: str) -> str:
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    code = c.to_epsg()
    return ("<spatialrefsys nativeFormat=\"Wkt\">"
            f"<wkt>{escape(c.to_wkt())}</wkt><proj4>{escape(c.to_proj4() or '')}</proj4>"
            f"<srsid>0</srsid><srid>{code or 0}</srid><authid>{escape(f'EPSG:{code}' if code else crs)}</authid>"
            f"<description>{escape(c.name)}</description><projectionacronym></projectionacronym>"
            "<ellipsoidacronym></ellipsoidacronym><geographicflag>false</geographicflag></spatialrefsys>")


def _opt(name: str, value) -> str:
    return f'<Option type="QString" name={quoteattr(name)} value={quoteattr(str(value))}/>'


def _symbol(style: VectorStyle, rgba, name: str) -> str:
    if style.geometry == "point":
        kind, cls = "marker", "SimpleMarker"
        opts = (_opt("name", "circle") + _opt("color", rgba_text(rgba)) + _opt("size", style.size_mm)
                + _opt("size_unit", "MM") + _opt("outline_color", rgba_text(style.outline))
                + _opt("outline_width", 0.2) + _opt("outline_style", "solid"))
    elif style.geometry == "line":
        kind, cls = "line", "SimpleLine"
        opts = (_opt("line_color", rgba_text(rgba)) + _opt("line_width", style.width_mm)
                + _opt("line_width_unit", "MM") + _opt("line_style", "solid"))
    else:
        kind, cls = "fill", "SimpleFill"
        opts = (_opt("color", rgba_text(rgba)) + _opt("style", "solid" if style.fill else "no")
                + _opt("outline_color", rgba_text(style.outline)) + _opt("outline_width", style.width_mm)
                + _opt("outline_width_unit", "MM") + _opt("outline_style", "solid"))
    return (f'<symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="{cls}" enabled="1" locked="0" pass="0"><Option type="Map">{opts}</Option></layer>'
            "</symbol>")


def _renderer(style: VectorStyle) -> str:
    syms = "".join(_symbol(style, r.rgba, str(i)) for i, r in enumerate(style.rules))
    if style.kind == "categorized":
        cats = "".join(f'<category render="true" symbol="{i}" value={quoteattr(str(r.value))} '
                       f'label={quoteattr(r.label)}/>' for i, r in enumerate(style.rules))
        return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(style.attribute)} forceraster="0" '
                f'symbollevels="0" enableorderby="0"><categories>{cats}</categories>'
                f"<symbols>{syms}</symbols></renderer-v2>")
    if style.kind == "graduated":
        ranges = "".join(f'<range render="true" symbol="{i}" lower="{r.lo:g}" upper="{r.hi:g}" '
                         f'label={quoteattr(r.label)}/>' for i, r in enumerate(style.rules))
        return (f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(style.attribute)} '
                f'graduatedMethod="GraduatedColor" forceraster="0" symbollevels="0" enableorderby="0">'
                f"<ranges>{ranges}</ranges><symbols>{syms}</symbols></renderer-v2>")
    return (f'<renderer-v2 type="singleSymbol" forceraster="0" symbollevels="0" enableorderby="0">'
            f"<symbols>{_symbol(style, style.rules[0].rgba, '0')}</symbols></renderer-v2>")


def _raster_pipe(style: RasterStyle) -> str:
    items = []
    if style.kind == "discrete":
        # DISCRETE: a value takes the colour of the first item whose value is >= it
        first = style.rules[0]
        items.append(f'<item value="{first.lo:g}" color="#ffffff" alpha="0" label="&lt; {first.lo:g}"/>')
        for r in style.rules:
            upper = "inf" if r.hi >= 1000 else f"{r.hi:g}"
            items.append(f'<item value="{upper}" color="#{r.rgba[0]:02x}{r.rgba[1]:02x}{r.rgba[2]:02x}" '
                         f'alpha="{r.rgba[3]}" label={quoteattr(r.label)}/>')
        lo, hi = first.lo, style.rules[-1].lo + 5
        ramp = "DISCRETE"
    else:
        for r in style.rules:
            items.append(f'<item value="{r.lo:g}" color="#{r.rgba[0]:02x}{r.rgba[1]:02x}{r.rgba[2]:02x}" '
                         f'alpha="{r.rgba[3]}" label={quoteattr(r.label)}/>')
        lo, hi = style.rules[0].lo, style.rules[-1].lo
        ramp = "INTERPOLATED"
    return (f'<pipe><rasterrenderer type="singlebandpseudocolor" band="{style.band}" opacity="1" alphaBand="-1" '
            f'classificationMin="{lo:g}" classificationMax="{hi:g}">'
            "<rasterTransparency/><minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>"
            "<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>"
            "<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>"
            f'<rastershader><colorrampshader colorRampType="{ramp}" classificationMode="1" clip="0" '
            f'minimumValue="{lo:g}" maximumValue="{hi:g}">' + "".join(items)
            + "</colorrampshader></rastershader></rasterrenderer>"
              '<brightnesscontrast brightness="0" contrast="0" gamma="1"/>'
              '<huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>'
              '<rasterresampler maxOversampling="2"/></pipe>')


def datasource(layer: ProjectLayer, base: str = "..") -> str:
    """The QGIS data source of a layer, relative to the project's folder (``qgis/``)."""
    src = f"{base}/{layer.rel_path}"
    if layer.is_raster:
        return src
    if layer.layer_name:
        src += f"|layername={layer.layer_name}"
    if layer.subset:
        src += f"|subset={layer.subset}"
    return src


def project_xml(layers: list[ProjectLayer], crs: str, extent: tuple[float, float, float, float],
                title: str) -> str:
    """The ``.qgs`` XML of a project with ``layers`` (drawn top first) in groups, in ``crs``."""
    srs = _srs(crs)
    x0, y0, x1, y1 = extent
    ext = f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
    groups: dict[str, list[ProjectLayer]] = {}
    for lyr in layers:
        groups.setdefault(lyr.group, []).append(lyr)
    tree = []
    for g, ls in groups.items():
        items = "".join(
            f'<layer-tree-layer id={quoteattr(lyr.id)} name={quoteattr(lyr.style.title)} '
            f'source={quoteattr(datasource(lyr))} providerKey="{"gdal" if lyr.is_raster else "ogr"}" '
            f'checked="{"Qt::Checked" if i == 0 else "Qt::Unchecked"}" expanded="0"><customproperties/>'
            "</layer-tree-layer>" for i, lyr in enumerate(ls))
        tree.append(f'<layer-tree-group name={quoteattr(g)} checked="Qt::Checked" expanded="1">'
                    f"<customproperties/>{items}</layer-tree-group>")
    maplayers = []
    for lyr in layers:
        if lyr.is_raster:
            body = (f'<maplayer type="raster" hasScaleBasedVisibilityFlag="0" refreshOnNotifyEnabled="0" '
                    f'autoRefreshEnabled="0"><extent>{ext}</extent><id>{escape(lyr.id)}</id>'
                    f"<datasource>{escape(datasource(lyr))}</datasource><layername>{escape(lyr.style.title)}"
                    f"</layername><srs>{srs}</srs><provider>gdal</provider>{_raster_pipe(lyr.style)}"
                    "<blendMode>0</blendMode></maplayer>")
        else:
            geom = {"Point": "Point", "LineString": "Line", "Polygon": "Polygon"}.get(lyr.geometry or "", "Polygon")
            wkb = {"Point": "Point", "Line": "LineString", "Polygon": "MultiPolygon"}[geom]
            body = (f'<maplayer type="vector" geometry="{geom}" wkbType="{wkb}" hasScaleBasedVisibilityFlag="0" '
                    f'refreshOnNotifyEnabled="0" autoRefreshEnabled="0" readOnly="0" simplifyDrawingHints="1" '
                    f'simplifyDrawingTol="1" simplifyAlgorithm="0" simplifyLocal="1" simplifyMaxScale="1" '
                    f'labelsEnabled="0" styleCategories="AllStyleCategories"><extent>{ext}</extent>'
                    f"<id>{escape(lyr.id)}</id><datasource>{escape(datasource(lyr))}</datasource>"
                    f"<layername>{escape(lyr.style.title)}</layername><srs>{srs}</srs>"
                    f'<provider encoding="UTF-8">ogr</provider>{_renderer(lyr.style)}'
                    "<blendMode>0</blendMode><featureBlendMode>0</featureBlendMode><layerOpacity>1</layerOpacity>"
                    "</maplayer>")
        maplayers.append(body)
    order = "".join(f'<layer id={quoteattr(lyr.id)}/>' for lyr in layers)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis projectname={quoteattr(title)} version="{QGIS_VERSION}">'
            f'<homePath path=""/><title>{escape(title)}</title>'
            '<autotransaction active="0"/><evaluateDefaultValues active="0"/><trust active="0"/>'
            f"<projectCrs>{srs}</projectCrs>"
            f'<layer-tree-group><customproperties/>{"".join(tree)}</layer-tree-group>'
            f'<mapcanvas name="theMapCanvas" annotationsVisible="1"><units>meters</units><extent>{ext}</extent>'
            f"<rotation>0</rotation><destinationsrs>{srs}</destinationsrs><rendermaptile>0</rendermaptile>"
            "</mapcanvas>"
            f'<projectlayers>{"".join(maplayers)}</projectlayers>'
            f"<layerorder>{order}</layerorder>"
            '<properties><Paths><Absolute type="bool">false</Absolute></Paths>'
            f'<SpatialRefSys><ProjectCrs type="QString">{escape(crs)}</ProjectCrs>'
            '<ProjectionsEnabled type="int">1</ProjectionsEnabled></SpatialRefSys>'
            f'<WMSServiceTitle type="QString">{escape(title)}</WMSServiceTitle></properties>'
            "</qgis>\n")


def write_qgz(path: str | Path, xml: str) -> Path:
    """Zip ``xml`` as ``<stem>.qgs`` into ``path`` (``.qgz``), atomically; fixed entry time so that
    the same project gives the same bytes."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(f"{path.stem}.qgs", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, xml.encode("utf-8"))
    return path


def sld_documents(layers: list[ProjectLayer]) -> dict[str, str]:
    """``styles/<style>.sld`` -> SLD 1.0 text, one per distinct style of ``layers``."""
    from .styles import raster_sld, vector_sld

    out: dict[str, str] = {}
    for lyr in layers:
        rel = f"styles/{lyr.style.name}.sld"
        if rel in out:
            continue
        name = lyr.layer_name or Path(lyr.rel_path).stem
        out[rel] = raster_sld(lyr.style, name) if lyr.is_raster else vector_sld(lyr.style, name)
    return out


def add_qgis_project(builder, *, name: str, crs: str, extent: tuple[float, float, float, float], title: str,
                     days: list[str] | tuple[str, ...] = (), trees=None) -> list[str]:
    """Add the QGIS project and the SLD styles to an open :class:`~citymodel.release.ReleaseBuilder`.

    Call after every 2D layer is in the release. ``trees`` (a GeoDataFrame of the staged trees,
    optional) is written as ``data/trees.gpkg`` first so that the project can show it.

    Returns
    -------
    list of str
        The release paths written (``qgis/<name>.qgz``, ``styles/*.sld``, ``data/trees.gpkg``).
    """
    from ..geofiles import write_geopackage

    written = []
    if trees is not None and len(trees):
        write_geopackage(trees, builder.path("data/trees.gpkg", dataset="trees", title="Trees (GeoPackage)",
                                             media_type="application/geopackage+sqlite3", format="GPKG"),
                         layer="trees")
        written.append("data/trees.gpkg")
    qgz_rel = f"qgis/{name}.qgz"
    qgz = builder.path(qgz_rel, dataset="qgis-project", title=f"QGIS project ({name}.qgz)",
                       media_type="application/x-qgis-project+zip", format="QGZ")
    root = qgz.parent.parent
    layers = release_layers(root, days)
    write_qgz(qgz, project_xml(layers, crs, extent, title))
    written.append(qgz_rel)
    for rel, text in sld_documents(layers).items():
        builder.write_text(rel, text, dataset="map-styles", title=Path(rel).name,
                           media_type="application/vnd.ogc.sld+xml", format="SLD")
        written.append(rel)
    return written
