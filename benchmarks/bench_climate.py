"""Annual irradiation of the solar layer's test surfaces against the configured climate (issue #14).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_climate

Prints, for Jena (the sample city's site) and each climate of ``analysis.solar.climate`` (the
sample city's synthetic TRY as ``weather``, the default monthly means, the clear sky): the
configured annual global horizontal irradiation, the unshaded annual irradiation of a horizontal
surface and of a 35° south-facing surface (Hay-Davies and isotropic), their ratio, and the best
tilt; and the time to build each year.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from citymodel.analysis import climate as C
from citymodel.analysis import solar as SO
from citymodel.analysis.sun import grid_convergence_deg, site_location
from citymodel.config import load_config
from citymodel.samplecity.weather import write_synthetic_try


def main() -> None:
    s = load_config()
    lat, lon = site_location(s.extent, s.processing_crs)
    conv = grid_convergence_deg(lat, lon, s.processing_crs)
    months = s.analysis.solar.monthly_ghi_kwh_m2
    configured = sum(months)
    print(f"site {lat:.4f} N {lon:.4f} E; configured annual global horizontal irradiation {configured:,.0f} kWh/m²")
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        data = C.read_weather(write_synthetic_try(Path(d) / "try.dat", months, lat, lon, seed=2026))
        years = {"weather (synthetic TRY)": (C.weather_year(data, lat, lon, conv, year=s.analysis.year),
                                             time.perf_counter() - t)}
    t = time.perf_counter()
    years["monthly_means"] = (C.monthly_means_year(months, lat, lon, conv, year=s.analysis.year), time.perf_counter() - t)
    t = time.perf_counter()
    years["clear_sky"] = (C.clear_sky_year(lat, lon, conv, year=s.analysis.year), time.perf_counter() - t)
    print("| climate | model | horizontal kWh/m²·a (÷ configured) | 35° south kWh/m²·a | ratio | best tilt | year built in |")
    print("|---|---|---|---|---|---|---|")
    for name, (sky, secs) in years.items():
        for model in ("haydavies", "isotropic"):
            hor = float(SO.plane_irradiation(0.0, 180.0, sky, model=model)[0])
            south = float(SO.plane_irradiation(35.0, 180.0, sky, model=model)[0])
            best, tilt = SO.optimal_plane_irradiation(sky, model)
            print(f"| {name} | {model} | {hor:,.0f} ({hor / configured:.3f}) | {south:,.0f} | {south / hor:.3f} | "
                  f"{tilt:.0f}° ({best:,.0f}) | {secs:.1f} s |")


if __name__ == "__main__":
    main()
