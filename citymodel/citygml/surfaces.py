"""Semantic kinds of CityGML building boundary surfaces (``bldg:RoofSurface``, ...).

The writer writes a surface's kind as it is where CityGML 2.0 has it (:data:`SEMANTIC_KINDS`) and
classifies any other by its normal; the reader maps what it finds onto the four kinds the rest of
the project uses (:data:`CANONICAL_KINDS`), again by the normal where the file's kind is none of them.
"""

from __future__ import annotations

import math

from citymodel.geometry3d import Surface

SEMANTIC_KINDS = ("RoofSurface", "WallSurface", "GroundSurface", "ClosureSurface",
                  "OuterCeilingSurface", "OuterFloorSurface")
CANONICAL_KINDS = ("RoofSurface", "WallSurface", "GroundSurface", "ClosureSurface")


def kind_by_normal(surface: Surface) -> str:
    """Semantic kind of an unclassified surface: walls within 10° of vertical, roofs face up."""
    n = surface.normal
    if abs(n[2]) < math.sin(math.radians(10.0)):
        return "WallSurface"
    return "RoofSurface" if n[2] > 0 else "GroundSurface"
