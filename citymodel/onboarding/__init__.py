"""``citymodel init DIR``: from a folder of geodata to a DCAT-AP catalog and a deployment file.

:func:`init_folder` scans the folder (:mod:`.scan`), recognises the role of each file
(:mod:`.roles`), writes ``catalog.jsonld`` (:mod:`.dcat`) and ``deployment.yaml``
(:mod:`.deployment`) beside the data, and says what it found, guessed and could not use. The
processing CRS, extent, tile naming, source CRSs and column mappings come from the files; every
value that is inferred rather than read is marked ``# GUESS: ... confirm`` in the deployment file.
Re-running it rewrites the catalog from the folder (reporting new, changed and removed files) and
keeps the deployment file, adding only roles that are new. No Dagster here.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..fileio import atomic_write_text
from .dcat import build_catalog, catalog_files, dataset_id, read_previous
from .deployment import GUESS, DeploymentPlan, SourcePlan, merge_deployment, render_deployment
from .roles import Recognised, csv_crs_guess, recognise
from .scan import FileFacts, scan_folder

CATALOG_NAME = "catalog.jsonld"
DEPLOYMENT_NAME = "deployment.yaml"
OUTPUT_NAME = "outputs"

#: roles in the order they are written
ROLE_ORDER = ("buildings", "lidar", "lod2_reference", "trees", "roads", "flood_zones", "viewpoints", "variants")

_LIDAR_PREFIX = re.compile(r"(?:^|[_-])(\d{2})_\d{3,4}_\d{4,5}(?:[_.-]|$)")


@dataclass
class InitResult:
    """What :func:`init_folder` did."""

    root: Path
    catalog_path: Path
    deployment_path: Path
    roles: dict[str, list[str]]
    guesses: int
    unrecognised: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    new_files: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    deployment_written: bool = True
    roles_added: list[str] = field(default_factory=list)
    roles_gone: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"citymodel init {self.root}"]
        for role, files in self.roles.items():
            lines.append(f"  {role:15s} {len(files):3d} file(s): {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}")
        for u in self.unrecognised:
            lines.append(f"  not used: {u}")
        for s in self.skipped:
            lines.append(f"  skipped: {s}")
        lines.append(f"catalog: {self.catalog_path} ({len(self.new_files)} new, {len(self.changed_files)} changed, "
                     f"{len(self.removed_files)} removed file(s))")
        if self.deployment_written:
            lines.append(f"deployment file: {self.deployment_path} (written; {self.guesses} guess(es) marked "
                         f"'{GUESS} ... confirm')")
        else:
            added = f"; added the role(s) {', '.join(self.roles_added)}" if self.roles_added else ""
            lines.append(f"deployment file: {self.deployment_path} (kept with your edits{added})")
        for r in self.roles_gone:
            lines.append(f"  warning: sources.{r} is configured but no file of it was found: remove it from the "
                         f"deployment file or put its files back")
        lines.append(f"next: citymodel --config {self.deployment_path} run")
        return "\n".join(lines)


def _publication(publisher, license_, contact):
    from ..config import PublishSettings

    return PublishSettings(publisher=publisher, license=license_, contact=contact)


def _transform_bounds(bounds, src: str | None, dst: str):
    if bounds is None:
        return None
    if not src or src == dst:
        return tuple(bounds)
    from pyproj import Transformer

    t = Transformer.from_crs(src, dst, always_xy=True)
    return tuple(t.transform_bounds(*bounds))


def _union(boxes):
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _round_out(b, step=10.0):
    return (math.floor(b[0] / step) * step, math.floor(b[1] / step) * step,
            math.ceil(b[2] / step) * step, math.ceil(b[3] / step) * step)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
               .replace("ß", "ss")).strip("-")
    return s or "city"


def init_folder(root: str | Path, *, name: str | None = None, title: str | None = None,
                crs: str | None = None, publisher: str | None = None, license: str | None = None,
                contact: str | None = None, urls: list[str] | tuple[str, ...] = (),
                timeout_s: float = 60.0) -> InitResult:
    """Scan ``root``, write ``catalog.jsonld`` and ``deployment.yaml`` there, report what was done.

    Parameters
    ----------
    root : path
        The folder with the city's files (sub-folders are scanned too).
    name, title : str, optional
        The deployment's short name and title (default: from the folder name).
    crs : str, optional
        The processing CRS (default: the LiDAR's, else the footprints'; needed where no file names one).
    publisher, license, contact : str, optional
        The publication keys (``publish.*``); a first run without them writes ``null`` with a
        ``REQUIRED`` note and the deployment file does not load until they are set.
    urls : list of str
        Files that stay on a server (``http(s)://``): each is downloaded into ``DIR/.downloads/``
        to be inspected and hashed, and the catalog names it by its URL (the pipeline downloads it
        from there). Downloaded again on every run of init.
    timeout_s : float
        Timeout of one download.

    Raises
    ------
    ConfigError
        ``root`` is not a folder; no footprints or no LiDAR found (both are required); no file names
        a CRS and ``crs`` is not given.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise ConfigError(f"'{root}' is not a folder. Fix: pass the folder that holds the city's files")
    catalog_path = root / CATALOG_NAME
    deployment_path = root / DEPLOYMENT_NAME
    existing = deployment_path.read_text(encoding="utf-8") if deployment_path.is_file() else None
    user_cfg = {}
    if existing:
        try:
            user_cfg = yaml.safe_load(existing) or {}
        except yaml.YAMLError:
            user_cfg = {}
    output_name = str(user_cfg.get("output_dir") or OUTPUT_NAME) if isinstance(user_cfg, dict) else OUTPUT_NAME
    facts, skipped = scan_folder(root, exclude=(CATALOG_NAME, DEPLOYMENT_NAME, output_name.strip("./")))
    facts += [_fetch(root, url, timeout_s) for url in urls]

    recs: list[Recognised] = []
    unrecognised: list[str] = []
    for f in facts:
        r = recognise(f) if f.kind != "unsupported" else None
        if r is None:
            why = f.problem or (f"{f.geometry_type or f.kind} with columns {f.fields[:10]}: no role matches "
                                f"(README, 'Onboarding a city': what each role needs)")
            unrecognised.append(f"{f.rel}: {why}")
        else:
            recs.append(r)
    by_role: dict[str, list[Recognised]] = {}
    for r in recs:
        by_role.setdefault(r.role, []).append(r)
    by_role = {k: by_role[k] for k in ROLE_ORDER if k in by_role}

    missing_roles = [r for r in ("buildings", "lidar") if r not in by_role]
    if missing_roles:
        found = ", ".join(f"{k} ({len(v)})" for k, v in by_role.items()) or "nothing usable"
        raise ConfigError(
            f"'{root}': no {' and no '.join(missing_roles)} found (found: {found}"
            f"{'; not used: ' + '; '.join(unrecognised[:5]) if unrecognised else ''}). The pipeline needs "
            f"building footprints (polygons: GeoPackage, GeoJSON or zipped Shapefile) and LiDAR tiles "
            f"(LAZ/LAS). Fix: put them into the folder and run citymodel init again")

    # processing CRS
    pcrs_note = None
    if crs:
        processing_crs = crs
    else:
        candidates = Counter(f.facts.crs for f in by_role["lidar"] if f.facts.crs)
        if not candidates:
            candidates = Counter(f.facts.crs for f in by_role["buildings"] if f.facts.crs)
        if not candidates:
            raise ConfigError(f"'{root}': neither the LiDAR files nor the footprints name a CRS. Fix: "
                              f"run citymodel init --crs EPSG:<code> (e.g. EPSG:25832, ETRS89 / UTM 32N)")
        processing_crs = candidates.most_common(1)[0][0]
        if len(candidates) > 1:
            pcrs_note = f"the LiDAR files name several CRSs ({dict(candidates)}): the most common taken"
    from pyproj import CRS

    if not CRS.from_user_input(processing_crs).is_projected:
        raise ConfigError(f"'{root}': the processing CRS {processing_crs} is not projected (metres). Fix: run "
                          f"citymodel init --crs EPSG:<code> with the city's projected CRS (e.g. EPSG:25832)")

    # extent: footprints ∩ LiDAR coverage
    lidar_box = _union(_transform_bounds(r.facts.bounds, r.facts.crs or processing_crs, processing_crs)
                       for r in by_role["lidar"])
    bld_box = _union(_transform_bounds(r.facts.bounds, r.facts.crs or processing_crs, processing_crs)
                     for r in by_role["buildings"])
    if lidar_box and bld_box:
        box = (max(lidar_box[0], bld_box[0]), max(lidar_box[1], bld_box[1]),
               min(lidar_box[2], bld_box[2]), min(lidar_box[3], bld_box[3]))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ConfigError(f"'{root}': the footprints ({_fmt_box(bld_box)}) and the LiDAR "
                              f"({_fmt_box(lidar_box)}) do not overlap in {processing_crs}. Fix: check the "
                              f"CRS of both (run citymodel init --crs ... where a file names none)")
        extent_note = (f"where the footprints ({_fmt_box(bld_box)}) and the LiDAR ({_fmt_box(lidar_box)}) "
                       f"overlap, rounded out to 10 m; narrow it to the area to model")
    else:
        box = lidar_box or bld_box
        extent_note = "the bounds of the data (the LiDAR files could not be read for bounds)"
    extent = _round_out(box)

    # vertical CRS, tile prefix
    verticals = Counter(r.facts.vertical_crs for r in by_role["lidar"] if r.facts.vertical_crs)
    if verticals:
        vertical_crs, vertical_note = verticals.most_common(1)[0][0], None
    else:
        vertical_crs = "EPSG:7837"
        vertical_note = "DHHN2016 heights (the LiDAR files name no height reference)"
    prefixes = Counter(m.group(1) for r in by_role["lidar"] if (m := _LIDAR_PREFIX.search(r.facts.path.name.lower())))
    if prefixes:
        tile_prefix, prefix_note = prefixes.most_common(1)[0][0], None
    else:
        zone = re.search(r"EPSG:258(\d\d)$", processing_crs)
        tile_prefix = zone.group(1) if zone else ""
        prefix_note = f"the LiDAR file names carry no tile numbers; tile ids get the prefix '{tile_prefix}'"

    dir_name = root.name
    name = name or _slug(dir_name)
    place = title or dir_name
    pub = _publication(publisher or _user_publish(user_cfg, "publisher"),
                       license or _user_publish(user_cfg, "license"),
                       contact or _user_publish(user_cfg, "contact"))

    sources: list[SourcePlan] = []
    guesses = 0
    for role, rs in by_role.items():
        first = rs[0]
        sp = SourcePlan(role=role, dataset=dataset_id(name, role), files=[r.facts.url or r.facts.rel for r in rs])
        if role == "lidar":
            crss = {r.facts.crs for r in rs}
            if None in crss:
                sp.crs = processing_crs
                sp.crs_note = "for LiDAR files without a CRS record, the CRS of the other data"
        elif role == "trees" and first.facts.kind == "csv":
            geometry, tcrs, why = csv_crs_guess(first, processing_crs)
            sp.crs, sp.crs_note = tcrs, f"a CSV names no CRS; {why}"
            sp.columns = dict(first.columns)
            sp.columns.update(geometry)
            sp.column_guesses = dict(first.guesses)
            for k in geometry:
                sp.column_guesses.setdefault(f"columns.{k}", f"the coordinates ({why.split(';')[0]})"
                                             if k in ("easting", "northing") else None)
            sp.column_guesses = {k: v for k, v in sp.column_guesses.items() if v}
            sp.missing = list(first.missing)
            sp.options = dict(first.options)
        elif role in ("variants",):
            sp.required = False
        else:
            sp.columns = dict(first.columns)
            sp.column_guesses = dict(first.guesses)
            sp.missing = list(first.missing)
            if first.facts.layer:
                sp.layer = first.facts.layer
            if first.crs is None and role != "lod2_reference":
                sp.crs, sp.crs_note = processing_crs, "the file names no CRS; the CRS of the other data"
            elif first.crs is None:
                sp.crs, sp.crs_note = processing_crs, "the CityGML names no srsName; the CRS of the other data"
            if "role" in first.guesses:
                sp.notes.append(first.guesses["role"])
            others = {tuple(sorted(r.columns.items())) for r in rs[1:]}
            if others and others != {tuple(sorted(first.columns.items()))}:
                sp.notes.append(f"the {len(rs)} files differ in their columns; those of {first.facts.rel} are used")
        if role in ("lod2_reference", "viewpoints"):
            sp.required = False
        guesses += len(sp.column_guesses) + len(sp.notes) + (1 if sp.crs_note else 0) + (1 if sp.layer else 0)
        sources.append(sp)
    guesses += sum(1 for n in (pcrs_note, vertical_note, extent_note, prefix_note) if n)

    plan = DeploymentPlan(name=name, title=place, processing_crs=processing_crs, processing_crs_note=pcrs_note,
                          vertical_crs=vertical_crs, vertical_crs_note=vertical_note, extent=extent,
                          extent_note=extent_note, tile_prefix=tile_prefix, tile_prefix_note=prefix_note,
                          publisher=publisher, license=license, contact=contact, sources=sources)

    # the catalog (always rewritten from the folder)
    previous = read_previous(catalog_path)
    doc = build_catalog(root, name if not existing else _user_name(user_cfg, name), place, by_role,
                        processing_crs, pub.publisher, pub.license, pub.contact)
    if existing:
        doc = _with_user_dataset_ids(doc, user_cfg, name)
    now = catalog_files(doc)
    new_files = sorted(set(now) - set(previous))
    changed = sorted(u for u in set(now) & set(previous) if now[u] != previous[u])
    removed = sorted(set(previous) - set(now))
    atomic_write_text(catalog_path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")

    if existing is None:
        atomic_write_text(deployment_path, render_deployment(plan, CATALOG_NAME, OUTPUT_NAME))
        written, added, gone = True, [], []
    else:
        text, added, gone = merge_deployment(existing, _plan_for_existing(plan, user_cfg, name))
        if text != existing:
            atomic_write_text(deployment_path, text)
        written = False
    return InitResult(root=root, catalog_path=catalog_path, deployment_path=deployment_path,
                      roles={k: [r.facts.url or r.facts.rel for r in v] for k, v in by_role.items()}, guesses=guesses,
                      unrecognised=unrecognised, skipped=skipped, new_files=new_files, changed_files=changed,
                      removed_files=removed, deployment_written=written, roles_added=added, roles_gone=gone)


DOWNLOADS = ".downloads"


def _fetch(root: Path, url: str, timeout_s: float) -> FileFacts:
    """Download ``url`` into ``root/.downloads/`` and inspect it; its catalog URL is ``url``."""
    import shutil
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlparse

    from .scan import inspect_file

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise ConfigError(f"'{url}' is not an http(s) URL. Fix: put local files into the folder itself")
    name = unquote(parsed.path.rsplit("/", 1)[-1]) or "download"
    target = root / DOWNLOADS / re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"'{url}' could not be downloaded ({exc}). Fix: check the URL, or download the file "
                          f"into the folder and run citymodel init without --url") from exc
    tmp.replace(target)
    facts = inspect_file(target, target.relative_to(root).as_posix())
    facts.url = url
    return facts


def _fmt_box(b) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in b) + "]"


def _user_publish(cfg, key):
    pub = cfg.get("publish") if isinstance(cfg, dict) else None
    return pub.get(key) if isinstance(pub, dict) else None


def _user_name(cfg, default):
    return str(cfg.get("name") or default) if isinstance(cfg, dict) else default


def _user_dataset_ids(cfg) -> dict[str, str]:
    srcs = cfg.get("sources") if isinstance(cfg, dict) else None
    return {r: str(s.get("dataset")) for r, s in (srcs or {}).items() if isinstance(s, dict) and s.get("dataset")}


def _with_user_dataset_ids(doc: dict, cfg, name: str) -> dict:
    """Keep the dataset identifiers the user's deployment file names (they may have been renamed)."""
    ids = _user_dataset_ids(cfg)
    user_name = _user_name(cfg, name)
    for node in doc["@graph"]:
        ident = node.get("dct:identifier")
        if not ident:
            continue
        role = next((r for r in ROLE_ORDER if dataset_id(user_name, r) == ident), None)
        if role and role in ids and ids[role] != ident:
            node["dct:identifier"] = ids[role]
    return doc


def _plan_for_existing(plan: DeploymentPlan, cfg, name: str) -> DeploymentPlan:
    user_name = _user_name(cfg, name)
    for sp in plan.sources:
        sp.dataset = dataset_id(user_name, sp.role)
    return plan


__all__ = ["InitResult", "init_folder", "CATALOG_NAME", "DEPLOYMENT_NAME", "FileFacts"]
