"""When and by what a release was made: UTC time stamps, the tool version and the code's commit.

As written into ``release.json``, ``catalog.jsonld`` and ``index.html``.
"""

from __future__ import annotations

import functools
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The installed distribution whose version names the code.
PACKAGE = "citymodel-pipeline"


def utc_now() -> datetime:
    """The current UTC time, whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso_utc(dt: datetime) -> str:
    """``dt`` as ISO 8601 UTC with seconds and ``Z`` (``2025-06-21T02:00:00Z``)."""
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    """The datetime of an ISO 8601 text (``Z`` accepted), or None when empty or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def tool_version() -> str:
    """The installed version of citymodel-pipeline (``unknown`` when not installed)."""
    try:
        from importlib.metadata import version
        return version("citymodel-pipeline")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_commit(root: str | None = None) -> str | None:
    """The git commit of the code (``HEAD`` of the repository holding this package), with
    ``+dirty`` appended when tracked files differ from it; None where the code is not a git
    checkout or git is missing (an installed wheel)."""
    where = Path(root) if root else Path(__file__).resolve().parents[2]
    if not (where / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "diff", "--quiet", "HEAD", "--"], capture_output=True,
                               timeout=30).returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) if head else None


def code_version() -> dict[str, Any]:
    """What made a release: ``{"package", "version", "commit"}`` (commit None where unknown)."""
    return {"package": PACKAGE, "version": tool_version(), "commit": git_commit()}


def code_version_label() -> str:
    """``citymodel-pipeline 0.1.0 (git 1a2b3c4d5e6f)``, or without the commit where it is unknown."""
    cv = code_version()
    commit = cv["commit"]
    return f"{cv['package']} {cv['version']}" + (f" (git {commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''})"
                                                 if commit else "")
