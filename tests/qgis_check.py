"""Load a QGIS project with QGIS's own Python API and print what QGIS sees, as JSON.

Run by the tests with Debian's system python3 (python3-qgis) and QT_QPA_PLATFORM=offscreen:

    python3 tests/qgis_check.py PROJECT.qgz [STYLE.sld ...]

Prints {"layers": [{"name", "valid", "type", "renderer", "source", "classes", "feature_count"}],
"sld": {path: {"ok", "message", "renderer"}}}: each SLD is loaded into a copy of the first
vector layer whose style has the same name (vector SLDs) or skipped (raster SLDs: QGIS reads
SLD only for vector layers).
"""

import json
import os
import sys

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
ok = project.read(sys.argv[1])
out = {"read": bool(ok), "crs": project.crs().authid(), "layers": [], "sld": {}}
for layer in project.layerTreeRoot().findLayers():
    lyr = layer.layer()
    if lyr is None:
        out["layers"].append({"name": layer.name(), "valid": False, "type": None})
        continue
    info = {"name": lyr.name(), "valid": lyr.isValid(), "source": lyr.source(), "crs": lyr.crs().authid()}
    if isinstance(lyr, QgsVectorLayer):
        r = lyr.renderer()
        info.update(type="vector", renderer=r.type() if r else None, feature_count=lyr.featureCount())
        if r is not None and r.type() == "categorizedSymbol":
            info["classes"] = [[str(c.value()), c.symbol().color().name()] for c in r.categories()]
        elif r is not None and r.type() == "graduatedSymbol":
            info["classes"] = [[rg.lowerValue(), rg.upperValue(), rg.symbol().color().name()] for rg in r.ranges()]
    elif isinstance(lyr, QgsRasterLayer):
        r = lyr.renderer()
        info.update(type="raster", renderer=r.type() if r else None, band=getattr(r, "band", lambda: None)())
        shader = getattr(r, "shader", lambda: None)()
        fn = shader.rasterShaderFunction() if shader is not None else None
        if fn is not None and hasattr(fn, "colorRampItemList"):
            info["classes"] = [[it.value, it.color.name(), it.color.alpha()] for it in fn.colorRampItemList()]
    out["layers"].append(info)
keep = []  # layers loaded for the SLDs stay alive until the end (QGIS crashes when they are collected early)
vectors = [l.layer() for l in project.layerTreeRoot().findLayers() if isinstance(l.layer(), QgsVectorLayer)]
for sld in sys.argv[2:]:
    stem = os.path.splitext(os.path.basename(sld))[0]
    text = open(sld, encoding="utf-8").read()
    if "RasterSymbolizer" in text:
        out["sld"][sld] = {"ok": None, "message": "raster SLD (not loaded)"}
        continue
    base = next((v for v in vectors if v.isValid()), None)
    if base is None:
        out["sld"][sld] = {"ok": False, "message": "no valid vector layer to load it into"}
        continue
    copy = QgsVectorLayer(base.source(), "sld-" + stem, "ogr")
    keep.append(copy)
    msg, loaded = copy.loadSldStyle(sld)
    r = copy.renderer()
    out["sld"][sld] = {"ok": bool(loaded), "message": msg, "renderer": r.type() if r else None,
                       "rules": len(r.rootRule().children()) if r is not None and r.type() == "RuleRenderer" else None}
print(json.dumps(out), flush=True)
sys.stdout.flush()
os._exit(0)  # skip QGIS's teardown (it may crash on exit without a display; the result is printed)
