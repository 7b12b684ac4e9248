"""Planning variants on the mini city (tests/minicity.py): effects that geometry predicts, the
impact-limited analysis equal to a full recomputation, and the variant_assess job end to end."""

from __future__ import annotations

import hashlib
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

import minicity as mc
from conftest import write_config
from citymodel.variants.changes import (AddBuilding, RemoveBuilding, RoadChange, Variant, VariantMeta)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """The mini city with the city's analysis results (made by the pipeline's assets)."""
    import dagster as dg

    from citymodel.config import load_config
    from citymodel.store import CityStore

    tmp = tmp_path_factory.mktemp("minicity")
    cfg = mc.config(tmp, write_config)
    s = load_config(cfg)
    mc.write(s)
    with dg.instance_for_test() as instance:
        mc.analyse(cfg, instance)
        yield type("City", (), {"settings": s, "cfg": cfg, "store": CityStore(s), "instance": instance})


def variant(vid: str, *changes) -> Variant:
    return Variant(VariantMeta(vid, vid, "planning_office", "2026-12-06T00:00:00Z"), tuple(changes), version=1)


def assessed(city, v, full=False):
    from citymodel.variants.assess import assess_variant
    from citymodel.variants.compare import compare
    from citymodel.variants.model import VariantStore

    vs = VariantStore(city.store, v)
    a = assess_variant(vs, full=full)
    return vs, a, compare(vs, a)


def tower(bid, cx, cy, w, d, h, index=0) -> AddBuilding:
    return AddBuilding(index, bid, box(cx - w / 2, cy - d / 2, cx + w / 2, cy + d / 2), eave_height_m=h,
                       ridge_height_m=h, roof_form=1000)


def walls(comp, bid):
    f = comp.facades_sun
    return f[f["building_id"].astype(str) == bid]


# ------------------------------------------------------------------------------------------ sun
def test_tall_building_south_of_the_row_takes_its_sun(city):
    # 40 m tall, 16 m south of R2's south facade: at the March equinox noon (elevation ~39°) its
    # shadow is 40 / tan(39°) ≈ 49 m long, so R2's south facade loses the midday sun
    v = variant("sued", tower("neu-s", 681510.0, mc.ROW_Y - 25.0, 50.0, 10.0, 40.0))
    _, _, comp = assessed(city, v)
    r2 = walls(comp, "R2")
    assert len(r2) and (r2["sun_h_max_mar21_diff"] <= -1.0).any()
    assert (r2["sun_h_max_mar21_diff"] <= 1e-9).all()          # nobody on R2 gains
    b = comp.buildings.set_index("building_id")
    assert b.loc["R2", "sun_mar21_diff"] < -0.5 and b.loc["R2", "variant_status"] == "affected"
    assert b.loc["neu-s", "variant_status"] == "added"


def test_the_same_building_north_of_the_row_changes_none_of_its_facades(city):
    # on 21 March the sun rises in the east and sets in the west: every ray from the row towards it
    # heads east, south or west and cannot meet a building north of the row
    v = variant("nord", tower("neu-n", 681510.0, mc.ROW_Y + 25.0, 50.0, 10.0, 40.0))
    _, _, comp = assessed(city, v)
    f = comp.facades_sun
    row = f[f["building_id"].astype(str).isin([f"R{k}" for k in range(1, 6)])]
    assert len(row) > 20
    assert np.allclose(row["sun_h_max_mar21_diff"].to_numpy(float), 0.0, atol=1e-9)
    assert np.allclose(row["sun_h_mean_mar21_diff"].to_numpy(float), 0.0, atol=1e-9)


def test_removing_a_building_gives_its_neighbour_sun(city):
    # the 24 m tower S stands 36 m south of R4: in December (noon elevation ~15.6°) its shadow reaches R4
    _, _, comp = assessed(city, variant("ohne-s", RemoveBuilding(0, "S")))
    b = comp.buildings.set_index("building_id")
    assert b.loc["S", "variant_status"] == "removed"
    assert b.loc["R4", "sun_dec21_diff"] >= 0.5
    f = comp.facades_sun
    assert (f["sun_h_max_dec21_diff"].fillna(0.0) >= -1e-9).all()   # removing shade takes sun from nobody


# ---------------------------------------------------------------------------------------- noise
def test_doubling_the_traffic_adds_three_decibels_at_every_facade(city):
    # one road only: doubling every volume raises every level by 10·lg 2 = 3.01 dB
    _, _, comp = assessed(city, variant("doppelt", RoadChange(0, road_id="R-A", values={"factor": 2.0})))
    fn = comp.facades_noise
    d = fn["lrt_db_diff"].to_numpy(float)
    assert len(d) > 50 and np.isfinite(d).all()
    assert np.allclose(d, 10 * np.log10(2.0), atol=0.1)
    assert np.allclose(fn["lrn_db_diff"].to_numpy(float), 10 * np.log10(2.0), atol=0.1)


def test_a_long_building_screens_the_houses_behind_it_not_the_one_beside_it(city):
    # a 12 m high block between the road (y 470) and the row (y 556); house H stands beside the
    # road's end below the block's height band, so no path from the road to it crosses the block
    wall = tower("riegel", 681470.0, 5644492.0, 100.0, 6.0, 12.0)
    _, _, comp = assessed(city, variant("riegel", wall))
    b = comp.buildings.set_index("building_id")
    assert b.loc["R1", "lrt_max_db_diff"] <= -1.0 and b.loc["R2", "lrt_max_db_diff"] <= -1.0
    h = comp.facades_noise[comp.facades_noise["building_id"].astype(str) == "H"]
    assert len(h) and np.allclose(h["lrt_db_diff"].to_numpy(float), 0.0, atol=1e-9)


def test_a_new_building_across_the_street_raises_the_level_at_the_facade_it_reflects_to(city):
    # a 15 m block south of the road (y 5644470), across from the tower S (south facade y 5644510):
    # its north facade mirrors the road towards S (reflection point within 100 m of road and facade);
    # it screens nothing between the road and S, so S's facades only gain
    reflector = tower("spiegel", 681550.0, 5644445.0, 100.0, 10.0, 15.0)
    _, _, comp = assessed(city, variant("spiegel", reflector))
    f = comp.facades_noise[comp.facades_noise["building_id"].astype(str) == "S"]
    d = f["lrt_db_diff"].to_numpy(float)
    assert len(d) and np.isfinite(d).all()
    assert (d >= -1e-9).all()
    assert d.max() > 0.5, d.max()


# ---------------------------------------------------------------------------------------- flood
def test_a_new_building_in_the_hq100_zone_is_flooded_as_deep_as_water_level_minus_terrain(city):
    v = variant("nass", tower("neu-nass", 681440.0, 5644605.0, 15.0, 12.0, 9.0))
    _, a, comp = assessed(city, v)
    f = a.flood[a.flood["building_id"] == "neu-nass"]
    assert list(f["scenario"]) == ["HQ100"]
    assert bool(f["affected"].iloc[0])
    assert f["max_depth_m"].iloc[0] == pytest.approx(mc.WATER - mc.GROUND, abs=0.02)
    assert comp.buildings.set_index("building_id").loc["neu-nass", "flood_depth_max_m_hq100"] == \
        pytest.approx(1.2, abs=0.02)


# ----------------------------------------------------------------------------------- sight lines
def test_a_tall_building_on_a_sight_line_blocks_it_and_not_the_one_beside(city):
    v = variant("blick", tower("neu-blick", 681490.0, 5644650.0, 20.0, 10.0, 30.0))  # 70 m from O1
    _, _, comp = assessed(city, v)
    lines = comp.sightlines.set_index("observer_id")
    assert bool(lines.loc["O1", "visible_before"]) and not bool(lines.loc["O1", "visible_after"])
    assert lines.loc["O1", "change"] == "blocked"
    assert bool(lines.loc["O2", "visible_before"]) and bool(lines.loc["O2", "visible_after"])
    assert comp.viewsheds.set_index("observer_id").loc["O1", "visible_area_m2_diff"] < 0


# --------------------------------------------------------------------------- impact == full run
def _same(a, b) -> list[str]:
    diffs = []

    def frames(x, y, keys, name):
        x = pd.DataFrame(x).drop(columns=["geometry"], errors="ignore").sort_values(keys).reset_index(drop=True)
        y = pd.DataFrame(y).drop(columns=["geometry"], errors="ignore").sort_values(keys).reset_index(drop=True)
        if len(x) != len(y):
            diffs.append(f"{name}: {len(x)} != {len(y)} rows")
            return
        for c in x.columns:
            xv, yv = x[c], y[c]
            if pd.api.types.is_numeric_dtype(xv) and pd.api.types.is_numeric_dtype(yv):
                if not np.array_equal(xv.to_numpy(float), yv.to_numpy(float), equal_nan=True):
                    diffs.append(f"{name}.{c}")
            elif not (xv.astype(str).to_numpy() == yv.astype(str).to_numpy()).all():
                diffs.append(f"{name}.{c}")

    for k in a.sun:
        if not np.array_equal(a.sun[k].hours, b.sun[k].hours, equal_nan=True):
            diffs.append(f"sun grid {k}")
        frames(a.sun[k].walls, b.sun[k].walls, ["building_id", "surface_index", "storey"], f"walls {k}")
        frames(a.sun[k].din, b.sun[k].din, ["building_id"], f"din {k}")
    for k in a.solar:
        frames(a.solar[k], b.solar[k], ["building_id", "surface_index"], f"roofs {k}")
    for k in a.noise:
        for attr in ("lrt", "lrn"):
            if not np.array_equal(getattr(a.noise[k], attr), getattr(b.noise[k], attr), equal_nan=True):
                diffs.append(f"noise grid {attr} {k}")
        frames(a.noise[k].facades, b.noise[k].facades, ["building_id", "x", "y", "z_m"], f"noise facades {k}")
    frames(a.flood, b.flood, ["building_id", "scenario"], "flood")
    frames(a.sightlines, b.sightlines, ["observer_id", "target_id"], "sight lines")
    if a.viewsheds != b.viewsheds:
        diffs.append("viewsheds")
    return diffs


@pytest.mark.parametrize("changes", [
    (tower("neu-s", 681510.0, mc.ROW_Y - 25.0, 50.0, 10.0, 40.0), RemoveBuilding(1, "S"),
     tower("neu-nass", 681440.0, 5644605.0, 15.0, 12.0, 9.0, index=2)),
    (tower("riegel", 681470.0, 5644492.0, 100.0, 6.0, 12.0),),
    (tower("spiegel", 681550.0, 5644445.0, 100.0, 10.0, 15.0),),
], ids=["buildings", "screen", "reflector"])
def test_the_impact_area_result_equals_a_full_recomputation(city, changes):
    v = variant("gleich", *changes)
    _, part, _ = assessed(city, v)
    _, full, _ = assessed(city, v, full=True)
    assert _same(part, full) == []
    share = part.work_share()
    assert share["all"] < 1.0                      # the impact area is smaller than the city
    assert full.work_share()["all"] == 1.0


# ------------------------------------------------------------------------------ the Dagster job
def test_variant_assess_publishes_a_verifiable_version(city, tmp_path):
    import dagster as dg

    from citymodel.release import ReleaseBuilder
    from citymodel.variants.publish import published, write_index
    from citymodel.variants.registry import submission_dir
    from pipelines.definitions import build_definitions
    from pipelines.partitions import sync_variants

    s = city.settings
    # the city's release the variant is compared with
    rb = ReleaseBuilder(s.output_dir, publisher="Test")
    rb.begin()
    rb.write_text("data/readme.txt", "mini city", dataset="readme")
    base = rb.finalize([]).release_id
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(s.processing_crs, "EPSG:4326", always_xy=True)
    ring = [list(to_wgs.transform(x, y)) for x, y in box(681600, 5644590, 681615, 5644602).exterior.coords]
    doc = {"type": "FeatureCollection", "schema_version": "1.0",
           "variant": {"id": "test-haus", "title": "Ein Haus", "author_role": "citizen", "created": "2026-12-06T10:00:00Z"},
           "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"change": "add_building", "id": "haus-1", "storeys": 3, "roof_form": "3100"}}]}
    text = json.dumps(doc)
    d = submission_dir(s, "test-haus", 1)
    d.mkdir(parents=True)
    (d / "variant.geojson").write_text(text)
    (d / "submission.json").write_text(json.dumps({"id": "test-haus", "version": 1, "title": "Ein Haus",
                                                   "author_role": "citizen", "created": "2026-12-06T10:00:00Z",
                                                   "accepted": "2026-12-06T10:00:01Z", "source_name": "haus.geojson",
                                                   "sha256": hashlib.sha256(text.encode()).hexdigest(), "summary": {}}))
    defs = build_definitions(config_path=str(city.cfg))
    sync_variants(city.instance, ["test-haus.v1"])
    res = defs.resolve_job_def("variant_assess").execute_in_process(instance=city.instance,
                                                                     partition_key="test-haus.v1")
    assert res.success
    pub = published(s, "test-haus", 1)
    assert pub is not None and pub.parent.name == "releases"
    # every file is in SHA256SUMS and verifies with the system tool
    r = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=pub, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    meta = json.loads((pub / "variant.json").read_text())
    assert meta["base_release"] == base and meta["added_ids"] == ["haus-1"] and meta["version"] == 1
    assert (pub / "comparison" / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert (pub / "schemas" / "variant-1.0.schema.json").is_file()
    ts = json.loads((pub / "tiles" / "buildings" / "tileset.json").read_text())
    assert ts["asset"]["version"] == "1.1" and ts["asset"]["extras"]["base_release"] == base
    cat = json.loads((pub / "catalog.jsonld").read_text())
    assert "dcat:dataset" in json.dumps(cat)
    gj = json.loads((pub / "comparison" / "buildings.geojson").read_text())
    added = [f for f in gj["features"] if f["properties"]["building_id"] == "haus-1"]
    assert added and added[0]["properties"]["variant_status"] == "added"
    lon, lat = added[0]["geometry"]["coordinates"][0][0]
    assert 11 < lon < 12 and 50 < lat < 51                                   # WGS84 for CONSUL / DIPAS
    index = write_index(s)
    assert [(e["id"], e["version"], e["current"]) for e in index["variants"]] == [("test-haus", 1, True)]
    # the comparison page, read where the index links it, opens the city's viewer on this variant
    import html
    import re
    from urllib.parse import urljoin

    page_url = "http://host/variants/" + index["variants"][0]["comparison"]
    href = re.search(r'href="([^"]*viewer/index.html[^"]*)"', (pub / "comparison" / "index.html").read_text())
    assert href and urljoin(page_url, href.group(1)) == "http://host/latest/viewer/index.html#variant=test-haus@1"
    # the side-by-side page: a column for the variant with its summary figures and links that resolve
    overview = (s.output_dir / "variants" / "index.html").read_text()
    assert "Ein Haus" in overview and "Planungsvarianten im Vergleich" in overview
    for item in meta["summary"]:
        assert item["text_de"].replace("≥", "&ge;") in overview or html.escape(item["text_de"]) in overview
    links = re.findall(r'href="([^"]+)"', overview)
    assert urljoin("http://host/variants/index.html", links[0]) == "http://host/variants/" + index["variants"][0]["comparison"]
    assert urljoin("http://host/variants/index.html", links[1]) == "http://host/latest/viewer/index.html#variant=test-haus@1"
    # an unchanged re-assessment publishes nothing new
    res2 = defs.resolve_job_def("variant_assess").execute_in_process(instance=city.instance,
                                                                      partition_key="test-haus.v1")
    assert res2.success and published(s, "test-haus", 1) == pub
    # the city's next release lists the variant, without changing its content digest
    from citymodel.variants.publish import release_listing

    listing = release_listing(s)
    assert [(v["id"], v["version"], v["viewer"]) for v in listing["variants"]] == [
        ("test-haus", 1, "viewer/index.html#variant=test-haus@1")]
    assert (s.output_dir / listing["variants"][0]["comparison"]).is_file()
    rb = ReleaseBuilder(s.output_dir, publisher="Test")
    rb.begin()
    rb.write_text("data/readme.txt", "mini city", dataset="readme")
    rb.write_json("data/variants.json", listing, dataset="planning-variants", in_digest=False)
    assert rb.finalize([]).unchanged  # same content as the base release: nothing new to publish
    rb = ReleaseBuilder(s.output_dir, publisher="Test")
    rb.begin()
    rb.write_text("data/readme.txt", "mini city, next release", dataset="readme")
    rb.write_json("data/variants.json", listing, dataset="planning-variants", in_digest=False)
    nxt = rb.finalize([])
    assert not nxt.unchanged
    page = (nxt.path / "index.html").read_text()
    assert "Planungsvarianten" in page and "viewer/index.html#variant=test-haus@1" in page
    # a new city release: the rebase sensor requests the variant's re-assessment against it, once
    from citymodel.variants.publish import stale_variants
    from resources.settings import SettingsResource

    assert stale_variants(s) == [("test-haus.v1", nxt.release_id)]
    sensor = defs.resolve_sensor_def("variant_rebase")
    with dg.build_sensor_context(instance=city.instance, resources={"settings": SettingsResource(
            config_path=str(city.cfg))}) as ctx:
        result = sensor(ctx)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("test-haus.v1", f"rebase-test-haus.v1-{nxt.release_id}")]
    res3 = defs.resolve_job_def("variant_assess").execute_in_process(instance=city.instance,
                                                                      partition_key="test-haus.v1")
    assert res3.success and stale_variants(s) == []
    assert json.loads((published(s, "test-haus", 1) / "variant.json").read_text())["base_release"] == nxt.release_id
