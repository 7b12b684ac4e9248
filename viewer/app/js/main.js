// The viewer of one release: reads config.json (written by the release builder), builds the Cesium
// scene without anything from the internet (no Cesium ion, no online base map unless the deployment
// names one), and wires the modules: layers, picking, measure, sun, variants, sketch, URL state,
// help and keyboard. Rendering is on request (requestRenderMode): software WebGL stays usable.
//
// window.citymodelViewer is the running app (used by the project's browser tests and benchmarks).

import * as Cesium from "../cesium/index.js";
import { applyTexts, language, onLanguageChange, pick, setLanguage, t } from "./i18n.js";
import { Layers, Legend } from "./layers.js";
import { Measure } from "./measure.js";
import { Picking } from "./picking.js";
import { Sketch } from "./sketch.js";
import { readState, UrlState } from "./state.js";
import { sampleHeight } from "./terrain.js";
import { Sun } from "./sun.js";
import { Variants } from "./variants.js";

const $ = (id) => document.getElementById(id);

/** True where WebGL runs on the CPU (no GPU): the viewer then spares frames. */
export function softwareRendering(scene) {
  try {
    const gl = scene.context._gl;
    const ext = gl.getExtension("WEBGL_debug_renderer_info");
    const name = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return /swiftshader|llvmpipe|software/i.test(String(name));
  } catch (err) {
    return false;
  }
}

export function createViewer(container) {
  const viewer = new Cesium.Viewer(container, {
    baseLayer: false, baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, animation: false, timeline: false, fullscreenButton: false, infoBox: false,
    selectionIndicator: false, scene3DOnly: true, requestRenderMode: true,
    maximumRenderTimeChange: Number.POSITIVE_INFINITY, shadows: false,
    terrainShadows: Cesium.ShadowMode.RECEIVE_ONLY,
  });
  const scene = viewer.scene;
  scene.globe.baseColor = Cesium.Color.fromCssColorString("#dcdfd5");
  scene.globe.showGroundAtmosphere = false;
  scene.globe.tileCacheSize = 200;
  scene.globe.maximumScreenSpaceError = 4; // a smooth DTM: fewer terrain tiles, same look
  scene.screenSpaceCameraController.enableCollisionDetection = true;
  if (softwareRendering(scene)) {
    // no GPU (SwiftShader, llvmpipe): no multisampling, and more terrain tiles processed per (slow) frame
    scene.msaaSamples = 1;
    const surface = scene.globe._surface;
    if (surface && "_loadQueueTimeSlice" in surface) surface._loadQueueTimeSlice = 100;
  }
  viewer.screenSpaceEventHandler.removeInputAction(Cesium.ScreenSpaceEventType.LEFT_DOUBLE_CLICK);
  viewer.screenSpaceEventHandler.removeInputAction(Cesium.ScreenSpaceEventType.LEFT_CLICK);
  return viewer;
}

class App {
  constructor(config, base) {
    this.config = config;
    this.base = base; // URL of the release folder
    this.viewer = createViewer($("view"));
    this.sideViewer = null;
    this.tool = null;
    this.url = new UrlState();
    this.legend = new Legend(this, $("legend"));
    this.layers = new Layers(this);
    this.variants = null;
  }

  stateChanged() {
    this.url.changed();
  }

  tilesetUrl(name) {
    return this.config.tilesets.find((ts) => ts.name === name)?.url;
  }

  allTilesets() {
    const out = { ...this.layers.tilesets };
    if (this.variants?.current?.tileset) out.variant = this.variants.current.tileset;
    if (this.variants?.swipeBase) out.buildings_right = this.variants.swipeBase;
    return out;
  }

  extraViewers() {
    return this.sideViewer ? [this.sideViewer] : [];
  }

  setTool(tool) {
    if (this.tool && this.tool !== tool && this.tool.cancel) this.tool.cancel();
    this.tool = tool;
    this.viewer.container.style.cursor = tool ? "crosshair" : "";
  }

  async init() {
    const state = readState();
    if (state.lang) setLanguage(state.lang);
    document.title = `${pick(this.config.title)} – ${t("app.title")}`;
    $("title").textContent = pick(this.config.title) || t("app.title");
    this.limitGlobe(this.viewer);
    this.setCamera(state.camera || this.config.home, false);
    await this.layers.init(state);
    this.picking = new Picking(this, $("info"));
    this.measure = new Measure(this, $("measure-output"));
    this.sun = new Sun(this, {
      date: $("sun-date"), time: $("sun-time"), timeLabel: $("sun-time-label"), shadows: $("sun-shadows"),
      presets: document.querySelectorAll(".presets button"),
    });
    this.sun.init(state);
    this.variants = new Variants(this, {
      select: $("variant-select"), mode: $("variant-mode"), details: $("variant-details"), swipe: $("swipe"),
      empty: $("variants-empty"),
    });
    this.sketch = new Sketch(this, {
      panel: $("sketch"), draw: $("sketch-draw"), close: $("sketch-close"), storeys: $("sketch-storeys"),
      eave: $("sketch-eave"), ridge: $("sketch-ridge"), roof: $("sketch-roof"), ridgeDir: $("sketch-ridge-dir"),
      remove: $("sketch-remove"), list: $("sketch-list"), variantTitle: $("sketch-title"), variantId: $("sketch-id"),
      description: $("sketch-description"), save: $("sketch-save"), clear: $("sketch-clear"), status: $("sketch-status"),
    });
    await this.variants.init(state);
    for (const name of state.ground || []) if (name.startsWith("variant:")) await this.layers.setOverlay(name, true);
    if (state.select) this.layers.setSelected(state.select);
    this.url.provide((s) => this.provideCamera(s));
    this.url.provide((s) => this.layers.provideState(s));
    this.url.provide((s) => this.sun.provideState(s));
    this.url.provide((s) => this.variants.provideState(s));
    this.url.provide((s) => { s.lang = language(); });
    this.buildPanel();
    if (window.innerWidth < 760) $("panel").classList.add("collapsed"); // phones and small tablets: the view first
    this.bindInput();
    applyTexts();
    onLanguageChange(() => {
      this.buildPanel();
      this.picking.render();
      this.legend.render();
      this.variants.renderList();
      if (this.variants.current) this.variants.renderDetails();
      this.sketch.renderList();
      this.sun.apply();
      this.stateChanged();
    });
    this.legend.render();
    this.viewer.camera.moveEnd.addEventListener(() => this.stateChanged());
    this.url.enabled = true;
    this.stateChanged();
    this.startStatusLine();
    $("loading").hidden = true;
    this.viewer.scene.requestRender();
  }

  /** Only the city and a margin around it are drawn and loaded (terrain tiles beyond it cost frames). */
  limitGlobe(viewer) {
    const e = this.config.extent_deg;
    if (!e) return;
    const margin = this.config.globe_margin_deg ?? 0.01;
    viewer.scene.globe.cartographicLimitRectangle = Cesium.Rectangle.fromDegrees(e[0] - margin, e[1] - margin,
      e[2] + margin, e[3] + margin);
  }

  // ------------------------------------------------------------------ camera
  setCamera(c, fly = true) {
    if (!c) return;
    const options = {
      destination: Cesium.Cartesian3.fromDegrees(c.lon, c.lat, c.height ?? c.height_m),
      orientation: { heading: Cesium.Math.toRadians(c.heading ?? c.heading_deg ?? 0),
        pitch: Cesium.Math.toRadians(c.pitch ?? c.pitch_deg ?? -35), roll: 0 },
    };
    if (fly) this.viewer.camera.flyTo({ ...options, duration: 0.8 });
    else this.viewer.camera.setView(options);
    this.viewer.scene.requestRender();
  }

  /** Render for a while: entity geometry is built asynchronously and shows only in later frames
   * (the scene renders on request). */
  renderBurst(ms = 3000) {
    const end = performance.now() + ms;
    const tick = () => {
      this.viewer.scene.requestRender();
      for (const v of this.extraViewers()) v.scene.requestRender();
      if (performance.now() < end) setTimeout(tick, 100);
    };
    tick();
  }

  /** Ground height (m, ellipsoidal) at lon/lat from the terrain's heightmap (0 without terrain). */
  groundHeight(lon, lat) {
    return this.layers.heightmap ? sampleHeight(this.layers.heightmap, lon, lat) : 0;
  }

  cameraState() {
    const cam = this.viewer.camera;
    const c = cam.positionCartographic;
    return { lon: Cesium.Math.toDegrees(c.longitude), lat: Cesium.Math.toDegrees(c.latitude), height: c.height,
      heading: Cesium.Math.toDegrees(cam.heading), pitch: Cesium.Math.toDegrees(cam.pitch) };
  }

  provideCamera(state) {
    state.camera = this.cameraState();
  }

  // ------------------------------------------------------------------ the panel
  buildPanel() {
    const cfg = this.config;
    const layers = this.layers;
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    const rows = [];
    for (const ts of cfg.tilesets) {
      if (ts.kind === "analysis" || !layers.tilesets[ts.name]) continue;
      const on = ts.kind === "buildings" ? layers.tilesets[ts.name].show || layers.colouringTilesetShown() : layers.tilesets[ts.name].show;
      rows.push(`<label><input type="checkbox" data-layer="${esc(ts.name)}" ${on ? "checked" : ""}> ${esc(pick(ts.title))}</label>`);
    }
    if (layers.terrainProvider) rows.push(`<label><input type="checkbox" data-layer="terrain" ${layers.terrainOn ? "checked" : ""}> ${esc(t("layer.terrain"))}</label>`);
    if (layers.basemap) rows.push(`<label><input type="checkbox" data-layer="basemap" ${layers.basemap.show ? "checked" : ""}> ${esc(pick(cfg.base_map.title) || t("layer.basemap"))}</label>`);
    $("layer-list").innerHTML = rows.join("");
    for (const box of $("layer-list").querySelectorAll("input")) {
      box.addEventListener("change", () => {
        const name = box.dataset.layer;
        if (name === "terrain") layers.setTerrain(box.checked);
        else if (name === "basemap") layers.setBaseMap(box.checked);
        else if (name === "buildings") {
          layers.setTilesetShown(layers.buildingTilesetName(), box.checked);
        } else layers.setTilesetShown(name, box.checked);
      });
    }
    const sel = $("colouring");
    sel.innerHTML = [`<option value="none">${esc(t("colour.none"))}</option>`]
      .concat(layers.colourings().map((c) => `<option value="${esc(c.name)}">${esc(pick(c.title))}</option>`)).join("");
    sel.value = layers.colouring ? layers.colouring.name : "none";
    sel.onchange = () => layers.setColouring(sel.value);
    const g = [];
    for (const ov of layers.overlays) {
      const on = layers.groundShown.includes(ov.name);
      g.push(`<label><input type="checkbox" data-overlay="${esc(ov.name)}" ${on ? "checked" : ""}> ${esc(pick(ov.title))}${ov.unit ? ` (${esc(ov.unit)})` : ""}</label>`);
    }
    $("ground-list").innerHTML = g.join("") || `<p class="hint">${esc(t("ground.none"))}</p>`;
    for (const box of $("ground-list").querySelectorAll("input")) {
      box.addEventListener("change", () => layers.setOverlay(box.dataset.overlay, box.checked));
    }
  }

  // ------------------------------------------------------------------ input: mouse, touch, keyboard
  bindInput() {
    const handler = this.viewer.screenSpaceEventHandler;
    handler.setInputAction((e) => {
      if (this.tool && this.tool.click(e.position)) return;
      this.picking.pickAt(e.position.x, e.position.y);
    }, Cesium.ScreenSpaceEventType.LEFT_CLICK);
    handler.setInputAction(() => {
      if (this.tool && this.tool.doubleClick) this.tool.doubleClick();
    }, Cesium.ScreenSpaceEventType.LEFT_DOUBLE_CLICK);
    $("toggle-panel").addEventListener("click", () => $("panel").classList.toggle("collapsed"));
    $("btn-home").addEventListener("click", () => this.setCamera(this.config.home));
    $("btn-lang").addEventListener("click", () => setLanguage(language() === "de" ? "en" : "de"));
    $("btn-help").addEventListener("click", () => this.help(true));
    $("help-close").addEventListener("click", () => this.help(false));
    $("help").addEventListener("click", (e) => { if (e.target.id === "help") this.help(false); });
    $("btn-link").addEventListener("click", async () => {
      const link = this.url.link();
      try {
        await navigator.clipboard.writeText(link);
        this.flash(t("tools.linkCopied"));
      } catch (err) {
        window.prompt(t("tools.link"), link);
      }
    });
    $("btn-measure").addEventListener("click", () => this.measure.start("distance"));
    $("btn-height").addEventListener("click", () => this.measure.start("height"));
    $("btn-sketch").addEventListener("click", () => this.sketch.open());
    $("sketch-x").addEventListener("click", () => { this.sketch.cancel(); $("sketch").hidden = true; });
    $("find-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const ok = await this.picking.find($("find-id").value);
      if (!ok) this.flash(t("tools.notFound"));
    });
    document.addEventListener("keydown", (e) => this.key(e));
  }

  help(show) {
    $("help").hidden = !show;
    if (show) $("help-close").focus();
  }

  key(e) {
    const tag = (e.target.tagName || "").toLowerCase();
    if (["input", "select", "textarea"].includes(tag) && e.key !== "Escape") return;
    if (e.key === "Escape") {
      if (!$("help").hidden) this.help(false);
      else if (this.tool) { this.tool.cancel(); this.setTool(null); }
      return;
    }
    if (this.tool && this.tool.key && this.tool.key(e)) return;
    const cam = this.viewer.camera;
    const height = Math.max(cam.positionCartographic.height - (this.config.home?.ground_m ?? 0), 20);
    const step = height * 0.08;
    const ellipsoid = this.viewer.scene.globe.ellipsoid;
    const up = ellipsoid.geodeticSurfaceNormal(cam.positionWC, new Cesium.Cartesian3());
    const horiz = (v) => {
      const d = Cesium.Cartesian3.subtract(v, Cesium.Cartesian3.multiplyByScalar(up, Cesium.Cartesian3.dot(v, up), new Cesium.Cartesian3()), new Cesium.Cartesian3());
      const n = Cesium.Cartesian3.magnitude(d);
      return n < 1e-6 ? null : Cesium.Cartesian3.divideByScalar(d, n, d);
    };
    const fwd = horiz(cam.directionWC) || horiz(cam.upWC);
    const right = horiz(cam.rightWC) || cam.rightWC;
    const orient = (dh, dp) => cam.setView({ orientation: { heading: cam.heading + dh, pitch: Cesium.Math.clamp(cam.pitch + dp, -Cesium.Math.PI_OVER_TWO, 0), roll: 0 } });
    const k = e.key;
    let used = true;
    if (k === "ArrowUp") cam.move(fwd, step);
    else if (k === "ArrowDown") cam.move(fwd, -step);
    else if (k === "ArrowLeft") cam.move(right, -step);
    else if (k === "ArrowRight") cam.move(right, step);
    else if (k === "+" || k === "=") cam.zoomIn(step * 2);
    else if (k === "-" || k === "_") cam.zoomOut(step * 2);
    else if (k === "q" || k === "Q") orient(-Cesium.Math.toRadians(10), 0);
    else if (k === "e" || k === "E") orient(Cesium.Math.toRadians(10), 0);
    else if (k === "r" || k === "R") orient(0, Cesium.Math.toRadians(5));
    else if (k === "f" || k === "F") orient(0, -Cesium.Math.toRadians(5));
    else if (k === "h" || k === "H") this.setCamera(this.config.home);
    else if (k === "m" || k === "M") this.measure.start("distance");
    else if (k === "s" || k === "S") this.sketch.open();
    else if (k === "?") this.help(true);
    else used = false;
    if (used) {
      e.preventDefault();
      this.viewer.scene.requestRender();
      this.stateChanged();
    }
  }

  flash(text) {
    const el = $("status");
    el.textContent = text;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => this.updateStatusLine(), 4000);
  }

  startStatusLine() {
    setInterval(() => this.updateStatusLine(), 1000);
  }

  updateStatusLine() {
    const s = this.loadStatus();
    const failed = Object.values(s.tilesets).reduce((n, r) => n + r.failed.length, 0);
    const loading = Object.values(s.tilesets).filter((r) => r.shown && !r.allTilesLoaded).length + (s.globeLoaded ? 0 : 1);
    $("status").textContent = failed ? `${t("app.error")}: ${failed}` : loading ? t("app.loading") : "";
  }

  // ------------------------------------------------------------------ side by side
  async openSideViewer() {
    if (this.sideViewer) return { viewer: this.sideViewer };
    const el = $("side-view");
    el.hidden = false;
    $("side-labels").hidden = false;
    const v = createViewer(el);
    this.limitGlobe(v);
    v.scene.screenSpaceCameraController.enableInputs = false;
    if (this.layers.terrainOn) v.scene.terrainProvider = this.layers.terrainProvider;
    v.scene.globe.depthTestAgainstTerrain = this.layers.terrainOn;
    v.clock.currentTime = this.viewer.clock.currentTime;
    v.shadows = this.viewer.shadows;
    this.sideViewer = v;
    const sync = () => {
      const src = this.viewer.camera;
      v.camera.setView({ destination: src.positionWC, orientation: { direction: src.directionWC, up: src.upWC } });
      v.scene.requestRender();
    };
    this.removeSync = this.viewer.camera.changed.addEventListener(sync);
    this.viewer.camera.percentageChanged = 0.001;
    sync();
    return { viewer: v };
  }

  closeSideViewer() {
    if (!this.sideViewer) return;
    if (this.removeSync) this.removeSync();
    this.sideViewer.destroy();
    this.sideViewer = null;
    $("side-view").hidden = true;
    $("side-view").innerHTML = "";
    $("side-labels").hidden = true;
  }

  // ------------------------------------------------------------------ for tests and benchmarks
  /** Load state of every tileset, the terrain and the overlays. */
  loadStatus() {
    const tilesets = {};
    const live = { ...this.allTilesets() };
    if (this.variants?.side) Object.assign(live, { buildings_right: this.variants.side.tilesets.buildings, variant: this.variants.side.tilesets.variant });
    for (const [name, rec] of Object.entries({ ...this.layers.status, ...(this.variants?.status || {}) })) {
      const ts = live[name];
      tilesets[name] = { failed: rec.failed.slice(), allTilesLoaded: Boolean(rec.allTilesLoaded),
        loadedTiles: rec.loadedTiles || 0, shown: ts ? Boolean(ts.show) : name === "terrain" ? this.layers.terrainOn : false };
    }
    const globes = [this.viewer, ...this.extraViewers()].map((v) => v.scene.globe.tilesLoaded);
    return { tilesets, globeLoaded: globes.every(Boolean) };
  }
}

async function main() {
  if (window.location.protocol === "file:") {
    $("loading").innerHTML = "Der 3D-Viewer braucht einen Webserver: im Ausgabeordner <code>citymodel serve</code> oder "
      + "<code>python -m http.server</code> starten und die Adresse im Browser öffnen.<br>"
      + "The 3D viewer needs a web server: run <code>citymodel serve</code> or <code>python -m http.server</code> "
      + "in the output folder and open the address in a browser.";
    return;
  }
  const base = new URL("../", window.location.href);
  let config;
  try {
    const res = await fetch("config.json");
    if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
    config = await res.json();
  } catch (err) {
    $("loading").textContent = `${t("app.error")}: ${err.message}`;
    throw err;
  }
  const app = new App(config, base);
  app.Cesium = Cesium; // for scripted checks (tests, benchmarks)
  window.citymodelViewer = app;
  try {
    await app.init();
    app.ready = true;
  } catch (err) {
    app.error = String(err && err.stack ? err.stack : err);
    $("loading").textContent = `${t("app.error")}: ${err.message || err}`;
    throw err;
  }
}

main();
