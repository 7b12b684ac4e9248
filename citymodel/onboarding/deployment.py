"""The deployment file init writes: YAML text with every guess marked ``# GUESS: ... confirm``.

Written as text (not dumped from a dict) so that each inferred value carries its reason as a
comment. On a re-run the user's file is kept as it is: only the sources of roles that are new in
the folder are added at the end of its ``sources:`` block (:func:`merge_deployment`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

GUESS = "# GUESS:"


@dataclass
class SourcePlan:
    """What init writes for one role under ``sources:``."""

    role: str
    dataset: str
    files: list[str]
    crs: str | None = None
    crs_note: str | None = None        # a GUESS reason for the CRS, or None where the files name it
    columns: dict[str, str] = field(default_factory=dict)
    column_guesses: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    layer: str | None = None
    notes: list[str] = field(default_factory=list)   # further GUESS lines (e.g. the role itself)
    required: bool | None = None


@dataclass
class DeploymentPlan:
    name: str
    title: str
    processing_crs: str
    processing_crs_note: str | None
    vertical_crs: str
    vertical_crs_note: str | None
    extent: tuple[float, float, float, float]
    extent_note: str
    tile_prefix: str
    tile_prefix_note: str | None
    publisher: str | None
    license: str | None
    contact: str | None
    sources: list[SourcePlan]
    header_notes: list[str] = field(default_factory=list)


def _v(value) -> str:
    """A YAML scalar or flow collection (JSON is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _c(line: str, note: str | None, guess: bool = True) -> str:
    if not note:
        return line
    return f"{line}   {GUESS if guess else '#'} {note}{': confirm' if guess else ''}"


def render_source(sp: SourcePlan) -> list[str]:
    """The lines of one role under ``sources:`` (indented by two spaces)."""
    lines = [f"  {sp.role}:"]
    for n in sp.notes:
        lines.append(f"    {GUESS} {n}: confirm")
    lines.append(f"    dataset: {_v(sp.dataset)}   # {len(sp.files)} file(s): "
                 f"{', '.join(sp.files[:3])}{' ...' if len(sp.files) > 3 else ''}")
    if sp.required is not None:
        lines.append(f"    required: {_v(sp.required)}")
    if sp.crs:
        lines.append(_c(f"    crs: {_v(sp.crs)}", sp.crs_note, guess=sp.crs_note is not None)
                     if sp.crs_note else f"    crs: {_v(sp.crs)}   # named by the files")
    if sp.layer:
        lines.append(_c(f"    layer: {_v(sp.layer)}", "the first of several layers"))
    if sp.columns:
        lines.append("    columns:")
        for canon, src in sp.columns.items():
            lines.append(_c(f"      {canon}: {_v(src)}", sp.column_guesses.get(f"columns.{canon}")))
    if sp.missing:
        lines.append(f"    # not found in the files (map them under columns: if they exist under another "
                     f"name): {', '.join(sp.missing)}")
    opts = {k: v for k, v in sp.options.items() if not k.startswith("_")}
    if opts:
        lines.append(f"    options: {_v(opts)}   # read from the file")
    return lines


def render_deployment(plan: DeploymentPlan, catalog_name: str = "catalog.jsonld",
                      output_dir: str = "outputs") -> str:
    """The whole deployment file."""
    lines = [
        "# Deployment file written by `citymodel init` from the files of this folder.",
        "# Lines marked '# GUESS: ... confirm' hold what init inferred: check each and delete the mark.",
        "# Re-running `citymodel init` updates catalog.jsonld and adds new roles here; it keeps your edits.",
        "# Every key is documented in README.md, section 'Configuration'.",
    ]
    lines += [f"# {GUESS[2:]} {n}: confirm" for n in plan.header_notes]
    lines += [
        f"name: {_v(plan.name)}",
        f"title: {_v(plan.title)}",
        _c(f"processing_crs: {_v(plan.processing_crs)}", plan.processing_crs_note),
        _c(f"vertical_crs: {_v(plan.vertical_crs)}", plan.vertical_crs_note),
        _c(f"extent: {_v([round(v, 3) for v in plan.extent])}", plan.extent_note),
        "tile_size_m: 1000",
        _c(f"tile_prefix: {_v(plan.tile_prefix)}", plan.tile_prefix_note),
        f"output_dir: {_v(output_dir)}             # relative to this file",
        "",
        "catalog:",
        f"  url: {_v(catalog_name)}   # written by citymodel init; an http(s) URL of the city's catalog works the same way",
        "",
        "publish:                       # required: who publishes, under which licence, whom to ask",
    ]
    for key, val, example in (("publisher", plan.publisher, "Stadt Musterstadt, Fachdienst Geoinformation"),
                              ("license", plan.license, "dl-de/by-2-0"),
                              ("contact", plan.contact, "geodaten@musterstadt.de")):
        if val:
            lines.append(f"  {key}: {_v(val)}")
        else:
            lines.append(f"  {key}: null   # REQUIRED: set it (e.g. {_v(example)}); "
                         f"or run citymodel init --{key} ...")
    lines += ["", "sources:"]
    for sp in plan.sources:
        lines += render_source(sp)
    return "\n".join(lines) + "\n"


_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def merge_deployment(existing: str, plan: DeploymentPlan) -> tuple[str, list[str], list[str]]:
    """The user's deployment file with the sources of new roles added; nothing else changes.

    Returns
    -------
    text : str
    added : list of str
        Roles added under ``sources:``.
    gone : list of str
        Roles configured in the file whose files init no longer finds (left for the user).
    """
    try:
        raw = yaml.safe_load(existing) or {}
    except yaml.YAMLError:
        return existing, [], []
    have = set((raw.get("sources") or {}).keys()) if isinstance(raw, dict) else set()
    found = {sp.role for sp in plan.sources}
    new = [sp for sp in plan.sources if sp.role not in have]
    gone = sorted(r for r in have - found)
    if not new:
        return existing, [], gone
    lines = existing.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^sources\s*:\s*(#.*)?$", ln)), None)
    block: list[str] = []
    for sp in new:
        block += render_source(sp)
    if start is None:
        out = lines + ["", "sources:"] + block
    else:
        end = len(lines)
        for j in range(start + 1, len(lines)):
            if _TOP_KEY.match(lines[j]):
                end = j
                break
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        out = lines[:end] + block + lines[end:]
    return "\n".join(out) + "\n", [sp.role for sp in new], gone
