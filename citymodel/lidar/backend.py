"""Which lazrs backend decodes and compresses LAZ, and why a forked child never uses the parallel one.

LAZ backend
-----------
Headers and :func:`~citymodel.lidar.reading.iter_points` use ``laspy.LazBackend.Lazrs``, the
**single-threaded** lazrs backend (:data:`LAZ_BACKEND`); so does
:func:`~citymodel.lidar.staging.stage_tile` by default. ``stage_tile`` can decode its sources and
compress its output with the **parallel** backend (:data:`LAZ_PARALLEL_BACKEND`, lazrs on rayon):
``parallel_laz=True`` or ``CITYMODEL_LAZ_PARALLEL=1``. It is opt-in because on the
shared 2-core machine (load 3-4) it was *slower* than single-threaded (12 points/m² tile: 30.6 s
against 21.3 s; oversubscription), and a city's tiles are staged one per process anyway, which
keeps the cores busy. It pays on an idle machine staging one tile at a time.

Fork safety (the choice, measured in ``benchmarks/bench_lidar.py``): the parallel backend runs on
rayon's *global* thread pool, which is started on first use and **stays alive for the life of the
process** (it cannot be shut down from Python). That is harmless for the process itself and for
children started with fork + exec (``subprocess``, our py3dtiles call, dagster's multiprocess
executor, which spawns), because exec replaces the whole image. It is not harmless for a child
that is forked *without* exec (``multiprocessing`` with the ``fork`` start method) and then uses
rayon itself: the child inherits a pool whose threads do not exist and deadlocks (the py3dtiles
trap in TOOLCHAIN.md). So a process that was created by ``os.fork()`` (detected with
``os.register_at_fork``) never uses the parallel backend and stages single-threaded; so does every
process where ``CITYMODEL_LAZ_PARALLEL=0`` is set or that has one CPU. The Python helper threads of
``stage_tile`` (read-ahead, write-behind, :mod:`citymodel.lidar.threads`) are always joined before
it returns, also on errors.
"""

from __future__ import annotations

import os

import laspy

LAZ_BACKEND = laspy.LazBackend.Lazrs
"""Single-threaded lazrs: headers, :func:`~citymodel.lidar.reading.iter_points`, and
:func:`~citymodel.lidar.staging.stage_tile` where the parallel backend is not allowed (see module doc)."""
LAZ_PARALLEL_BACKEND = laspy.LazBackend.LazrsParallel
"""lazrs on rayon's global thread pool: ``stage_tile`` decoding and compression (module doc)."""
PARALLEL_ENV = "CITYMODEL_LAZ_PARALLEL"

_FORKED_CHILD = False


def _mark_forked_child() -> None:
    global _FORKED_CHILD
    _FORKED_CHILD = True


os.register_at_fork(after_in_child=_mark_forked_child)


def staging_laz_backend(parallel: bool | None = None) -> laspy.LazBackend:
    """The lazrs backend :func:`~citymodel.lidar.staging.stage_tile` uses in this process.

    Parameters
    ----------
    parallel : bool, optional
        ``True`` asks for the parallel backend, ``False`` forces the single-threaded one; ``None``
        (default) follows ``CITYMODEL_LAZ_PARALLEL`` (``1``: parallel; unset or other: single-threaded).
        The parallel backend is never used in a process that was forked without exec or on one CPU.
    """
    if parallel is None:
        parallel = os.environ.get(PARALLEL_ENV, "0").strip() == "1"
    if not parallel or _FORKED_CHILD:
        return LAZ_BACKEND
    if (os.cpu_count() or 1) < 2 or not LAZ_PARALLEL_BACKEND.is_available():
        return LAZ_BACKEND
    return LAZ_PARALLEL_BACKEND
