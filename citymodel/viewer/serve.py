"""Serve the output folder over HTTP for a quick look at the releases and their viewer.

A static file server (the standard library's, threaded) with the media types the viewer needs
(ES modules as JavaScript, ``.glb``, ``.wasm``, ``.pnts``, ``.geojson``) and no directory
escapes. Any other static web server works the same way; this one exists so that
``citymodel serve`` needs nothing installed.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from ..errors import ConfigError, dataset_error
from ..release import latest_release

__all__ = ["StaticServer", "viewer_path", "MEDIA_TYPES"]

MEDIA_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
    ".geojson": "application/geo+json", ".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
    ".b3dm": "application/octet-stream", ".pnts": "application/octet-stream", ".i3dm": "application/octet-stream",
    ".wasm": "application/wasm", ".f32": "application/octet-stream", ".png": "image/png",
    ".jsonld": "application/ld+json", ".css": "text/css", ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml", ".tif": "image/tiff", ".csv": "text/csv; charset=utf-8",
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MEDIA_TYPES}

    def log_message(self, format, *args):  # noqa: A002 - the standard library's signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


class StaticServer:
    """A threaded static HTTP server over ``root`` (``with StaticServer(root) as s: s.url(...)``).

    Parameters
    ----------
    root : path
        The folder served (the output folder).
    host : str
        Interface (``127.0.0.1``: this machine only; ``0.0.0.0``: the network).
    port : int
        0 picks a free port.
    """

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise dataset_error(ConfigError, "serve", f"folder {self.root} does not exist",
                                "run the pipeline first (make run) or give an existing output folder")
        handler = functools.partial(_Handler, directory=str(self.root))
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise dataset_error(ConfigError, "serve", f"cannot listen on {host}:{port} ({exc})",
                                "choose another --port (or stop the program that uses it)") from exc
        self.httpd.daemon_threads = True
        self.httpd.verbose = verbose
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def host(self) -> str:
        h = self.httpd.server_address[0]
        return "127.0.0.1" if h in ("0.0.0.0", "") else str(h)

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def start(self) -> "StaticServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="citymodel-serve", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> "StaticServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def viewer_path(output_dir: str | Path) -> str:
    """Path (below the output folder) of the latest release's viewer: ``latest/viewer/`` where the
    ``latest`` symlink exists, else ``releases/<id>/viewer/`` (hosts without symlinks).

    Raises
    ------
    ConfigError
        No release has been published.
    """
    out = Path(output_dir)
    cur = latest_release(out)
    if cur is None:
        raise dataset_error(ConfigError, "serve", f"no release in {out}", "run the pipeline first (make run)")
    if (out / "latest").is_symlink():
        return "latest/viewer/"
    return f"releases/{cur.name}/viewer/"
