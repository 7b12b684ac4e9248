"""Tree crowns: a crown diameter for trees whose cadastre gives none.

Shading and sight lines model a tree as an ellipsoid crown of its height and crown diameter. Tree
cadastres often lack the crown diameter (it is measured less often than height and trunk). Such a
tree gets one by a stated relation, and the staged table says which trees got one
(``crown_diameter_estimated``), so that a warning check can count them:

1. From the trunk, where its circumference is known: crown diameter = 25 × stem diameter, the
   stem diameter being circumference / π. Coombes, Martin and Slater (2019), *Defining the
   allometry of stem and crown diameter of urban trees*, Urban Forestry & Urban Greening 44,
   126421, found the ratio of crown diameter to stem diameter at breast height in a narrow range of
   24 to 27 for 400 free-standing urban trees of four species (oak, sycamore, silver birch,
   Norway maple), little affected by species, pruning or site; 25 is taken. German cadastres
   measure the circumference at 1 m, not at 1.3 m (breast height): the small difference is
   ignored.
2. From the height alone: crown diameter = half the height, at least 2 m. This is a rule of thumb
   of this project, not a fitted allometry (no published height-only relation for urban trees in
   general was at hand); it is the relation the planning variants use for new trees.

Trees with neither a trunk circumference nor a height get none (they cannot be modelled and are
quarantined by :func:`citymodel.vector.validate_records`).
"""

from __future__ import annotations

import math

import numpy as np

#: crown diameter ÷ stem diameter (Coombes, Martin & Slater 2019: 24 to 27)
CROWN_TO_STEM_RATIO = 25.0
#: crown diameter ÷ height where only the height is known (this project's rule of thumb)
CROWN_TO_HEIGHT_RATIO = 0.5
#: smallest estimated crown diameter (a young street tree's crown)
MIN_CROWN_DIAMETER_M = 2.0

#: how a crown diameter was obtained (column ``crown_diameter_source`` of the staged trees)
SOURCE_MEASURED = "measured"
SOURCE_TRUNK = "trunk_allometry"
SOURCE_HEIGHT = "height_rule"
#: nothing to estimate from (the tree is quarantined by validation)
SOURCE_NONE = "none"


def crown_diameter_from_trunk_m(trunk_circumference_cm):
    """Crown diameter (m) from the trunk circumference (cm): 25 × circumference / π.

    Coombes, Martin and Slater (2019), Urban Forestry & Urban Greening 44, 126421 (ratio of crown
    to stem diameter 24 to 27 for free-standing urban trees). At least
    :data:`MIN_CROWN_DIAMETER_M`; NaN where the circumference is missing or not positive.
    """
    c = np.asarray(trunk_circumference_cm, dtype=float)
    d = CROWN_TO_STEM_RATIO * (c / 100.0) / math.pi
    return np.where(np.isfinite(c) & (c > 0), np.maximum(d, MIN_CROWN_DIAMETER_M), np.nan)


def crown_diameter_from_height_m(height_m):
    """Crown diameter (m) from the tree height (m): half the height, at least 2 m.

    A rule of thumb of this project (see the module docstring), used only where the trunk is not
    known. NaN where the height is missing or not positive.
    """
    h = np.asarray(height_m, dtype=float)
    return np.where(np.isfinite(h) & (h > 0), np.maximum(CROWN_TO_HEIGHT_RATIO * h, MIN_CROWN_DIAMETER_M), np.nan)


def fill_crown_diameters(frame):
    """Give trees without a crown diameter one (trunk first, else height); say which and how.

    Parameters
    ----------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        Staged trees with ``crown_diameter_m``, ``height_m`` and ``trunk_circumference_cm``.

    Returns
    -------
    frame
        A copy with ``crown_diameter_m`` filled where it was missing (not where it is given, also
        not where it is given but out of range: that is for validation to report), and
        ``crown_diameter_source`` (:data:`SOURCE_MEASURED`, :data:`SOURCE_TRUNK`,
        :data:`SOURCE_HEIGHT`, or :data:`SOURCE_NONE` where nothing could be estimated) and the boolean
        ``crown_diameter_estimated``.
    """
    out = frame.copy()
    n = len(out)
    crown = np.asarray(out["crown_diameter_m"], dtype=float) if "crown_diameter_m" in out else np.full(n, np.nan)
    trunk = (np.asarray(out["trunk_circumference_cm"], dtype=float) if "trunk_circumference_cm" in out
             else np.full(n, np.nan))
    height = np.asarray(out["height_m"], dtype=float) if "height_m" in out else np.full(n, np.nan)
    missing = np.isnan(crown)
    from_trunk = crown_diameter_from_trunk_m(trunk)
    from_height = crown_diameter_from_height_m(height)
    use_trunk = missing & np.isfinite(from_trunk)
    use_height = missing & ~use_trunk & np.isfinite(from_height)
    filled = crown.copy()
    filled[use_trunk] = from_trunk[use_trunk]
    filled[use_height] = from_height[use_height]
    source = np.full(n, SOURCE_NONE, dtype=object)
    source[~missing] = SOURCE_MEASURED
    source[use_trunk] = SOURCE_TRUNK
    source[use_height] = SOURCE_HEIGHT
    out["crown_diameter_m"] = filled
    out["crown_diameter_source"] = source
    out["crown_diameter_estimated"] = use_trunk | use_height
    return out
