// Interface texts, German first, English switchable. t(key) returns the text of the current language;
// elements with data-i18n="key" (text), data-i18n-title="key" (tooltip) and data-i18n-placeholder are
// filled by applyTexts(). A value of the release config that is {de, en} is read with pick(value).

const TEXTS = {
  de: {
    "app.title": "3D-Stadtmodell",
    "app.loading": "Lade das Stadtmodell …",
    "app.noWebgl": "Dieser Browser kann kein WebGL: der 3D-Viewer läuft hier nicht.",
    "app.error": "Fehler",
    "panel.layers": "Ebenen",
    "panel.colour": "Gebäude einfärben nach",
    "panel.ground": "Bodenebenen",
    "panel.sun": "Sonne und Schatten",
    "panel.variants": "Varianten",
    "panel.tools": "Werkzeuge",
    "panel.info": "Gebäude",
    "panel.legend": "Legende",
    "panel.hide": "Bedienfeld ein-/ausblenden",
    "layer.terrain": "Gelände",
    "layer.basemap": "Hintergrundkarte",
    "colour.none": "keine (Dachform-Farben)",
    "ground.none": "keine",
    "sun.date": "Datum",
    "sun.time": "Uhrzeit",
    "sun.shadows": "Schatten zeigen",
    "sun.mar21": "21. März",
    "sun.jun21": "21. Juni",
    "sun.dec21": "21. Dez.",
    "sun.now": "jetzt",
    "sun.local": "Ortszeit",
    "variants.none": "Keine Varianten veröffentlicht.",
    "variants.current": "aktueller Stand (keine Variante)",
    "variants.mode": "Vergleich",
    "variants.modeOverlay": "Variante zeigen",
    "variants.modeSwipe": "Wischlinie",
    "variants.modeSide": "nebeneinander",
    "variants.comparison": "Vergleichsseite öffnen",
    "variants.added": "neu",
    "variants.modified": "geändert",
    "variants.removed": "abgerissen (Geist)",
    "variants.affected": "betroffen",
    "variants.left": "heute",
    "variants.right": "Variante",
    "variants.version": "Version",
    "variants.diff": "Differenzen",
    "tools.find": "Gebäude-ID suchen",
    "tools.findGo": "Suchen",
    "tools.notFound": "Kein Gebäude mit dieser ID.",
    "tools.measure": "Strecke messen",
    "tools.height": "Höhe messen",
    "tools.measureHint": "Zwei Punkte anklicken (Esc bricht ab).",
    "tools.distance": "Strecke",
    "tools.horizontal": "waagerecht",
    "tools.vertical": "Höhenunterschied",
    "tools.sketch": "Variante skizzieren",
    "tools.link": "Link zu dieser Ansicht kopieren",
    "tools.linkCopied": "Link kopiert.",
    "tools.home": "Startansicht",
    "tools.help": "Hilfe",
    "tools.language": "English",
    "info.none": "Ein Gebäude anklicken, um seine Werte zu sehen.",
    "info.noValue": "–",
    "sketch.title": "Variante skizzieren",
    "sketch.hint": "Grundriss zeichnen: Eckpunkte anklicken, Doppelklick oder Enter schließt ihn. Esc bricht ab.",
    "sketch.draw": "Neuen Grundriss zeichnen",
    "sketch.storeys": "Geschosse",
    "sketch.eave": "Traufhöhe (m)",
    "sketch.ridge": "Firsthöhe (m)",
    "sketch.roof": "Dachform",
    "sketch.ridgeDir": "Firstrichtung (° von Nord)",
    "sketch.variantTitle": "Titel der Variante",
    "sketch.variantId": "Kennung (a–z, 0–9, -)",
    "sketch.description": "Beschreibung",
    "sketch.remove": "Angeklicktes Gebäude entfernen",
    "sketch.save": "Als Variantendatei speichern",
    "sketch.saved": "Gespeichert",
    "sketch.clear": "Skizze verwerfen",
    "sketch.buildings": "Neue Gebäude",
    "sketch.removed": "Entfernte Gebäude",
    "sketch.empty": "Noch nichts skizziert.",
    "sketch.invalid": "Bitte prüfen",
    "sketch.needShape": "Geschosse oder Trauf- und Firsthöhe angeben.",
    "sketch.needTitle": "Titel und Kennung angeben.",
    "sketch.pointsNeeded": "Mindestens drei Eckpunkte.",
    "roof.1000": "Flachdach", "roof.2100": "Pultdach", "roof.3100": "Satteldach", "roof.3200": "Walmdach",
    "roof.3300": "Krüppelwalmdach", "roof.3400": "Mansarddach", "roof.3500": "Zeltdach",
    "help.title": "Hilfe",
    "help.close": "Schließen",
    "help.body": `<p><b>Bewegen</b> – Maus: linke Taste ziehen verschiebt, rechte Taste oder Mausrad zoomt, mittlere Taste oder Strg + links dreht und neigt. Touch: ein Finger verschiebt, zwei Finger zoomen und drehen, zwei Finger parallel neigen.</p>
<p><b>Tastatur</b> – Pfeiltasten verschieben, <kbd>+</kbd>/<kbd>−</kbd> zoomen, <kbd>Q</kbd>/<kbd>E</kbd> drehen, <kbd>R</kbd>/<kbd>F</kbd> neigen, <kbd>H</kbd> Startansicht, <kbd>M</kbd> messen, <kbd>S</kbd> skizzieren, <kbd>?</kbd> diese Hilfe, <kbd>Esc</kbd> bricht ab.</p>
<p><b>Gebäude</b> – anklicken zeigt Attribute und Analysewerte; links lässt sich nach einem Merkmal einfärben (Legende unten rechts).</p>
<p><b>Sonne</b> – Datum und Uhrzeit (Ortszeit) wählen; die Schatten werden sofort berechnet. Die berechneten Sonnenstunden liegen als Bodenebene daneben.</p>
<p><b>Varianten</b> – eine Variante wählen: neue Gebäude sind hervorgehoben, abgerissene als Geister zu sehen. Mit Wischlinie oder nebeneinander mit dem heutigen Stand vergleichen.</p>
<p><b>Eigene Variante</b> – „Variante skizzieren“: Grundriss zeichnen, Geschosse oder Höhen und Dachform wählen, als Datei speichern und einreichen.</p>
<p><b>Link</b> – die Adresse enthält die ganze Ansicht (Kamera, Ebenen, Einfärbung, Variante, Zeit) und kann geteilt werden.</p>`,
  },
  en: {
    "app.title": "3D city model",
    "app.loading": "Loading the city model …",
    "app.noWebgl": "This browser has no WebGL: the 3D viewer cannot run here.",
    "app.error": "Error",
    "panel.layers": "Layers",
    "panel.colour": "Colour buildings by",
    "panel.ground": "Ground layers",
    "panel.sun": "Sun and shadows",
    "panel.variants": "Variants",
    "panel.tools": "Tools",
    "panel.info": "Building",
    "panel.legend": "Legend",
    "panel.hide": "Show/hide the panel",
    "layer.terrain": "Terrain",
    "layer.basemap": "Base map",
    "colour.none": "none (roof colours)",
    "ground.none": "none",
    "sun.date": "Date",
    "sun.time": "Time",
    "sun.shadows": "Show shadows",
    "sun.mar21": "21 March",
    "sun.jun21": "21 June",
    "sun.dec21": "21 Dec",
    "sun.now": "now",
    "sun.local": "local time",
    "variants.none": "No variants published.",
    "variants.current": "current city (no variant)",
    "variants.mode": "Compare",
    "variants.modeOverlay": "show variant",
    "variants.modeSwipe": "swipe line",
    "variants.modeSide": "side by side",
    "variants.comparison": "Open the comparison page",
    "variants.added": "new",
    "variants.modified": "modified",
    "variants.removed": "demolished (ghost)",
    "variants.affected": "affected",
    "variants.left": "today",
    "variants.right": "variant",
    "variants.version": "version",
    "variants.diff": "Differences",
    "tools.find": "Find building id",
    "tools.findGo": "Find",
    "tools.notFound": "No building with this id.",
    "tools.measure": "Measure distance",
    "tools.height": "Measure height",
    "tools.measureHint": "Click two points (Esc cancels).",
    "tools.distance": "distance",
    "tools.horizontal": "horizontal",
    "tools.vertical": "height difference",
    "tools.sketch": "Sketch a variant",
    "tools.link": "Copy a link to this view",
    "tools.linkCopied": "Link copied.",
    "tools.home": "Home view",
    "tools.help": "Help",
    "tools.language": "Deutsch",
    "info.none": "Click a building to see its values.",
    "info.noValue": "–",
    "sketch.title": "Sketch a variant",
    "sketch.hint": "Draw a footprint: click its corners; a double click or Enter closes it. Esc cancels.",
    "sketch.draw": "Draw a new footprint",
    "sketch.storeys": "Storeys",
    "sketch.eave": "Eave height (m)",
    "sketch.ridge": "Ridge height (m)",
    "sketch.roof": "Roof form",
    "sketch.ridgeDir": "Ridge direction (° from north)",
    "sketch.variantTitle": "Title of the variant",
    "sketch.variantId": "Id (a–z, 0–9, -)",
    "sketch.description": "Description",
    "sketch.remove": "Remove the clicked building",
    "sketch.save": "Save as a variant file",
    "sketch.saved": "Saved",
    "sketch.clear": "Discard the sketch",
    "sketch.buildings": "New buildings",
    "sketch.removed": "Removed buildings",
    "sketch.empty": "Nothing sketched yet.",
    "sketch.invalid": "Please check",
    "sketch.needShape": "Give storeys or eave and ridge height.",
    "sketch.needTitle": "Give a title and an id.",
    "sketch.pointsNeeded": "At least three corners.",
    "roof.1000": "flat", "roof.2100": "shed", "roof.3100": "gable", "roof.3200": "hip",
    "roof.3300": "half-hip", "roof.3400": "mansard", "roof.3500": "pyramid",
    "help.title": "Help",
    "help.close": "Close",
    "help.body": `<p><b>Move</b> – mouse: drag with the left button to pan, right button or wheel to zoom, middle button or Ctrl + left to rotate and tilt. Touch: one finger pans, two fingers zoom and rotate, two fingers moving together tilt.</p>
<p><b>Keyboard</b> – arrow keys pan, <kbd>+</kbd>/<kbd>−</kbd> zoom, <kbd>Q</kbd>/<kbd>E</kbd> rotate, <kbd>R</kbd>/<kbd>F</kbd> tilt, <kbd>H</kbd> home view, <kbd>M</kbd> measure, <kbd>S</kbd> sketch, <kbd>?</kbd> this help, <kbd>Esc</kbd> cancels.</p>
<p><b>Buildings</b> – click one to see its attributes and analysis values; colour them by a value on the left (legend bottom right).</p>
<p><b>Sun</b> – choose a date and a time (local time); shadows are computed at once, next to the computed sun hours on the ground.</p>
<p><b>Variants</b> – choose one: new buildings are highlighted, demolished ones shown as ghosts. Compare with today's city with a swipe line or side by side.</p>
<p><b>Your own variant</b> – "Sketch a variant": draw a footprint, set storeys or heights and the roof form, save it as a file and submit it.</p>
<p><b>Link</b> – the address holds the whole view (camera, layers, colouring, variant, time) and can be shared.</p>`,
  },
};

export const LANGUAGES = ["de", "en"];
let lang = "de";
const listeners = [];

export function language() {
  return lang;
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next) || next === lang) return;
  lang = next;
  document.documentElement.lang = lang;
  applyTexts();
  for (const fn of listeners) fn(lang);
}

export function onLanguageChange(fn) {
  listeners.push(fn);
}

export function t(key) {
  return TEXTS[lang][key] ?? TEXTS.de[key] ?? key;
}

/** A config value that is a string or {de, en}: the text in the current language. */
export function pick(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  return value[lang] ?? value.de ?? value.en ?? Object.values(value)[0] ?? "";
}

export function applyTexts(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-html]")) el.innerHTML = t(el.dataset.i18nHtml);
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** Number formatting in the current language (German decimal comma). */
export function formatNumber(value, digits = 1) {
  return Number(value).toLocaleString(lang === "de" ? "de-DE" : "en-GB", {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  });
}
