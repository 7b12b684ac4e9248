"""One helper thread beside the staging loop: decode the next chunk (read-ahead) or compress the last
one (write-behind) while the compiled loops work on this one.

Both always end (and are joined) before the call that uses them returns, also on errors or when the
consumer stops early: no thread outlives a staging call (fork safety, :mod:`citymodel.lidar.backend`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_DONE = object()


def read_ahead(iterator: Iterator[Any]) -> Iterator[Any]:
    """Yield the items of ``iterator``, produced one item ahead in a helper thread.

    lazrs holds the GIL while it decodes (measured: two decodes on two threads take longer than one
    after the other), but the compiled statistics loops (``citymodel.lidar.kernels``, ``nogil``)
    and numpy's large-array operations release it, so they run while the next chunk is decoded.
    The thread always ends (and is joined) before this generator finishes, also on errors
    or when the consumer stops early: no thread outlives the call (fork safety).
    """
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, _DONE))
        except BaseException as exc:  # re-raised in the consumer
            q.put((False, exc))

    t = threading.Thread(target=produce, name="citymodel-lidar-read", daemon=True)
    t.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            t.join(timeout=0.05)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class WriteBehind:
    """Call ``write(item)`` in a helper thread, one item behind the caller (lazrs compresses without
    the GIL). ``close()`` waits for the queue to drain, joins the thread and re-raises its error."""

    def __init__(self, write):
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="citymodel-lidar-write", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        self._q.put(_DONE)
        self._t.join()
        if self._error is not None:
            raise self._error

