"""Where accepted variant submissions live, and their versions.

Layout below the deployment's output folder::

    variants/submissions/<id>/<version>/variant.geojson    the accepted document, as submitted
    variants/submissions/<id>/<version>/submitted.city.json  (a CityJSON submission: the file as
                                                           submitted; variant.geojson is then the
                                                           variant document made of it)
    variants/submissions/<id>/<version>/submission.json    sha256, source, accepted time, summary
    variants/rejected/<stamp>-<name>.json, .txt            rejection reports (nothing else is written)
    variants/inbox/                                        the watched inbox folder (``variants.inbox_dir``)
    variants/inbox/done/, variants/inbox/rejected/         inbox files after their submission

Reading: :func:`versions`, :func:`read_submission`, :func:`list_submissions`,
:func:`current_submissions`, :func:`load`. Writing: :func:`submit` (validate, then write one new
version atomically, or the rejection report), :func:`process_inbox` (every file of the inbox once).

A re-submitted id is a new version (the highest + 1); the very same bytes as an existing version are
that version (returned without validating them again, nothing is written). Old versions are kept.
The partition key of a version is ``<id>.v<version>``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError, dataset_error
from ..fileio import atomic_directory, atomic_write_bytes, atomic_write_text
from .changes import Variant
from .document import parse_variant
from .validation import ValidationContext, VariantRejected, readable_report, rejection, size_problem, \
    validate_submission

#: names of inbox files that are still being written (left alone)
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")

KEY_RE = re.compile(r"^(?P<id>[a-z0-9][a-z0-9_-]{1,62})\.v(?P<version>[1-9][0-9]*)$")


def variants_dir(settings: Settings) -> Path:
    """``<output_dir>/variants``: submissions, work folders and the published variants."""
    return settings.output_dir / "variants"


def submissions_dir(settings: Settings) -> Path:
    return variants_dir(settings) / "submissions"


def rejected_dir(settings: Settings) -> Path:
    """``<output_dir>/variants/rejected``: the rejection reports."""
    return variants_dir(settings) / "rejected"


def inbox_dir(settings: Settings) -> Path:
    """The watched inbox (``variants.inbox_dir``, default ``<output_dir>/variants/inbox``)."""
    return settings.variants_inbox_dir


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
    doc = json.loads((submission_dir(settings, variant_id, version) / "variant.geojson").read_text(encoding="utf-8-sig"))
    return parse_variant(doc, settings.processing_crs, version=sub.version, sha256=sub.sha256,
                         source_name=sub.source_name)


# ================================================================================ writing
def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _safe_name(name: str) -> str:
    base = Path(str(name)).name or "variant"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base)[:100]


def find_by_sha256(settings: Settings, sha256: str) -> Submission | None:
    """The accepted version whose submitted bytes have this SHA-256, if any."""
    for sub in list_submissions(settings):
        if sub.sha256 == sha256:
            return sub
    return None


def write_rejection(settings: Settings, report: dict) -> Path:
    """Write a rejection report: ``variants/rejected/<stamp>-<name>.json`` (the report) and ``.txt``
    (readable). Returns the path of the ``.json``."""
    t = _now()
    stamp = t.strftime("%Y%m%dT%H%M%S") + f"{t.microsecond:06d}Z"
    base = f"{stamp}-{_safe_name(report.get('file') or 'variant')}"
    folder = rejected_dir(settings)
    path = folder / f"{base}.json"
    n = 2
    while path.exists():
        path = folder / f"{base}-{n}.json"
        n += 1
    report = dict(report, rejected=t.isoformat(timespec="seconds").replace("+00:00", "Z"))
    atomic_write_text(path.with_suffix(".txt"), readable_report(report) + "\n")
    atomic_write_text(path, json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    return path


def submit(data: bytes, source_name: str, settings: Settings, context: ValidationContext) -> Variant:
    """Validate a submitted file and store it as the next version of its variant.

    Parameters
    ----------
    data : bytes
        The file as submitted (a variant GeoJSON, or a CityJSON 2.0 file with ``"+variant"``).
    source_name : str
        Its name (recorded; not opened).
    settings : Settings
    context : ValidationContext
        See :func:`citymodel.variants.validation.context_for`.

    Returns
    -------
    Variant
        With ``version`` set. The very same bytes as an accepted version return that version.

    Raises
    ------
    VariantRejected
        The file is invalid; its report was written to ``variants/rejected/`` (``report_path``)
        and nothing else was written.
    """
    sha = hashlib.sha256(data).hexdigest()
    same = find_by_sha256(settings, sha)
    if same is not None:
        return load(settings, same.id, same.version)
    try:
        res = validate_submission(data, source_name, context)
    except VariantRejected as exc:
        exc.report_path = write_rejection(settings, exc.report)
        raise
    v = res.variant
    meta = v.meta
    for _ in range(20):   # another process may take a version number meanwhile: take the next one
        version = max(versions(settings, v.id), default=0) + 1
        record = {"schema_version": "1.0", "id": v.id, "version": version, "title": meta.title,
                  "description": meta.description, "author_role": meta.author_role, "created": meta.created,
                  "parent": None if meta.parent_id is None else {"id": meta.parent_id, "version": meta.parent_version},
                  "accepted": _now().isoformat(timespec="seconds").replace("+00:00", "Z"), "sha256": sha,
                  "source_name": Path(str(source_name)).name, "format": res.format, "bytes": len(data),
                  "summary": v.summary(), "skipped": list(res.skipped),
                  "files": {"document": "variant.geojson",
                            **({"submitted": "submitted.city.json"} if res.format == "cityjson" else {})}}
        try:
            with atomic_directory(submission_dir(settings, v.id, version)) as tmp:
                if res.format == "cityjson":
                    atomic_write_bytes(tmp / "submitted.city.json", data)
                    atomic_write_text(tmp / "variant.geojson", json.dumps(v.document, ensure_ascii=False, indent=1) + "\n")
                else:
                    atomic_write_bytes(tmp / "variant.geojson", data)
                atomic_write_text(tmp / "submission.json", json.dumps(record, ensure_ascii=False, indent=1) + "\n")
        except FileExistsError:
            continue
        return replace(v, version=version)
    raise dataset_error(ConfigError, "variants", f"could not find a free version number for {v.id!r}",
                        f"check the folder {submissions_dir(settings) / v.id}")


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists() or target.is_symlink():
        t = _now()
        target = folder / f"{t.strftime('%Y%m%dT%H%M%S')}{t.microsecond:06d}Z-{path.name}"
    os.replace(path, target)
    return target


def process_inbox(settings: Settings, context: ValidationContext, *,
                  settle_s: float | None = None) -> tuple[list[Variant], list[VariantRejected]]:
    """Submit every file of the inbox once; move it to ``done/`` or ``rejected/`` afterwards.

    Hidden files (``.*``), names ending in ``.tmp``/``.part``/``.partial``/``.crdownload`` and files
    younger than ``settle_s`` (default ``variants.inbox_settle_s``) are still being written and left
    for the next call. Symbolic links and files above ``variants.max_file_bytes`` are rejected
    without being read. A file accepted earlier (the same bytes) counts as accepted again. A file
    whose parent variant is accepted in the same call may name it.

    Returns
    -------
    (accepted, rejected)
        The accepted variants (with versions) and the rejections (``report_path`` set), in file
        name order.
    """
    inbox = inbox_dir(settings)
    inbox.mkdir(parents=True, exist_ok=True)
    settle = settings.variants.inbox_settle_s if settle_s is None else settle_s
    accepted: list[Variant] = []
    rejected: list[VariantRejected] = []
    now = time.time()
    for p in sorted(inbox.iterdir(), key=lambda q: q.name):
        name = p.name
        if name.startswith(".") or name.lower().endswith(_PARTIAL_SUFFIXES):
            continue
        st = p.lstat()
        if p.is_dir() and not p.is_symlink():
            continue
        if now - st.st_mtime < settle:
            continue
        exc: VariantRejected | None = None
        if p.is_symlink() or not p.is_file():
            exc = rejection(name, "", [{"feature": None, "field": None, "check": "file",
                                        "problem": "the inbox entry is a link or not a regular file",
                                        "fix": "copy the variant file itself into the inbox"}])
        elif st.st_size > context.limits.max_file_bytes:
            exc = rejection(name, "", [size_problem(st.st_size, context.limits)])
        if exc is not None:
            exc.report_path = write_rejection(settings, exc.report)
            rejected.append(exc)
            _move(p, inbox / "rejected")
            continue
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(context.limits.max_file_bytes + 1)
        try:
            v = submit(data, name, settings, context)
        except VariantRejected as r:
            rejected.append(r)
            _move(p, inbox / "rejected")
            continue
        accepted.append(v)
        context = context.with_variant(v.id, v.version)
        _move(p, inbox / "done")
    return accepted, rejected
