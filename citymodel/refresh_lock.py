"""One refresh at a time per output folder.

``citymodel run`` holds ``<output_dir>/.refresh.lock`` for as long as it runs: an exclusive ``flock``
on the file (the kernel releases it when the process ends, however it ends) and, written into the
file, who holds it: process id, host, since when and the command. A second refresh of the same output
folder waits up to ``refresh.lock_wait_s`` seconds and then gives up with a :class:`RefreshBusyError`
that names the holder. A lock file that names a holder but is not locked belongs to a process that
died (killed, machine restarted): it is taken over, and :meth:`RefreshLock.acquire` returns the dead
holder so that the take-over can be reported.

The release builder has its own lock (``.release.lock``) around publishing; this one keeps two
refreshes from running the same plan at once. ``flock`` works between processes of one machine;
on network file systems it depends on the server (documented in the README).

Nothing here imports dagster.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import CityModelError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock (documented)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".refresh.lock"


class RefreshBusyError(CityModelError):
    """Another refresh of the same output folder is running."""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    since: str
    command: str

    def describe(self) -> str:
        return f"process {self.pid} on host {self.host} ({self.command}, since {self.since})"

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            d = json.loads(text)
            return cls(int(d["pid"]), str(d["host"]), str(d["since"]), str(d.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None


class RefreshLock:
    """The refresh lock of an output folder (a context manager).

    Parameters
    ----------
    output_dir : path
        The deployment's output folder.
    wait_s : float
        How long :meth:`acquire` waits for another holder (0: not at all).
    command : str
        What the holder runs (shown to a refresh that has to wait).
    poll_s : float
        How often a waiting refresh tries again.
    """

    def __init__(self, output_dir: str | os.PathLike, wait_s: float = 0.0, command: str = "citymodel run",
                 poll_s: float = 0.5):
        self.path = Path(output_dir) / LOCK_NAME
        self.wait_s = float(wait_s)
        self.command = command
        self.poll_s = float(poll_s)
        self._fd: int | None = None
        self.taken_over: LockHolder | None = None

    def acquire(self) -> LockHolder | None:
        """Take the lock; returns the holder of a stale lock that was taken over (else None).

        Raises
        ------
        RefreshBusyError
            Another live process holds the lock and did not release it within ``wait_s``.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    holder = LockHolder.parse(_read(fd))
                    os.close(fd)
                    who = holder.describe() if holder else "another process (no holder recorded)"
                    waited = f"; waited {self.wait_s:g} s" if self.wait_s else ""
                    raise RefreshBusyError(
                        f"another refresh of {self.path.parent} is running: {who}{waited}. Fix: let it finish "
                        f"(or stop it), then run again; set refresh.lock_wait_s to wait for it") from None
                time.sleep(min(self.poll_s, max(deadline - time.monotonic(), 0.01)))
        self.taken_over = LockHolder.parse(_read(fd))  # a record without a lock: its process is gone
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
              "since": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self.taken_over

    def release(self) -> None:
        """Clear the holder record and release the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RefreshLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def current_holder(output_dir: str | os.PathLike) -> LockHolder | None:
    """Who holds the refresh lock of ``output_dir`` now (None: nobody)."""
    path = Path(output_dir) / LOCK_NAME
    if not path.is_file() or fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return LockHolder.parse(_read(fd)) or LockHolder(0, "?", "?", "unknown")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
