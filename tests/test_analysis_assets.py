"""The analysis assets (sun hours, solar, sight lines, noise, flood, traffic change, building values).

The slow part materializes them on the sample city with a real pipeline run (the refresh planner
and ``execute_plan`` in a test instance, publishing left out) and checks the results against what
can be reasoned about: the astronomical day length, shadows north of tall buildings, south roofs
against north roofs, noise falling off away from the loudest road, the sample city's flood ground
truth, and a traffic change that acts only near the changed road. The fast part checks the
configuration and the clear errors on bad input.
"""

import datetime as dt
import json
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import write_config
from citymodel.config import load_config
from citymodel.errors import ConfigError, SourceDataError

ANALYSIS = ("sun_hours", "solar", "sightlines", "noise", "flood", "traffic_change", "building_values")
PARTITIONED = {"sun_hours", "solar", "noise", "flood", "traffic_change"}


@pytest.fixture(scope="module")
def analysed(pipeline_city):
    """The analysis results of the shared end-to-end run of the whole pipeline on the sample city."""
    graph = pipeline_city.defs.resolve_asset_graph()
    targets = {dg.AssetKey(["analysis", n]) for n in ANALYSIS}
    return SimpleNamespace(settings=pipeline_city.settings, instance=pipeline_city.instance, graph=graph,
                           outcome=pipeline_city.outcome, checks=_check_results(pipeline_city.instance, graph, targets),
                           truth=pipeline_city.truth.ground_truth, root=pipeline_city.root)


def _check_results(instance, graph, keys) -> dict[str, bool]:
    ck = [c for c in graph.asset_check_keys if c.asset_key in keys]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(ck)
    out = {}
    for c in ck:
        rec = latest.get(c)
        ev = rec.event.dagster_event.event_specific_data if rec is not None and rec.event is not None \
            and rec.event.dagster_event else None
        out[f"{c.asset_key.path[-1]}/{c.name}"] = getattr(ev, "passed", None)
    return out


def _materializations(instance, name: str, partition: str | None) -> int:
    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(["analysis", name]),
                                asset_partitions=[partition] if partition else None)
    return len(instance.fetch_materializations(flt, limit=100).records)


def _sample(paths, x, y, band: int = 0) -> np.ndarray:
    """Value of the cell holding each point, from tile rasters (NaN outside or at nodata)."""
    from citymodel.raster import read_geotiff

    x, y = np.asarray(x, float), np.asarray(y, float)
    out = np.full(x.shape, np.nan)
    for p in paths:
        if not Path(p).exists():
            continue
        r = read_geotiff(p)
        arr = r.masked if r.masked.ndim == 2 else r.masked[band]
        inv = ~r.transform
        col = np.floor(inv.a * x + inv.b * y + inv.c).astype(int)
        row = np.floor(inv.d * x + inv.e * y + inv.f).astype(int)
        ok = (row >= 0) & (row < arr.shape[0]) & (col >= 0) & (col < arr.shape[1]) & np.isnan(out)
        out[ok] = arr[row[ok], col[ok]]
    return out


def _cells(paths, band: int = 0):
    """(x, y, value) of every valid cell of tile rasters."""
    from citymodel.raster import read_geotiff

    xs, ys, vs = [], [], []
    for p in paths:
        r = read_geotiff(p)
        arr = r.masked if r.masked.ndim == 2 else r.masked[band]
        rows, cols = np.nonzero(np.isfinite(arr))
        x, y = r.transform * (cols + 0.5, rows + 0.5)
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        vs.append(arr[rows, cols])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(vs)


def _day_length_h(date: dt.date, latitude_deg: float) -> float:
    """Astronomical day length (sunrise to sunset, upper limb with refraction: -0.833 deg), from the
    declination (Cooper's formula); independent of pvlib."""
    n = date.timetuple().tm_yday
    dec = np.radians(23.44) * np.sin(np.radians(360.0 / 365.0 * (284 + n)))
    phi = np.radians(latitude_deg)
    cos_h = (np.sin(np.radians(-0.833)) - np.sin(phi) * np.sin(dec)) / (np.cos(phi) * np.cos(dec))
    return float(2 * np.degrees(np.arccos(np.clip(cos_h, -1, 1))) / 15.0)


# ====================================================================================== slow


def test_every_analysis_asset_materialized_and_checks_pass(analysed):
    assert analysed.outcome.ok, analysed.outcome.failed
    s = analysed.settings
    for name in ANALYSIS:
        for p in (s.tile_ids if name in PARTITIONED else [None]):
            assert _materializations(analysed.instance, name, p) == 1, (name, p)
    assert analysed.checks and all(v is True for v in analysed.checks.values()), analysed.checks
    # every analysis asset has a code version, kinds, a description and sits in group 'analysis'
    for name in ANALYSIS:
        node = analysed.graph.get(dg.AssetKey(["analysis", name]))
        assert node.group_name == "analysis" and node.code_version and node.description
        if name not in PARTITIONED:
            assert node.automation_condition is not None, name


def test_sun_hours_within_day_length_and_shadow_north_of_buildings(analysed):
    from assets.analysis import tile_files
    from citymodel.analysis.sun import site_location
    from citymodel.raster import read_geotiff

    s = analysed.settings
    paths = [tile_files(s, "sun_hours", t)["raster"] for t in s.tile_ids]
    lat, _ = site_location(s.extent, s.processing_crs)
    days = [dt.date(s.analysis.year, *map(int, d.split("-"))) for d in s.analysis.sun.days]
    r = read_geotiff(paths[0])
    assert r.array.shape[0] == len(days)
    for band, day in enumerate(sorted(days)):
        _, _, v = _cells(paths, band)
        limit = _day_length_h(day, lat)
        assert v.min() >= 0.0
        # midpoint steps of 15 min: at most one step more than the astronomical day
        assert v.max() <= limit + s.analysis.sun.time_step_min / 60.0, (day, v.max(), limit)
        assert v.max() >= limit - 1.0, (day, v.max(), limit)  # open ground gets (nearly) the whole day
    # December: just north of a tall building less sun than just south of it
    dec = sorted(days).index(next(d for d in days if d.month == 12))
    north, south = [], []
    for b in analysed.truth["buildings"]:
        if b["ridge_height_m"] < 8.0:
            continue
        fp = shapely.from_wkt(b["footprint_wkt"])
        x = fp.centroid.x
        n = _sample(paths, [x], [fp.bounds[3] + 3.0], dec)[0]
        sth = _sample(paths, [x], [fp.bounds[1] - 3.0], dec)[0]
        inside_n = fp.buffer(0.5).contains(shapely.Point(x, fp.bounds[3] + 3.0))
        if np.isfinite(n) and np.isfinite(sth) and not inside_n:
            north.append(n)
            south.append(sth)
    north, south = np.array(north), np.array(south)
    assert len(north) >= 20
    # at noon the December sun stands ~15.6 deg high: an 8 m building shades ~28 m to its north
    assert np.median(north) < 1.0, np.median(north)
    assert north.mean() < south.mean() - 1.0, (north.mean(), south.mean())
    assert (north <= south + 1e-6).mean() >= 0.8


def test_facade_sun_hours_and_din17037(analysed):
    from assets.analysis import tile_files
    from citymodel.analysis.sun import site_location

    s = analysed.settings
    lat, _ = site_location(s.extent, s.processing_crs)
    walls = pd.concat([pd.read_parquet(tile_files(s, "sun_hours", t)["facades"]) for t in s.tile_ids])
    for d in s.analysis.sun.days:
        day = dt.date(s.analysis.year, *map(int, d.split("-")))
        col = f"sun_h_max_{['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'][day.month - 1]}{day.day:02d}"
        assert walls[col].between(0, _day_length_h(day, lat) + 0.25).all()
    # at the equinox the sun rises due east and sets due west: an unshaded south wall sees it all day,
    # a north wall never (its front half-space holds no sun position above the horizon)
    assert walls["sun_h_max_mar21"].max() > _day_length_h(dt.date(s.analysis.year, 3, 21), lat) - 1.0
    din = pd.concat([pd.read_parquet(tile_files(s, "sun_hours", t)["din17037"]) for t in s.tile_ids])
    assert set(din["level"]) <= {"high", "medium", "minimum", "none"}
    # the level follows the hours (DIN EN 17037 thresholds 4 / 3 / 1.5 h)
    expect = np.select([din["sun_hours_best"] >= 4, din["sun_hours_best"] >= 3, din["sun_hours_best"] >= 1.5],
                       ["high", "medium", "minimum"], "none")
    assert (din["level"].to_numpy() == expect).all()
    assert din["building_id"].is_unique


def test_south_roofs_receive_more_than_north_roofs(analysed):
    from assets.analysis import tile_files

    s = analysed.settings
    roofs = pd.concat([pd.read_parquet(tile_files(s, "solar", t)["roofs"]) for t in s.tile_ids])
    pitched = roofs[(roofs["tilt_deg"] > 20) & (roofs["area_m2"] > 10)]
    az = pitched["azimuth_deg"]
    south = pitched[(az > 150) & (az < 210)]["irradiation_kwh_m2a"]
    north = pitched[(az > 330) | (az < 30)]["irradiation_kwh_m2a"]
    assert len(south) >= 10 and len(north) >= 10
    assert south.median() > north.median() * 1.3, (south.median(), north.median())
    # the unshaded values agree with pvlib's own transposition (get_total_irradiance, the configured
    # sky model) over the same hourly year: the sample city's weather dataset
    import pvlib

    from citymodel.analysis.parameters import solar_sky

    sky = solar_sky(s)
    assert sky.climate == "weather"
    check = pd.concat([pitched[(az > 150) & (az < 210)].head(5), pitched[(az > 330) | (az < 30)].head(5)])
    for r in check.itertuples():
        poa = pvlib.irradiance.get_total_irradiance(r.tilt_deg, r.azimuth_deg, sky.zenith_deg, sky.azimuth_deg, sky.dni,
                                                    sky.ghi, sky.dhi, dni_extra=sky.dni_extra,
                                                    albedo=s.analysis.solar.albedo, model=s.analysis.solar.model)
        ref = float(np.nansum(poa["poa_global"])) * sky.step_h / 1000.0
        assert abs(r.unshaded_kwh_m2a - ref) < 0.02 * ref, (r.tilt_deg, r.azimuth_deg, r.unshaded_kwh_m2a, ref)
    assert (roofs["irradiation_kwh_m2a"] <= roofs["unshaded_kwh_m2a"] + 1e-6).all()
    assert set(roofs["suitability"]) <= {"very suitable", "suitable", "less suitable", "too small"}


def test_solar_yields_follow_the_configured_climate(analysed):
    """Issue #14: an unshaded horizontal roof of the sample city gets the configured annual global
    irradiation within 3 %; an unshaded south roof of about 35° gets 1.10-1.25 times as much; the
    table says which climate it was computed with."""
    from assets.analysis import tile_files

    s = analysed.settings
    roofs = pd.concat([pd.read_parquet(tile_files(s, "solar", t)["roofs"]) for t in s.tile_ids])
    annual = sum(s.analysis.solar.monthly_ghi_kwh_m2)
    assert set(roofs["climate"]) == {"weather"}
    free = roofs[(roofs["shading_loss"] < 0.005) & (roofs["sky_view_factor"] > 0.99)]
    flat = free[free["tilt_deg"] < 1.0]
    assert len(flat) >= 3
    assert (np.abs(flat["irradiation_kwh_m2a"] / annual - 1.0) <= 0.03).all(), flat["irradiation_kwh_m2a"].describe()
    south = roofs[(roofs["tilt_deg"].between(30, 40)) & ((roofs["azimuth_deg"] - 180).abs() < 15)]
    assert len(south) >= 3
    ratio = south["unshaded_kwh_m2a"] / flat["unshaded_kwh_m2a"].median()
    assert ratio.between(1.10, 1.25).all(), ratio.describe()


def test_noise_falls_off_away_from_the_loudest_road(analysed):
    import geopandas as gpd

    from assets.analysis import tile_files
    from citymodel.analysis.rls19 import road_emissions

    s = analysed.settings
    roads = gpd.read_parquet(s.staging_dir / "roads.parquet")
    em = road_emissions(roads)
    loudest = em.loc[em["lw_day_db_m"].idxmax()]
    line = shapely.union_all(list(em.loc[em["name"] == loudest["name"], "geometry"]))
    x, y, lrt = _cells([tile_files(s, "noise", t)["raster"] for t in s.tile_ids], band=0)
    d = shapely.distance(line, shapely.points(x, y))
    near, far = lrt[d < 15], lrt[(d > 80) & (d < 200)]
    assert len(near) > 20 and len(far) > 50
    assert near.mean() > far.mean() + 6.0, (near.mean(), far.mean())
    # next to a busy town road (DTV ~20 000) LrT lies in the high 60s to 70s dB(A)
    assert 62 < np.percentile(near, 90) < 80
    fac = pd.concat([pd.read_parquet(tile_files(s, "noise", t)["facades"]) for t in s.tile_ids])
    assert np.isfinite(fac["lrt_db"]).all() and (fac["lrn_db"] < fac["lrt_db"]).all()
    iso = gpd.read_file(tile_files(s, "noise", s.tile_ids[0])["isophones"])
    assert set(iso["indicator"]) == {"LrT", "LrN"} and (iso["method"] == "RLS-19").all()


def test_flood_exposure_matches_the_ground_truth(analysed):
    s = analysed.settings
    values = pd.read_parquet(s.output_dir / "analysis" / "building_values.parquet")
    truth = {b["building_id"]: b["flood_depth_m"] for b in analysed.truth["buildings"]}
    values = values[values["building_id"].isin(truth)]
    for sc in ("HQ100", "HQextrem"):
        k = sc.lower()
        t_depth = values["building_id"].map(lambda b: truth[b].get(sc, 0.0)).to_numpy(float)
        got = values[f"flood_depth_max_m_{k}"].to_numpy(float)
        affected = values[f"flood_affected_{k}"].to_numpy(int) == 1
        t_aff = t_depth > 0
        assert t_aff.sum() >= 3, sc
        # the affected sets agree, except where the true depth is a few cm (the DTM's accuracy)
        wrong = affected != t_aff
        assert (t_depth[wrong] < 0.2).all(), (sc, values["building_id"][wrong].tolist(), t_depth[wrong])
        assert wrong.sum() <= max(2, 0.1 * t_aff.sum())
        both = affected & t_aff
        err = np.abs(got[both] - t_depth[both])
        assert np.median(err) < 0.15 and err.max() < 0.4, (sc, err)
    # HQextrem is the larger flood
    assert values["flood_affected_hqextrem"].sum() >= values["flood_affected_hq100"].sum()


def test_traffic_change_acts_along_the_changed_road_only(analysed):
    import geopandas as gpd

    from assets.analysis import tile_files

    s = analysed.settings
    tc = s.analysis.traffic_change
    roads = gpd.read_parquet(s.staging_dir / "roads.parquet")
    line = shapely.union_all(list(roads.loc[roads["name"] == tc.road_name, "geometry"]))
    x, y, dl = _cells([tile_files(s, "traffic_change", t)["raster"] for t in s.tile_ids], band=0)
    d = shapely.distance(line, shapely.points(x, y))
    # halving the traffic: -3 dB where the road is the only source, never an increase
    assert dl.max() <= 1e-6
    assert dl.min() >= -10 * np.log10(2) - 1e-3
    near = dl[d < 12]
    assert near.mean() < -1.5, near.mean()
    # the change fades with the distance from the road (band means of |dL|)
    bands = [np.abs(dl[(d >= lo) & (d < hi)]).mean() for lo, hi in ((0, 12), (12, 50), (50, 100), (100, 200))]
    assert all(a > b for a, b in zip(bands, bands[1:])), bands
    # and next to another (unchanged) road, far from the changed one, that road dominates: hardly any change
    other = shapely.union_all(list(roads.loc[roads["name"] != tc.road_name, "geometry"]))
    elsewhere = (d > 150) & (shapely.distance(other, shapely.points(x, y)) < 12)
    assert elsewhere.sum() > 50 and np.abs(dl[elsewhere]).max() < 0.5, np.abs(dl[elsewhere]).max()
    # buildings on the changed road: its traffic dominates their loudest facade, about -3 dB, >= 1 dB
    # flagged; buildings on another road far from it: hardly changed
    blds = pd.concat([pd.read_parquet(tile_files(s, "traffic_change", t)["buildings"]) for t in s.tile_ids])
    fp = {b["building_id"]: shapely.from_wkt(b["footprint_wkt"]) for b in analysed.truth["buildings"]}
    geo = [fp[b] for b in blds["building_id"]]
    on_road = shapely.distance(line, geo) < 15
    on_other = (shapely.distance(other, geo) < 15) & (shapely.distance(line, geo) > 100)
    assert on_road.sum() >= 5 and blds["change_ge_1db"].to_numpy()[on_road].all()
    assert np.median(blds["diff_lrt_db"].to_numpy()[on_road]) < -2.5
    assert on_other.sum() >= 20 and np.abs(blds["diff_lrt_db"].to_numpy()[on_other]).max() < 0.5
    assert blds["diff_lrt_db"].min() >= -10 * np.log10(2) - 1e-6  # halving: at most -3.01 dB


def test_sight_lines_and_viewsheds(analysed):
    import geopandas as gpd

    from citymodel.raster import read_geotiff

    s = analysed.settings
    d = s.output_dir / "analysis" / "sightlines"
    lines = gpd.read_parquet(d / "sightlines.parquet")
    vp = gpd.read_parquet(s.staging_dir / "viewpoints.parquet")
    observers = set(vp.loc[vp["kind"] == "observer", "viewpoint_id"])
    assert set(lines["observer_id"]) == observers
    ids = {b["building_id"] for b in analysed.truth["buildings"]}
    for r in lines.itertuples():
        blocking = json.loads(r.blocked_by_buildings)
        assert set(blocking) <= ids
        # a line is visible exactly when nothing blocks it
        assert r.visible == (not blocking and not r.blocked_by_terrain and not r.blocked_by_trees)
        # blocking buildings really stand on the line (in plan)
        for b in blocking:
            assert shapely.distance(shapely.from_wkt(next(x["footprint_wkt"] for x in analysed.truth["buildings"]
                                                           if x["building_id"] == b)),
                                    shapely.force_2d(r.geometry)) < 1.0
    for o in observers:
        r = read_geotiff(d / f"viewshed_{o}.tif")
        v = r.array
        assert set(np.unique(v)) <= {0, 1, 255}
        # the eye's own surroundings are visible; the view is not unlimited in a built-up district
        ex, ey = vp.loc[vp["viewpoint_id"] == o].geometry.iloc[0].coords[0]
        assert _sample([d / f"viewshed_{o}.tif"], [ex + 3.0], [ey])[0] == 1
        inside = v != 255
        assert 0.01 < (v[inside] == 1).mean() < 0.9


def test_building_values_one_row_per_building(analysed):
    import geopandas as gpd

    from assets.analysis import building_value_columns, building_value_properties, building_values_by_id, tile_files

    s = analysed.settings
    values = gpd.read_parquet(s.output_dir / "analysis" / "building_values.parquet")
    model = gpd.read_parquet(s.output_dir / "buildings" / "buildings.parquet")
    assert values["building_id"].is_unique
    assert set(values["building_id"]) == set(model.loc[model["method"] != "rejected", "building_id"])
    cols = building_value_columns(s)
    for c, typ, _, _ in cols:
        assert c in values, c
        if typ != "STRING":
            assert values[c].notna().mean() > 0.95, c
    # joins are right: the building's noise value is the highest of its facade levels
    fac = pd.concat([pd.read_parquet(tile_files(s, "noise", t)["facades"]) for t in s.tile_ids])
    mx = fac.groupby("building_id")["lrt_db"].max()
    v = values.set_index("building_id")["noise_lrt_max_db"]
    assert np.allclose(v.loc[mx.index], mx.to_numpy())
    roofs = pd.concat([pd.read_parquet(tile_files(s, "solar", t)["roofs"]) for t in s.tile_ids])
    tot = roofs.groupby("building_id")["irradiation_kwh_a"].sum()
    assert np.allclose(values.set_index("building_id")["solar_kwh_a"].loc[tot.index], tot.to_numpy())
    props = building_value_properties(s)
    assert [p.name for p in props][:1] == ["sunHoursMar21Max"] and len(props) == len(cols)
    by_id = building_values_by_id(s)
    assert len(by_id) == len(values) and "noise_lrt_max_db" in next(iter(by_id.values()))


def test_analysis_goes_into_a_release(analysed, tmp_path):
    from assets.analysis import add_analysis_to_release
    from citymodel.raster import read_geotiff
    from citymodel.release import ReleaseBuilder

    s = analysed.settings
    out = tmp_path / "rel"
    b = ReleaseBuilder(out, title="analysis test")
    b.begin()
    written = add_analysis_to_release(b, s)
    info = b.finalize([])
    rel = info.path
    for name in ("sun_hours.tif", "noise.tif", "traffic_change.tif", "flood_depth_HQ100.tif", "solar.gpkg",
                 "noise_isophones.gpkg", "flood.parquet", "sightlines.gpkg", "building_values.parquet"):
        assert f"data/analysis/{name}" in written, name
        assert (rel / "data" / "analysis" / name).is_file(), name
    # the tile rasters are merged into one raster over the whole extent
    r = read_geotiff(rel / "data/analysis/sun_hours.tif")
    assert np.allclose(r.bounds, s.extent)
    assert np.isfinite(r.masked).mean() > 0.6


# ====================================================================================== fast
def _cfg(tmp_path, **analysis):
    import yaml

    path = write_config(tmp_path, str(tmp_path / "catalog.jsonld"), tmp_path / "out")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for k, v in analysis.items():
        node = raw["analysis"]
        *head, last = k.split("__")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_sample_config_has_the_analysis_block():
    from citymodel.config import AnalysisSettings

    s = load_config()
    assert s.analysis.sun.days == ["03-21", "06-21", "12-21"]
    assert s.analysis.traffic_change is not None and s.analysis.traffic_change.road_name == "Löbdergraben"
    # defaults hold without the block
    d = AnalysisSettings()
    assert d.sun.cell_m == 1.0 and d.noise.grid_spacing_m == 10.0 and d.traffic_change is None


@pytest.mark.parametrize("key, value, words", [
    ("sun__days", ["13-40"], "MM-DD"),
    ("sun__din17037_date", "06-21", "02-01 .. 03-21"),
    ("noise__building_height", "roof", "building_height"),
    ("traffic_change", {"label": "x", "factor": 0.5}, "road_name or road_ids"),
    ("traffic_change", {"label": "x", "road_name": "A"}, "changes nothing"),
    ("unknown_key", 1, "unknown_key"),
])
def test_bad_analysis_settings_are_clear_errors(tmp_path, key, value, words):
    with pytest.raises(ConfigError) as e:
        load_config(_cfg(tmp_path, **{key: value}))
    assert words in str(e.value) and "analysis" in str(e.value)


def test_traffic_change_naming_an_unknown_road_is_an_error(tmp_path):
    import geopandas as gpd
    from shapely.geometry import LineString

    from assets.analysis import traffic_edits

    roads = gpd.GeoDataFrame({"road_id": ["S1", "S2"], "name": ["Löbdergraben", "Leutragraben"]},
                             geometry=[LineString([(0, 0), (10, 0)]), LineString([(0, 5), (10, 5)])])
    s = load_config(_cfg(tmp_path, traffic_change={"label": "x", "road_name": "Löbdergraben", "factor": 0.5}))
    assert traffic_edits(s, roads) == [{"road_id": "S1", "factor": 0.5}]
    s = load_config(_cfg(tmp_path, traffic_change={"label": "x", "road_name": "Nowhere", "factor": 0.5}))
    with pytest.raises(ConfigError) as e:
        traffic_edits(s, roads)
    msg = str(e.value)
    assert "jena-sample-verkehrsmengen" in msg and "Nowhere" in msg and "Leutragraben" in msg
    s = load_config(_cfg(tmp_path, traffic_change={"label": "x", "road_ids": ["S9"], "speed_car_kmh": 30}))
    with pytest.raises(ConfigError, match="S9"):
        traffic_edits(s, roads)
    with pytest.raises(ConfigError, match="name"):
        traffic_edits(load_config(_cfg(tmp_path, traffic_change={"label": "x", "road_name": "A", "factor": 1})),
                      roads.drop(columns="name"))


def _tiny_city(tmp_path, zones_level):
    """A deployment with one staged tile: flat DTM at 100 m, one building, one flood zone."""
    import geopandas as gpd
    from shapely.geometry import box

    from assets.buildings import tile_outputs
    from assets.staging import point_cloud_paths
    from citymodel.raster import write_geotiff

    cfg = write_config(tmp_path, str(tmp_path / "catalog.jsonld"), tmp_path / "out")
    s = load_config(cfg)
    tile = s.tile_ids[0]
    tb = s.tile(tile).bounds
    x0, y0 = max(tb[0], s.extent[0]) + 50, max(tb[1], s.extent[1]) + 50
    write_geotiff(point_cloud_paths(s, tile)[1], np.full((300, 300), 100.0, dtype=np.float32),
                  bounds=(x0 - 50, y0 - 50, x0 + 250, y0 + 250), crs=s.processing_crs, nodata=-9999.0)
    table = tile_outputs(s, tile)[1]
    table.parent.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame({"building_id": ["B1"], "tile_id": [tile], "eave_height_m": [6.0], "ridge_height_m": [9.0],
                      "ground_height_m": [100.0], "method": ["lod2_fitted"], "storeys": [2]},
                     geometry=[box(x0, y0, x0 + 10, y0 + 10)], crs=s.processing_crs).to_parquet(table)
    s.staging_dir.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame({"zone_id": ["Z1"], "scenario": ["HQ100"], "water_level_m": [zones_level]},
                     geometry=[box(x0 - 20, y0 - 20, x0 + 20, y0 + 20)], crs=s.processing_crs).to_parquet(
        s.staging_dir / "flood_zones.parquet")
    return cfg, s, tile


def test_flood_asset_on_a_tiny_city(tmp_path):
    from assets.analysis import flood, tile_files
    from resources.settings import SettingsResource

    cfg, s, tile = _tiny_city(tmp_path, 100.8)
    r = flood(dg.build_asset_context(partition_key=tile), settings=SettingsResource(config_path=str(cfg)))
    assert all(c.passed for c in r.check_results)
    b = pd.read_parquet(tile_files(s, "flood", tile)["buildings"])
    row = b.iloc[0]
    assert row["affected"] and abs(row["max_depth_m"] - 0.8) < 1e-4 and row["ground_floor_flooded"]


def test_flood_zone_without_water_level_is_an_error_not_a_dry_zone(tmp_path):
    from assets.analysis import flood
    from resources.settings import SettingsResource

    cfg, s, tile = _tiny_city(tmp_path, float("nan"))
    with pytest.raises(SourceDataError) as e:
        flood(dg.build_asset_context(partition_key=tile), settings=SettingsResource(config_path=str(cfg)))
    msg = str(e.value)
    assert "jena-sample-ueberschwemmungsgebiete" in msg and "Z1" in msg and "water" in msg


def test_function_codes_and_screening_heights(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    from assets.analysis import normalised_function_code, screening_buildings

    assert normalised_function_code("31001_1010") == "1010"
    assert normalised_function_code("1000") == "1000"
    assert normalised_function_code(None) == ""
    s = load_config(_cfg(tmp_path))
    t = gpd.GeoDataFrame({"building_id": ["A", "B", "C"], "eave_height_m": [6.0, np.nan, np.nan],
                          "ridge_height_m": [10.0, 8.0, np.nan], "ground_height_m": [100.0, 100.0, 100.0],
                          "method": ["lod2_fitted", "lod1_fallback", "rejected"],
                          "function_code": ["31001_1010", "31001_2000", "31001_1010"]},
                         geometry=[box(0, 0, 1, 1)] * 3)
    out = screening_buildings(s, t)
    assert out["building_id"].tolist() == ["A", "B"]
    assert out["height_m"].tolist() == [8.0, 8.0]          # mean of eave and ridge; ridge where no eave
    assert out["function_code"].tolist() == ["1010", "2000"]
    assert out.attrs["without_height"] == ["C"]


def test_release_cityjson_carries_the_analysis_values(pipeline_city):
    """Issue 'Analysis layers I/II': the values are attributes of the buildings in the published CityJSON."""
    from citymodel.cityjson import read_cityjson

    rel = (pipeline_city.settings.output_dir / "latest").resolve()
    data = read_cityjson(rel / "data" / "buildings.city.json")
    values = pd.read_parquet(pipeline_city.settings.output_dir / "analysis" / "building_values.parquet")
    by_id = {b.id: b.attributes for b in data.buildings}
    checked = 0
    for row in values.itertuples():
        a = by_id[row.building_id]
        for col in ("noise_lrt_max_db", "solar_kwh_a", "sun_hours_jun21_max"):
            v = getattr(row, col)
            if v == v:  # not NaN
                assert a[col] == pytest.approx(v, rel=1e-6), (row.building_id, col)
                checked += 1
    assert checked > 100


def test_published_analysis_values_equal_the_golden_digest(pipeline_city):
    """The analysis values of the sample city's release equal those published before the analysis
    seam (issue #12): refactors must not move them. Renew tests/data/analysis_golden.json only on
    purpose, when an algorithm changes its results (see tests/golden.py)."""
    from golden import GOLDEN, analysis_digest, compare

    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    diffs = compare(analysis_digest(pipeline_city.settings.output_dir / "latest"), want)
    assert not diffs, "published analysis values changed:\n" + "\n".join(diffs[:40])
