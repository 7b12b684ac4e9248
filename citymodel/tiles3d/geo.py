"""Geodesy for 3D Tiles: geoid models, ellipsoidal heights, ECEF (EPSG:4978) and local frames.

3D Tiles place content in ECEF on the WGS84 ellipsoid, so orthometric heights of the processing
CRS (DHHN2016, EPSG:7837, for Germany) have to be made ellipsoidal: ``h = H + N`` with the geoid
undulation ``N`` from a geoid model. The model is chosen by :func:`resolve_geoid`:

1. **GCG2016** (the German combined quasigeoid that defines DHHN2016 heights) where PROJ's grid
   ``de_bkg_gcg2016.tif`` is found,
2. otherwise **EGM96** (``us_nga_egm96_15.tif`` or ``egm96_15.gtx``; Debian's ``proj-data`` package
   installs ``/usr/share/proj/egm96_15.gtx``), which differs from GCG2016 by decimetres to about
   1 m in Germany,
3. otherwise a **constant undulation** for the area (default: :data:`JENA_UNDULATION_M`, the EGM96
   value at Jena's centre), recorded as a fallback so that the catalog can say so.

Grids are looked for in ``search_dirs``, ``$CITYMODEL_GEOID_DIR``, ``$PROJ_DATA``/``$PROJ_LIB``,
pyproj's data and user data folders, ``/usr/share/proj`` and ``/usr/local/share/proj``. Grids are
applied by PROJ's ``vgridshift`` (any format PROJ reads: GTX, GeoTIFF).

ETRS89 is taken as WGS84 (as PROJ's ballpark transformation does; the two differ by well under 1 m
in 2024, below what a viewer shows).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyproj

from ..errors import ConfigError, dataset_error

__all__ = [
    "GeoidModel", "resolve_geoid", "find_grid", "GeoTransformer", "geodetic_to_ecef",
    "ecef_to_geodetic", "enu_frame", "GEOID_GRIDS", "JENA_UNDULATION_M", "LocalFrameGrid",
]

#: PROJ grid file names per geoid model, preferred first.
GEOID_GRIDS: dict[str, tuple[str, ...]] = {
    "GCG2016": ("de_bkg_gcg2016.tif",),
    "EGM96": ("us_nga_egm96_15.tif", "egm96_15.gtx"),
}

#: EGM96 undulation at Jena (E 682000, N 5645000 in EPSG:25832; 50.93 N, 11.59 E), from Debian's
#: ``egm96_15.gtx`` through PROJ: 46.31 m. GCG2016 there is within about 1 m of it.
JENA_UNDULATION_M = 46.31

_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)


@dataclass(frozen=True)
class GeoidModel:
    """The geoid model used to make heights ellipsoidal.

    Attributes
    ----------
    name : str
        ``"GCG2016"``, ``"EGM96"``, ``"grid"`` (a grid file given by path) or ``"constant"``.
    grid_path : str or None
        Absolute path of the grid used, None for a constant.
    undulation_m : float or None
        The constant undulation (m) where no grid is used.
    fallback : bool
        True when the preferred model was not available and a weaker one is used.
    note : str
        One sentence for ``asset.extras`` and the catalog.
    """

    name: str
    grid_path: str | None = None
    undulation_m: float | None = None
    fallback: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _default_dirs() -> list[Path]:
    dirs: list[str] = []
    for var in ("CITYMODEL_GEOID_DIR", "PROJ_DATA", "PROJ_LIB"):
        val = os.environ.get(var)
        if val:
            dirs.extend(val.split(os.pathsep))
    try:
        dirs.append(pyproj.datadir.get_data_dir())
    except Exception:  # pragma: no cover - pyproj without data dir
        pass
    try:
        dirs.append(pyproj.datadir.get_user_data_dir())
    except Exception:  # pragma: no cover
        pass
    dirs += ["/usr/share/proj", "/usr/local/share/proj"]
    return [Path(d) for d in dirs]


def find_grid(names: Sequence[str], search_dirs: Sequence[str | Path] | None = None) -> Path | None:
    """First existing grid file of ``names`` in the search folders (explicit ones first)."""
    dirs = [Path(d) for d in (search_dirs or ())] + _default_dirs()
    for name in names:
        for d in dirs:
            p = d / name
            if p.is_file():
                return p.resolve()
    return None


def resolve_geoid(geoid: str | float | Path = "auto", *, search_dirs: Sequence[str | Path] | None = None,
                  fallback_undulation_m: float = JENA_UNDULATION_M) -> GeoidModel:
    """Choose the geoid model.

    Parameters
    ----------
    geoid : {"auto", "GCG2016", "EGM96"}, path or float
        ``"auto"``: GCG2016, else EGM96, else the constant ``fallback_undulation_m``. A model name
        asks for that model (falling back like ``"auto"`` when its grid is absent, recorded); a path
        names a grid file PROJ can read; a number is a constant undulation in metres (chosen on
        purpose, so not a fallback).
    search_dirs : sequence of paths, optional
        Folders searched for grids before the default ones.
    fallback_undulation_m : float
        Constant undulation (m) for the area when no grid is found.

    Raises
    ------
    ConfigError
        If a grid path is given that does not exist, or the model name is unknown.
    """
    if isinstance(geoid, (int, float)) and not isinstance(geoid, bool):
        return GeoidModel("constant", undulation_m=float(geoid),
                          note=f"constant geoid undulation of {float(geoid):.3f} m given by the configuration")
    text = str(geoid)
    if isinstance(geoid, Path) or "/" in text or text.endswith((".tif", ".gtx")):
        p = Path(text)
        if not p.is_file():
            raise dataset_error(ConfigError, "geoid model", f"grid file {text} does not exist",
                                "give an existing PROJ geoid grid (GTX/GeoTIFF) or 'auto'")
        return GeoidModel("grid", grid_path=str(p.resolve()), note=f"geoid grid {p.name}")
    key = text.upper()
    if key not in ("AUTO", *GEOID_GRIDS):
        raise dataset_error(ConfigError, "geoid model", f"unknown geoid model {geoid!r}",
                            f"use 'auto', one of {list(GEOID_GRIDS)}, a grid path or a constant in metres")
    order = ["GCG2016", "EGM96"] if key == "AUTO" else [key] + [m for m in ("GCG2016", "EGM96") if m != key]
    for i, name in enumerate(order):
        path = find_grid(GEOID_GRIDS[name], search_dirs)
        if path is not None:
            fallback = i > 0
            note = f"{name} geoid grid {path.name}"
            if fallback:
                note += f" ({order[0]} grid {GEOID_GRIDS[order[0]][0]} not found)"
            return GeoidModel(name, grid_path=str(path), fallback=fallback, note=note)
    return GeoidModel("constant", undulation_m=float(fallback_undulation_m), fallback=True,
                      note=(f"no geoid grid found ({', '.join(n for m in order for n in GEOID_GRIDS[m])}); "
                            f"constant undulation {float(fallback_undulation_m):.3f} m used for the area "
                            "(install Debian's proj-data for EGM96 or put de_bkg_gcg2016.tif in PROJ_DATA)"))


def geodetic_to_ecef(lon_deg: np.ndarray, lat_deg: np.ndarray, h_m: np.ndarray) -> np.ndarray:
    """WGS84 geodetic coordinates (degrees, ellipsoidal height m) to ECEF (n, 3), vectorised."""
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    h = np.asarray(h_m, dtype=float)
    sl, cl = np.sin(lat), np.cos(lat)
    n = _WGS84_A / np.sqrt(1.0 - _WGS84_E2 * sl * sl)
    return np.column_stack([(n + h) * cl * np.cos(lon), (n + h) * cl * np.sin(lon),
                            (n * (1.0 - _WGS84_E2) + h) * sl])


_TO_GEODETIC = None


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF (n, 3) to WGS84 lon, lat (degrees) and ellipsoidal height (m), through pyproj."""
    global _TO_GEODETIC
    if _TO_GEODETIC is None:
        _TO_GEODETIC = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    p = np.asarray(xyz, dtype=float).reshape(-1, 3)
    lon, lat, h = _TO_GEODETIC.transform(p[:, 0], p[:, 1], p[:, 2])
    return np.asarray(lon), np.asarray(lat), np.asarray(h)


def enu_frame(lon_deg: float, lat_deg: float) -> np.ndarray:
    """Rotation (3, 3) whose columns are east, north, up at a point, in ECEF."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    e = np.array([-np.sin(lon), np.cos(lon), 0.0])
    n = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    u = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return np.column_stack([e, n, u])


class GeoTransformer:
    """Processing CRS + orthometric heights -> geodetic/ECEF, with the chosen geoid model.

    Parameters
    ----------
    crs : str
        Horizontal processing CRS (``"EPSG:25832"``); a compound CRS's horizontal part is used.
    geoid : GeoidModel
    vertical_crs : str
        The vertical CRS of the input heights (recorded; ``"EPSG:7837"`` DHHN2016).
    """

    def __init__(self, crs: str, geoid: GeoidModel, vertical_crs: str = "EPSG:7837") -> None:
        try:
            src = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise dataset_error(ConfigError, "3D Tiles", f"unknown CRS {crs!r} ({exc})",
                                "give the processing CRS as e.g. 'EPSG:25832'") from None
        if src.is_compound:
            src = src.sub_crs_list[0]
        self.crs = src
        self.vertical_crs = vertical_crs
        self.geoid = geoid
        self._to_lonlat = pyproj.Transformer.from_crs(src, "EPSG:4326", always_xy=True)
        self._shift = None
        if geoid.grid_path:
            self._shift = pyproj.Transformer.from_pipeline(f"+proj=vgridshift +grids={geoid.grid_path} "
                                                           "+multiplier=1")

    def undulation(self, lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
        """Geoid undulation N (m) at the points."""
        lon = np.asarray(lon_deg, dtype=float)
        if self._shift is None:
            return np.full(lon.shape, float(self.geoid.undulation_m))
        _, _, n = self._shift.transform(lon, np.asarray(lat_deg, dtype=float), np.zeros_like(lon))
        n = np.asarray(n, dtype=float)
        if not np.all(np.isfinite(n)):
            raise dataset_error(ConfigError, "geoid model", f"the grid {self.geoid.grid_path} does not cover "
                                "all points (undulation is not finite)",
                                "use a geoid grid that covers the city, or a constant undulation")
        return n

    def to_geodetic(self, x: np.ndarray, y: np.ndarray, height_m: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """lon, lat (degrees, WGS84) and ellipsoidal height (m) of points in the processing CRS."""
        lon, lat = self._to_lonlat.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        lon, lat = np.asarray(lon), np.asarray(lat)
        return lon, lat, np.asarray(height_m, dtype=float) + self.undulation(lon, lat)

    def to_ecef(self, xyz: np.ndarray) -> np.ndarray:
        """ECEF (n, 3) of points (n, 3) in the processing CRS with orthometric heights."""
        p = np.asarray(xyz, dtype=float).reshape(-1, 3)
        return geodetic_to_ecef(*self.to_geodetic(p[:, 0], p[:, 1], p[:, 2]))


class LocalFrameGrid:
    """Points of the processing CRS (x, y, orthometric height) in a local east-north-up frame, fast.

    The frame is the ENU frame at the centre of ``bounds`` (at height ``centre_height_m``):
    ``local = rotation.T @ (ecef - centre)``, and ``transform`` takes local to ECEF. Exactly,
    ``ecef(x, y, H) = ecef(x, y, N) + H * up(x, y)`` (``N`` the geoid undulation, ``up`` the
    ellipsoid normal), so the local position is ``P(x, y) + H * U(x, y)`` with ``P`` and ``U``
    smooth over a tile. They are computed exactly (pyproj, the geoid model) at the nodes of a
    lattice of ``cell_m`` and interpolated bilinearly in between: over 16 m cells the
    interpolation is off by micrometres (the surface bends by ``cell² / (8 R)``).
    :attr:`max_error_m` is that error measured at the cell centres (the worst place) against the
    exact transformation; the lattice is refined until it is below ``tolerance_m``.

    Parameters
    ----------
    geo : GeoTransformer
    bounds : (minx, miny, maxx, maxy)
        Area of the points in the processing CRS; points outside it are not covered.
    height_range_m : (min, max)
        Orthometric heights of the points (for the frame's centre and the error check).
    """

    def __init__(self, geo: GeoTransformer, bounds: Sequence[float], height_range_m: Sequence[float] = (0.0, 0.0),
                 cell_m: float = 16.0, tolerance_m: float = 0.001) -> None:
        x0, y0, x1, y1 = (float(v) for v in bounds)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"empty bounds {bounds}")
        h0, h1 = (float(v) for v in height_range_m)
        xc, yc, hc = 0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * (h0 + h1)
        lon_c, lat_c, h_c = geo.to_geodetic(np.array([xc]), np.array([yc]), np.array([hc]))
        self.centre = geodetic_to_ecef(lon_c, lat_c, h_c)[0]
        self.rotation = enu_frame(float(lon_c[0]), float(lat_c[0]))
        self.bounds = (x0, y0, x1, y1)
        self._geo = geo
        while True:
            self._build(cell_m)
            self.max_error_m = self._check((h0, h1))
            if self.max_error_m <= tolerance_m or cell_m < 0.5:
                break
            cell_m /= 2.0

    def _build(self, cell_m: float) -> None:
        x0, y0, x1, y1 = self.bounds
        nx = max(int(np.ceil((x1 - x0) / cell_m)), 1) + 1
        ny = max(int(np.ceil((y1 - y0) / cell_m)), 1) + 1
        self.cell_m = cell_m
        self.shape = (ny, nx)
        xs = x0 + cell_m * np.arange(nx)
        ys = y0 + cell_m * np.arange(ny)
        gx, gy = np.meshgrid(xs, ys)
        self.P, self.U = self._exact_pu(gx.ravel(), gy.ravel())
        self.P = self.P.reshape(ny, nx, 3)
        self.U = self.U.reshape(ny, nx, 3)

    def _exact_pu(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat, h = self._geo.to_geodetic(x, y, np.zeros_like(x))
        p = (geodetic_to_ecef(lon, lat, h) - self.centre) @ self.rotation
        lo, la = np.radians(lon), np.radians(lat)
        up = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
        return p, up @ self.rotation

    @property
    def params(self) -> np.ndarray:
        """``(x0, y0, cell, nx, ny)`` for the compiled loops."""
        return np.array([self.bounds[0], self.bounds[1], self.cell_m, self.shape[1], self.shape[0]], dtype=np.float64)

    @property
    def transform(self) -> np.ndarray:
        """4x4 matrix from the local (ENU, z-up) frame to ECEF."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.centre
        return m

    def to_local(self, x: np.ndarray, y: np.ndarray, height_m: np.ndarray) -> np.ndarray:
        """Local positions (n, 3) by the lattice (what the compiled loops compute)."""
        x, y, h = (np.asarray(a, dtype=float).ravel() for a in (x, y, height_m))
        ny, nx = self.shape
        fx = np.clip((x - self.bounds[0]) / self.cell_m, 0.0, nx - 1.0)
        fy = np.clip((y - self.bounds[1]) / self.cell_m, 0.0, ny - 1.0)
        c0 = np.minimum(fx.astype(int), nx - 2)
        r0 = np.minimum(fy.astype(int), ny - 2)
        tx, ty = (fx - c0)[:, None], (fy - r0)[:, None]

        def lerp(a: np.ndarray) -> np.ndarray:
            return ((1 - tx) * (1 - ty) * a[r0, c0] + tx * (1 - ty) * a[r0, c0 + 1]
                    + (1 - tx) * ty * a[r0 + 1, c0] + tx * ty * a[r0 + 1, c0 + 1])

        return lerp(self.P) + h[:, None] * lerp(self.U)

    def exact_local(self, x: np.ndarray, y: np.ndarray, height_m: np.ndarray) -> np.ndarray:
        """Local positions (n, 3) by the exact transformation (pyproj and the geoid model)."""
        ecef = self._geo.to_ecef(np.column_stack([np.ravel(x), np.ravel(y), np.ravel(height_m)]))
        return (ecef - self.centre) @ self.rotation

    def _check(self, heights: tuple[float, float]) -> float:
        ny, nx = self.shape
        step = max(1, max(nx, ny) // 24)
        cx = self.bounds[0] + self.cell_m * (np.arange(0, nx - 1, step) + 0.5)
        cy = self.bounds[1] + self.cell_m * (np.arange(0, ny - 1, step) + 0.5)
        gx, gy = (a.ravel() for a in np.meshgrid(cx, cy))
        err = 0.0
        for h in sorted(set(heights)):
            hh = np.full(gx.shape, h)
            d = self.to_local(gx, gy, hh) - self.exact_local(gx, gy, hh)
            err = max(err, float(np.abs(d).max()))
        return err
