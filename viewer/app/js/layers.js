// Layers: the release's 3D Tiles (buildings, trees, point cloud, the analysis tilesets), the terrain,
// the ground overlays draped on it and an optional base map. Buildings are coloured by declarative
// Cesium3DTileStyles that the release's config carries (written by the Python side from the same class
// breaks as the legends, so a value and its colour cannot disagree); this module only composes them
// with the selection and the variant's hidden buildings.

import * as Cesium from "../cesium/index.js";
import { pick, t, formatNumber } from "./i18n.js";
import { heightmapTerrainProvider, loadHeightmap } from "./terrain.js";

/** A literal for a style expression. */
export function styleString(value) {
  return "'" + String(value).replaceAll("\\", "\\\\").replaceAll("'", "\\'") + "'";
}

/** Tileset load bookkeeping, read by the tests and the status line: failed tiles are listed. */
export function trackTileset(name, tileset, registry) {
  const rec = { name, failed: [], allTilesLoaded: false, initialTilesLoaded: false, loadedTiles: 0 };
  tileset.tileFailed.addEventListener((e) => rec.failed.push({ url: String(e.url), message: String(e.message) }));
  tileset.allTilesLoaded.addEventListener(() => {
    rec.allTilesLoaded = true;
  });
  tileset.initialTilesLoaded.addEventListener(() => {
    rec.initialTilesLoaded = true;
  });
  tileset.tileLoad.addEventListener(() => {
    rec.loadedTiles += 1;
    rec.allTilesLoaded = false;
  });
  registry[name] = rec;
  return rec;
}

export async function loadTileset(url, options = {}) {
  return Cesium.Cesium3DTileset.fromUrl(url, {
    maximumScreenSpaceError: 16,
    shadows: Cesium.ShadowMode.ENABLED,
    ...options,
  });
}

/**
 * Compose a building style: the selected building, extra conditions (variant status), then the
 * colouring's conditions (or white, which leaves the vertex colours as they are); `hide` lists ids
 * that are not shown (buildings a variant replaces).
 */
export function composeStyle(colouring, { hide = [], select = null, extra = [], show = null } = {}) {
  const conditions = [];
  if (select) conditions.push([`\${id} === ${styleString(select)}`, "color('#ffd400')"]);
  conditions.push(...extra);
  if (colouring && colouring.style && colouring.style.color) conditions.push(...colouring.style.color.conditions);
  conditions.push(["true", "color('#ffffff')"]);
  const style = { color: { conditions } };
  const shows = [];
  if (show) shows.push(`(${show})`);
  for (const id of hide) shows.push(`\${id} !== ${styleString(id)}`);
  if (shows.length) style.show = shows.join(" && ");
  return new Cesium.Cesium3DTileStyle(style);
}

export class Layers {
  constructor(app) {
    this.app = app;
    this.viewer = app.viewer;
    this.config = app.config;
    this.tilesets = {}; // name -> Cesium3DTileset
    this.status = {}; // name -> load record
    this.colouring = null;
    this.selected = null;
    this.hidden = []; // base building ids hidden by the variant
    this.overlays = []; // entries of overlays/index.json
    this.overlayLayers = {}; // name -> ImageryLayer or DataSource
    this.groundShown = [];
    this.terrain = null;
    this.basemap = null;
  }

  async init(state) {
    const cfg = this.config;
    const wanted = state.layers ? new Set(state.layers) : null;
    const shown = (name, dflt) => (wanted ? wanted.has(name) : dflt);
    // terrain first: the tilesets are absolute (ECEF), but picking and draping need it
    if (cfg.terrain) {
      try {
        this.heightmap = await loadHeightmap(new URL(cfg.terrain, this.app.base).href);
        this.terrainProvider = heightmapTerrainProvider(this.heightmap);
        this.status.terrain = { name: "terrain", failed: [], allTilesLoaded: true };
      } catch (err) {
        this.status.terrain = { name: "terrain", failed: [{ url: cfg.terrain, message: String(err) }] };
      }
    }
    this.setTerrain(shown("terrain", true));
    if (cfg.base_map) this.addBaseMap(cfg.base_map, shown("basemap", false));
    await Promise.all(
      cfg.tilesets.map(async (ts) => {
        const url = new URL(ts.url, this.app.base).href;
        try {
          const options = ts.kind === "pointcloud"
            ? { pointCloudShading: { attenuation: true, maximumAttenuation: 3 }, shadows: Cesium.ShadowMode.DISABLED }
            : {};
          const tileset = await loadTileset(url, options);
          trackTileset(ts.name, tileset, this.status);
          tileset.show = ts.kind === "analysis" ? false : shown(ts.name, ts.show !== false);
          this.viewer.scene.primitives.add(tileset);
          this.tilesets[ts.name] = tileset;
        } catch (err) {
          this.status[ts.name] = { name: ts.name, failed: [{ url, message: String(err) }], allTilesLoaded: false };
        }
      }),
    );
    if (cfg.overlays) await this.loadOverlays(new URL(cfg.overlays, this.app.base).href, state.ground || []);
    this.setColouring(state.colour || "none");
  }

  // ------------------------------------------------------------------ terrain and base map
  setTerrain(on) {
    const scene = this.viewer.scene;
    if (on && this.terrainProvider) scene.terrainProvider = this.terrainProvider;
    else scene.terrainProvider = new Cesium.EllipsoidTerrainProvider();
    this.terrainOn = Boolean(on && this.terrainProvider);
    scene.globe.depthTestAgainstTerrain = this.terrainOn;
    scene.requestRender();
    this.app.stateChanged();
  }

  addBaseMap(bm, show) {
    let provider;
    if (bm.type === "wmts") {
      provider = new Cesium.WebMapTileServiceImageryProvider({
        url: bm.url, layer: bm.layer, style: bm.style || "default", format: bm.format || "image/png",
        tileMatrixSetID: bm.tile_matrix_set, tilingScheme: new Cesium.WebMercatorTilingScheme(),
      });
    } else {
      provider = new Cesium.WebMapServiceImageryProvider({
        url: bm.url, layers: bm.layers, parameters: { format: bm.format || "image/png", transparent: false },
      });
    }
    this.basemap = this.viewer.imageryLayers.addImageryProvider(provider, 0);
    this.basemap.show = show;
  }

  setBaseMap(on) {
    if (!this.basemap) return;
    this.basemap.show = on;
    this.viewer.scene.requestRender();
    this.app.stateChanged();
  }

  setTilesetShown(name, on) {
    const ts = this.tilesets[name];
    if (!ts) return;
    ts.show = on;
    this.viewer.scene.requestRender();
    this.app.stateChanged();
  }

  // ------------------------------------------------------------------ colouring
  colourings() {
    return this.config.colourings || [];
  }

  colouringByName(name) {
    return this.colourings().find((c) => c.name === name) || null;
  }

  /** The tileset the buildings are shown with: "buildings", or an analysis tileset (solar roofs, sunny walls). */
  buildingTilesetName() {
    return this.colouring && this.colouring.tileset ? this.colouring.tileset : "buildings";
  }

  setColouring(name) {
    const c = this.colouringByName(name);
    this.colouring = c;
    const buildingsOn = this.tilesets.buildings ? this.tilesets.buildings.show || this.colouringTilesetShown() : true;
    for (const ts of this.config.tilesets) {
      if (ts.kind === "analysis" && this.tilesets[ts.name]) this.tilesets[ts.name].show = Boolean(c && c.tileset === ts.name);
    }
    if (this.tilesets.buildings) this.tilesets.buildings.show = buildingsOn && !(c && c.tileset);
    this.restyle();
    const sel = document.getElementById("colouring");
    if (sel) sel.value = c ? c.name : "none";
    this.app.legend.render();
    this.app.stateChanged();
  }

  colouringTilesetShown() {
    return this.config.tilesets.some((ts) => ts.kind === "analysis" && this.tilesets[ts.name] && this.tilesets[ts.name].show);
  }

  /** Apply colouring, selection and hidden ids to the building tilesets (the variant module adds its own). */
  restyle() {
    const c = this.colouring;
    for (const ts of this.config.tilesets) {
      if (ts.kind !== "buildings" && ts.kind !== "analysis") continue;
      const tileset = this.tilesets[ts.name];
      if (!tileset) continue;
      const byStyle = ts.kind === "buildings" && c && c.style;
      tileset.colorBlendMode = byStyle ? Cesium.Cesium3DTileColorBlendMode.REPLACE : Cesium.Cesium3DTileColorBlendMode.HIGHLIGHT;
      tileset.style = composeStyle(byStyle ? c : null, { hide: this.hidden, select: this.selected });
    }
    this.app.variants?.restyle();
    this.viewer.scene.requestRender();
  }

  setSelected(id) {
    this.selected = id;
    this.restyle();
    this.app.stateChanged();
  }

  setHidden(ids) {
    this.hidden = ids || [];
    this.restyle();
  }

  // ------------------------------------------------------------------ ground overlays
  async loadOverlays(url, wanted) {
    try {
      const index = await Cesium.Resource.fetchJson({ url });
      this.overlayBase = url;
      this.overlays = index.overlays || [];
    } catch (err) {
      this.overlays = [];
      this.status.overlays = { name: "overlays", failed: [{ url, message: String(err) }] };
      return;
    }
    for (const name of wanted) await this.setOverlay(name, true);
  }

  overlayByName(name) {
    return this.overlays.find((o) => o.name === name) || this.app.variants?.overlayByName(name) || null;
  }

  async setOverlay(name, on) {
    const ov = this.overlayByName(name);
    if (!ov) return;
    if (on && !this.overlayLayers[name]) {
      const base = ov._base || this.overlayBase;
      if (ov.image) {
        const provider = await Cesium.SingleTileImageryProvider.fromUrl(new URL(ov.image, base).href, {
          rectangle: Cesium.Rectangle.fromDegrees(...ov.rectangle_deg),
        });
        const layer = this.viewer.imageryLayers.addImageryProvider(provider);
        layer.alpha = 0.8;
        this.overlayLayers[name] = layer;
      } else if (ov.geojson) {
        const ds = await Cesium.GeoJsonDataSource.load(new URL(ov.geojson, base).href, {
          clampToGround: true, stroke: Cesium.Color.fromCssColorString(ov.stroke || "#202020"), strokeWidth: 2,
        });
        await this.viewer.dataSources.add(ds);
        this.overlayLayers[name] = ds;
      }
    }
    const layer = this.overlayLayers[name];
    if (layer) layer.show = on;
    this.groundShown = this.groundShown.filter((n) => n !== name);
    if (on) this.groundShown.push(name);
    for (const box of document.querySelectorAll(`input[data-overlay="${CSS.escape(name)}"]`)) box.checked = on;
    this.app.legend.render();
    this.viewer.scene.requestRender();
    this.app.stateChanged();
  }

  provideState(state) {
    const layers = [];
    for (const ts of this.config.tilesets) {
      const tileset = this.tilesets[ts.name];
      if (!tileset) continue;
      if (ts.kind === "analysis") continue;
      const on = ts.kind === "buildings" ? tileset.show || this.colouringTilesetShown() : tileset.show;
      if (on) layers.push(ts.name);
    }
    if (this.terrainOn) layers.push("terrain");
    if (this.basemap && this.basemap.show) layers.push("basemap");
    state.layers = layers;
    if (this.colouring) state.colour = this.colouring.name;
    state.ground = this.groundShown.slice();
    if (this.selected) state.select = this.selected;
  }
}

/** The legend box: the building colouring and every ground overlay shown. */
export class Legend {
  constructor(app, element) {
    this.app = app;
    this.el = element;
  }

  render() {
    const layers = this.app.layers;
    const parts = [];
    const c = layers.colouring;
    if (c && c.legend) parts.push(legendHtml(pick(c.title), c.legend));
    for (const name of layers.groundShown) {
      const ov = layers.overlayByName(name);
      if (ov) parts.push(legendHtml(pick(ov.title), { kind: ov.legend_kind || "classes", unit: ov.unit, items: ov.legend }));
    }
    const v = this.app.variants;
    if (v && v.current) parts.push(v.legendHtml());
    this.el.innerHTML = parts.join("");
    this.el.hidden = parts.length === 0;
  }
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
}

function itemLabel(item, unit) {
  if (item.label !== undefined) return pick(item.label);
  if (item.value !== undefined) return `${formatNumber(item.value)} ${unit || ""}`;
  const lo = item.from === null || item.from === undefined ? null : formatNumber(item.from);
  const hi = item.to === null || item.to === undefined ? null : formatNumber(item.to);
  if (lo === null) return `< ${hi} ${unit || ""}`;
  if (hi === null) return `≥ ${lo} ${unit || ""}`;
  return `${lo}–${hi} ${unit || ""}`;
}

export function legendHtml(title, legend) {
  const unit = legend.unit ? ` <span class="unit">[${esc(legend.unit)}]</span>` : "";
  let body = "";
  if (legend.kind === "ramp") {
    const stops = legend.items;
    const lo = stops[0].value;
    const hi = stops[stops.length - 1].value;
    const grad = stops.map((s) => `${s.color} ${(((s.value - lo) / (hi - lo)) * 100).toFixed(1)}%`).join(", ");
    body = `<div class="ramp" style="background: linear-gradient(to right, ${grad})"></div>
      <div class="ramp-labels">${stops.map((s) => `<span>${formatNumber(s.value)}</span>`).join("")}</div>`;
    if (legend.no_data) body += `<div class="item"><span class="swatch" style="background:${legend.no_data}"></span>${esc(t("info.noValue"))}</div>`;
  } else {
    body = (legend.items || [])
      .map((it) => `<div class="item"><span class="swatch" style="background:${esc(it.color)}"></span>${esc(itemLabel(it, legend.unit))}</div>`)
      .join("");
  }
  return `<section class="legend-part"><h4>${esc(title)}${unit}</h4>${body}</section>`;
}
