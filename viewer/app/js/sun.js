// Sun and shadows now: any date and time in the city's local time (Europe/Berlin for Jena, from the
// release config), a time slider and the presets 21 March, 21 June and 21 December of the analysis
// year, so that people see when a variant shades whom, next to the computed sun hours.

import * as Cesium from "../cesium/index.js";

/** Minutes that the time zone is ahead of UTC at the instant utcMillis (e.g. 60 for CET, 120 for CEST). */
export function zoneOffsetMinutes(utcMillis, timeZone) {
  const dtf = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const p = Object.fromEntries(dtf.formatToParts(new Date(utcMillis)).map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return Math.round((asUtc - utcMillis) / 60000);
}

/** Local wall-clock date ("2025-03-21") and minutes after midnight in timeZone -> a JS Date (UTC instant). */
export function localToUtc(date, minutes, timeZone) {
  const [y, m, d] = date.split("-").map(Number);
  const naive = Date.UTC(y, m - 1, d, 0, minutes);
  let utc = naive - zoneOffsetMinutes(naive, timeZone) * 60000;
  const second = naive - zoneOffsetMinutes(utc, timeZone) * 60000; // across a DST switch
  if (second !== utc) utc = second;
  return new Date(utc);
}

export function hhmm(minutes) {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
}

export class Sun {
  constructor(app, elements) {
    this.app = app;
    this.el = elements; // {date, time, timeLabel, shadows, presets}
    this.timeZone = app.config.timezone || "Europe/Berlin";
    this.year = app.config.year || new Date().getFullYear();
    this.date = `${this.year}-03-21`;
    this.minutes = 12 * 60;
    this.shadows = false;
  }

  init(state) {
    if (state.time) {
      const [date, time] = state.time.split("T");
      const [h, m] = time.split(":").map(Number);
      this.date = date;
      this.minutes = h * 60 + m;
    }
    if (state.shadows !== undefined) this.shadows = state.shadows;
    const v = this.app.viewer;
    v.clock.shouldAnimate = false;
    v.shadowMap.maximumDistance = 3000;
    v.shadowMap.softShadows = false;
    v.scene.globe.enableLighting = false;
    this.el.date.value = this.date;
    this.el.time.value = String(this.minutes);
    this.el.shadows.checked = this.shadows;
    this.el.date.addEventListener("change", () => this.set(this.el.date.value, this.minutes));
    this.el.time.addEventListener("input", () => this.set(this.date, Number(this.el.time.value)));
    this.el.shadows.addEventListener("change", () => this.setShadows(this.el.shadows.checked));
    for (const btn of this.el.presets) {
      btn.addEventListener("click", () => this.set(`${this.year}-${btn.dataset.day}`, this.minutes));
    }
    this.apply();
  }

  set(date, minutes) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return;
    this.date = date;
    this.minutes = Math.max(0, Math.min(1439, minutes));
    this.el.date.value = this.date;
    this.el.time.value = String(this.minutes);
    this.apply();
  }

  setShadows(on) {
    this.shadows = on;
    this.el.shadows.checked = on;
    this.apply();
  }

  /** The current instant (UTC). */
  instant() {
    return localToUtc(this.date, this.minutes, this.timeZone);
  }

  apply() {
    const v = this.app.viewer;
    const when = this.instant();
    v.clock.currentTime = Cesium.JulianDate.fromDate(when);
    v.shadows = this.shadows;
    const offset = zoneOffsetMinutes(when.getTime(), this.timeZone) / 60;
    this.el.timeLabel.textContent = `${hhmm(this.minutes)} (UTC${offset >= 0 ? "+" : ""}${offset})`;
    for (const viewer of this.app.extraViewers()) {
      viewer.clock.currentTime = v.clock.currentTime;
      viewer.shadows = this.shadows;
      viewer.scene.requestRender();
    }
    v.scene.requestRender();
    this.app.stateChanged();
  }

  provideState(state) {
    state.time = `${this.date}T${hhmm(this.minutes)}`;
    if (this.shadows) state.shadows = true;
  }
}
