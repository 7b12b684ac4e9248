"""Where accepted variant submissions live, and their versions.

Layout below the deployment's output folder::

    variants/submissions/<id>/<version>/variant.geojson    the accepted document, as submitted
    variants/submissions/<id>/<version>/submission.json    sha256, source, accepted time, summary
    variants/rejected/<stamp>-<name>.json, .txt            rejection reports (nothing else is written)
    variants/inbox/                                        the watched inbox folder (configurable)

A re-submitted id is a new version (the highest + 1); the very same bytes as an existing version are
that version. Old versions are kept. The partition key of a version is ``<id>.v<version>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError, dataset_error
from .changes import Variant
from .document import parse_variant

KEY_RE = re.compile(r"^(?P<id>[a-z0-9][a-z0-9_-]{1,62})\.v(?P<version>[1-9][0-9]*)$")


def variants_dir(settings: Settings) -> Path:
    """``<output_dir>/variants``: submissions, work folders and the published variants."""
    return settings.output_dir / "variants"


def submissions_dir(settings: Settings) -> Path:
    return variants_dir(settings) / "submissions"


def submission_dir(settings: Settings, variant_id: str, version: int) -> Path:
    return submissions_dir(settings) / variant_id / str(int(version))


def partition_key(variant_id: str, version: int) -> str:
    return f"{variant_id}.v{int(version)}"


def parse_key(key: str) -> tuple[str, int]:
    """``'quartier-a.v2'`` -> ``('quartier-a', 2)``."""
    m = KEY_RE.match(key)
    if not m:
        raise dataset_error(ConfigError, "variants", f"{key!r} is not a variant partition key",
                            "use <variant id>.v<version>, e.g. quartier-a.v2")
    return m["id"], int(m["version"])


@dataclass(frozen=True)
class Submission:
    """One accepted version of a variant (what ``submission.json`` says)."""

    id: str
    version: int
    title: str
    author_role: str
    created: str
    accepted: str
    sha256: str
    source_name: str
    summary: dict

    @property
    def key(self) -> str:
        return partition_key(self.id, self.version)


def versions(settings: Settings, variant_id: str) -> list[int]:
    """The accepted versions of a variant, ascending."""
    d = submissions_dir(settings) / variant_id
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit() and (p / "submission.json").is_file())


def read_submission(settings: Settings, variant_id: str, version: int) -> Submission:
    d = submission_dir(settings, variant_id, version)
    try:
        m = json.loads((d / "submission.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise dataset_error(ConfigError, "variants", f"no accepted version {version} of variant {variant_id!r}",
                            "submit the variant first (citymodel variant submit FILE) or name an existing "
                            "version (citymodel variant list)", record=partition_key(variant_id, version)) from None
    return Submission(m["id"], int(m["version"]), m.get("title", ""), m.get("author_role", ""), m.get("created", ""),
                      m.get("accepted", ""), m.get("sha256", ""), m.get("source_name", ""), m.get("summary", {}))


def list_submissions(settings: Settings) -> list[Submission]:
    """Every accepted version of every variant, by id and version."""
    root = submissions_dir(settings)
    if not root.is_dir():
        return []
    return [read_submission(settings, d.name, v) for d in sorted(root.iterdir()) if d.is_dir()
            for v in versions(settings, d.name)]


def current_submissions(settings: Settings) -> list[Submission]:
    """The newest version of every variant."""
    out: dict[str, Submission] = {}
    for s in list_submissions(settings):
        out[s.id] = s
    return [out[k] for k in sorted(out)]


def load(settings: Settings, variant_id: str, version: int) -> Variant:
    """The typed variant of an accepted version (the stored, already validated document)."""
    sub = read_submission(settings, variant_id, version)
    doc = json.loads((submission_dir(settings, variant_id, version) / "variant.geojson").read_text(encoding="utf-8"))
    return parse_variant(doc, settings.processing_crs, version=sub.version, sha256=sub.sha256,
                         source_name=sub.source_name)
