// Sketch a variant: draw a footprint (clicks on the ground; double click, Enter or "close" ends it),
// set storeys or heights, the roof form and the ridge direction, and see the building at once as an
// extruded body with its roof. Existing buildings can be marked as removed. "Save" writes a variant
// file in the project's variant schema 1.0 (GeoJSON, WGS84), ready to submit.
//
// Heights from storeys follow the variant pipeline: eave = storeys × storey height; a pitched roof
// without a ridge height rises by tan(35°) × half the width, a shed roof by tan(15°) × the width.
// The preview puts the roof on the footprint's smallest enclosing rectangle, as the pipeline's
// parametric builder does; the pipeline builds and validates the real geometry.

import * as Cesium from "../cesium/index.js";
import { t } from "./i18n.js";
import { worldPosition } from "./measure.js";
import { sampleHeight } from "./terrain.js";

export const ROOF_FORMS = ["1000", "2100", "3100", "3200", "3300", "3400", "3500"];
const PITCH_DEG = 35;
const SHED_PITCH_DEG = 15;
const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{1,62}$/;

// ---------------------------------------------------------------------- plane geometry (metres, x east, y north)
function convexHull(points) {
  const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper = [];
  for (const q of p.reverse()) {
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/**
 * The smallest rectangle around the points (one side on a hull edge), or, with a ridge direction
 * (degrees clockwise from north), the rectangle aligned with it. Returns {cx, cy, ux, uy, halfL, halfW}:
 * centre, unit vector along the ridge, half length along it and half width across.
 */
export function roofRectangle(points, ridgeDirectionDeg = null) {
  const hull = convexHull(points);
  const fit = (ux, uy) => {
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const [x, y] of hull) {
      const u = x * ux + y * uy;
      const v = -x * uy + y * ux;
      minU = Math.min(minU, u); maxU = Math.max(maxU, u); minV = Math.min(minV, v); maxV = Math.max(maxV, v);
    }
    const cu = (minU + maxU) / 2;
    const cv = (minV + maxV) / 2;
    return { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, ux, uy, halfL: (maxU - minU) / 2, halfW: (maxV - minV) / 2 };
  };
  if (ridgeDirectionDeg !== null && ridgeDirectionDeg !== undefined && Number.isFinite(ridgeDirectionDeg)) {
    const a = (ridgeDirectionDeg * Math.PI) / 180;
    return fit(Math.sin(a), Math.cos(a));
  }
  let best = null;
  for (let i = 0; i < hull.length; i++) {
    const [x0, y0] = hull[i];
    const [x1, y1] = hull[(i + 1) % hull.length];
    const len = Math.hypot(x1 - x0, y1 - y0);
    if (len < 1e-9) continue;
    const r = fit((x1 - x0) / len, (y1 - y0) / len);
    if (!best || r.halfL * r.halfW < best.halfL * best.halfW - 1e-9) best = r;
  }
  // the ridge runs along the long side
  if (best && best.halfW > best.halfL) best = { ...best, ux: -best.uy, uy: best.ux, halfL: best.halfW, halfW: best.halfL };
  return best;
}

/** Eave and ridge height above ground (m), as the variant pipeline derives them. */
export function buildingHeights(b, rect, storeyHeightM = 3) {
  let eave = b.eave_height_m ?? (b.storeys ? b.storeys * storeyHeightM : null);
  if (eave === null || !Number.isFinite(eave)) return null;
  const form = b.roof_form || "1000";
  let ridge = b.ridge_height_m;
  if (form === "1000") return { eave, ridge: eave };
  if (ridge === undefined || ridge === null || !Number.isFinite(ridge) || ridge < eave) {
    const width = 2 * Math.min(rect.halfL, rect.halfW);
    ridge = eave + (form === "2100"
      ? Math.tan((SHED_PITCH_DEG * Math.PI) / 180) * width
      : (Math.tan((PITCH_DEG * Math.PI) / 180) * width) / 2);
  }
  return { eave, ridge };
}

/** Roof faces (arrays of [x, y, z] in the local frame, z above ground) of a roof form on a rectangle. */
export function roofFaces(form, rect, eave, ridge) {
  const { cx, cy, ux, uy, halfL: L, halfW: W } = rect;
  const P = (u, v, z) => [cx + u * ux - v * uy, cy + u * uy + v * ux, z];
  const e = eave;
  const r = ridge;
  switch (form) {
    case "2100": // shed: low at v = -W, high at v = +W
      return [
        [P(-L, -W, e), P(L, -W, e), P(L, W, r), P(-L, W, r)],
        [P(-L, W, e), P(L, W, e), P(L, W, r), P(-L, W, r)],
        [P(-L, -W, e), P(-L, W, e), P(-L, W, r)],
        [P(L, -W, e), P(L, W, e), P(L, W, r)],
      ];
    case "3100": // gable
      return [
        [P(-L, W, e), P(L, W, e), P(L, 0, r), P(-L, 0, r)],
        [P(-L, -W, e), P(L, -W, e), P(L, 0, r), P(-L, 0, r)],
        [P(-L, -W, e), P(-L, W, e), P(-L, 0, r)],
        [P(L, -W, e), P(L, W, e), P(L, 0, r)],
      ];
    case "3200": // hip
    case "3300": { // half-hip: shorter hips
      const inset = form === "3200" ? Math.min(W, L) : Math.min(W, L) * 0.4;
      const a = Math.max(L - inset, 0);
      const faces = [
        [P(-L, W, e), P(L, W, e), P(a, 0, r), P(-a, 0, r)],
        [P(-L, -W, e), P(L, -W, e), P(a, 0, r), P(-a, 0, r)],
        [P(-L, -W, e), P(-L, W, e), P(-a, 0, r)],
        [P(L, -W, e), P(L, W, e), P(a, 0, r)],
      ];
      return faces;
    }
    case "3400": { // mansard: a steep lower part to 60 % of the rise, a flat upper hip
      const m = e + 0.6 * (r - e);
      const i = 0.2 * Math.min(W, L);
      const L2 = L - i;
      const W2 = W - i;
      const a = Math.max(L2 - W2, 0);
      return [
        [P(-L, W, e), P(L, W, e), P(L2, W2, m), P(-L2, W2, m)],
        [P(-L, -W, e), P(L, -W, e), P(L2, -W2, m), P(-L2, -W2, m)],
        [P(-L, -W, e), P(-L, W, e), P(-L2, W2, m), P(-L2, -W2, m)],
        [P(L, -W, e), P(L, W, e), P(L2, W2, m), P(L2, -W2, m)],
        [P(-L2, W2, m), P(L2, W2, m), P(a, 0, r), P(-a, 0, r)],
        [P(-L2, -W2, m), P(L2, -W2, m), P(a, 0, r), P(-a, 0, r)],
        [P(-L2, -W2, m), P(-L2, W2, m), P(-a, 0, r)],
        [P(L2, -W2, m), P(L2, W2, m), P(a, 0, r)],
      ];
    }
    case "3500": // pyramid
      return [
        [P(-L, -W, e), P(L, -W, e), P(0, 0, r)],
        [P(L, -W, e), P(L, W, e), P(0, 0, r)],
        [P(L, W, e), P(-L, W, e), P(0, 0, r)],
        [P(-L, W, e), P(-L, -W, e), P(0, 0, r)],
      ];
    default:
      return [];
  }
}

function signedArea(ring) {
  let a = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i];
    const [x1, y1] = ring[(i + 1) % ring.length];
    a += x0 * y1 - x1 * y0;
  }
  return a / 2;
}

/** The variant document (schema 1.0) of a sketch. */
export function variantDocument(meta, buildings, removed, created = new Date()) {
  const features = [];
  for (const b of buildings) {
    let ring = b.lonlat.map(([lon, lat]) => [Number(lon.toFixed(7)), Number(lat.toFixed(7))]);
    if (signedArea(ring) < 0) ring = ring.slice().reverse(); // RFC 7946: exterior rings counter-clockwise
    ring.push(ring[0].slice());
    const props = { change: "add_building", id: b.id };
    for (const k of ["storeys", "eave_height_m", "ridge_height_m", "ridge_direction_deg"]) {
      if (b[k] !== undefined && b[k] !== null && Number.isFinite(b[k])) props[k] = b[k];
    }
    props.roof_form = b.roof_form || "1000";
    features.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [ring] }, properties: props });
  }
  for (const id of removed) {
    features.push({ type: "Feature", geometry: null, properties: { change: "remove_building", building_id: id } });
  }
  const variant = { id: meta.id, title: meta.title, author_role: "citizen", parent: null,
    created: created.toISOString().replace(/\.\d{3}Z$/, "Z") };
  if (meta.description) variant.description = meta.description;
  return { type: "FeatureCollection", schema_version: "1.0", variant, features };
}

/** Problems of a sketch before saving (an empty list when it can be saved). */
export function sketchProblems(meta, buildings, removed) {
  const problems = [];
  if (!meta.title || !ID_PATTERN.test(meta.id || "")) problems.push(t("sketch.needTitle"));
  if (!buildings.length && !removed.length) problems.push(t("sketch.empty"));
  for (const b of buildings) {
    const ok = b.storeys || (b.eave_height_m && (b.ridge_height_m || b.roof_form === "1000"));
    if (!ok) problems.push(`${b.id}: ${t("sketch.needShape")}`);
  }
  return problems;
}

// ---------------------------------------------------------------------- the tool
export class Sketch {
  constructor(app, el) {
    this.app = app;
    this.el = el; // {panel, form fields..., list, save, status, close, draw, remove}
    this.buildings = []; // {id, lonlat: [[lon, lat]], storeys, eave_height_m, ridge_height_m, roof_form, ridge_direction_deg, entities}
    this.removed = [];
    this.drawing = null; // {points: [Cartesian3], entities}
    this.removing = false;
    this.lastSaved = null;
    this.counter = 0;
    this.bind();
  }

  bind() {
    const el = this.el;
    el.draw.addEventListener("click", () => this.startDrawing());
    el.close.addEventListener("click", () => this.finishDrawing());
    el.remove.addEventListener("click", () => {
      this.removing = true;
      this.app.setTool(this);
      el.status.textContent = t("sketch.remove");
    });
    el.save.addEventListener("click", () => this.save());
    el.clear.addEventListener("click", () => this.clearAll());
    for (const f of [el.storeys, el.eave, el.ridge, el.roof, el.ridgeDir]) {
      f.addEventListener("input", () => this.updateSelected());
      f.addEventListener("change", () => this.updateSelected());
    }
    el.roof.innerHTML = ROOF_FORMS.map((c) => `<option value="${c}" data-i18n="roof.${c}">${t("roof." + c)}</option>`).join("");
    el.roof.value = "3100";
  }

  open() {
    this.el.panel.hidden = false;
    this.renderList();
  }

  // ---- drawing
  startDrawing() {
    this.cancel();
    this.drawing = { points: [], entities: [] };
    this.app.setTool(this);
    this.el.status.textContent = t("sketch.hint");
    this.el.close.hidden = false;
  }

  cancel() {
    if (this.drawing) for (const e of this.drawing.entities) this.app.viewer.entities.remove(e);
    this.drawing = null;
    this.removing = false;
    this.el.close.hidden = true;
    this.app.viewer.scene.requestRender();
  }

  click(windowPosition) {
    if (this.removing) {
      const picked = this.app.viewer.scene.pick(windowPosition);
      if (picked instanceof Cesium.Cesium3DTileFeature) {
        const id = String(picked.getProperty("id"));
        if (id && !this.removed.includes(id)) this.removed.push(id);
        this.app.layers.setHidden([...new Set([...this.app.variants.replacedIds(), ...this.removed])]);
      }
      this.removing = false;
      this.app.setTool(null);
      this.el.status.textContent = "";
      this.renderList();
      return true;
    }
    if (!this.drawing) return false;
    const p = worldPosition(this.app.viewer.scene, windowPosition);
    if (!p) return true;
    const prev = this.drawing.points[this.drawing.points.length - 1];
    if (prev && Cesium.Cartesian3.distance(prev, p) < 0.2) return true; // the second click of a double click
    this.drawing.points.push(p);
    this.drawing.entities.push(this.app.viewer.entities.add({
      position: p, point: { pixelSize: 7, color: Cesium.Color.ORANGE, disableDepthTestDistance: Number.POSITIVE_INFINITY },
    }));
    if (this.drawing.points.length === 2) {
      const pts = this.drawing.points;
      this.drawing.entities.push(this.app.viewer.entities.add({
        polyline: { positions: new Cesium.CallbackProperty(() => pts.concat([pts[0]]), false), width: 2,
          material: Cesium.Color.ORANGE, clampToGround: false, depthFailMaterial: Cesium.Color.ORANGE },
      }));
    }
    this.app.viewer.scene.requestRender();
    return true;
  }

  doubleClick() {
    if (this.drawing) this.finishDrawing();
  }

  key(e) {
    if (this.drawing && e.key === "Enter") {
      this.finishDrawing();
      return true;
    }
    return false;
  }

  /** Add a footprint given in lon/lat degrees (the same path as drawing, for scripted use). */
  addFootprint(lonlat, params = {}) {
    const b = this.newBuilding(lonlat.map(([lon, lat]) => [lon, lat]), params);
    return b.id;
  }

  finishDrawing() {
    const d = this.drawing;
    if (!d) return;
    if (d.points.length < 3) {
      this.el.status.textContent = t("sketch.pointsNeeded");
      return;
    }
    const lonlat = d.points.map((p) => {
      const c = Cesium.Cartographic.fromCartesian(p);
      return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude)];
    });
    this.cancel();
    this.app.setTool(null);
    this.newBuilding(lonlat, {});
    this.el.status.textContent = "";
  }

  formValues() {
    const num = (f) => (f.value.trim() === "" ? undefined : Number(f.value.replace(",", ".")));
    const storeys = num(this.el.storeys);
    return {
      storeys: storeys !== undefined ? Math.round(storeys) : undefined,
      eave_height_m: num(this.el.eave),
      ridge_height_m: num(this.el.ridge),
      roof_form: this.el.roof.value || "1000",
      ridge_direction_deg: num(this.el.ridgeDir),
    };
  }

  newBuilding(lonlat, params) {
    this.counter += 1;
    let id = `neu-${this.counter}`;
    while (this.buildings.some((b) => b.id === id)) id = `neu-${++this.counter}`;
    const b = { id, lonlat, entities: [], ...this.formValues(), ...params };
    this.buildings.push(b);
    this.selectedId = id;
    this.build(b);
    this.renderList();
    return b;
  }

  updateSelected() {
    const b = this.buildings.find((x) => x.id === this.selectedId);
    if (!b) return;
    Object.assign(b, this.formValues());
    this.build(b);
    this.renderList();
  }

  /** The preview of one building: body to the eave, roof on its rectangle. */
  build(b) {
    const viewer = this.app.viewer;
    for (const e of b.entities) viewer.entities.remove(e);
    b.entities = [];
    const hm = this.app.layers.heightmap;
    const ground = Math.min(...b.lonlat.map(([lon, lat]) => (hm ? sampleHeight(hm, lon, lat) : 0)));
    const origin = Cesium.Cartesian3.fromDegrees(b.lonlat[0][0], b.lonlat[0][1], ground);
    const enu = Cesium.Transforms.eastNorthUpToFixedFrame(origin);
    const inv = Cesium.Matrix4.inverseTransformation(enu, new Cesium.Matrix4());
    const local = b.lonlat.map(([lon, lat]) => {
      const w = Cesium.Matrix4.multiplyByPoint(inv, Cesium.Cartesian3.fromDegrees(lon, lat, ground), new Cesium.Cartesian3());
      return [w.x, w.y];
    });
    const rect = roofRectangle(local, b.ridge_direction_deg ?? null);
    const h = rect && buildingHeights(b, rect, this.app.config.storey_height_m || 3);
    b.heights = h;
    if (!h) {
      b.entities.push(viewer.entities.add({
        polygon: { hierarchy: b.lonlat.map(([lon, lat]) => Cesium.Cartesian3.fromDegrees(lon, lat, ground + 0.3)),
          perPositionHeight: true, material: Cesium.Color.ORANGE.withAlpha(0.5) },
      }));
      this.app.renderBurst();
      return;
    }
    const toWorld = ([x, y, z]) => Cesium.Matrix4.multiplyByPoint(enu, new Cesium.Cartesian3(x, y, z), new Cesium.Cartesian3());
    b.entities.push(viewer.entities.add({
      name: b.id,
      polygon: {
        hierarchy: b.lonlat.map(([lon, lat]) => Cesium.Cartesian3.fromDegrees(lon, lat)),
        height: ground, extrudedHeight: ground + h.eave, material: Cesium.Color.fromCssColorString("#ffb000"),
        outline: true, outlineColor: Cesium.Color.BLACK, shadows: Cesium.ShadowMode.ENABLED,
      },
    }));
    for (const face of roofFaces(b.roof_form || "1000", rect, h.eave, h.ridge)) {
      b.entities.push(viewer.entities.add({
        polygon: { hierarchy: face.map(toWorld), perPositionHeight: true,
          material: Cesium.Color.fromCssColorString("#c0392b"), shadows: Cesium.ShadowMode.ENABLED },
      }));
    }
    this.app.renderBurst();
  }

  renderList() {
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    const rows = this.buildings.map((b) => {
      const h = b.heights ? ` – ${b.heights.eave.toFixed(1)} / ${b.heights.ridge.toFixed(1)} m` : "";
      return `<li class="${b.id === this.selectedId ? "selected" : ""}"><button type="button" data-select="${esc(b.id)}">${esc(b.id)}</button> ${esc(t("roof." + (b.roof_form || "1000")))}${h} <button type="button" data-drop="${esc(b.id)}" aria-label="×">×</button></li>`;
    });
    const removed = this.removed.map((id) => `<li>${esc(id)} <button type="button" data-undrop="${esc(id)}" aria-label="×">×</button></li>`);
    this.el.list.innerHTML = (rows.length ? `<h4>${t("sketch.buildings")}</h4><ul>${rows.join("")}</ul>` : "")
      + (removed.length ? `<h4>${t("sketch.removed")}</h4><ul>${removed.join("")}</ul>` : "")
      || `<p class="hint">${t("sketch.empty")}</p>`;
    for (const btn of this.el.list.querySelectorAll("[data-select]")) {
      btn.addEventListener("click", () => {
        this.selectedId = btn.dataset.select;
        const b = this.buildings.find((x) => x.id === this.selectedId);
        const set = (f, v) => { f.value = v === undefined || v === null ? "" : String(v); };
        set(this.el.storeys, b.storeys); set(this.el.eave, b.eave_height_m); set(this.el.ridge, b.ridge_height_m);
        set(this.el.ridgeDir, b.ridge_direction_deg); this.el.roof.value = b.roof_form || "1000";
        this.renderList();
      });
    }
    for (const btn of this.el.list.querySelectorAll("[data-drop]")) {
      btn.addEventListener("click", () => {
        const b = this.buildings.find((x) => x.id === btn.dataset.drop);
        for (const e of b.entities) this.app.viewer.entities.remove(e);
        this.buildings = this.buildings.filter((x) => x !== b);
        this.renderList();
        this.app.viewer.scene.requestRender();
      });
    }
    for (const btn of this.el.list.querySelectorAll("[data-undrop]")) {
      btn.addEventListener("click", () => {
        this.removed = this.removed.filter((x) => x !== btn.dataset.undrop);
        this.app.layers.setHidden([...new Set([...this.app.variants.replacedIds(), ...this.removed])]);
        this.renderList();
      });
    }
  }

  meta() {
    return { id: this.el.variantId.value.trim(), title: this.el.variantTitle.value.trim(),
      description: this.el.description.value.trim() };
  }

  document() {
    return variantDocument(this.meta(), this.buildings, this.removed);
  }

  /** Validate and download the variant file; returns the document or null. */
  save() {
    const problems = sketchProblems(this.meta(), this.buildings, this.removed);
    if (problems.length) {
      this.el.status.textContent = `${t("sketch.invalid")}: ${problems.join(" ")}`;
      return null;
    }
    const doc = this.document();
    const text = JSON.stringify(doc, null, 2);
    const blob = new Blob([text], { type: "application/geo+json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${doc.variant.id}.variant.geojson`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    this.lastSaved = doc;
    this.el.status.textContent = `${t("sketch.saved")}: ${a.download}`;
    return doc;
  }

  clearAll() {
    this.cancel();
    for (const b of this.buildings) for (const e of b.entities) this.app.viewer.entities.remove(e);
    this.buildings = [];
    this.removed = [];
    this.app.layers.setHidden(this.app.variants.replacedIds());
    this.renderList();
    this.app.viewer.scene.requestRender();
  }
}
