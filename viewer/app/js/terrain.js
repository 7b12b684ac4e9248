// Terrain from the release's heightmap (terrain/heightmap.json + a float32 grid): the DTM resampled
// to a lon/lat grid with ellipsoidal heights made with the same geoid model as the 3D Tiles, so that
// the buildings stand on the ground. CesiumJS asks for every terrain tile a small grid of heights
// (CustomHeightmapTerrainProvider); they are sampled bilinearly from the published grid, and outside
// it the nearest edge value continues (a plateau, no cliff).

import * as Cesium from "../cesium/index.js";

const TILE_SAMPLES = 32;

export async function loadHeightmap(url) {
  const meta = await Cesium.Resource.fetchJson({ url });
  const base = new URL(url, window.location.href);
  const bin = await Cesium.Resource.fetchArrayBuffer({ url: new URL(meta.data, base).href });
  const heights = new Float32Array(bin);
  if (heights.length !== meta.width * meta.height) {
    throw new Error(`heightmap ${meta.data}: ${heights.length} values, expected ${meta.width} × ${meta.height}`);
  }
  return { ...meta, heights };
}

/** Height (m, ellipsoidal) at lon/lat in degrees: bilinear between the grid nodes, clamped at the edges. */
export function sampleHeight(hm, lonDeg, latDeg) {
  const [west, south, east, north] = hm.rectangle_deg;
  const fx = ((lonDeg - west) / (east - west)) * (hm.width - 1);
  const fy = ((north - latDeg) / (north - south)) * (hm.height - 1);
  const x = Math.min(Math.max(fx, 0), hm.width - 1);
  const y = Math.min(Math.max(fy, 0), hm.height - 1);
  const x0 = Math.min(Math.floor(x), hm.width - 2);
  const y0 = Math.min(Math.floor(y), hm.height - 2);
  const tx = x - x0;
  const ty = y - y0;
  const h = hm.heights;
  const w = hm.width;
  const a = h[y0 * w + x0];
  const b = h[y0 * w + x0 + 1];
  const c = h[(y0 + 1) * w + x0];
  const d = h[(y0 + 1) * w + x0 + 1];
  return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
}

export function heightmapTerrainProvider(hm) {
  const tilingScheme = new Cesium.GeographicTilingScheme();
  return new Cesium.CustomHeightmapTerrainProvider({
    width: TILE_SAMPLES,
    height: TILE_SAMPLES,
    tilingScheme,
    callback(x, y, level) {
      const r = tilingScheme.tileXYToRectangle(x, y, level);
      const west = Cesium.Math.toDegrees(r.west);
      const east = Cesium.Math.toDegrees(r.east);
      const south = Cesium.Math.toDegrees(r.south);
      const north = Cesium.Math.toDegrees(r.north);
      const out = new Float32Array(TILE_SAMPLES * TILE_SAMPLES);
      for (let j = 0; j < TILE_SAMPLES; j++) {
        const lat = north - ((north - south) * j) / (TILE_SAMPLES - 1);
        for (let i = 0; i < TILE_SAMPLES; i++) {
          const lon = west + ((east - west) * i) / (TILE_SAMPLES - 1);
          out[j * TILE_SAMPLES + i] = sampleHeight(hm, lon, lat);
        }
      }
      return out;
    },
  });
}
