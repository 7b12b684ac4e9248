"""Analysis layers of the city model (sun and shadow, solar irradiation, sight lines, noise, flood).

Each layer is a pure function of the core library (no dagster): arrays and GeoDataFrames in, arrays
and tables out, with the method and parameters recorded in the outputs.
"""
