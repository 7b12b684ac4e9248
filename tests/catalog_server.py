"""A real HTTP(S) server on 127.0.0.1 for catalog and download tests.

Serves a folder with ETag / Last-Modified and 304 answers to conditional GETs, counts requests
per path, and injects failures on demand: N times an error status, slow answers (the handler
sleeps before answering, beyond the client's timeout), truncated bodies (a Content-Length larger
than the body, then the connection is closed), drip-fed bodies (a few bytes every few seconds:
never a socket timeout, but hours for a file) and redirects (to any URL: another host or port,
another scheme, a local file). With ``tls=(certfile, keyfile)`` it speaks https
(:func:`self_signed_cert` makes a certificate for 127.0.0.1 and localhost). Listens on an
ephemeral port (port 0) and only on the loopback interface.

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
    kind: str            # "status", "slow", "truncate", "drip", "redirect"
    remaining: int | None  # None: always
    status: int = 500
    seconds: float = 0.0
    step_bytes: int = 1
    location: str = ""


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1 and localhost, valid for a day; returns
    ``(certfile, keyfile)``. Clients trust it through ``REQUESTS_CA_BUNDLE=<certfile>``."""
    import datetime as _dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


class CatalogServer:
    """Serve ``root`` over HTTP on 127.0.0.1; see the module docstring."""

    def __init__(self, root: Path, etag: bool = True, last_modified: bool = True,
                 tls: tuple[Path, Path] | None = None):
        self.root = Path(root).resolve()
        self.tls = tls
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

    def drip(self, path: str, step_bytes: int = 1, interval_s: float = 5.0, times: int | None = None) -> None:
        """Send the next ``times`` GETs of ``path`` with the full Content-Length, ``step_bytes``
        every ``interval_s`` seconds (never silent long enough for a socket timeout)."""
        self._add(path, _Fault("drip", times, seconds=interval_s, step_bytes=step_bytes))

    def redirect(self, path: str, location: str, status: int = 302, times: int | None = None) -> None:
        """Answer the next ``times`` GETs of ``path`` with ``status`` and ``Location: location``."""
        self._add(path, _Fault("redirect", times, status=status, location=location))

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
        return f"{'https' if self.tls else 'http'}://{host}:{port}/{path.lstrip('/')}"

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> CatalogServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if self.tls is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
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
            redirect = srv._take(path, "redirect")
            if redirect is not None:
                srv._record(path, redirect.status, headers)
                self.send_response(redirect.status)
                self.send_header("Location", redirect.location)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                return
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
            drip = srv._take(path, "drip")
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
            if drip is not None:
                self.wfile.flush()
                for i in range(0, len(data), drip.step_bytes):
                    self.wfile.write(data[i:i + drip.step_bytes])
                    self.wfile.flush()
                    if srv._stop.wait(drip.seconds):
                        break
                self.close_connection = True
                return
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            self.wfile.flush()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True  # the client gave up (timeout): nothing to answer
