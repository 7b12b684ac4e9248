"""The quality report: ``report.json`` and a self-contained ``report.html`` (no dagster).

:func:`write_report` writes both files into ``out_dir`` (in a release: ``<release>/quality/``),
each atomically (temporary file in the same folder, then rename).

Input: one result dict per dataset or tile
------------------------------------------
::

    {
      "dataset": "jena-sample-baumkataster",   # dataset identifier (or the tile id); required
      "role": "trees",                          # role, or "lidar" for LiDAR tile statistics
      "tile": None,                             # tile id for tile-shaped results, else None
      "suite": SuiteResult | dict | None,       # quality.suites.run_suite(...) or its .to_dict()
      "checks": [                               # further checks outside great-expectations
        {"name": "quarantine_share", "passed": True, "severity": "ERROR" | "WARN",
         "description": "...", "metadata": {...}},
      ],
      "counts": {"records": 1200, "valid": 1187, "quarantined": 13},   # any ints, free keys
    }

An entry's status is ``fail`` when a blocking expectation (severity ``ERROR``) or an ``ERROR``
check failed, ``warn`` when only ``WARN`` ones failed, ``pass`` otherwise; ``skipped`` when the
result says ``"skipped": "<reason>"`` (nothing was checked: a role left out of the deployment
file); a check whose dict says ``"status": "skipped"`` is shown as skipped, not passed. The
report's status is the worst of its entries (skipped ones do not count).

``buildings`` (optional) is the summary of the reconstructed buildings
(:func:`citymodel.lod2.summary.quality_summary`): methods, valid and LoD1 shares, the LoD1 blocks'
height sources, and the truth-free distance between each building's points and its roof.

``model`` (optional, :func:`model_details`) adds what the buildings summary leaves out: roof
models, the fallbacks' reasons, the roof fit RMSE and the validity codes; ``analysis_checks``
(optional) lists the latest result of every check of the model and the analysis layers (reported
here, not judged: the release checks the blocking ones itself).

``states`` (optional) says which results are not from this refresh: one dict per staged part whose
staging failed or was not redone, ``{"role", "tile", "state": "carried_over" | "degraded" | "failed",
"text": "..."}`` (:mod:`citymodel.release.contents`). The entry of that role and tile gets ``state``
and ``state_text`` (its figures are those of the earlier run named in the text); a failed part without
an entry gets one with status ``fail``; ``summary.not_current`` lists them all in words.

``quarantine`` is the concatenation of the quarantine tables of
:func:`citymodel.vector.validate_records` (columns ``dataset``, ``role``, ``record_id``, ``reason``,
``geometry_wkt``, ``values_json``, ``reason_codes``); it may be empty or None.

Output: ``report.json``
-----------------------
::

    {
      "report_version": 1,
      "generated_at": "2025-06-21T02:00:00+00:00",
      "status": "pass" | "warn" | "fail",
      "summary": {"entries": 6, "pass": 4, "warn": 1, "fail": 1, "skipped": 0, "quarantined": 13,
                  "blocking_failures": ["trees/geometry_valid", ...],
                  "not_current": ["lidar/32_682_5645: carried over from ...: ...", ...]},
      "entries": [
        {"dataset", "role", "tile", "status", "counts", "state", "state_text",
         "suite": {"role", "success", "blocking", "row_count", "expectations": [
                     {"name", "success", "severity", "blocking", "observed", "kwargs",
                      "expectation", "description"}]} | None,
         "checks": [...],
         "quarantine": {"total": 13, "by_reason": {"duplicate_id": 2, ...}}}
      ],
      "quarantine": {"total": 13, "by_dataset": {...}, "by_reason": {...},
                     "records": [{"dataset", "role", "record_id", "reason", "reason_codes",
                                  "geometry_wkt", "values_json"}]},
      "buildings": {"buildings", "methods", "valid_share", "lod1_fallback_share", "height_sources",
                    "roof_types", "slender", "point_to_roof": {"median_of_medians_m", "median_p90_m",
                    "p90_p90_m", "far_share", "far_threshold_m", "farthest": [...]}} | absent,
      "model": {"buildings", "roof_models", "fallbacks": {"count", "by_reason"},
                "roof_rmse_m": {"count", "median", "p90", "max"}, "validity": {"valid", "by_code"}} | absent,
      "analysis_checks": {"total", "failed", "checks": [{"asset", "name", "partition", "passed",
                                                         "blocking", "description"}]} | absent
    }
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from citymodel.fileio import atomic_write_text, json_safe

REPORT_VERSION = 1
_STATUS_ORDER = {"pass": 0, "warn": 1, "fail": 2}


def write_report(results: list[dict], quarantine: pd.DataFrame | None, out_dir: str | os.PathLike, *,
                 title: str = "Quality report", generated_at: datetime | None = None,
                 max_html_records: int = 2000, buildings: dict | None = None, model: dict | None = None,
                 analysis_checks: list[dict] | None = None, states: list[dict] | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    results : list of dict
        One dict per dataset or tile (shape in the module docstring).
    quarantine : pandas.DataFrame or None
        Quarantined records of all datasets.
    out_dir : path
        Folder to write into (created if missing), e.g. ``<release>/quality``.
    title : str
        Title of the HTML page.
    generated_at : datetime, optional
        Run time; now (UTC) by default.
    max_html_records : int
        Quarantined records listed in the HTML (all of them are in the JSON).
    buildings : dict, optional
        Summary of the reconstructed buildings (:func:`citymodel.lod2.summary.quality_summary`).
    model : dict, optional
        :func:`model_details` of the reconstructed buildings.
    analysis_checks : list of dict, optional
        The latest result of each check of the model and the analysis layers (``asset``, ``name``,
        ``partition``, ``passed``, ``blocking``, ``description``).
    states : list of dict, optional
        Results that are not from this refresh (shape in the module docstring).

    Returns
    -------
    (Path, Path)
        Paths of ``report.json`` and ``report.html``.
    """
    report = build_report(results, quarantine, generated_at=generated_at, buildings=buildings, model=model,
                          analysis_checks=analysis_checks, states=states)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    html_path = out / "report.html"
    _atomic_write(json_path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
    _atomic_write(html_path, render_html(report, title=title, max_records=max_html_records))
    return json_path, html_path


def build_report(results: list[dict], quarantine: pd.DataFrame | None, *,
                 generated_at: datetime | None = None, buildings: dict | None = None,
                 model: dict | None = None, analysis_checks: list[dict] | None = None,
                 states: list[dict] | None = None) -> dict:
    """The report as a JSON-safe dict (what ``report.json`` holds)."""
    when = (generated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    q = _quarantine_frame(quarantine)
    entries = []
    blocking_failures = []
    for i, res in enumerate(results):
        if "dataset" not in res:
            raise ValueError(f"quality result #{i} has no 'dataset' key (keys: {sorted(res)}). "
                             f"Fix: give every result a 'dataset' (identifier or tile id)")
        suite = res.get("suite")
        if suite is not None and not isinstance(suite, dict):
            suite = suite.to_dict()
        suite = _json_safe(suite)
        checks = [_json_safe(dict(c)) for c in res.get("checks", []) or []]
        status = "skipped" if res.get("skipped") else _entry_status(suite, checks)
        label = "/".join(str(x) for x in (res["dataset"], res.get("tile")) if x)
        for e in (suite or {}).get("expectations", []):
            if not e.get("success") and e.get("blocking"):
                blocking_failures.append(f"{label}/{e['name']}")
        for c in checks:
            if not c.get("passed") and c.get("severity", "ERROR") == "ERROR":
                blocking_failures.append(f"{label}/{c.get('name')}")
        mine = q[q["dataset"] == res["dataset"]] if len(q) else q
        if res.get("role") and len(mine):
            mine = mine[mine["role"].isna() | (mine["role"] == res["role"])]
        entries.append({
            "dataset": res["dataset"], "role": res.get("role"), "tile": res.get("tile"), "status": status,
            **({"skipped": str(res["skipped"])} if res.get("skipped") else {}),
            "counts": _json_safe(dict(res.get("counts") or {})), "suite": suite, "checks": checks,
            "quarantine": {"total": int(len(mine)), "by_reason": _by_reason(mine)},
        })
    not_current = _apply_states(entries, states or [])
    counts = Counter(e["status"] for e in entries)
    overall = max((e["status"] for e in entries if e["status"] != "skipped"), key=_STATUS_ORDER.__getitem__,
                  default="pass")
    records = [_json_safe(r) for r in q.to_dict(orient="records")]
    extra = {"buildings": _json_safe(buildings)} if buildings is not None else {}
    if model is not None:
        extra["model"] = _json_safe(model)
    if analysis_checks is not None:
        checks = [_json_safe(dict(c)) for c in analysis_checks]
        extra["analysis_checks"] = {"total": len(checks), "failed": sum(1 for c in checks if not c.get("passed")),
                                    "checks": checks}
    return {
        "report_version": REPORT_VERSION,
        "generated_at": when,
        "status": overall,
        "summary": {"entries": len(entries), "pass": counts.get("pass", 0), "warn": counts.get("warn", 0),
                    "fail": counts.get("fail", 0), "skipped": counts.get("skipped", 0), "quarantined": int(len(q)),
                    "blocking_failures": blocking_failures, "not_current": not_current},
        "entries": entries,
        "quarantine": {"total": int(len(q)),
                       "by_dataset": {str(k): int(v) for k, v in q["dataset"].value_counts().items()}
                       if len(q) else {},
                       "by_reason": _by_reason(q), "records": records},
        **extra,
    }


def _apply_states(entries: list[dict], states: list[dict]) -> list[str]:
    """Mark the entries whose results are not from this refresh; add entries for failed parts that
    have none. Returns the states in words."""
    out = []
    for st in states:
        label = "/".join(str(x) for x in (st["role"], st.get("tile")) if x)
        text = f"{label}: {st['text']}"
        out.append(text)
        hits = [e for e in entries if e.get("role") == st["role"] and e.get("tile") == st.get("tile")]
        for e in hits:
            e["state"], e["state_text"] = st["state"], st["text"]
        if not hits:
            entries.append({"dataset": st.get("dataset") or st["role"], "role": st["role"], "tile": st.get("tile"),
                            "status": "fail" if st["state"] == "failed" else "warn", "counts": {}, "suite": None,
                            "checks": [], "quarantine": {"total": 0, "by_reason": {}},
                            "state": st["state"], "state_text": st["text"]})
    return out


def _quarantine_frame(quarantine) -> pd.DataFrame:
    cols = ["dataset", "role", "record_id", "reason", "reason_codes", "geometry_wkt", "values_json"]
    if quarantine is None or len(quarantine) == 0:
        return pd.DataFrame(columns=cols)
    q = pd.DataFrame(quarantine).reset_index(drop=True)
    for c in cols:
        if c not in q.columns:
            q[c] = None
    return q[cols + [c for c in q.columns if c not in cols]]


def _by_reason(q: pd.DataFrame) -> dict[str, int]:
    counter: Counter = Counter()
    for codes, reason in zip(q.get("reason_codes", []), q.get("reason", [])):
        if isinstance(codes, str) and codes:
            counter.update(codes.split(","))
        elif isinstance(reason, str):
            counter.update(part.strip() for part in reason.split(";"))
    return dict(counter.most_common())


def _entry_status(suite: dict | None, checks: list[dict]) -> str:
    status = "pass"
    for e in (suite or {}).get("expectations", []):
        if not e.get("success"):
            status = "fail" if e.get("blocking") else max(status, "warn", key=_STATUS_ORDER.__getitem__)
    for c in checks:
        if not c.get("passed"):
            status = ("fail" if c.get("severity", "ERROR") == "ERROR"
                      else max(status, "warn", key=_STATUS_ORDER.__getitem__))
    return status


def _json_safe(v: Any) -> Any:
    return json_safe(v)


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)


# ------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2733;max-width:80rem}
h1{margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #ccd3db;padding-bottom:.2rem}
h3{margin-bottom:.3rem} .meta{color:#5a6673}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.92rem;width:100%}
th,td{border:1px solid #d5dbe1;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef2f5} tr:nth-child(even) td{background:#fafbfc}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.6rem;font-weight:600;font-size:.85rem}
.pass{background:#d7f2dc;color:#185c26} .warn{background:#fdf0c8;color:#7a5800}
.fail{background:#f9d3d0;color:#8a1c12} .skipped{background:#e4e6ea;color:#3b4049} code{font-size:.85rem;word-break:break-all}
details{margin:.2rem 0}
"""


def _badge(status: str) -> str:
    return f'<span class="badge {status}">{html.escape(status.upper())}</span>'


def _short_json(v: Any, n: int = 300) -> str:
    s = json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[: n - 3] + "..."


def _codes(value) -> list[str]:
    """Validity codes of one building: a list, an array, or text such as ``"203,104"``/``"[203]"``."""
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if hasattr(value, "__iter__") and not isinstance(value, str):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip("[] ")
    return [c.strip(" '\"") for c in text.replace(";", ",").split(",") if c.strip(" '\"")]


def model_details(buildings: pd.DataFrame) -> dict:
    """What the buildings summary leaves out: roof models, the fallbacks' reasons, the roof fit
    RMSE and the validity codes.

    Parameters
    ----------
    buildings : pandas.DataFrame
        One row per building with ``method``, ``roof_model``, ``fallback_reason``, ``roof_rmse_m``
        and ``validity_codes`` (missing columns are left out).

    Returns
    -------
    dict
        ``buildings``; ``roof_models`` (counts); ``fallbacks`` (``count`` and ``by_reason`` of the
        LoD1 blocks); ``roof_rmse_m`` (``count``, ``median``, ``p90``, ``max`` over the buildings
        with a fitted roof); ``validity`` (``valid``: buildings without a code, ``by_code``).
    """
    n = int(len(buildings))
    out: dict[str, Any] = {"buildings": n}
    if "roof_model" in buildings:
        v = buildings["roof_model"].fillna("").astype(str)
        out["roof_models"] = {str(k): int(c) for k, c in v[v != ""].value_counts().items()}
    if "method" in buildings:
        fb = buildings[buildings["method"].astype(str) == "lod1_fallback"]
        reasons = (fb["fallback_reason"].fillna("(none given)").astype(str) if "fallback_reason" in fb
                   else pd.Series([], dtype=str))
        out["fallbacks"] = {"count": int(len(fb)),
                            "by_reason": {str(k): int(c) for k, c in reasons.value_counts().items()}}
    if "roof_rmse_m" in buildings:
        r = pd.to_numeric(buildings["roof_rmse_m"], errors="coerce").dropna()
        out["roof_rmse_m"] = ({"count": int(len(r)), "median": round(float(r.median()), 4),
                               "p90": round(float(r.quantile(0.9)), 4), "max": round(float(r.max()), 4)}
                              if len(r) else {"count": 0})
    if "validity_codes" in buildings:
        codes = [_codes(v) for v in buildings["validity_codes"]]
        by_code: Counter = Counter(c for cs in codes for c in cs)
        out["validity"] = {"valid": sum(1 for cs in codes if not cs),
                           "by_code": {str(k): int(v) for k, v in by_code.most_common()}}
    return out


def _model_html(m: dict) -> list[str]:
    esc = html.escape

    def counts(d) -> str:
        return ", ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in (d or {}).items()) or "–"

    fb = m.get("fallbacks") or {}
    val = m.get("validity") or {}
    return ["<h2>3D model: fits, fallbacks, validity</h2><table>",
            f"<tr><th>Roof models</th><td>{counts(m.get('roof_models'))}</td></tr>",
            f"<tr><th>Fallbacks (LoD1 blocks)</th><td>{fb.get('count', 0)}; reasons: {counts(fb.get('by_reason'))}"
            "</td></tr>",
            f"<tr><th>Roof fit RMSE (m)</th><td>{counts(m.get('roof_rmse_m'))}</td></tr>",
            f"<tr><th>Validity (val3dity rules)</th><td>{val.get('valid', 0)} of {m.get('buildings', 0)} without a "
            f"code; codes: {counts(val.get('by_code'))}</td></tr>", "</table>"]


def _checks_html(a: dict) -> list[str]:
    esc = html.escape
    out = [f"<h2>Checks of the model and the analyses ({a['total']}, {a['failed']} failed)</h2>"]
    if a["checks"]:
        out.append("<table><tr><th>Asset</th><th>Check</th><th>Partition</th><th>Result</th><th>Description</th></tr>")
        for c in a["checks"]:
            res = "pass" if c.get("passed") else ("fail" if c.get("blocking") else "warn")
            out.append(f"<tr><td>{esc(str(c.get('asset')))}</td><td><code>{esc(str(c.get('name')))}</code></td>"
                       f"<td>{esc(str(c.get('partition') or ''))}</td><td>{_badge(res)}</td>"
                       f"<td>{esc(str(c.get('description') or ''))}</td></tr>")
        out.append("</table>")
    return out


def _buildings_html(b: dict) -> list[str]:
    """The buildings section: how they were built, and how far their points lie from their roofs."""
    esc = html.escape

    def counts(d: dict) -> str:
        return ", ".join(f"{esc(str(k))}: {v}" for k, v in (d or {}).items()) or "–"

    def pct(v) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    out = ["<h2>Buildings (LoD2)</h2><table>",
           f"<tr><th>Buildings</th><td>{b.get('buildings', 0)}</td></tr>",
           f"<tr><th>Methods</th><td>{counts(b.get('methods'))}</td></tr>",
           f"<tr><th>Valid solids</th><td>{pct(b.get('valid_share'))}</td></tr>",
           f"<tr><th>LoD1 blocks (fallbacks)</th><td>{pct(b.get('lod1_fallback_share'))}; height from: "
           f"{counts(b.get('height_sources'))}</td></tr>",
           f"<tr><th>Roof types (AdV)</th><td>{counts(b.get('roof_types'))}</td></tr>",
           f"<tr><th>Towers and masts</th><td>{b.get('slender', 0)}</td></tr>"]
    d = b.get("point_to_roof") or {}
    if d.get("buildings"):
        out.append(f"<tr><th>Distance of the points to their roof</th><td>median of the buildings' medians "
                   f"{d['median_of_medians_m']} m; 90th percentile per building: median {d['median_p90_m']} m, "
                   f"90 % of the buildings below {d['p90_p90_m']} m; {pct(d['far_share'])} of the buildings "
                   f"have a 90th percentile above {d['far_threshold_m']} m ({d['buildings']} buildings measured)"
                   "</td></tr>")
    out.append("</table>")
    if d.get("farthest"):
        out.append("<p>Buildings whose points lie farthest from their roofs (truth-free: a roof part missed, a "
                   "roof at the wrong height, a neighbour's or a tree's points):</p>")
        out.append("<table><tr><th>Building</th><th>90th percentile (m)</th><th>Median (m)</th><th>Method</th>"
                   "<th>Roof type</th></tr>")
        for r in d["farthest"]:
            out.append(f"<tr><td><code>{esc(str(r['building_id']))}</code></td><td>{r['p90_m']}</td>"
                       f"<td>{r['median_m']}</td><td>{esc(str(r['method']))}</td><td>{r['roofType']}</td></tr>")
        out.append("</table>")
    return out


def render_html(report: dict, *, title: str = "Quality report", max_records: int = 2000) -> str:
    """A self-contained HTML page (inline CSS, no scripts) of a report dict."""
    esc = html.escape
    s = report["summary"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{esc(title)} {_badge(report['status'])}</h1>",
           f'<p class="meta">Generated {esc(report["generated_at"])} · {s["entries"]} datasets/tiles: '
           f'{s["pass"]} pass, {s["warn"]} warn, {s["fail"]} fail, {s.get("skipped", 0)} skipped · '
           f'{s["quarantined"]} quarantined records</p>']
    if s["blocking_failures"]:
        out.append("<p><strong>Blocking failures:</strong> "
                   + ", ".join(f"<code>{esc(x)}</code>" for x in s["blocking_failures"]) + "</p>")
    if s.get("not_current"):
        out.append("<p><strong>Not from this refresh</strong> (staging failed or was not redone; the figures "
                   "below are those of the run named):</p><ul>"
                   + "".join(f"<li>{esc(x)}</li>" for x in s["not_current"]) + "</ul>")

    out.append("<h2>Summary</h2><table><tr><th>Dataset</th><th>Role</th><th>Tile</th><th>Status</th>"
               "<th>Counts</th><th>Quarantined</th><th>Failed expectations and checks</th></tr>")
    for e in report["entries"]:
        failed = [x["name"] for x in (e["suite"] or {}).get("expectations", []) if not x.get("success")]
        failed += [c.get("name", "?") for c in e["checks"] if not c.get("passed")]
        counts = ", ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in e["counts"].items())
        out.append(f"<tr><td>{esc(str(e['dataset']))}</td><td>{esc(str(e['role'] or ''))}</td>"
                   f"<td>{esc(str(e['tile'] or ''))}</td><td>{_badge(e['status'])}</td><td>{counts}</td>"
                   f"<td>{e['quarantine']['total']}</td>"
                   f"<td>{', '.join(f'<code>{esc(n)}</code>' for n in failed)}</td></tr>")
    out.append("</table>")

    out.append("<h2>Expectations per dataset</h2>")
    for e in report["entries"]:
        head = " · ".join(esc(str(x)) for x in (e["dataset"], e["role"], e["tile"]) if x)
        out.append(f"<h3>{head} {_badge(e['status'])}</h3>")
        rows = list((e["suite"] or {}).get("expectations", []))
        rows += [{"name": c.get("name"), "success": c.get("passed"), "severity": c.get("severity", "ERROR"),
                  "description": c.get("description", ""), "observed": c.get("metadata", {}),
                  "status": c.get("status")}
                 for c in e["checks"]]
        if e.get("skipped"):
            out.append(f"<p class='meta'>Skipped: {esc(e['skipped'])}</p>")
            continue
        if not rows:
            out.append("<p class='meta'>No expectations ran.</p>")
            continue
        out.append("<table><tr><th>Expectation</th><th>Severity</th><th>Result</th><th>Description</th>"
                   "<th>Observed</th></tr>")
        for x in rows:
            ok = bool(x.get("success"))
            res = ("skipped" if x.get("status") == "skipped" else "pass" if ok
                   else "fail" if x.get("severity") == "ERROR" else "warn")
            out.append(f"<tr><td><code>{esc(str(x.get('name')))}</code></td><td>{esc(str(x.get('severity')))}</td>"
                       f"<td>{_badge(res)}</td><td>{esc(str(x.get('description', '')))}</td>"
                       f"<td><code>{esc(_short_json(x.get('observed')))}</code></td></tr>")
        out.append("</table>")
        if e["quarantine"]["total"]:
            reasons = ", ".join(f"{esc(k)}: {v}" for k, v in e["quarantine"]["by_reason"].items())
            out.append(f"<p>Quarantined: {e['quarantine']['total']} ({reasons})</p>")

    if report.get("buildings"):
        out += _buildings_html(report["buildings"])
    if report.get("model"):
        out += _model_html(report["model"])
    if report.get("analysis_checks") is not None:
        out += _checks_html(report["analysis_checks"])

    q = report["quarantine"]
    out.append(f"<h2>Quarantined records ({q['total']})</h2>")
    if q["total"]:
        out.append("<p>By reason: " + ", ".join(f"{esc(k)}: {v}" for k, v in q["by_reason"].items()) + "</p>")
        out.append("<table><tr><th>Dataset</th><th>Role</th><th>Record</th><th>Reason</th><th>Values</th></tr>")
        for r in q["records"][:max_records]:
            values = r.get("values_json") or ""
            out.append(f"<tr><td>{esc(str(r.get('dataset')))}</td><td>{esc(str(r.get('role') or ''))}</td>"
                       f"<td>{esc(str(r.get('record_id') if r.get('record_id') is not None else '(no id)'))}</td>"
                       f"<td>{esc(str(r.get('reason')))}</td>"
                       f"<td><details><summary>attributes</summary><code>{esc(str(values))}</code>"
                       f"</details></td></tr>")
        out.append("</table>")
        if q["total"] > max_records:
            out.append(f"<p class='meta'>{q['total'] - max_records} more records are listed in report.json.</p>")
    else:
        out.append("<p class='meta'>No record was quarantined.</p>")
    out.append("</body></html>")
    return "\n".join(out)
