// Measure a distance and a height: two clicks on buildings or the ground. The result gives the
// straight distance, its horizontal part and the height difference (ellipsoidal heights of both points,
// so differences are true heights).

import * as Cesium from "../cesium/index.js";
import { formatNumber, t } from "./i18n.js";

/** World position under a canvas pixel: the depth buffer (buildings, terrain), else the globe. */
export function worldPosition(scene, windowPosition) {
  if (scene.pickPositionSupported) {
    const p = scene.pickPosition(windowPosition);
    if (Cesium.defined(p)) return p;
  }
  const ray = scene.camera.getPickRay(windowPosition);
  return ray ? scene.globe.pick(ray, scene) : undefined;
}

export function measurement(a, b) {
  const ca = Cesium.Cartographic.fromCartesian(a);
  const cb = Cesium.Cartographic.fromCartesian(b);
  const straight = Cesium.Cartesian3.distance(a, b);
  const geodesic = new Cesium.EllipsoidGeodesic(ca, cb);
  const horizontal = geodesic.surfaceDistance || 0;
  return { straight_m: straight, horizontal_m: horizontal, vertical_m: cb.height - ca.height };
}

export class Measure {
  constructor(app, output) {
    this.app = app;
    this.output = output;
    this.points = [];
    this.entities = [];
    this.mode = null;
    this.result = null;
  }

  start(mode) {
    this.clear();
    this.mode = mode;
    this.app.setTool(this);
    this.output.textContent = t("tools.measureHint");
  }

  cancel() {
    this.mode = null;
    this.points = [];
  }

  clear() {
    for (const e of this.entities) this.app.viewer.entities.remove(e);
    this.entities = [];
    this.points = [];
    this.result = null;
    this.output.textContent = "";
    this.app.viewer.scene.requestRender();
  }

  /** A click while the tool is active; returns true when it was used. */
  click(windowPosition) {
    const p = worldPosition(this.app.viewer.scene, windowPosition);
    if (!p) return true;
    this.points.push(p);
    this.entities.push(this.app.viewer.entities.add({
      position: p,
      point: { pixelSize: 8, color: Cesium.Color.YELLOW, disableDepthTestDistance: Number.POSITIVE_INFINITY },
    }));
    if (this.points.length === 2) {
      const [a, b] = this.points;
      const m = measurement(a, b);
      this.result = m;
      const ca = Cesium.Cartographic.fromCartesian(a);
      const cb = Cesium.Cartographic.fromCartesian(b);
      const linePositions = this.mode === "height"
        ? [a, Cesium.Cartesian3.fromRadians(ca.longitude, ca.latitude, cb.height), b]
        : [a, b];
      this.entities.push(this.app.viewer.entities.add({
        polyline: { positions: linePositions, width: 3, material: Cesium.Color.YELLOW, depthFailMaterial: Cesium.Color.YELLOW.withAlpha(0.5) },
        position: Cesium.Cartesian3.midpoint(a, b, new Cesium.Cartesian3()),
        label: {
          text: this.text(m), font: "14px sans-serif", showBackground: true, fillColor: Cesium.Color.WHITE,
          disableDepthTestDistance: Number.POSITIVE_INFINITY, pixelOffset: new Cesium.Cartesian2(0, -16),
        },
      }));
      this.output.textContent = this.text(m);
      this.mode = null;
      this.points = [];
      this.app.setTool(null);
    }
    this.app.renderBurst(1500);
    return true;
  }

  text(m) {
    const f = (x) => `${formatNumber(x, 2)} m`;
    if (this.mode === "height") return `${t("tools.vertical")}: ${f(Math.abs(m.vertical_m))}`;
    return `${t("tools.distance")}: ${f(m.straight_m)} (${t("tools.horizontal")} ${f(m.horizontal_m)}, ${t("tools.vertical")} ${f(m.vertical_m)})`;
  }
}
