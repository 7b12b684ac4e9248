"""Throw-away Redis and PostgreSQL servers on 127.0.0.1 for the distributed-engine test.

Both run from Debian's packages (``redis-server``; PostgreSQL 15 from ``/usr/lib/postgresql/15/bin``)
on a free port with their data in a fresh temporary folder, and are stopped (and the folder removed)
by :meth:`stop`, which the fixtures call in ``finally``. PostgreSQL refuses to run as root: as
root, the cluster is created and started as the ``postgres`` system user (else ``nobody``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("CITYMODEL_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def missing() -> str | None:
    """Why the servers cannot be started here (None: they can)."""
    if shutil.which("redis-server") is None:
        return "redis-server not installed (Debian package redis-server; make install installs it as root)"
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / exe).is_file():
            return f"{PG_BIN / exe} not found (Debian package postgresql; make install installs it as root)"
    return None


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="citymodel_redis_"))
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "Redis":
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 30, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """A PostgreSQL cluster with trust authentication for user ``dagster`` on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="citymodel_pg_"))
        self.data = self.dir / "data"
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.user is None:
                raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.started = False

    @property
    def url(self) -> str:
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres brings psycopg2
        return f"postgresql+psycopg2://dagster@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if self.user is not None:
            args = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups", *args]
        return subprocess.run(args, check=True, capture_output=True, text=True, cwd=self.dir, **kw)

    def start(self) -> "Postgres":
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "dagster", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=100"
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                   "-w", "-t", "60", "start"])
        self.started = True
        _wait_port(self.port, 30)
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
            except subprocess.CalledProcessError:
                pid_file = self.data / "postmaster.pid"
                if pid_file.is_file():
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


class CeleryWorkers:
    """``dagster-celery worker start`` processes (one Celery process each), stopped by :meth:`stop`."""

    def __init__(self, exe_dir: Path, config_yaml: Path, env: dict, count: int = 2, log_dir: Path | None = None):
        self.exe = exe_dir / "dagster-celery"
        self.config_yaml = config_yaml
        # `dagster-celery worker start` starts `celery` from PATH: the one beside it
        self.env = dict(env, PATH=f"{exe_dir}{os.pathsep}{env.get('PATH', '')}")
        self.count = count
        self.log_dir = log_dir or config_yaml.parent
        self.procs: list[subprocess.Popen] = []

    def start(self) -> "CeleryWorkers":
        for i in range(self.count):
            log = open(self.log_dir / f"worker{i + 1}.log", "wb")
            self.procs.append(subprocess.Popen(
                [str(self.exe), "worker", "start", "-A", "dagster_celery.app", "-y", str(self.config_yaml),
                 "-q", "dagster", "-n", f"citymodel{i + 1}", "-l", "INFO", "--", "--concurrency=1",
                 "--pool=prefork", "--without-gossip", "--without-mingle"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return self

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
