"""The project's own point-cloud tiler: LAS/LAZ -> 3D Tiles 1.1 octree of glTF point content.

Structure
---------
The root is a cube in the tile's local east-north-up frame (:class:`~.geo.LocalFrameGrid`; the
tileset's root ``transform`` takes it to ECEF) holding all points. Every node has ``G`` cells per
edge (``cells_per_edge``, default 128): its *spacing* is its edge over ``G``, halved at each level.
A node keeps the first point (in file order) of each of its cells and passes the others to its
eight children; a node with at most ``max_leaf_points`` left (or whose spacing would drop below
``min_spacing_m``) is a leaf and keeps all of them. Refinement is ``ADD``: every input point is in
exactly one node, all of them are present, and a node's points are at most one per cell of its
spacing. ``geometricError`` of a node is its spacing times ``error_per_spacing`` (8: with a viewer's
default maximum screen-space error of 16 px a node's children are loaded once its points would
be more than 2 px apart on the screen); leaves have 0. Bounding volumes are boxes in the local
frame around the points of the node and its descendants (padded by 1 cm).

Streaming, bounded memory
-------------------------
Pass 1 reads each file in chunks (laspy's chunk iterator, lazrs decoding one chunk ahead on a
helper thread) and routes every point in a compiled loop: crop to the tile (the staging halo),
geoid and ECEF through the local-frame lattice, colour, then the coarse levels ``0 .. D-1``
(a bit per cell of each level) and otherwise the *bucket* of level ``D`` it falls in. The routed
chunk is sorted by destination and appended to one spill file. ``D`` is chosen from the header's
point count so that a bucket holds about ``bucket_points`` points. Pass 2 writes the coarse nodes
and builds each bucket's subtree in memory (two buckets at a time on two threads); a bucket
larger than ``2 * bucket_points`` (dense spots) is streamed again through the same routing one
level further down instead of being loaded whole. Memory is therefore bounded by a few chunks,
the coarse levels' bits (at most 19 MB) and ``workers`` buckets, not by the tile; the spill file
takes 20 bytes per point on disk next to the output.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, SourceDataError, dataset_error
from .geo import GeoTransformer, LocalFrameGrid
from .pointcloud_glb import point_glb_buffer, point_glb_head

try:  # TODO(pctiler): public in citymodel.lidar.lasfile once the lidar split is on main
    from ..lidar.lasfile import READ_ERRORS
except ImportError:
    from ..lidar import _READ_ERRORS as READ_ERRORS

__all__ = ["OctreeOptions", "OctreeResult", "tile_octree"]


@dataclass(frozen=True)
class OctreeOptions:
    """Parameters of :func:`tile_octree` (module doc)."""

    cells_per_edge: int = 128
    max_leaf_points: int = 60_000
    bucket_points: int = 2_000_000
    chunk_points: int = 1_000_000
    min_spacing_m: float = 0.005
    error_per_spacing: float = 8.0
    workers: int = 2

    def __post_init__(self) -> None:
        g = self.cells_per_edge
        if g < 2 or g & (g - 1) or g > 1024:
            raise dataset_error(ConfigError, "point cloud tiles", f"cells_per_edge {g} is not a power of two "
                                "in 2..1024", "use 64, 128 or 256")
        if self.max_leaf_points < 1 or self.bucket_points < self.max_leaf_points or self.chunk_points < 1:
            raise dataset_error(ConfigError, "point cloud tiles", "chunk_points, max_leaf_points and bucket_points "
                                "must be positive, bucket_points >= max_leaf_points",
                                "use e.g. chunk 1,000,000, leaf 60,000, bucket 2,000,000")
        if not (self.min_spacing_m > 0 and self.error_per_spacing > 0 and self.workers >= 1):
            raise dataset_error(ConfigError, "point cloud tiles", "min_spacing_m and error_per_spacing must be "
                                "positive, workers at least 1", "use the defaults (0.005 m, 8, 2)")


@dataclass
class OctreeResult:
    """What :func:`tile_octree` wrote."""

    n_points: int = 0
    classes: dict = field(default_factory=dict)
    n_nodes: int = 0
    depth: int = 0
    points_per_level: list = field(default_factory=list)
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    spill_bytes: int = 0
    frame_error_m: float = 0.0
    octree: dict = field(default_factory=dict)


@dataclass
class _Node:
    key: tuple[int, int, int, int]
    n: int
    lo: np.ndarray  # local ENU (z-up) frame
    hi: np.ndarray


class _Spill:
    """Routed points on disk: appended chunk by chunk, each chunk sorted by destination.

    Read back into fresh arrays (not memory-mapped: mapped pages would count as the process's
    memory and stay until unmapped)."""

    def __init__(self, path: Path, n_dest: int) -> None:
        from .pointcloud_kernels import RECORD_DTYPE

        self.path = path
        self.n_dest = n_dest
        self._fh = open(path, "wb")
        self._rh = None
        self._read_lock = threading.Lock()
        self._bases: list[int] = []
        self._counts: list[np.ndarray] = []
        self._n = 0
        self._dtype = RECORD_DTYPE

    def append(self, recs: np.ndarray, counts: np.ndarray) -> None:
        if len(recs):
            self._fh.write(recs.view(np.uint8).data)
        self._bases.append(self._n)
        self._counts.append(counts.copy())
        self._n += len(recs)

    def close(self) -> None:
        """End writing; the points can be read from now on."""
        self._fh.close()
        counts = np.array(self._counts, dtype=np.int64).reshape(len(self._counts), self.n_dest)
        self.totals = counts.sum(axis=0)
        self._starts = np.cumsum(counts, axis=1) - counts + np.array(self._bases, dtype=np.int64)[:, None]
        self._cnt = counts
        self._rh = open(self.path, "rb", buffering=0)

    @property
    def nbytes(self) -> int:
        return self._n * self._dtype.itemsize

    def _read(self, out: np.ndarray, start: int) -> None:
        view = memoryview(out.view(np.uint8))
        with self._read_lock:  # one file position shared by the threads of pass 2
            self._rh.seek(start * self._dtype.itemsize)
            done = 0
            while done < len(view):
                k = self._rh.readinto(view[done:])
                if not k:
                    raise OSError(f"spill file {self.path} ended early")
                done += k

    def gather(self, dest: int) -> np.ndarray:
        """All points of ``dest``, in input order."""
        out = np.empty(int(self.totals[dest]), dtype=self._dtype)
        o = 0
        for r in np.flatnonzero(self._cnt[:, dest]):
            c = int(self._cnt[r, dest])
            self._read(out[o:o + c], int(self._starts[r, dest]))
            o += c
        return out

    def iter_points(self, dest: int, chunk: int) -> Iterator[np.ndarray]:
        """The points of ``dest`` in input order, at most ``chunk`` at a time."""
        for r in np.flatnonzero(self._cnt[:, dest]):
            a, c = int(self._starts[r, dest]), int(self._cnt[r, dest])
            for s in range(a, a + c, chunk):
                out = np.empty(min(chunk, a + c - s), dtype=self._dtype)
                self._read(out, s)
                yield out

    def remove(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if self._rh is not None:
            self._rh.close()
            self._rh = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _dest_layout(D: int) -> np.ndarray:
    """``node_off[d]``: first destination number of relative level ``d`` (0..D); last entry the total."""
    return np.array([sum(8 ** e for e in range(d)) for d in range(D + 2)], dtype=np.int64)


def _decode_dest(dest: int, node_off: np.ndarray) -> tuple[int, int, int, int]:
    d = int(np.searchsorted(node_off, dest, side="right")) - 1
    r = dest - int(node_off[d])
    nd = 1 << d
    return d, r % nd, (r // nd) % nd, r // (nd * nd)


def _bitmaps(G: int, D: int) -> tuple[np.ndarray, np.ndarray]:
    from .pointcloud_kernels import bitmap_bytes

    sizes = [bitmap_bytes(G << d) for d in range(D)]
    off = np.zeros(max(D, 1), dtype=np.int64)
    if D:
        off[:D] = np.cumsum([0] + sizes[:-1])
    return np.zeros(int(sum(sizes)) or 1, dtype=np.uint8), off


def _levels_for(n: int, bucket_points: int, room: int) -> int:
    """Coarse levels of a pass over ``n`` points: buckets of about ``bucket_points`` (assuming
    points spread like a surface: 4 buckets per level), at most 3 and at most ``room``."""
    if n <= bucket_points:
        return 0
    return int(max(0, min(3, room, math.ceil(math.log(n / bucket_points, 4)))))


class _Tiler:
    def __init__(self, out_dir: Path, work: Path, origin: np.ndarray, edge: float, opts: OctreeOptions,
                 dataset: str) -> None:
        self.out_dir = out_dir
        self.work = work
        self.origin = origin
        self.edge = edge
        self.opts = opts
        self.dataset = dataset
        G = opts.cells_per_edge
        self.G = G
        # the deepest level: its spacing is still >= min_spacing_m
        self.max_level = max(0, int(math.floor(math.log2(edge / (G * opts.min_spacing_m)))))
        self.nodes: dict[tuple[int, int, int, int], _Node] = {}
        self._lock = threading.Lock()
        self._spill_id = 0

    # ---------------------------------------------------------------- spill files
    def new_spill(self, n_dest: int) -> _Spill:
        with self._lock:
            self._spill_id += 1
            i = self._spill_id
        return _Spill(self.work / f"spill_{i:05d}.bin", n_dest)

    # ---------------------------------------------------------------- content
    def write_node(self, key: tuple[int, int, int, int], recs: np.ndarray, perm: np.ndarray, start: int,
                   count: int) -> None:
        from .pointcloud_kernels import fill_point_buffers

        buf, (pos, rgb, cls, inten) = point_glb_buffer(count)
        lo, hi = np.empty(3), np.empty(3)
        fill_point_buffers(recs, perm, start, count, pos, rgb, cls, inten, lo, hi)
        head = point_glb_head(count, lo, hi)
        level, i, j, k = key
        path = self.out_dir / "content" / str(level) / f"{i}_{j}_{k}.glb"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(head)
            fh.write(buf.data)
        # glTF y-up (east, up, -north) -> local z-up (east, north, up)
        node = _Node(key, count, np.array([lo[0], -hi[2], lo[1]]), np.array([hi[0], -lo[2], hi[1]]))
        with self._lock:
            self.nodes[key] = node

    # ---------------------------------------------------------------- pass 2
    def finish_pass(self, spill: _Spill, root: tuple[int, int, int, int], D: int, pool: ThreadPoolExecutor | None
                    ) -> list:
        """Write the coarse nodes of a pass and process its buckets (in ``pool`` when given)."""
        node_off = _dest_layout(D)
        l0, i0, j0, k0 = root
        jobs = []
        for dest in np.flatnonzero(spill.totals):
            d, x, y, z = _decode_dest(int(dest), node_off)
            nd = 1 << d
            key = (l0 + d, i0 * nd + x, j0 * nd + y, k0 * nd + z)
            fn = self.coarse_node if d < D else self.bucket
            if pool is None:
                fn(spill, int(dest), key)
            else:
                jobs.append(pool.submit(fn, spill, int(dest), key))
        return jobs

    def coarse_node(self, spill: _Spill, dest: int, key: tuple[int, int, int, int]) -> None:
        recs = spill.gather(dest)
        self.write_node(key, recs, np.arange(len(recs)), 0, len(recs))

    def bucket(self, spill: _Spill, dest: int, key: tuple[int, int, int, int]) -> None:
        from .pointcloud_kernels import build_subtree

        n = int(spill.totals[dest])
        level = key[0]
        D = _levels_for(n, 2 * self.opts.bucket_points, self.max_level - level)
        if D > 0:
            self.stream_bucket(spill, dest, key, max(D, 1))
            return
        recs = spill.gather(dest)
        perm, nodes = build_subtree(recs, level, key[1], key[2], key[3], self.origin, self.edge, self.G,
                                    self.opts.max_leaf_points, self.max_level)
        for lv, i, j, k, start, cnt, _parent in nodes:
            if cnt > 0:
                self.write_node((int(lv), int(i), int(j), int(k)), recs, perm, int(start), int(cnt))

    def stream_bucket(self, spill: _Spill, dest: int, key: tuple[int, int, int, int], D: int) -> None:
        """Route a large bucket's points one more time (levels key[0] .. key[0]+D-1 subsample)."""
        from .pointcloud_kernels import RECORD_DTYPE, route_records, sort_by_dest

        node_off = _dest_layout(D)
        n_dest = int(node_off[D + 1])
        bitmaps, bm_off = _bitmaps(self.G, D)
        sub = self.new_spill(n_dest)
        chunk = self.opts.chunk_points
        dst = np.empty(chunk, dtype=np.int32)
        out = np.empty(chunk, dtype=RECORD_DTYPE)
        counts = np.empty(n_dest, dtype=np.int64)
        try:
            for recs in spill.iter_points(dest, chunk):
                n = len(recs)
                bad = route_records(recs, self.origin, self.edge, self.G, key[0], key[1], key[2], key[3], D,
                                    bitmaps, bm_off, node_off, dst)
                if bad:
                    raise RuntimeError(f"{bad} points routed outside their bucket {key}")
                sort_by_dest(recs, dst, n, n_dest, out, counts)
                sub.append(out[:n], counts)
            sub.close()
            del bitmaps
            self.finish_pass(sub, key, D, None)
        finally:
            sub.remove()

    # ---------------------------------------------------------------- tileset
    def tileset_root(self, transform: np.ndarray) -> dict:
        """The root tile of the written nodes: boxes around each node's subtree, geometric errors,
        children, and ``transform`` (local frame -> ECEF)."""
        from .tileset import column_major

        G = self.G
        keys = sorted(self.nodes, reverse=True)  # deepest level first
        sub_lo = {k: n.lo.copy() for k, n in self.nodes.items()}
        sub_hi = {k: n.hi.copy() for k, n in self.nodes.items()}
        children: dict[tuple, list] = {}
        for key in keys:
            if key[0] == 0:
                continue
            parent = (key[0] - 1, key[1] >> 1, key[2] >> 1, key[3] >> 1)
            if parent not in self.nodes:
                raise RuntimeError(f"octree node {key} has no parent")
            children.setdefault(parent, []).append(key)
            sub_lo[parent] = np.minimum(sub_lo[parent], sub_lo[key])
            sub_hi[parent] = np.maximum(sub_hi[parent], sub_hi[key])
        pad = 0.01

        def tile(key: tuple) -> dict:
            lo, hi = sub_lo[key] - pad, sub_hi[key] + pad
            c, h = (lo + hi) / 2.0, (hi - lo) / 2.0
            kids = sorted(children.get(key, []))
            spacing = self.edge / (G << key[0])
            t: dict[str, Any] = {
                "boundingVolume": {"box": [*(float(v) for v in c), float(h[0]), 0.0, 0.0, 0.0, float(h[1]), 0.0,
                                           0.0, 0.0, float(h[2])]},
                "geometricError": float(spacing * self.opts.error_per_spacing) if kids else 0.0,
                "refine": "ADD",
                "content": {"uri": f"content/{key[0]}/{key[1]}_{key[2]}_{key[3]}.glb"},
            }
            if kids:
                t["children"] = [tile(k) for k in kids]
            return t

        root = tile((0, 0, 0, 0))
        root["transform"] = column_major(transform)
        return root


def _las_fields(point_format_id: int) -> tuple[str, int]:
    """Name and mask of the class byte of a point format (0-5: 5 bits of ``raw_classification``)."""
    return ("classification", 0xFF) if point_format_id >= 6 else ("raw_classification", 0x1F)


def _read_error(path: Path, dataset: str, exc: BaseException) -> SourceDataError:
    return dataset_error(SourceDataError, dataset, f"cannot read {path.name}: {type(exc).__name__}: {exc}",
                         "the file is corrupt or truncated: re-stage the tile", str(path))


@dataclass
class _Source:
    """One input file: its header and the part of it that is tiled."""

    path: Path
    crop: Sequence[float] | None
    header: Any
    area: list[float]        # header bounds within the crop (minx, miny, maxx, maxy)
    z_range: tuple[float, float]
    share: float             # estimated share of its points inside the crop

    @property
    def empty(self) -> bool:
        return not (self.area[2] >= self.area[0] and self.area[3] >= self.area[1]) or self.header.point_count == 0


def _open_sources(sources: Sequence[tuple[Path, Sequence[float] | None]], dataset: str) -> list[_Source]:
    import laspy

    out = []
    for path, crop in sources:
        try:
            with laspy.open(str(path), laz_backend=laspy.LazBackend.Lazrs) as r:
                h = r.header
        except READ_ERRORS as exc:
            raise _read_error(path, dataset, exc) from exc
        mins, maxs = np.asarray(h.mins, dtype=float), np.asarray(h.maxs, dtype=float)
        area = [mins[0], mins[1], maxs[0], maxs[1]]
        share = 1.0
        if crop is not None:
            x0, y0, x1, y1 = (float(v) for v in crop)
            inter = [max(area[0], x0), max(area[1], y0), min(area[2], x1), min(area[3], y1)]
            full = (area[2] - area[0]) * (area[3] - area[1])
            share = (max(inter[2] - inter[0], 0.0) * max(inter[3] - inter[1], 0.0) / full) if full > 0 else 1.0
            area = inter
        out.append(_Source(Path(path), crop, h, area, (float(mins[2]), float(maxs[2])), share))
    return out


def _colour_table(colour: str, class_colors: Mapping[int, Sequence[int]], dataset: str) -> tuple[int, np.ndarray]:
    """Colour mode of the compiled loop (0 class, 1 RGB, 2 height) and its 256-entry table."""
    lut = np.full((256, 3), 160, dtype=np.uint8)
    mode = {"classification": 0, "rgb": 1, "height": 2}.get(colour)
    if mode is None:
        raise dataset_error(ConfigError, dataset, f"unknown colour mode {colour!r}",
                            "use colour='classification', 'height' or 'rgb'")
    if mode == 0:
        for c, rgb in class_colors.items():
            lut[int(c)] = rgb
    elif mode == 2:
        from .pointcloud import height_colours

        lut[:] = height_colours(np.linspace(0.0, 1.0, 256))
    return mode, lut


def _chunks(path: Path, chunk: int, dataset: str, read_ahead) -> Iterator[Any]:
    """The non-empty chunks of a LAS/LAZ file (single-threaded lazrs, decoded through
    ``read_ahead``); what laspy/lazrs raise on a broken file becomes an error naming it. Only
    reading is wrapped: errors of the caller's work on a chunk pass unchanged."""
    import laspy

    try:
        with laspy.open(str(path), laz_backend=laspy.LazBackend.Lazrs) as reader:
            it = read_ahead(reader.chunk_iterator(chunk))
            try:
                while True:
                    try:
                        rec = next(it)
                    except StopIteration:
                        return
                    if len(rec):
                        yield rec
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()
    except READ_ERRORS as exc:
        raise _read_error(path, dataset, exc) from exc


class _Router:
    """Pass 1: each file's chunks through :func:`route_las_chunk` into the spill file."""

    def __init__(self, tiler: _Tiler, frame: LocalFrameGrid, D: int, mode: int, lut: np.ndarray,
                 z_range: tuple[float, float], spill: _Spill, chunk: int) -> None:
        from .pointcloud_kernels import RECORD_DTYPE

        self.tiler, self.frame, self.D, self.mode, self.lut, self.spill = tiler, frame, D, mode, lut, spill
        self.node_off = _dest_layout(D)
        self.n_dest = int(self.node_off[D + 1])
        self.bitmaps, self.bm_off = _bitmaps(tiler.G, D)
        self.z_lo = z_range[0]
        self.z_inv = 255.0 / max(z_range[1] - z_range[0], 1e-6)
        self.chunk = chunk
        self.out = np.empty(chunk, dtype=RECORD_DTYPE)
        self.srt = np.empty(chunk, dtype=RECORD_DTYPE)
        self.dst = np.empty(chunk, dtype=np.int32)
        self.counts = np.empty(self.n_dest, dtype=np.int64)
        self.cls_hist = np.zeros(256, dtype=np.int64)
        self.outside = np.zeros(1, dtype=np.int64)

    def route_file(self, src: _Source, dataset: str, read_ahead) -> None:
        """Stream one file through :meth:`_route_chunk`; read errors and a short file name it."""
        path, h = src.path, src.header
        cls_field, cls_mask = _las_fields(h.point_format.id)
        if self.mode == 1 and not {"red", "green", "blue"} <= set(h.point_format.dimension_names):
            raise dataset_error(SourceDataError, dataset, f"{path.name} has no RGB",
                                "use colour='classification' or 'height'", str(path))
        crop = np.zeros(5) if src.crop is None else np.array([1.0, *(float(v) for v in src.crop)])
        read = 0
        rgb_shift = -1
        for rec in _chunks(path, self.chunk, dataset, read_ahead):
            read += len(rec)
            raw = rec.array
            red = green = blue = np.empty(0, dtype=np.uint16)
            if self.mode == 1:
                red, green, blue = raw["red"], raw["green"], raw["blue"]
                if rgb_shift < 0:  # 8-bit colours stored as they are: decided on the first chunk
                    rgb_shift = 0 if max(red.max(), green.max(), blue.max()) <= 255 else 8
            self._route_chunk(raw, rec, cls_field, cls_mask, red, green, blue, max(rgb_shift, 0), crop, path, dataset)
        if read != h.point_count:
            raise dataset_error(SourceDataError, dataset,
                                f"{path.name} holds {read} points but its header says {h.point_count}: "
                                "the file is truncated", "re-stage the tile", str(path))

    def _route_chunk(self, raw, rec, cls_field, cls_mask, red, green, blue, rgb_shift, crop, path, dataset) -> None:
        from .pointcloud_kernels import route_las_chunk, sort_by_dest

        t, f = self.tiler, self.frame
        k = route_las_chunk(raw["X"], raw["Y"], raw["Z"], np.asarray(rec.scales, dtype=float),
                            np.asarray(rec.offsets, dtype=float), raw[cls_field], cls_mask, raw["intensity"],
                            red, green, blue, rgb_shift, self.mode, self.lut, self.z_lo, self.z_inv, crop,
                            f.params, f.P, f.U, t.origin, t.edge, t.G, self.D, self.bitmaps, self.bm_off,
                            self.node_off, self.out, self.dst, self.cls_hist, self.outside)
        if self.outside[0]:
            raise dataset_error(SourceDataError, dataset,
                                f"{int(self.outside[0])} point(s) of {path.name} lie outside the bounds its "
                                "header gives", "the header is wrong or the file is corrupt: re-stage the tile",
                                str(path))
        sort_by_dest(self.out, self.dst, k, self.n_dest, self.srt, self.counts)
        self.spill.append(self.srt[:k], self.counts)


def tile_octree(sources: Sequence[tuple[Path, Sequence[float] | None]], out_dir: Path, work: Path,
                geo: GeoTransformer, *, colour: str = "classification", class_colors: Mapping[int, Sequence[int]],
                options: OctreeOptions = OctreeOptions(), dataset: str = "lidar",
                read_ahead=None) -> tuple[OctreeResult, dict, LocalFrameGrid]:
    """Tile LAS/LAZ files, each cropped to its bounds (or None), into ``out_dir`` (``content/``).

    Returns the result, the root tile (``transform``, bounding boxes, children) and the local
    frame. ``work`` is a scratch folder for the spill files; ``read_ahead`` wraps the chunk
    iterator (e.g. to decode the next chunk on a helper thread).

    Raises
    ------
    SourceDataError
        Naming the file: unreadable, corrupt or truncated, points outside its header's bounds,
        no RGB for ``colour="rgb"``, or no point inside the bounds at all.
    """
    opts = options
    res = OctreeResult()
    t0 = time.perf_counter()
    srcs = _open_sources(sources, dataset)
    live = [s for s in srcs if not s.empty]
    if not live:
        raise dataset_error(SourceDataError, dataset, "no point inside the given bounds",
                            "check the bounds and the files' CRS", ", ".join(s.path.name for s in srcs))
    mode, lut = _colour_table(colour, class_colors, dataset)
    margin = 1.0
    area = [min(s.area[0] for s in live) - margin, min(s.area[1] for s in live) - margin,
            max(s.area[2] for s in live) + margin, max(s.area[3] for s in live) + margin]
    z_range = (min(s.z_range[0] for s in live), max(s.z_range[1] for s in live))
    frame = LocalFrameGrid(geo, area, z_range)
    res.frame_error_m = frame.max_error_m
    # the root cube: around the area's corners at both heights, in the local frame
    cx = np.array([area[0], area[2], area[0], area[2]] * 2)
    cy = np.array([area[1], area[1], area[3], area[3]] * 2)
    cz = np.array([z_range[0] - margin] * 4 + [z_range[1] + margin] * 4)
    corners = frame.exact_local(cx, cy, cz)
    lo, hi = corners.min(axis=0) - margin, corners.max(axis=0) + margin
    edge = float((hi - lo).max())
    origin = (lo + hi) / 2.0 - edge / 2.0
    tiler = _Tiler(out_dir, work, origin, edge, opts, dataset)
    n_est = sum(s.header.point_count * s.share for s in live)
    D = _levels_for(int(n_est), opts.bucket_points, tiler.max_level)
    spill = tiler.new_spill(int(_dest_layout(D)[D + 1]))
    try:
        router = _Router(tiler, frame, D, mode, lut, z_range, spill, opts.chunk_points)
        for src in srcs:
            router.route_file(src, dataset, read_ahead or (lambda it: it))
        spill.close()
        cls_hist = router.cls_hist
        del router
        res.spill_bytes = spill.nbytes
        res.n_points = int(spill.totals.sum())
        res.classes = {int(c): int(v) for c, v in enumerate(cls_hist) if v}
        if res.n_points == 0:
            raise dataset_error(SourceDataError, dataset, "no point inside the given bounds",
                                "check the bounds and the files' CRS", ", ".join(s.path.name for s in srcs))
        res.read_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, int(opts.workers)), thread_name_prefix="citymodel-octree") as pool:
            for job in tiler.finish_pass(spill, (0, 0, 0, 0), D, pool):
                job.result()
        res.write_seconds = time.perf_counter() - t1
    finally:
        spill.remove()
    root = tiler.tileset_root(frame.transform)
    res.n_nodes = len(tiler.nodes)
    res.depth = max(k[0] for k in tiler.nodes)
    per_level = np.zeros(res.depth + 1, dtype=np.int64)
    for k, nd in tiler.nodes.items():
        per_level[k[0]] += nd.n
    res.points_per_level = [int(v) for v in per_level]
    if int(per_level.sum()) != res.n_points:
        raise RuntimeError(f"octree holds {int(per_level.sum())} points, {res.n_points} were read")
    res.octree = {"origin": [float(v) for v in origin], "edge_m": edge, "cells_per_edge": tiler.G,
                  "max_leaf_points": opts.max_leaf_points, "error_per_spacing": opts.error_per_spacing,
                  "coarse_levels_streamed": D}
    return res, root, frame
