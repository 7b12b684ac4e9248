"""Verified, atomic, conditional downloads of distributions, and the record of what was fetched.

:func:`download` streams a distribution to a temporary file beside the target (through a fetcher,
:mod:`.fetchers`), verifies it (byte size, checksum, an optional hook such as the zip check) and
renames it atomically. What was fetched is recorded (in the caller's ``state`` or in
``<folder>/.download_state/<name>.json``), so that a second download of an unchanged distribution
transfers nothing. :func:`prune_downloads` removes what the current catalog no longer lists.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

from ..errors import DownloadError, SourceDataError, dataset_error
from ..fileio import atomic_write_text, file_digest
from .fetchers import CHECKSUM_ALGORITHMS, Fetcher, fetcher_for
from .formats import FORMAT_EXTENSIONS, format_of
from .model import Distribution, isoformat_or_none
from .policy import UrlPolicy
from .transfer import TransferLimits

#: Sub-folder of a download folder that holds the JSON state of each downloaded file.
STATE_DIR = ".download_state"


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` did: ``changed`` is False when nothing new was written."""

    path: Path
    changed: bool
    bytes: int
    sha256: str
    etag: str | None
    last_modified: str | None
    seconds: float


def local_name(distribution: Distribution) -> str:
    """A safe file name for a distribution: the URL's last path segment, else title + extension."""
    raw = unquote(urlparse(distribution.url or "").path).rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._")
    if not name or "." not in name:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", distribution.title).strip("._") or name or "download"
        try:
            ext = FORMAT_EXTENSIONS[format_of(distribution)]
        except SourceDataError:
            ext = ""
        name = base + ext
    return name


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True))


def _local_ok(path: Path, state: dict[str, Any]) -> bool:
    """The downloaded file is present and is what was recorded (size + mtime, else sha256)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_size != state.get("bytes"):
        return False
    if st.st_mtime_ns == state.get("mtime_ns"):
        return True
    if file_digest(path, "sha256") == state.get("sha256"):
        state["mtime_ns"] = st.st_mtime_ns
        return True
    return False


def _catalog_checksum(d: Distribution) -> str | None:
    return f"{d.checksum_algorithm}:{d.checksum_value}" if d.checksum_value else None


def _catalog_unchanged(d: Distribution, state: dict[str, Any]) -> bool:
    """The catalog still describes what was fetched (checksum and/or modified date recorded)."""
    signal = False
    if d.checksum_value:
        if state.get("catalog_checksum") != _catalog_checksum(d):
            return False
        signal = True
    if d.modified is not None:
        if state.get("catalog_modified") != isoformat_or_none(d.modified):
            return False
        signal = True
    if d.byte_size is not None and d.byte_size != state.get("bytes"):
        return False
    return signal


def download(distribution: Distribution, target_dir: str | os.PathLike, *,
             dataset: str = "distribution", filename: str | None = None,
             state: dict[str, Any] | None = None, fetcher: Fetcher | None = None,
             timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0,
             force: bool = False, policy: UrlPolicy | None = None,
             limits: TransferLimits | None = None, max_bytes: int | None = None,
             verify: Callable[[Path, Path, str], None] | None = None) -> DownloadResult:
    """Download a distribution into ``target_dir``, verified, atomically, only when changed.

    The URL is first checked by ``policy`` (:class:`~citymodel.catalog.policy.UrlPolicy`: scheme,
    host). The body is streamed to a temporary file in ``target_dir``, checked against
    ``dcat:byteSize``, the spdx checksum and ``verify``, then renamed with :func:`os.replace`; a
    failed download leaves no file under the final name and records nothing. What was fetched
    (ETag, Last-Modified, the catalog's modified date and checksum, size, sha256) is recorded in
    ``state`` if given (the caller persists it), else in ``target_dir/.download_state/<name>.json``.
    Next time nothing is transferred when the catalog's checksum / modified date are unchanged and
    the file is intact, or when the server answers a conditional GET with 304; ``changed`` is then
    False (it is also False when a transfer brought the same bytes).

    Parameters
    ----------
    distribution : Distribution
    target_dir : path
        Folder of the download (created).
    dataset : str
        Dataset identifier or role, named in errors.
    filename : str, optional
        File name in ``target_dir``; default :func:`local_name`.
    state : dict, optional
        Download record kept by the caller instead of the state file; updated in place.
    fetcher : Fetcher, optional
        Default: picked from the URL scheme with ``timeout_s``, ``retries``, ``backoff_s``.
    force : bool
        Download even if the record says the file is current.
    policy : UrlPolicy, optional
        Where the catalog may send the download (default: no check of the URL itself; redirects
        stay on its host).
    limits : TransferLimits, optional
        Deadline and minimum rate of the default fetcher.
    max_bytes : int, optional
        Largest file accepted (``quality.max_file_bytes``); ``dcat:byteSize`` above it fails
        before any request.
    verify : callable, optional
        ``verify(tmp_path, final_path, sha256)`` runs on the complete, checksum-verified temporary
        file before it is renamed and recorded (e.g. :func:`~citymodel.catalog.archives.zip_verifier`);
        an exception leaves nothing behind.

    Raises
    ------
    DownloadError
        Refused by the policy, not found (404), retries exhausted (transient), deadline passed,
        too large, size or checksum mismatch, unsupported algorithm, refused by ``verify``.
    """
    t0 = time.perf_counter()
    url = distribution.url
    if not url:
        raise dataset_error(DownloadError, dataset,
                            f"distribution {distribution.title!r} has neither dcat:downloadURL nor "
                            f"dcat:accessURL", "add a dcat:downloadURL to the distribution in the catalog")
    if policy is not None:
        policy.check_download(url, dataset=dataset)
    if max_bytes is not None and distribution.byte_size is not None and distribution.byte_size > max_bytes:
        raise dataset_error(DownloadError, dataset,
                            f"distribution {url} is {distribution.byte_size} bytes (dcat:byteSize), more "
                            f"than the {max_bytes} bytes allowed (quality.max_file_bytes); nothing was "
                            f"downloaded", "check that the catalog names the right file; if it does, "
                            "raise quality.max_file_bytes for this role in the deployment file")
    alg = distribution.checksum_algorithm
    if distribution.checksum_value and alg not in CHECKSUM_ALGORITHMS:
        raise dataset_error(DownloadError, dataset,
                            f"distribution {url} has a checksum with algorithm {alg!r}, which "
                            f"is not supported (supported: {', '.join(sorted(CHECKSUM_ALGORITHMS))})",
                            "publish an spdx:checksumAlgorithm_sha256 checksum in the catalog")
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    name = filename or local_name(distribution)
    final = target / name
    state_path = None if state is not None else target / STATE_DIR / f"{name}.json"
    record: dict[str, Any] = state if state is not None else _load_state(state_path)  # type: ignore[arg-type]

    def result(changed: bool) -> DownloadResult:
        return DownloadResult(final, changed, int(record["bytes"]), record["sha256"],
                              record.get("etag"), record.get("last_modified"),
                              time.perf_counter() - t0)

    def persist() -> None:
        if state_path is not None:
            _save_state(state_path, record)

    conditional = None
    local_intact = record.get("url") == url and _local_ok(final, record)
    if not force and local_intact:
        if _catalog_unchanged(distribution, record):
            persist()
            return result(False)
        conditional = {"etag": record.get("etag"), "last_modified": record.get("last_modified")}

    fetcher = fetcher or fetcher_for(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
                                     policy=policy, limits=limits)
    algorithms = [alg] if distribution.checksum_value and alg else []
    out = fetcher.fetch(url, target, name, label=dataset, conditional=conditional,
                        expected_size=distribution.byte_size, algorithms=algorithms,
                        max_bytes=max_bytes)
    if out.not_modified:
        if distribution.checksum_value and record.get("catalog_checksum") != _catalog_checksum(distribution):
            # the server says unchanged but the catalog's checksum differs from what we recorded:
            # verify the local file against the catalog before trusting it
            if file_digest(final, CHECKSUM_ALGORITHMS[alg]) != distribution.checksum_value.lower():
                return download(distribution, target, dataset=dataset, filename=name, state=state,
                                fetcher=fetcher, force=True, policy=policy, max_bytes=max_bytes,
                                verify=verify)
        record.update(catalog_modified=isoformat_or_none(distribution.modified),
                      catalog_checksum=_catalog_checksum(distribution),
                      etag=out.etag or record.get("etag"),
                      last_modified=out.last_modified or record.get("last_modified"))
        persist()
        return result(False)

    tmp = out.tmp_path
    try:
        if distribution.byte_size is not None and out.bytes != distribution.byte_size:
            raise dataset_error(DownloadError, dataset,
                                f"{url} delivered {out.bytes} bytes but the catalog's dcat:byteSize "
                                f"is {distribution.byte_size}",
                                "the catalog is out of date or the file is wrong: correct dcat:byteSize "
                                "or re-publish the file")
        if distribution.checksum_value:
            got = out.digests.get(alg, "")
            if got != distribution.checksum_value.lower():
                raise dataset_error(DownloadError, dataset,
                                    f"{url}: {alg} checksum mismatch (catalog "
                                    f"{distribution.checksum_value}, downloaded file {got})",
                                    "the file changed without the catalog (or was corrupted): "
                                    "update spdx:checksumValue in the catalog or re-publish the file")
        changed = not (local_intact and record.get("sha256") == out.digests["sha256"])
        if changed:
            if verify is not None:
                verify(tmp, final, out.digests["sha256"])
            os.replace(tmp, final)
        else:  # the same bytes again: keep the file (and its mtime) as it is
            tmp.unlink(missing_ok=True)
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    st = final.stat()
    record.update(url=url, etag=out.etag, last_modified=out.last_modified,
                  catalog_modified=isoformat_or_none(distribution.modified),
                  catalog_checksum=_catalog_checksum(distribution),
                  bytes=out.bytes, sha256=out.digests["sha256"], digests=out.digests,
                  mtime_ns=st.st_mtime_ns,
                  fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    persist()
    return result(changed)



def prune_downloads(folder: str | os.PathLike, keep: set[str] | list[str]) -> list[Path]:
    """Remove from a dataset's download folder what the current catalog no longer lists.

    Files (and their download records and extraction folders ``<name>.<sha>.d`` / ``<name>.d``)
    whose name is not in ``keep`` are removed. Temporary files of downloads in progress (names
    starting with a dot) are left alone. Returns the removed paths.
    """
    import shutil

    root = Path(folder)
    keep = set(keep)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    extraction = re.compile(r"^(?P<name>.+?)(\.[0-9a-f]{16})?\.d$")
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            m = extraction.match(child.name)
            if m and m.group("name") not in keep:
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        elif child.name not in keep:
            child.unlink(missing_ok=True)
            removed.append(child)
    state_dir = root / STATE_DIR
    if state_dir.is_dir():
        for rec in sorted(state_dir.glob("*.json")):
            if rec.name[:-len(".json")] not in keep:
                rec.unlink(missing_ok=True)
                removed.append(rec)
    return removed
