"""The configured days (``'MM-DD'``) as labels of column and property names and as (month, day).

Defined in the core (:mod:`citymodel.analysis.layers`, :mod:`citymodel.analysis.parameters`), where
the layers name their columns; re-exported here for the stage's modules.
"""

from citymodel.analysis.layers import date_label, day_label
from citymodel.analysis.parameters import month_day

__all__ = ["date_label", "day_label", "month_day"]
