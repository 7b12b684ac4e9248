// The whole view state in the URL (after '#', so a static server sees only the page), so that a
// participation platform (CONSUL, DIPAS) can link to exactly this view:
//
//   #cam=lon,lat,height_m,heading_deg,pitch_deg   camera (WGS84, ellipsoidal height)
//   &layers=buildings,trees,terrain               visible layers (names of the config's tilesets, terrain, basemap)
//   &colour=solar                                 building colouring (a name of config.colourings)
//   &ground=noise_lrt                             ground overlays (names of overlays/index.json), comma-separated
//   &variant=<id>@<version>                       the variant shown; &mode=overlay|swipe|side; &split=0.5
//   &time=2025-03-21T12:00&shadows=1              local date and time of the sun, shadows on
//   &select=<building id>                         the selected building
//   &lang=en                                      interface language (German without it)
//
// Everything is optional; unknown names are ignored.

const KEYS = ["cam", "layers", "colour", "ground", "variant", "mode", "split", "time", "shadows", "select", "lang"];

export function readState(hash = window.location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state = {};
  const cam = params.get("cam");
  if (cam) {
    const v = cam.split(",").map(Number);
    if (v.length >= 3 && v.every(Number.isFinite)) {
      state.camera = { lon: v[0], lat: v[1], height: v[2], heading: v[3] ?? 0, pitch: v[4] ?? -35 };
    }
  }
  const list = (key) => (params.has(key) ? params.get(key).split(",").filter(Boolean) : undefined);
  state.layers = list("layers");
  state.ground = list("ground");
  if (params.has("colour")) state.colour = params.get("colour");
  const variant = params.get("variant");
  if (variant) {
    const [id, version] = variant.split("@");
    state.variant = { id, version: version ? Number(version) : undefined };
  }
  if (params.has("mode")) state.mode = params.get("mode");
  if (params.has("split")) {
    const s = Number(params.get("split"));
    if (Number.isFinite(s)) state.split = Math.min(0.95, Math.max(0.05, s));
  }
  const time = params.get("time");
  if (time && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(time)) state.time = time;
  if (params.has("shadows")) state.shadows = params.get("shadows") !== "0";
  if (params.has("select")) state.select = params.get("select");
  if (params.has("lang")) state.lang = params.get("lang");
  return state;
}

function fmt(x, digits) {
  return Number(x.toFixed(digits)).toString();
}

export function writeState(state) {
  const params = new URLSearchParams();
  if (state.camera) {
    const c = state.camera;
    params.set("cam", [fmt(c.lon, 6), fmt(c.lat, 6), fmt(c.height, 1), fmt(c.heading, 1), fmt(c.pitch, 1)].join(","));
  }
  if (state.layers) params.set("layers", state.layers.join(","));
  if (state.colour) params.set("colour", state.colour);
  if (state.ground && state.ground.length) params.set("ground", state.ground.join(","));
  if (state.variant && state.variant.id) {
    params.set("variant", state.variant.version ? `${state.variant.id}@${state.variant.version}` : state.variant.id);
    if (state.mode && state.mode !== "overlay") params.set("mode", state.mode);
    if (state.mode === "swipe" && state.split !== undefined) params.set("split", fmt(state.split, 3));
  }
  if (state.time) params.set("time", state.time);
  if (state.shadows !== undefined) params.set("shadows", state.shadows ? "1" : "0");
  if (state.select) params.set("select", state.select);
  if (state.lang && state.lang !== "de") params.set("lang", state.lang);
  // keep the order of KEYS (readable links)
  const ordered = new URLSearchParams();
  for (const k of KEYS) if (params.has(k)) ordered.set(k, params.get(k));
  return "#" + ordered.toString().replaceAll("%2C", ",").replaceAll("%40", "@").replaceAll("%3A", ":");
}

/** Collects the parts of the state from the modules and writes the URL, at most every 300 ms. */
export class UrlState {
  constructor() {
    this.providers = [];
    this.timer = null;
    this.enabled = false;
  }

  /** fn(state) adds its part to the state object. */
  provide(fn) {
    this.providers.push(fn);
  }

  collect() {
    const state = {};
    for (const fn of this.providers) fn(state);
    return state;
  }

  changed() {
    if (!this.enabled || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const hash = writeState(this.collect());
      if (hash !== window.location.hash) window.history.replaceState(null, "", hash);
    }, 300);
  }

  link() {
    return window.location.href.split("#")[0] + writeState(this.collect());
  }
}
