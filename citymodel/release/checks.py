"""The checks a release is published on: blocking failures refuse it, the others are warnings."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ReleaseError, dataset_error


def evaluate_checks(checks: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[dict]]:
    """``(failed blocking checks, warnings, rows for release.json)`` of the checks given to
    :meth:`~citymodel.release.ReleaseBuilder.finalize` (see there for their keys)."""
    failed, warnings, rows = [], [], []
    for i, c in enumerate(checks or ()):
        if not isinstance(c, Mapping):
            raise dataset_error(ReleaseError, "release", f"check #{i} is a {type(c).__name__}, not a dict",
                                "pass checks as dicts with 'name' and 'passed'", record=str(i))
        name = str(c.get("name") or c.get("check_name") or f"check #{i}")
        asset = c.get("asset") or c.get("asset_key")
        if asset:
            name = f"{asset}:{name}"
        if "passed" not in c or not isinstance(c["passed"], (bool, int)):
            raise dataset_error(ReleaseError, "release", f"check {name!r} has no boolean 'passed'",
                                "give every check a 'passed': True/False", record=name)
        severity = str(c.get("severity", "ERROR")).upper()
        blocking = bool(c["blocking"]) if "blocking" in c else severity != "WARN"
        desc = str(c.get("description") or "")
        passed = bool(c["passed"])
        status = "skipped" if c.get("status") == "skipped" else ("pass" if passed else "fail")
        rows.append({"name": name, "passed": passed, "blocking": blocking, "description": desc, "status": status})
        if not passed:
            label = f"{name} ({desc})" if desc else name
            (failed if blocking else warnings).append(label)
    return failed, warnings, rows


def checks_from_quality_report(report: Mapping | str | os.PathLike) -> list[dict]:
    """Blocking checks for :meth:`ReleaseBuilder.finalize` from a ``quality/report.json``.

    One failed check per entry of ``summary.blocking_failures``, plus one passed check
    ``quality_report`` when there are none.
    """
    if not isinstance(report, Mapping):
        report = json.loads(Path(report).read_text(encoding="utf-8"))
    failures = list((report.get("summary") or {}).get("blocking_failures") or [])
    if not failures:
        return [{"name": "quality_report", "passed": True, "blocking": True,
                 "description": f"quality report status {report.get('status')!r}"}]
    return [{"name": f"quality/{f}", "passed": False, "blocking": True,
             "description": "blocking failure in the quality report"} for f in failures]
