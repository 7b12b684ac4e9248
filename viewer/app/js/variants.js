// Planning variants, as the variant pipeline publishes them beside the releases (variants/index.json,
// variants/<id>/<version>/variant.json, tiles/buildings, overlays, comparison/index.html):
// list them, switch between them, and compare one with the current city
//   - "overlay": the variant in place: the base buildings it replaces are hidden, its new buildings are
//     highlighted, removed ones shown as ghosts, affected ones coloured by the chosen value;
//   - "swipe": a vertical line; left of it today's city, right of it the variant;
//   - "side": two synchronised views side by side.
// The difference layers of the variant are ground overlays like the release's.

import * as Cesium from "../cesium/index.js";
import { composeStyle, legendHtml, loadTileset, trackTileset } from "./layers.js";
import { language, pick, t } from "./i18n.js";

const STATUS_COLOURS = {
  added: "#ff7f00",
  modified: "#ffb300",
  removed: "#ffffff",
  affected: "#8fc1e3",
};

/** The output folder (where releases/ and variants/ are) seen from the release folder's URL. */
export function outputRoot(releaseBase) {
  const base = new URL(releaseBase);
  if (/\/releases\/[^/]+\/$/.test(base.pathname)) return new URL("../../", base);
  return new URL("../", base);
}

export function variantConditions(colouring) {
  const conds = [
    ["${variant_status} === 'removed'", `color('${STATUS_COLOURS.removed}', 0.35)`],
    ["${variant_status} === 'added'", `color('${STATUS_COLOURS.added}')`],
    ["${variant_status} === 'modified'", `color('${STATUS_COLOURS.modified}')`],
  ];
  if (!colouring || !colouring.style) conds.push(["${variant_status} === 'affected'", `color('${STATUS_COLOURS.affected}')`]);
  return conds;
}

export class Variants {
  constructor(app, elements) {
    this.app = app;
    this.el = elements; // {select, mode, versions, comparison, overlays, swipe, side}
    this.entries = [];
    this.current = null; // {entry, doc, base (URL of the version folder), tileset, overlays}
    this.mode = "overlay";
    this.split = 0.5;
    this.status = {};
    this.swipeBase = null; // a second base tileset (right side of the swipe line)
    this.side = null; // {viewer, tilesets}
  }

  async init(state) {
    const root = outputRoot(this.app.base);
    this.root = root;
    const url = new URL(this.app.config.variants_index || "variants/index.json", root).href;
    try {
      const index = await Cesium.Resource.fetchJson({ url });
      this.entries = (index.variants || []).slice().sort((a, b) => (b.current === true) - (a.current === true)
        || String(a.title).localeCompare(String(b.title)) || b.version - a.version);
    } catch (err) {
      this.entries = []; // no variants published (or a release downloaded on its own)
    }
    this.renderList();
    this.el.select.addEventListener("change", () => {
      const v = this.el.select.value;
      if (!v) this.setVariant(null);
      else {
        const [id, version] = v.split("@");
        this.setVariant(id, Number(version));
      }
    });
    this.el.mode.addEventListener("change", () => this.setMode(this.el.mode.value));
    if (state.mode) this.mode = state.mode;
    if (state.split) this.split = state.split;
    this.el.mode.value = this.mode;
    this.initSwipeHandle();
    if (state.variant) await this.setVariant(state.variant.id, state.variant.version, { fly: !state.camera });
  }

  renderList() {
    const opts = [`<option value="">${t("variants.current")}</option>`];
    for (const e of this.entries) {
      const label = `${pick(e.title)} (${t("variants.version")} ${e.version}${e.current ? "" : ", alt"})`;
      opts.push(`<option value="${e.id}@${e.version}">${label.replace(/</g, "&lt;")}</option>`);
    }
    const selected = this.el.select.value;
    this.el.select.innerHTML = opts.join("");
    this.el.select.value = selected;
    this.el.empty.hidden = this.entries.length > 0;
  }

  entry(id, version) {
    const all = this.entries.filter((e) => e.id === id);
    if (version) return all.find((e) => e.version === version) || null;
    return all.find((e) => e.current) || all[0] || null;
  }

  async setVariant(id, version, { fly = true } = {}) {
    this.clear();
    if (!id) {
      this.el.select.value = "";
      this.app.stateChanged();
      return null;
    }
    const entry = this.entry(id, version);
    if (!entry) return null;
    const base = new URL(entry.path.endsWith("/") ? entry.path : entry.path + "/", new URL("variants/", this.root));
    const doc = await Cesium.Resource.fetchJson({ url: new URL("variant.json", base).href });
    const current = { entry, doc, base, tileset: null, overlays: [] };
    this.current = current;
    this.el.select.value = `${entry.id}@${entry.version}`;
    const tsUrl = new URL(doc.tileset || "tiles/buildings/tileset.json", base).href;
    current.tilesetUrl = tsUrl;
    try {
      current.tileset = await loadTileset(tsUrl);
      current.tileset.colorBlendMode = Cesium.Cesium3DTileColorBlendMode.REPLACE;
      trackTileset("variant", current.tileset, this.status);
      this.app.viewer.scene.primitives.add(current.tileset);
    } catch (err) {
      this.status.variant = { name: "variant", failed: [{ url: tsUrl, message: String(err) }] };
    }
    current.overlays = [];
    if (doc.overlays !== null) { // null: the variant has no difference layers
      const ovBase = new URL(doc.overlays || "overlays/index.json", base).href;
      try {
        const ov = await Cesium.Resource.fetchJson({ url: ovBase });
        current.overlays = (ov.overlays || []).map((o) => ({ ...o, name: `variant:${o.name}`, _base: ovBase }));
      } catch (err) {
        current.overlays = [];
      }
    }
    this.renderDetails();
    await this.applyMode();
    if (fly && doc.camera) {
      // the variant's first view: height_m above the ground at the change, looking north 40 degrees down
      const c = doc.camera;
      const h = c.height_m || 300;
      const back = h / Math.tan(Cesium.Math.toRadians(40));
      const lat = c.lat - back / 111320;
      this.app.viewer.camera.flyTo({
        destination: Cesium.Cartesian3.fromDegrees(c.lon, lat, this.app.groundHeight(c.lon, c.lat) + h),
        orientation: { heading: 0, pitch: Cesium.Math.toRadians(-40) }, duration: 0.8,
      });
    }
    this.app.legend.render();
    this.app.stateChanged();
    return current;
  }

  clear() {
    const cur = this.current;
    if (!cur) return;
    for (const ov of cur.overlays) this.app.layers.setOverlay(ov.name, false);
    if (cur.tileset) this.app.viewer.scene.primitives.remove(cur.tileset);
    delete this.status.variant;
    this.current = null;
    this.teardownSwipe();
    this.teardownSide();
    this.app.layers.setHidden([]);
    this.el.details.innerHTML = "";
    this.app.legend.render();
  }

  replacedIds() {
    const d = this.current?.doc;
    if (!d) return [];
    const ids = d.replaced_ids || [...(d.removed_ids || []), ...(d.modified_ids || [])];
    return ids.map(String);
  }

  overlayByName(name) {
    return this.current?.overlays.find((o) => o.name === name) || null;
  }

  renderDetails() {
    const cur = this.current;
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    const parts = [];
    if (cur.doc.description || cur.entry.description) parts.push(`<p>${esc(pick(cur.doc.description || cur.entry.description))}</p>`);
    const items = Array.isArray(cur.doc.summary) ? cur.doc.summary : [];
    if (items.length) {
      const lang = language();
      parts.push(`<ul class="summary">${items.slice(0, 6).map((it) => `<li>${esc(lang === "en" ? it.text_en || it.text_de : it.text_de || it.text_en)}</li>`).join("")}</ul>`);
    }
    const comparison = cur.doc.comparison || "comparison/index.html";
    parts.push(`<p><a id="variant-comparison" href="${esc(new URL(comparison, cur.base).href)}" target="_blank" rel="noopener">${t("variants.comparison")}</a></p>`);
    if (cur.overlays.length) {
      parts.push(`<h4>${t("variants.diff")}</h4>`);
      for (const ov of cur.overlays) {
        parts.push(`<label><input type="checkbox" data-overlay="${esc(ov.name)}"> ${esc(pick(ov.title))}${ov.unit ? ` (${esc(ov.unit)})` : ""}</label>`);
      }
    }
    this.el.details.innerHTML = parts.join("");
    for (const box of this.el.details.querySelectorAll("input[data-overlay]")) {
      box.addEventListener("change", () => this.app.layers.setOverlay(box.dataset.overlay, box.checked));
    }
  }

  legendHtml() {
    const items = ["added", "modified", "removed"].map((k) => ({ color: STATUS_COLOURS[k], label: t(`variants.${k}`) }));
    if (!this.app.layers.colouring || !this.app.layers.colouring.style) items.push({ color: STATUS_COLOURS.affected, label: t("variants.affected") });
    return legendHtml(pick(this.current.entry.title), { kind: "classes", items });
  }

  // ------------------------------------------------------------------ modes
  async setMode(mode) {
    this.mode = ["overlay", "swipe", "side"].includes(mode) ? mode : "overlay";
    this.el.mode.value = this.mode;
    await this.applyMode();
    this.app.stateChanged();
  }

  async applyMode() {
    this.teardownSwipe();
    this.teardownSide();
    const cur = this.current;
    const base = this.app.layers.tilesets.buildings;
    if (!cur) return;
    if (this.mode === "overlay") {
      if (cur.tileset) cur.tileset.splitDirection = Cesium.SplitDirection.NONE;
      this.app.layers.setHidden(this.replacedIds());
    } else if (this.mode === "swipe") {
      // left: today's city as it is; right: the base without the replaced buildings, plus the variant
      this.app.layers.setHidden([]);
      if (base) base.splitDirection = Cesium.SplitDirection.LEFT;
      this.swipeBase = await loadTileset(new URL(this.app.tilesetUrl("buildings"), this.app.base).href);
      trackTileset("buildings_right", this.swipeBase, this.status);
      this.swipeBase.splitDirection = Cesium.SplitDirection.RIGHT;
      this.app.viewer.scene.primitives.add(this.swipeBase);
      if (cur.tileset) cur.tileset.splitDirection = Cesium.SplitDirection.RIGHT;
      this.app.viewer.scene.splitPosition = this.split;
      this.el.swipe.hidden = false;
      this.placeSwipeHandle();
    } else if (this.mode === "side") {
      this.app.layers.setHidden([]);
      if (cur.tileset) this.app.viewer.scene.primitives.remove(cur.tileset);
      cur.tileset = null;
      this.side = await this.app.openSideViewer();
      const v = this.side.viewer;
      const bUrl = new URL(this.app.tilesetUrl("buildings"), this.app.base).href;
      const right = await loadTileset(bUrl);
      trackTileset("buildings_right", right, this.status);
      v.scene.primitives.add(right);
      const variant = await loadTileset(cur.tilesetUrl);
      variant.colorBlendMode = Cesium.Cesium3DTileColorBlendMode.REPLACE;
      trackTileset("variant", variant, this.status);
      v.scene.primitives.add(variant);
      this.side.tilesets = { buildings: right, variant };
      for (const name of ["trees"]) {
        const ts = this.app.layers.tilesets[name];
        if (ts && ts.show) v.scene.primitives.add(await loadTileset(new URL(this.app.tilesetUrl(name), this.app.base).href));
      }
    }
    this.restyle();
  }

  teardownSwipe() {
    const base = this.app.layers.tilesets.buildings;
    if (base) base.splitDirection = Cesium.SplitDirection.NONE;
    if (this.swipeBase) this.app.viewer.scene.primitives.remove(this.swipeBase);
    this.swipeBase = null;
    delete this.status.buildings_right;
    if (this.el.swipe) this.el.swipe.hidden = true;
  }

  teardownSide() {
    if (!this.side) return;
    this.app.closeSideViewer();
    this.side = null;
    delete this.status.buildings_right;
    if (this.current && !this.current.tileset) {
      // back to one view: the variant tileset returns to the main scene
      loadTileset(this.current.tilesetUrl).then((ts) => {
        if (!this.current) return;
        ts.colorBlendMode = Cesium.Cesium3DTileColorBlendMode.REPLACE;
        trackTileset("variant", ts, this.status);
        this.current.tileset = ts;
        this.app.viewer.scene.primitives.add(ts);
        this.restyle();
      });
    }
  }

  /** Styles of the variant's tilesets (called by the layers after every change of colouring or selection). */
  restyle() {
    const cur = this.current;
    if (!cur) return;
    const layers = this.app.layers;
    const colouring = layers.colouring && layers.colouring.style ? layers.colouring : null;
    const vstyle = () => composeStyle(colouring, { select: layers.selected, extra: variantConditions(colouring) });
    const hidden = this.replacedIds();
    if (cur.tileset) cur.tileset.style = vstyle();
    if (this.swipeBase) {
      this.swipeBase.colorBlendMode = layers.tilesets.buildings?.colorBlendMode ?? Cesium.Cesium3DTileColorBlendMode.HIGHLIGHT;
      this.swipeBase.style = composeStyle(colouring, { hide: hidden, select: layers.selected });
    }
    if (this.side) {
      const b = this.side.tilesets.buildings;
      b.colorBlendMode = layers.tilesets.buildings?.colorBlendMode ?? Cesium.Cesium3DTileColorBlendMode.HIGHLIGHT;
      b.style = composeStyle(colouring, { hide: hidden, select: layers.selected });
      this.side.tilesets.variant.style = vstyle();
      this.side.viewer.scene.requestRender();
    }
    this.app.viewer.scene.requestRender();
  }

  // ------------------------------------------------------------------ the swipe line
  initSwipeHandle() {
    const handle = this.el.swipe;
    let dragging = false;
    const move = (clientX) => {
      const rect = this.app.viewer.container.getBoundingClientRect();
      this.split = Math.min(0.95, Math.max(0.05, (clientX - rect.left) / rect.width));
      this.app.viewer.scene.splitPosition = this.split;
      this.placeSwipeHandle();
      this.app.viewer.scene.requestRender();
      this.app.stateChanged();
    };
    handle.addEventListener("pointerdown", (e) => {
      dragging = true;
      handle.setPointerCapture(e.pointerId);
    });
    handle.addEventListener("pointermove", (e) => dragging && move(e.clientX));
    handle.addEventListener("pointerup", () => {
      dragging = false;
    });
    handle.addEventListener("keydown", (e) => {
      const rect = this.app.viewer.container.getBoundingClientRect();
      if (e.key === "ArrowLeft") move(rect.left + (this.split - 0.02) * rect.width);
      if (e.key === "ArrowRight") move(rect.left + (this.split + 0.02) * rect.width);
    });
  }

  placeSwipeHandle() {
    this.el.swipe.style.left = `${(this.split * 100).toFixed(2)}%`;
  }

  provideState(state) {
    if (!this.current) return;
    state.variant = { id: this.current.entry.id, version: this.current.entry.version };
    state.mode = this.mode;
    if (this.mode === "swipe") state.split = this.split;
    const shown = this.app.layers.groundShown;
    state.ground = shown;
  }
}
