"""When and by what a release was made: UTC time stamps and the tool version.

As written into ``release.json``, ``catalog.jsonld`` and ``index.html``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


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
