// Pick and read: a click on a building shows its attributes and analysis values (the metadata of the
// 3D Tiles feature, labelled and with units from the release config); a building can be found by its
// id (the release's building index gives its position) and is then selected and flown to.

import * as Cesium from "../cesium/index.js";
import { formatNumber, pick, t } from "./i18n.js";

const NO_DATA = new Set([-9999, 255, ""]);

/** The properties of a picked 3D Tiles feature as a plain object (metadata of 3D Tiles 1.1). */
export function featureProperties(feature) {
  const out = {};
  for (const id of feature.getPropertyIds()) {
    const v = feature.getProperty(id);
    out[id] = typeof v === "bigint" ? Number(v) : v;
  }
  return out;
}

function isNoData(v) {
  return v === undefined || v === null || (typeof v === "number" && (NO_DATA.has(v) || !Number.isFinite(v))) || v === "";
}

export class Picking {
  constructor(app, panel) {
    this.app = app;
    this.panel = panel;
    this.lastPick = null;
    this.index = null;
    this.render();
  }

  /** Pick at canvas pixel (x, y); returns {tileset, properties} or null, and shows it. */
  pickAt(x, y) {
    const scene = this.app.viewer.scene;
    const picked = scene.pick(new Cesium.Cartesian2(x, y));
    if (!(picked instanceof Cesium.Cesium3DTileFeature)) {
      this.show(null);
      return null;
    }
    const name = Object.entries(this.app.allTilesets()).find(([, ts]) => ts === picked.tileset)?.[0] || "";
    const properties = featureProperties(picked);
    const result = { tileset: name, properties };
    this.show(result);
    return result;
  }

  show(result) {
    this.lastPick = result;
    const id = result && result.properties.id !== undefined ? String(result.properties.id) : null;
    this.app.layers.setSelected(id);
    this.render();
  }

  render() {
    const p = this.lastPick;
    if (!p) {
      this.panel.innerHTML = `<p class="hint">${t("info.none")}</p>`;
      return;
    }
    const labels = this.app.config.attributes || [];
    const known = new Set(labels.map((a) => a.property));
    const rows = [];
    for (const a of labels) {
      if (!(a.property in p.properties)) continue;
      rows.push([pick(a.title), this.formatValue(p.properties[a.property], a)]);
    }
    const camel = (k) => k.replace(/_([a-z0-9])/g, (m, c) => c.toUpperCase());
    for (const [k, v] of Object.entries(p.properties)) {
      if (known.has(k) || isNoData(v)) continue;
      // a variant's differences: diff_<value> labelled like the value, with a sign
      const baseKey = k.startsWith("diff_") ? k.slice(5) : null;
      const base = baseKey && labels.find((a) => a.property === baseKey || a.property === camel(baseKey));
      if (base) {
        const text = this.formatValue(v, { ...base, values: undefined });
        rows.push([`Δ ${pick(base.title)}`, (typeof v === "number" && v > 0 ? "+" : "") + text]);
      } else rows.push([k, this.formatValue(v, {})]);
    }
    const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
    this.panel.innerHTML = `<table class="attributes">${rows
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
      .join("")}</table>`;
  }

  formatValue(v, a) {
    if (isNoData(v)) return t("info.noValue");
    if (a.values && a.values[String(v)]) return `${pick(a.values[String(v)])} (${v})`;
    if (typeof v === "number") {
      const digits = a.digits ?? (Number.isInteger(v) ? 0 : 1);
      return `${formatNumber(v, digits)}${a.unit ? " " + a.unit : ""}`;
    }
    return String(v);
  }

  async buildingIndex() {
    if (!this.index && this.app.config.building_index) {
      const url = new URL(this.app.config.building_index, this.app.base).href;
      const doc = await Cesium.Resource.fetchJson({ url });
      this.index = new Map(doc.buildings.map((b) => [String(b[0]), b]));
    }
    return this.index;
  }

  /** Find a building by id: select it and fly to it. Returns false when there is none. */
  async find(id) {
    const index = await this.buildingIndex();
    const b = index && index.get(String(id).trim());
    if (!b) return false;
    const [, lon, lat, groundH, topH] = b;
    const range = Math.max(60, (topH - groundH) * 4);
    this.app.viewer.camera.flyToBoundingSphere(
      new Cesium.BoundingSphere(Cesium.Cartesian3.fromDegrees(lon, lat, (groundH + topH) / 2), (topH - groundH) / 2 + 5),
      { offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-40), range), duration: 0.8 },
    );
    this.lastPick = { tileset: "index", properties: { id: String(id) } };
    this.app.layers.setSelected(String(id));
    this.render();
    return true;
  }
}
