"""The sample city's terrain and river: closed-form functions, the ground truth of any DTM.

Heights are DHHN2016 (EPSG:7837) in metres, positions EPSG:25832. The terrain does not depend on
the generator's seed. The river (the "Saale") flows north through the east of the district in a
channel ``RIVER_HALF_WIDTH_M`` either side of its meandering axis :func:`river_axis_x`; its water
surface :func:`water_level` falls gently northwards. West of the river a floodplain rises into a
hillside (about 150 m at the water up to about 195 m in the south-west corner).
"""

from __future__ import annotations

import numpy as np

#: River name as it appears in titles and flood zone ids.
RIVER_NAME = "Saale"
#: Axis of the river: x = RIVER_AXIS_X0 + RIVER_MEANDER_AMPL_M * sin(2π (y - Y0) / RIVER_MEANDER_WAVELENGTH_M)
RIVER_AXIS_X0 = 682225.0
RIVER_MEANDER_AMPL_M = 18.0
RIVER_MEANDER_WAVELENGTH_M = 900.0
RIVER_Y0 = 5644700.0
#: Half width of the water surface (m); the channel bed lies below the water level inside it.
RIVER_HALF_WIDTH_M = 20.0
#: Water level (mean flow) at RIVER_Y0 and its fall per metre northwards.
WATER_LEVEL_Y0_M = 150.2
WATER_LEVEL_SLOPE = 0.0008
#: Depth of the channel at the axis below the water level (m).
CHANNEL_DEPTH_M = 1.8
#: The bank rises from the water line to BANK_HEIGHT_M above the water within BANK_WIDTH_M.
BANK_WIDTH_M = 12.0
BANK_HEIGHT_M = 1.4
#: Slope of the floodplain away from the bank (m/m), and of the hillside west of the floodplain.
FLOODPLAIN_SLOPE = 0.025
HILL_START_M = 140.0
HILL_SLOPE = 0.07
EAST_HILL_START_M = 40.0
EAST_HILL_SLOPE = 0.06
#: Gentle undulation of the hillside (faded out within 60..160 m of the river axis).
BUMP_AMPL_M = 0.8


def river_axis_x(y: np.ndarray) -> np.ndarray:
    """x of the river axis at northing ``y`` (m, EPSG:25832)."""
    y = np.asarray(y, dtype=float)
    return RIVER_AXIS_X0 + RIVER_MEANDER_AMPL_M * np.sin(2 * np.pi * (y - RIVER_Y0) / RIVER_MEANDER_WAVELENGTH_M)


def water_level(y: np.ndarray) -> np.ndarray:
    """Mean water surface of the river at northing ``y`` (m DHHN2016)."""
    y = np.asarray(y, dtype=float)
    return WATER_LEVEL_Y0_M - WATER_LEVEL_SLOPE * (y - RIVER_Y0)


def river_offset(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed east-west offset from the river axis (m): negative west of the river."""
    return np.asarray(x, dtype=float) - river_axis_x(y)


def in_water(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where ``x, y`` lies on the river's water surface."""
    return np.abs(river_offset(x, y)) < RIVER_HALF_WIDTH_M


def _softplus(t: np.ndarray, k: float = 20.0) -> np.ndarray:
    """Smooth max(0, t): ``(t + sqrt(t² + k²)) / 2``."""
    return 0.5 * (t + np.sqrt(t * t + k * k))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def terrain_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bare-earth height (m DHHN2016) at ``x, y`` (EPSG:25832); vectorised, broadcasts.

    Inside the river channel this is the river bed (below :func:`water_level`).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    d = river_offset(x, y)
    a = np.abs(d)
    zw = water_level(y)
    channel = zw - CHANNEL_DEPTH_M * (1.0 - (a / RIVER_HALF_WIDTH_M) ** 2)
    bank = zw + BANK_HEIGHT_M * _smoothstep((a - RIVER_HALF_WIDTH_M) / BANK_WIDTH_M)
    plain = zw + BANK_HEIGHT_M + FLOODPLAIN_SLOPE * (a - RIVER_HALF_WIDTH_M - BANK_WIDTH_M)
    z = np.where(a < RIVER_HALF_WIDTH_M, channel,
                 np.where(a < RIVER_HALF_WIDTH_M + BANK_WIDTH_M, bank, plain))
    # hillsides beyond the floodplain (zero at the top of the bank, so the channel stays untouched)
    a0 = RIVER_HALF_WIDTH_M + BANK_WIDTH_M
    aa = np.maximum(a, a0)
    west = d < 0
    z = z + np.where(west, HILL_SLOPE * (_softplus(aa - HILL_START_M) - _softplus(a0 - HILL_START_M)),
                     EAST_HILL_SLOPE * (_softplus(aa - EAST_HILL_START_M) - _softplus(a0 - EAST_HILL_START_M)))
    fade = _smoothstep((a - 60.0) / 100.0)
    z = z + BUMP_AMPL_M * np.sin(x / 47.0) * np.cos(y / 61.0) * fade
    return z


def river_parameters() -> dict:
    """The river's parameters, JSON-ready (for the ground truth file)."""
    return {
        "name": RIVER_NAME,
        "axis": "x = axis_x0 + meander_amplitude_m * sin(2 pi (y - y0) / meander_wavelength_m)",
        "axis_x0": RIVER_AXIS_X0, "meander_amplitude_m": RIVER_MEANDER_AMPL_M,
        "meander_wavelength_m": RIVER_MEANDER_WAVELENGTH_M, "y0": RIVER_Y0,
        "half_width_m": RIVER_HALF_WIDTH_M,
        "water_level": "z = water_level_y0_m - water_level_slope * (y - y0)",
        "water_level_y0_m": WATER_LEVEL_Y0_M, "water_level_slope": WATER_LEVEL_SLOPE,
        "channel_depth_m": CHANNEL_DEPTH_M, "flow_direction": "north",
        "terrain_function": "citymodel.samplecity.terrain_height(x, y)",
    }
