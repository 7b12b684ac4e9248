"""The release's 3D viewer in a real browser: headless Chromium (Debian's, software WebGL) over a local
HTTP server, on the sample city's release and a published variant.

Asserts: every tileset loads with no failed tile; a click on a building returns that building's
attributes (compared with the release's data/buildings.csv); switching to a variant shows its new
building (and the removed one as a ghost); a sketched building is saved as a file that passes the
variant schema; the sun's local time is Europe/Berlin. Screenshots are kept under pytest's temporary
folder (their paths are printed).

Skipped with the reason where Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from citymodel.viewer.headless import missing_reason

pytestmark = [pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
              pytest.mark.timeout(1800)]  # software WebGL on a busy 2-core machine is slow

LOAD_TIMEOUT_S = float(os.environ.get("CITYMODEL_BROWSER_TIMEOUT_S", "420"))


def _link_tree(src: Path, dst: Path) -> None:
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, copy_function=link)


@pytest.fixture(scope="module")
def site(pipeline_city, tmp_path_factory):
    """An output folder served over HTTP: the sample release (hard-linked), ``latest`` and a variant."""
    from variant_fixture import make_variant

    from citymodel.release import latest_release
    from citymodel.viewer.serve import StaticServer

    s = pipeline_city.settings
    rel = latest_release(s.output_dir)
    assert rel is not None, "the sample city has no release"
    root = tmp_path_factory.mktemp("site")
    (root / "releases").mkdir()
    _link_tree(rel, root / "releases" / rel.name)
    os.symlink(f"releases/{rel.name}", root / "latest")
    release = root / "releases" / rel.name
    if not (release / "viewer" / "index.html").exists():
        from citymodel.viewer.bundle import viewer_source

        pytest.skip(f"the release has no viewer: {viewer_source().missing() or 'viewer.enabled is false'}")
    variant = make_variant(root, s, rel.name)
    shots = tmp_path_factory.mktemp("viewer_screenshots")
    with StaticServer(root) as server:
        yield type("Site", (), {"root": root, "release": release, "server": server, "variant": variant,
                                "settings": s, "shots": shots, "url": server.url("latest/viewer/")})


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    from citymodel.viewer.headless import start_chromium

    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_chromium(width=1200, height=800, download_dir=downloads)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(driver.citymodel_profile, ignore_errors=True)


def _open(driver, url: str) -> None:
    driver.get("about:blank")  # a new page even where only the hash differs
    driver.get(url)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        state = driver.execute_script("const a = window.citymodelViewer; return a ? {ready: !!a.ready, error: a.error || null} : null")
        if state and state["error"]:
            raise AssertionError(f"the viewer failed to start: {state['error']}\n{_console(driver)}")
        if state and state["ready"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"the viewer did not start within 120 s\n{_console(driver)}")


def _console(driver) -> str:
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))[-4000:]
    except Exception:  # noqa: BLE001 - diagnostics only
        return ""


def _wait_loaded(driver, names: list[str], timeout_s: float = LOAD_TIMEOUT_S) -> dict:
    """Wait until the named tilesets and the globe report everything loaded; return the status."""
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < timeout_s:
        driver.execute_script("window.citymodelViewer.viewer.scene.requestRender()")
        status = driver.execute_script("return window.citymodelViewer.loadStatus()")
        ts = status["tilesets"]
        failed = {n: r["failed"] for n, r in ts.items() if r["failed"]}
        assert not failed, f"failed tiles: {json.dumps(failed)[:2000]}"
        if status["globeLoaded"] and all(n in ts and ts[n]["allTilesLoaded"] for n in names):
            return status
        time.sleep(1.0)
    raise AssertionError(f"not loaded within {timeout_s:.0f} s: {json.dumps(status)[:2000]}")


def _shot(driver, site, name: str) -> Path:
    p = site.shots / f"{name}.png"
    driver.save_screenshot(str(p))
    print(f"screenshot: {p}")
    return p


def _look_down_at(driver, lon: float, lat: float, above_ground_m: float) -> None:
    """Camera straight down over lon/lat, ``above_ground_m`` above the terrain."""
    driver.execute_script(
        "const C = window.citymodelViewer; const h = C.groundHeight(arguments[0], arguments[1]) + arguments[2];"
        "C.viewer.camera.setView({destination: C.Cesium.Cartesian3.fromDegrees(arguments[0], arguments[1], h), "
        "orientation: {heading: 0, pitch: -Math.PI / 2, roll: 0}}); C.viewer.scene.requestRender();",
        lon, lat, above_ground_m)


def _click_centre(driver):
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("css selector", "#view canvas")
    ActionChains(driver).move_to_element(canvas).click().perform()


def _index(site) -> dict:
    doc = json.loads((site.release / "viewer" / "buildings.json").read_text(encoding="utf-8"))
    return {b[0]: b for b in doc["buildings"]}


# ------------------------------------------------------------------------------------------- tests
def test_every_tileset_loads_without_a_failed_tile(site, browser):
    _open(browser, site.url + "#layers=buildings,trees,terrain")
    status = _wait_loaded(browser, ["buildings", "trees"])
    assert status["tilesets"]["buildings"]["loadedTiles"] > 0 and status["tilesets"]["trees"]["loadedTiles"] > 0
    _shot(browser, site, "01_home")
    # the analysis tilesets, shown as building colourings
    for name in ("tileset_solar", "tileset_facade_sun"):
        browser.execute_script("window.citymodelViewer.layers.setColouring(arguments[0])", name)
        _wait_loaded(browser, [name.removeprefix("tileset_")])
        _shot(browser, site, f"02_{name}")
    # a colouring by a metadata property, and the ground overlays
    browser.execute_script("window.citymodelViewer.layers.setColouring('roof_type')")
    overlays = browser.execute_script("return window.citymodelViewer.layers.overlays.map(o => o.name)")
    assert {"noise_lrt", "sun_hours_0321"} <= set(overlays), overlays
    browser.execute_script("return window.citymodelViewer.layers.setOverlay('noise_lrt', true)")
    legend = browser.find_element("id", "legend").text
    assert "Dachform" in legend and "dB(A)" in legend
    _wait_loaded(browser, ["buildings"])
    _shot(browser, site, "03_roof_type_noise")


@pytest.mark.slow
def test_the_point_cloud_loads_without_a_failed_tile(site, browser):
    _open(browser, site.url + "#layers=pointcloud,terrain")
    status = _wait_loaded(browser, ["pointcloud"], timeout_s=max(LOAD_TIMEOUT_S, 600))
    assert status["tilesets"]["pointcloud"]["loadedTiles"] > 0
    _shot(browser, site, "04_pointcloud")


def test_a_click_on_a_building_shows_its_attributes(site, browser):
    with open(site.release / "data" / "buildings.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("method") == "lod2_fitted"]
    index = _index(site)
    # a tall fitted building (a clear roof under the camera)
    # (with storeys: the open lattice tower of the hard cases has none to compare)
    rows = [r for r in rows if r["building_id"] in index and r.get("storeys")]
    row = max(rows, key=lambda r: float(r["measured_height_m"] or 0))
    bid = row["building_id"]
    _, lon, lat, ground, top = index[bid]
    _open(browser, site.url + "#layers=buildings,terrain")
    _look_down_at(browser, lon, lat, top - ground + 60.0)
    _wait_loaded(browser, ["buildings"])
    _click_centre(browser)
    pick = browser.execute_script("const p = window.citymodelViewer.picking.lastPick; return p && p.properties")
    assert pick, f"nothing picked\n{_console(browser)}"
    assert pick["id"] == bid
    assert str(pick["roofType"]) == row["roofType"]
    for prop, col in (("measuredHeight", "measured_height_m"), ("eaveHeight", "eave_height_m"),
                      ("ridgeHeight", "ridge_height_m")):
        assert pick[prop] == pytest.approx(float(row[col]), abs=0.01), prop
    assert int(pick["storeys"]) == int(float(row["storeys"]))
    info = browser.find_element("id", "info").text
    assert bid in info and "Gebäudehöhe" in info
    time.sleep(0.6)  # the URL is written at most every 300 ms
    assert f"select={bid}" in browser.execute_script("return window.location.hash")
    _shot(browser, site, "05_pick")


def test_switching_to_the_variant_shows_its_new_building_and_the_removed_one_as_a_ghost(site, browser):
    v = site.variant
    _open(browser, site.url + "#layers=buildings,terrain")
    options = [o.get_attribute("value") for o in browser.find_elements("css selector", "#variant-select option")]
    assert f"{v.folder.parent.name}@1" in options, options
    from selenium.webdriver.support.ui import Select

    browser.execute_script("document.getElementById('variants-box').open = true")
    Select(browser.find_element("id", "variant-select")).select_by_value(f"{v.folder.parent.name}@1")
    t0 = time.monotonic()
    while not browser.execute_script("const v = window.citymodelViewer.variants; return !!(v.current && v.current.tileset)"):
        assert time.monotonic() - t0 < 60, _console(browser)
        time.sleep(0.5)
    hidden = browser.execute_script("return window.citymodelViewer.layers.hidden")
    assert v.removed_id in hidden and set(v.affected_ids) <= set(hidden)
    _look_down_at(browser, v.new_lonlat[0], v.new_lonlat[1], 250.0)
    _wait_loaded(browser, ["buildings", "variant"])
    _shot(browser, site, "06_variant")
    _look_down_at(browser, v.new_lonlat[0], v.new_lonlat[1], 80.0)
    _wait_loaded(browser, ["buildings", "variant"])
    _click_centre(browser)
    pick = browser.execute_script("const p = window.citymodelViewer.picking.lastPick; return p")
    assert pick and pick["properties"]["id"] == v.new_id and pick["properties"]["variant_status"] == "added", pick
    assert pick["tileset"] == "variant"
    _look_down_at(browser, v.removed_lonlat[0], v.removed_lonlat[1], 80.0)
    _wait_loaded(browser, ["buildings", "variant"])
    _click_centre(browser)
    pick = browser.execute_script("const p = window.citymodelViewer.picking.lastPick; return p")
    assert pick and pick["properties"]["id"] == v.removed_id and pick["properties"]["variant_status"] == "removed"
    # the view state is in the URL: opening it again restores the variant
    time.sleep(0.6)
    url = browser.current_url
    assert f"variant={v.folder.parent.name}@1" in url
    link = browser.execute_script("return document.getElementById('variant-comparison').href")
    assert link.endswith(f"variants/{v.folder.parent.name}/1/comparison/index.html")
    # the difference overlay and the swipe line
    browser.execute_script("return window.citymodelViewer.layers.setOverlay('variant:sun_hours_mar21_diff', true)")
    browser.execute_script("return window.citymodelViewer.variants.setMode('swipe')")
    _look_down_at(browser, v.new_lonlat[0], v.new_lonlat[1] - 0.002, 150.0)
    browser.execute_script("const C = window.citymodelViewer.viewer.camera; C.setView({orientation: {heading: 0, pitch: -0.7, roll: 0}})")
    _wait_loaded(browser, ["buildings", "buildings_right", "variant"])
    assert browser.execute_script("return window.citymodelViewer.viewer.scene.splitPosition") == pytest.approx(0.5)
    _shot(browser, site, "07_variant_swipe")
    _open(browser, url)
    state = browser.execute_script("const v = window.citymodelViewer.variants; return v.current && v.current.entry.id")
    assert state == v.folder.parent.name


def test_a_sketched_building_is_saved_as_a_valid_variant_file(site, browser):
    import jsonschema
    import pyproj

    from citymodel.config import PROJECT_ROOT

    v = site.variant
    lon, lat = v.new_lonlat  # a free spot
    lon += 0.0006
    _open(browser, site.url + "#layers=buildings,terrain")
    _look_down_at(browser, lon, lat, 120.0)
    _wait_loaded(browser, ["buildings"])
    browser.find_element("id", "btn-sketch").click() if browser.find_element("id", "btn-sketch").is_displayed() else \
        browser.execute_script("window.citymodelViewer.sketch.open()")
    browser.find_element("id", "sketch-draw").click()
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = browser.find_element("css selector", "#view canvas")
    for dx, dy in [(-30, -20), (30, -20), (30, 20), (-30, 20)]:
        ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).click().perform()
        time.sleep(0.3)
    browser.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}))")
    built = browser.execute_script("return window.citymodelViewer.sketch.buildings.map(b => ({id: b.id, n: b.lonlat.length, h: b.heights}))")
    assert len(built) == 1 and built[0]["n"] == 4
    assert built[0]["h"]["eave"] == pytest.approx(4 * 3.0)  # 4 storeys (the form's default) x 3 m
    # the preview is in the scene: the building under the camera is the sketched one
    time.sleep(3.5)
    picked = browser.execute_script(
        "const A = window.citymodelViewer, sc = A.viewer.scene; sc.requestRender();"
        "const p = sc.pick(new A.Cesium.Cartesian2(sc.canvas.clientWidth / 2, sc.canvas.clientHeight / 2));"
        "return !!(p && p.id && A.sketch.buildings[0].entities.includes(p.id));")
    assert picked, "the sketched building is not under the camera"
    browser.find_element("id", "sketch-title").send_keys("Mein Entwurf")
    browser.find_element("id", "sketch-id").send_keys("mein-entwurf")
    _wait_loaded(browser, ["buildings"])
    _shot(browser, site, "08_sketch")
    for f in site_downloads(browser):
        f.unlink()
    browser.find_element("id", "sketch-save").click()
    t0 = time.monotonic()
    while not (files := [f for f in site_downloads(browser) if f.name.endswith(".geojson")]):
        assert time.monotonic() - t0 < 30, browser.find_element("id", "sketch-status").text
        time.sleep(0.3)
    doc = json.loads(files[0].read_text(encoding="utf-8"))
    schema = json.loads((PROJECT_ROOT / "citymodel" / "variants" / "schema" / "variant-1.0.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert files[0].name == "mein-entwurf.variant.geojson"
    assert doc["variant"]["id"] == "mein-entwurf" and doc["variant"]["author_role"] == "citizen"
    (feat,) = doc["features"]
    assert feat["properties"]["change"] == "add_building" and feat["properties"]["storeys"] == 4
    ring = feat["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    # the footprint is centred under the camera and spans about 60 x 40 pixels of a top-down view
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True).transform(
        [p[0] for p in ring[:4]], [p[1] for p in ring[:4]])
    cx, cy = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25832", always_xy=True).transform(lon, lat)
    assert abs(sum(x) / 4 - cx) < 3.0 and abs(sum(y) / 4 - cy) < 3.0
    assert max(x) - min(x) > max(y) - min(y) > 1.0


def site_downloads(browser) -> list[Path]:
    return sorted(p for p in Path(browser.downloads).iterdir() if not p.name.endswith(".crdownload"))


def test_the_sun_is_set_in_the_citys_local_time(site, browser):
    _open(browser, site.url + "#time=2025-06-21T12:00&shadows=1&layers=buildings,terrain")
    for date, hhmm in (("2025-06-21", "12:00"), ("2025-12-21", "09:30"), ("2025-03-30", "03:00")):
        h, m = (int(p) for p in hhmm.split(":"))
        got = browser.execute_script(
            "const s = window.citymodelViewer.sun; s.set(arguments[0], arguments[1]); return s.instant().toISOString()",
            date, h * 60 + m)
        local = dt.datetime.fromisoformat(f"{date}T{hhmm}").replace(tzinfo=ZoneInfo("Europe/Berlin"))
        want = local.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert got == want, (date, hhmm)
    assert browser.execute_script("return window.citymodelViewer.viewer.shadows") is True
    browser.execute_script("window.citymodelViewer.sun.set('2025-12-21', 12 * 60)")
    _wait_loaded(browser, ["buildings"])
    _shot(browser, site, "09_shadows_dec21")


def test_language_help_keyboard_find_and_measure(site, browser):
    from selenium.webdriver.common.keys import Keys

    _open(browser, site.url + "#layers=buildings,terrain")
    assert browser.find_element("css selector", "#panel summary").text == "Ebenen"
    browser.find_element("id", "btn-lang").click()
    assert browser.find_element("css selector", "#panel summary").text == "Layers"
    time.sleep(0.6)
    assert "lang=en" in browser.current_url
    # help: '?' opens it, Escape closes it
    body = browser.find_element("tag name", "body")
    body.send_keys("?")
    assert browser.find_element("id", "help").is_displayed()
    body.send_keys(Keys.ESCAPE)
    assert not browser.find_element("id", "help").is_displayed()
    # the arrow key moves the camera north (heading 0 at the home view)
    lat0 = browser.execute_script("return window.citymodelViewer.cameraState().lat")
    body.send_keys(Keys.ARROW_UP)
    assert browser.execute_script("return window.citymodelViewer.cameraState().lat") > lat0
    # find a building by id: it is selected and the camera flies to it
    bid, (_, lon, lat, ground, top) = next(iter(_index(site).items()))
    browser.execute_script("document.querySelectorAll('#panel details').forEach(d => d.open = true)")
    box = browser.find_element("id", "find-id")
    box.send_keys(bid + Keys.ENTER)
    t0 = time.monotonic()
    while browser.execute_script("return window.citymodelViewer.layers.selected") != bid:
        assert time.monotonic() - t0 < 30
        time.sleep(0.3)
    time.sleep(1.5)  # the flight
    cam = browser.execute_script("return window.citymodelViewer.cameraState()")
    assert abs(cam["lon"] - lon) < 0.01 and abs(cam["lat"] - lat) < 0.01
    # measuring: two points 100 m apart eastwards and 10 m up (geodesic distance from the
    # ellipsoid, independent of the viewer)
    m = browser.execute_async_script(
        "const done = arguments[arguments.length - 1], C = window.citymodelViewer.Cesium;"
        "import('./js/measure.js').then((mod) => {"
        "  const a = C.Cartesian3.fromDegrees(11.5900, 50.9270, 200.0);"
        "  const b = C.Cartesian3.fromDegrees(11.5910, 50.9270, 210.0);"
        "  done([mod.measurement(a, b)]); });")
    from pyproj import Geod

    _, _, d = Geod(ellps="WGS84").inv(11.5900, 50.9270, 11.5910, 50.9270)
    assert m[0]["horizontal_m"] == pytest.approx(d, abs=0.01)
    assert m[0]["vertical_m"] == pytest.approx(10.0, abs=1e-6)
    assert m[0]["straight_m"] == pytest.approx((d ** 2 + 100.0) ** 0.5, abs=0.05)
