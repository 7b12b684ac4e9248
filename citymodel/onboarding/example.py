"""The onboarding guide's worked example: a folder as a new city would bring it.

Building footprints (ALKIS GeoPackage), LiDAR tiles (LAZ, in a sub-folder) and a tree cadastre
(CSV), copied from the sample city; no roads, no flood zones, no official LoD2, no catalog and no
deployment file. Used by the test of the example and by ``benchmarks/bench_onboarding.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: the sample city's files the example takes (folder inside the example -> file names)
EXAMPLE_FILES = {".": ("gebaeude.gpkg", "baumkataster.csv"), "laz": ("las_32_*_th.laz",)}


def make_example_folder(sample_city_dir: str | Path, dest: str | Path) -> Path:
    """Copy the example's files from a generated sample city (``<dir>/files``) into ``dest``."""
    src = Path(sample_city_dir) / "files"
    dest = Path(dest)
    for sub, patterns in EXAMPLE_FILES.items():
        target = dest / sub
        target.mkdir(parents=True, exist_ok=True)
        for pattern in patterns:
            matches = sorted(src.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"{src} holds no {pattern}: generate the sample city first "
                                        f"(citymodel samplecity)")
            for f in matches:
                shutil.copy2(f, target / f.name)
    return dest
