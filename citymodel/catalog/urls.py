"""Where catalogs and distributions are read from: http(s) URLs, ``file:`` URLs and local paths.

The catalog URL of the deployment file and the download URLs of a catalog are either http(s) URLs
or local files (``file:`` URLs, or plain paths for a catalog on disk). :func:`to_url` turns a plain
path into a ``file:`` URL, so that the rest of the package (relative IRIs, the choice of fetcher)
sees URLs only; :func:`url_to_path` goes back to the path of a local file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname


def to_url(source: str | os.PathLike) -> str:
    """An http(s)/file URL for ``source`` (plain paths become absolute ``file:`` URLs)."""
    s = os.fspath(source)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s) or s.startswith("file:"):
        return s
    return Path(s).expanduser().resolve().as_uri()


def url_to_path(url: str) -> Path:
    """The local path of a ``file:`` URL or a plain path.

    Raises
    ------
    ValueError
        ``url`` has another scheme (http, https, ...).
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "":
            return Path(url)
        return Path(url2pathname(parsed.path))
    raise ValueError(f"not a file URL: {url}")
