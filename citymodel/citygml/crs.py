"""CRS names of CityGML files: ``srsName`` to EPSG codes and back.

German state tiles name their CRS in the AdV register's form
(``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``: horizontal system and height datum), other exports in
EPSG URNs or URLs. :func:`parse_srs_name` understands both; :func:`srs_name_for` gives the name
the writer uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from citymodel.errors import CRSError

# AdV CRS names (the "AdV-CRS-Register") of the systems German state tiles use.
_ADV_HORIZONTAL = {
    "ETRS89_UTM31": 25831, "ETRS89_UTM32": 25832, "ETRS89_UTM33": 25833,
    "DE_DHDN_3GK2": 31466, "DE_DHDN_3GK3": 31467, "DE_DHDN_3GK4": 31468, "DE_DHDN_3GK5": 31469,
}
_ADV_VERTICAL = {"DE_DHHN2016_NH": 7837, "DE_DHHN92_NH": 5783}
_ADV_HORIZONTAL_NAME = {v: k for k, v in _ADV_HORIZONTAL.items()}
_ADV_VERTICAL_NAME = {v: k for k, v in _ADV_VERTICAL.items()}


@dataclass(frozen=True)
class CityGMLCRS:
    """The CRS a ``srsName`` stands for."""

    horizontal: str              #: e.g. ``"EPSG:25832"``
    vertical: str | None         #: e.g. ``"EPSG:7837"`` (DHHN2016), None where the name has none
    srs_name: str                #: the name as written in the file (or the override)


def _epsg_int(crs: str | int) -> int:
    """``"EPSG:25832"`` / ``25832`` / ``"urn:ogc:def:crs:EPSG::25832"`` -> 25832."""
    if isinstance(crs, (int, np.integer)):
        return int(crs)
    m = re.search(r"(\d+)\s*$", str(crs))
    if not m or "EPSG" not in str(crs).upper():
        raise CRSError(f"CRS '{crs}' is not an EPSG code. Fix: give the CRS as 'EPSG:<code>'")
    return int(m.group(1))


@lru_cache(maxsize=256)
def _classify_epsg(code: int) -> tuple[list[int], list[int]]:
    """Split an EPSG code into (horizontal codes, vertical codes) with pyproj; compound -> both."""
    import pyproj

    crs = pyproj.CRS.from_epsg(code)
    subs = crs.sub_crs_list if crs.is_compound else [crs]
    hor: list[int] = []
    ver: list[int] = []
    for sub in subs:
        auth = sub.to_epsg()
        if auth is None:
            continue
        (ver if sub.is_vertical else hor).append(auth)
    return hor, ver


@lru_cache(maxsize=256)
def parse_srs_name(srs_name: str) -> CityGMLCRS | None:
    """Resolve a GML ``srsName`` to EPSG codes; None where the name is not understood.

    Understood: EPSG URNs and URLs (``urn:ogc:def:crs:EPSG::25833``,
    ``urn:ogc:def:crs:EPSG:6.12:25832``, ``http://www.opengis.net/def/crs/EPSG/0/25832``,
    ``EPSG:25832``), OGC compound URNs (``urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::7837``), EPSG
    compound codes (5555 -> 25832 + 5783) and AdV names (``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``,
    with or without a ``*GCG2016`` geoid suffix).
    """
    name = srs_name.strip()
    if name.lower().startswith("urn:adv:crs:"):
        parts = name[len("urn:adv:crs:"):].split("*")
        hor = _ADV_HORIZONTAL.get(parts[0])
        if hor is None:
            return None
        ver = None
        if len(parts) > 1:
            ver = _ADV_VERTICAL.get(parts[1])
            if ver is None:
                return None
        return CityGMLCRS(f"EPSG:{hor}", f"EPSG:{ver}" if ver else None, srs_name)
    codes = [int(c) for c in re.findall(
        r"EPSG(?:::|:[\d.]*:|/[\d.]+/|:)(\d+)", name, flags=re.IGNORECASE)]
    if not codes:
        return None
    hors: list[int] = []
    vers: list[int] = []
    for code in codes:
        try:
            h, v = _classify_epsg(code)
        except Exception:  # pyproj.exceptions.CRSError: an EPSG code PROJ does not know
            return None
        hors += h
        vers += v
    if len(hors) != 1 or len(vers) > 1:
        return None
    return CityGMLCRS(f"EPSG:{hors[0]}", f"EPSG:{vers[0]}" if vers else None, srs_name)


def srs_name_for(crs: str | int, vertical_crs: str | int | None) -> str:
    """The ``srsName`` the writer uses for a horizontal + vertical CRS.

    The AdV name (``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH``) where both parts have one: that is
    what the states' own LoD2 tiles carry, so a consumer who reads the official tiles reads ours
    the same way (the Berlin export's ``urn:ogc:def:crs:EPSG::25833`` names the horizontal system
    only and loses the height datum). Otherwise the EPSG compound code where EPSG has one
    (``urn:ogc:def:crs:EPSG::5555``), else the OGC compound URN, else the plain EPSG URN.
    """
    hor = _epsg_int(crs)
    if vertical_crs is None:
        return f"urn:ogc:def:crs:EPSG::{hor}"
    ver = _epsg_int(vertical_crs)
    if hor in _ADV_HORIZONTAL_NAME and ver in _ADV_VERTICAL_NAME:
        return f"urn:adv:crs:{_ADV_HORIZONTAL_NAME[hor]}*{_ADV_VERTICAL_NAME[ver]}"
    compound = _compound_epsg(hor, ver)
    if compound is not None:
        return f"urn:ogc:def:crs:EPSG::{compound}"
    return f"urn:ogc:def:crs,crs:EPSG::{hor},crs:EPSG::{ver}"


@lru_cache(maxsize=64)
def _compound_epsg(hor: int, ver: int) -> int | None:
    from pyproj.database import query_crs_info
    import pyproj

    for info in query_crs_info(auth_name="EPSG", pj_types=["COMPOUND_CRS"]):
        try:
            subs = pyproj.CRS.from_epsg(int(info.code)).sub_crs_list
        except Exception:
            continue
        if [s.to_epsg() for s in subs] == [hor, ver]:
            return int(info.code)
    return None
