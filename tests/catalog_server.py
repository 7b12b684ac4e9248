"""A real HTTP server on 127.0.0.1 for catalog and download tests.

Serves a folder with ETag / Last-Modified and 304 answers to conditional GETs, counts requests
per path, and injects failures on demand: N times an error status, slow answers (the handler
sleeps before answering, beyond the client's timeout), truncated bodies (a Content-Length larger
than the body, then the connection is closed). Listens on an ephemeral port (port 0) and only on
the loopback interface.

    with CatalogServer(tmp_path) as server:
        server.fail("a.laz", status=500, times=2)
        requests.get(server.url("a.laz"))
        assert server.hits["a.laz"] == 1
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_TYPES = {".jsonld": "application/ld+json", ".laz": "application/vnd.laszip",
          ".geojson": "application/geo+json", ".csv": "text/csv", ".zip": "application/zip"}


@dataclass
class _Fault:
    kind: str            # "status", "slow", "truncate"
    remaining: int | None  # None: always
    status: int = 500
    seconds: float = 0.0


class CatalogServer:
    """Serve ``root`` over HTTP on 127.0.0.1; see the module docstring."""

    def __init__(self, root: Path, etag: bool = True, last_modified: bool = True):
        self.root = Path(root).resolve()
        self.send_etag = etag
        self.send_last_modified = last_modified
        self.hits: Counter[str] = Counter()        # GET requests per path
        self.log: list[tuple[str, int, dict[str, str]]] = []  # (path, status, request headers)
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------
    def fail(self, path: str, status: int = 500, times: int | None = 1) -> None:
        """Answer ``status`` to the next ``times`` GETs of ``path`` (None: always)."""
        self._add(path, _Fault("status", times, status=status))

    def slow(self, path: str, seconds: float, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` GETs of ``path``."""
        self._add(path, _Fault("slow", times, seconds=seconds))

    def truncate(self, path: str, times: int | None = None) -> None:
        """Send half the body with the full Content-Length, then close (next ``times`` GETs)."""
        self._add(path, _Fault("truncate", times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def statuses(self, path: str) -> list[int]:
        """Status codes answered to GETs of ``path``, in order."""
        with self._lock:
            return [s for p, s, _ in self.log if p == path]

    def request_headers(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [h for p, _, h in self.log if p == path]

    def url(self, path: str = "") -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/{path.lstrip('/')}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> CatalogServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes sleeping (slow) handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CatalogServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------
    def _add(self, path: str, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(path.lstrip("/"), []).append(fault)

    def _take(self, path: str, kind: str) -> _Fault | None:
        with self._lock:
            for f in self._faults.get(path, []):
                if f.kind == kind and (f.remaining is None or f.remaining > 0):
                    if f.remaining is not None:
                        f.remaining -= 1
                    return f
        return None

    def _record(self, path: str, status: int, headers: dict[str, str]) -> None:
        with self._lock:
            self.log.append((path, status, headers))


class _Handler(BaseHTTPRequestHandler):
    owner: CatalogServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence the log
        pass

    def _send_status(self, path: str, status: int, headers: dict[str, str]) -> None:
        self.owner._record(path, status, headers)
        body = f"{status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.owner
        path = unquote(urlparse(self.path).path).lstrip("/")
        headers = {k: v for k, v in self.headers.items()}
        with srv._lock:
            srv.hits[path] += 1
        try:
            slow = srv._take(path, "slow")
            if slow is not None and srv._stop.wait(slow.seconds):
                return
            fault = srv._take(path, "status")
            if fault is not None:
                return self._send_status(path, fault.status, headers)
            file = (srv.root / path).resolve()
            if srv.root not in file.parents or not file.is_file():
                return self._send_status(path, 404, headers)
            data = file.read_bytes()
            mtime = file.stat().st_mtime
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            last_modified = email.utils.formatdate(mtime, usegmt=True)
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = False
            if inm is not None and srv.send_etag:   # If-None-Match wins over If-Modified-Since
                not_modified = inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]
            elif ims is not None and srv.send_last_modified:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                    not_modified = int(mtime) <= since
                except (TypeError, ValueError):
                    not_modified = False
            if not_modified:
                srv._record(path, 304, headers)
                self.send_response(304)
                if srv.send_etag:
                    self.send_header("ETag", etag)
                if srv.send_last_modified:
                    self.send_header("Last-Modified", last_modified)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                return
            truncate = srv._take(path, "truncate") is not None
            srv._record(path, 200, headers)
            self.send_response(200)
            ctype = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if srv.send_etag:
                self.send_header("ETag", etag)
            if srv.send_last_modified:
                self.send_header("Last-Modified", last_modified)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            self.wfile.flush()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to answer
