"""Validation of untrusted variant files (citymodel.variants.validation), on a hand-made city.

Every rejection case asserts that the report names the feature index, the field and a fix. Expected
geometry is reasoned from the hand-made rectangles (tests/variant_helpers.py) or computed with pyproj
independently of the code under test.
"""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box

from citymodel.errors import CityModelError
from citymodel.variants.changes import AddBuilding, AddTree, ModifyBuilding, RemoveBuilding, RemoveTree, RoadChange
from citymodel.variants.validation import VariantRejected, validate_submission, validate_variant
from variant_helpers import (CRS, FREE_X, FREE_Y, SCHEMAS, add, box_city, cityjson_submission, context, deep, doc,
                             dumps, feature, good_doc, polygon, ring)


def rejected(d, ctx=None, name="entwurf.geojson") -> list[dict]:
    data = d if isinstance(d, bytes) else dumps(d)
    with pytest.raises(VariantRejected) as exc:
        validate_variant(data, name, ctx or context())
    rep = exc.value.report
    assert rep["accepted"] is False and rep["file"] == name and len(rep["sha256"]) == 64
    assert rep["problems"], "a rejection names its problems"
    assert isinstance(exc.value, CityModelError)
    for p in rep["problems"]:
        assert set(p) >= {"feature", "field", "problem", "fix"} and p["problem"] and p["fix"]
    assert str(exc.value).startswith(f"variant file '{name}' rejected")
    return rep["problems"]


def one(problems, feature_, field_=None, contains="") -> dict:
    """The problem at ``feature_``/``field_`` (whose text contains ``contains``)."""
    hits = [p for p in problems if p["feature"] == feature_ and (field_ is None or p["field"] == field_)
            and contains in p["problem"]]
    assert hits, f"no problem at feature {feature_}, field {field_!r} ({contains!r}) in {json.dumps(problems, indent=1)}"
    return hits[0]


# ============================================================================== accepted files
def test_a_file_with_every_kind_of_change_is_accepted_with_typed_changes():
    v = validate_variant(dumps(good_doc()), "gut.geojson", context())
    assert v.version is None and len(v.sha256) == 64 and v.source_name == "gut.geojson"
    assert v.summary() == {"buildings_added": 1, "buildings_removed": 1, "buildings_modified": 1,
                           "road_changes": 2, "trees_added": 1, "trees_removed": 1}
    kinds = [type(c) for c in v.changes]
    assert kinds == [AddBuilding, RemoveBuilding, ModifyBuilding, RoadChange, RoadChange, AddTree, RemoveTree]
    a = v.added[0]
    assert a.footprint.equals(box(FREE_X, FREE_Y, FREE_X + 20, FREE_Y + 12)) and a.footprint.area == pytest.approx(240)
    assert (a.storeys, a.eave_height_m, a.ridge_height_m, a.roof_form) == (4, 12.0, 16.0, 3100)
    assert [c.index for c in v.changes] == list(range(7))


def test_wgs84_and_the_processing_crs_give_the_same_footprint_within_1_cm():
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    utm = ring(FREE_X, FREE_Y, 20.0, 12.0)
    lonlat = [list(to_wgs.transform(x, y)) for x, y in utm]
    v_utm = validate_variant(dumps(doc(feature(polygon(FREE_X, FREE_Y, 20, 12), change="add_building", id="neu-1",
                                               storeys=3))), "utm.geojson", context())
    wgs = doc(feature({"type": "Polygon", "coordinates": [lonlat]}, change="add_building", id="neu-1", storeys=3),
              crs=None)
    assert "crs" not in wgs
    v_wgs = validate_variant(dumps(wgs), "wgs.geojson", context())
    assert v_wgs.added[0].footprint.hausdorff_distance(v_utm.added[0].footprint) < 0.01
    explicit = deep(wgs)
    explicit["crs"] = "EPSG:4326"
    v_exp = validate_variant(dumps(explicit), "wgs.geojson", context())
    assert v_exp.added[0].footprint.hausdorff_distance(v_utm.added[0].footprint) < 0.01


def test_storeys_alone_are_enough():
    v = validate_variant(dumps(doc(add("neu-1", storeys=3))), "s.geojson", context())
    a = v.added[0]
    assert (a.storeys, a.eave_height_m, a.ridge_height_m, a.roof_form) == (3, None, None, 1000)


def test_a_flat_roof_may_give_only_its_eave_and_touching_neighbours_are_fine():
    # a new building sharing its west edge with DETHL-B (681920) touches, but does not overlap it
    d = doc(add("neu-1", eave_height_m=9.0), add("neu-2", x=681920.0, y=5644800.0, w=10, h=15, storeys=2))
    v = validate_variant(dumps(d), "f.geojson", context())
    assert v.added[0].eave_height_m == 9.0 and v.added[0].ridge_height_m is None
    assert v.added[1].footprint.touches(box(681900, 5644800, 681920, 5644815))


def test_a_new_building_may_stand_where_a_removed_or_moved_one_was():
    d = doc(feature(None, change="remove_building", building_id="DETHL-A"),
            add("neu-1", x=681805.0, y=5644805.0, w=10, h=8, storeys=2),
            feature(polygon(681900, 5644830, 20, 15), change="modify_building", building_id="DETHL-B"),
            add("neu-2", x=681902.0, y=5644802.0, w=10, h=8, storeys=2))
    v = validate_variant(dumps(d), "m.geojson", context())
    assert v.summary()["buildings_added"] == 2 and v.modified[0].footprint.bounds == (681900, 5644830, 681920, 5644845)


def test_a_design_gives_the_footprint_of_its_solid():
    v = validate_variant(dumps(doc(feature(None, change="add_building", id="entwurf-1", design=box_city()))),
                         "d.geojson", context())
    assert v.added[0].footprint.equals(box(FREE_X, FREE_Y, FREE_X + 20, FREE_Y + 12))
    assert v.added[0].design["type"] == "CityJSON"


def test_a_cityjson_file_with_variant_metadata_is_a_variant_of_designed_buildings():
    res = validate_submission(dumps(cityjson_submission(description="Zwei Entwürfe")), "e.city.json", context())
    v = res.variant
    assert res.format == "cityjson" and v.id == "entwurf-cad" and v.meta.description == "Zwei Entwürfe"
    assert [a.id for a in v.added] == ["entwurf_1"]
    assert v.added[0].footprint.equals(box(FREE_X, FREE_Y, FREE_X + 20, FREE_Y + 12))
    assert v.document["type"] == "FeatureCollection" and v.document["features"][0]["properties"]["design"]["CityObjects"]
    if SCHEMAS.is_dir():
        assert res.skipped == ()


def test_without_cityjson_schemas_the_report_says_the_check_was_skipped():
    from dataclasses import replace

    ctx = replace(context(), cityjson_schema_dir=None)
    res = validate_submission(dumps(cityjson_submission()), "e.city.json", ctx)
    assert len(res.skipped) == 1 and "CityJSON 2.0.2 schema validation" in res.skipped[0]


def test_text_that_only_looks_like_a_scheme_is_not_a_reference():
    d = good_doc(description="Daten: Vermessung 2025. Verhältnis 3:1, Bauzeit 10:30 Uhr; the data: see above")
    validate_variant(dumps(d), "t.geojson", context())


# ================================================================================= rejections
def test_bad_schema_names_feature_field_and_fix():
    d = good_doc()
    d["variant"]["created"] = "gestern"
    d["variant"]["id"] = "Quartier A"
    del d["variant"]["title"]
    d["features"][0]["properties"]["colour"] = "rot"
    d["features"][0]["properties"]["roof_form"] = "9999"
    d["features"][3]["properties"]["change"] = "widen_road"
    d["features"].append(feature({"type": "MultiPolygon", "coordinates": []}, change="add_building", id="neu-9",
                                 storeys=2))
    probs = rejected(d)
    assert "RFC 3339" in one(probs, None, "variant.created")["fix"]
    assert "lower-case" in one(probs, None, "variant.id")["fix"]
    assert "title" in one(probs, None, "variant.title", "missing")["fix"]
    assert "remove 'colour'" in one(probs, 0, "properties.colour")["fix"]
    assert '"3100"' in one(probs, 0, "properties.roof_form")["fix"]
    assert '"road_change"' in one(probs, 3, "properties.change")["fix"]
    assert "Polygon" in one(probs, 7, "geometry.type")["fix"]


def test_a_building_without_size_is_rejected():
    probs = rejected(doc(feature(polygon(FREE_X, FREE_Y, 20, 12), change="add_building", id="neu-1")))
    assert "storeys" in one(probs, 0, "properties")["fix"]


def test_outside_the_extent_is_rejected():
    from pyproj import Transformer

    probs = rejected(doc(add("neu-1", x=692000.0)))
    p = one(probs, 0, "geometry", "outside the deployment's extent")
    assert p["check"] == "extent" and "extent" in p["fix"]
    # latitude and longitude swapped: valid ranges, but far away from Jena
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(FREE_X, FREE_Y)
    sq = [[lat, lon], [lat + 0.0002, lon], [lat + 0.0002, lon + 0.0002], [lat, lon + 0.0002], [lat, lon]]
    probs = rejected(doc(feature({"type": "Polygon", "coordinates": [sq]}, change="add_building", id="neu-1",
                                 storeys=2), crs=None))
    assert "longitude, latitude" in one(probs, 0, "geometry")["fix"]
    # a tree and a road outside, too
    probs = rejected(doc(feature({"type": "Point", "coordinates": [681600.0, 5645000.0]}, change="add_tree", height_m=5),
                         feature({"type": "LineString", "coordinates": [[682000.0, 5645000.0], [682400.0, 5645000.0]]},
                                 change="road_change", id="neu-str", dtv=100)))
    assert one(probs, 0, "geometry", "tree") and one(probs, 1, "geometry", "road")


def test_projected_coordinates_without_crs_are_rejected_with_a_hint():
    d = doc(add("neu-1"), crs=None)
    assert "\"crs\"" in one(rejected(d), 0, "geometry.coordinates")["fix"]


def test_an_unsupported_crs_is_rejected():
    assert "EPSG:25832" in one(rejected(doc(add("neu-1"), crs="EPSG:31468")), None, "crs")["fix"]


def test_invalid_polygons_are_rejected_with_the_reason():
    bow = [[FREE_X, FREE_Y], [FREE_X + 20, FREE_Y + 20], [FREE_X + 20, FREE_Y], [FREE_X, FREE_Y + 20], [FREE_X, FREE_Y]]
    open_ring = ring(FREE_X + 50, FREE_Y, 20, 12)[:-1]
    d = doc(feature({"type": "Polygon", "coordinates": [bow]}, change="add_building", id="neu-1", storeys=2),
            feature({"type": "Polygon", "coordinates": [open_ring]}, change="add_building", id="neu-2", storeys=2),
            add("neu-3", x=FREE_X + 100, w=2, h=2, storeys=1),
            feature({"type": "Polygon", "coordinates": [ring(FREE_X, FREE_Y, 20, 12)[:3]]}, change="add_building",
                    id="neu-4", storeys=1))
    probs = rejected(d)
    p = one(probs, 0, "geometry", "Self-intersection")
    assert p["check"] == "geometry" and "crossing" in p["fix"]
    assert "first position" in one(probs, 1, "geometry.coordinates[0]", "not closed")["fix"]
    assert "4.0 m²" in one(probs, 2, "geometry", "footprint")["problem"]
    assert "4 positions" in one(probs, 3, "geometry.coordinates[0]")["fix"]


def test_overlap_with_a_kept_building_is_rejected():
    probs = rejected(doc(add("neu-1", x=681810.0, y=5644805.0, w=20, h=10, storeys=2)))
    p = one(probs, 0, "geometry", "DETHL-A")
    assert p["check"] == "overlap" and "100.0 m²" in p["problem"] and "remove_building" in p["fix"]


def test_overlap_between_two_new_buildings_is_rejected():
    probs = rejected(doc(add("neu-1"), add("neu-2", x=FREE_X + 19.0, storeys=2)))
    p = one(probs, 1, "geometry", "'neu-1' (feature 0)")
    assert "12.0 m²" in p["problem"] and p["fix"]


def test_a_new_building_overlapping_a_modified_footprint_is_rejected():
    # DETHL-B moves north by 30 m; a new building on its new place overlaps it, its old place is free
    d = doc(feature(polygon(681900, 5644830, 20, 15), change="modify_building", building_id="DETHL-B"),
            add("neu-1", x=681905.0, y=5644835.0, w=10, h=5, storeys=2))
    assert "DETHL-B" in one(rejected(d), 1, "geometry")["problem"]


@pytest.mark.parametrize("props, field_, words", [
    ({"eave_height_m": 20.0, "ridge_height_m": 10.0, "roof_form": "3100"}, "properties.eave_height_m", "above the ridge"),
    ({"eave_height_m": 20.0, "ridge_height_m": 310.0, "roof_form": "3100"}, "properties.ridge_height_m", "300"),
    ({"eave_height_m": 0, "ridge_height_m": 5.0, "roof_form": "3100"}, "properties.eave_height_m", "not above 0"),
    ({"eave_height_m": -3.0, "ridge_height_m": 5.0, "roof_form": "3100"}, "properties.eave_height_m", "not above 0"),
    ({"eave_height_m": 9.0, "ridge_height_m": 12.0, "roof_form": "1000"}, "properties.ridge_height_m", "flat roof"),
    ({"eave_height_m": 9.0, "ridge_height_m": 9.0, "roof_form": "3100"}, "properties.ridge_height_m", "pitched"),
    ({"storeys": 10, "eave_height_m": 6.0, "ridge_height_m": 9.0, "roof_form": "3100"}, "properties.storeys", "22–45"),
    ({"storeys": 0}, "properties.storeys", "below the minimum"),
])
def test_absurd_heights_are_rejected(props, field_, words):
    p = one(rejected(doc(add("neu-1", **props))), 0, field_)
    assert words in p["problem"], p


def test_a_modified_eave_above_the_current_ridge_is_rejected():
    # DETHL-A: eave 6 m, ridge 10 m (the context's current heights)
    d = doc(feature(None, change="modify_building", building_id="DETHL-A", eave_height_m=14.0))
    assert "10 m" in one(rejected(d), 0, "properties.eave_height_m")["problem"]


def test_a_modification_that_changes_nothing_is_rejected():
    assert one(rejected(doc(feature(None, change="modify_building", building_id="DETHL-A"))), 0, "properties")


@pytest.mark.parametrize("feat, field_", [
    (feature(None, change="remove_building", building_id="DETHL-X"), "properties.building_id"),
    (feature(None, change="modify_building", building_id="DETHL-X", storeys=3), "properties.building_id"),
    (feature(None, change="road_change", road_id="r9", factor=0.5), "properties.road_id"),
    (feature(None, change="remove_tree", tree_id="t9"), "properties.tree_id"),
])
def test_unknown_ids_are_rejected(feat, field_):
    p = one(rejected(doc(add("neu-1"), feat)), 1, field_)
    wrong = next(v for k, v in feat["properties"].items() if k.endswith("_id"))
    assert p["check"] == "reference" and repr(wrong) in p["problem"]
    assert "city" in p["fix"] or "cadastre" in p["fix"]


def test_twice_removed_and_modified_and_removed_buildings_are_rejected():
    d = doc(feature(None, change="remove_building", building_id="DETHL-A"),
            feature(None, change="remove_building", building_id="DETHL-A"),
            feature(None, change="remove_building", building_id="DETHL-B"),
            feature(None, change="modify_building", building_id="DETHL-B", storeys=3),
            add("haus-7", x=FREE_X + 100), add("neu-1"), add("neu-1", x=FREE_X + 50),
            feature(None, change="remove_tree", tree_id="t1"), feature(None, change="remove_tree", tree_id="t1"))
    from dataclasses import replace
    ctx = context()   # a city whose ids fit the variant id form: a new building may not take one
    ctx = replace(ctx, building_footprints={**ctx.building_footprints, "haus-7": box(681700, 5644700, 681710, 5644710)})
    probs = rejected(d, ctx)
    assert "twice" in one(probs, 1, "properties.building_id")["problem"]
    assert "modified and removed" in one(probs, 3, "properties.building_id")["problem"]
    assert "already" in one(probs, 4, "properties.id")["problem"]
    assert "twice" in one(probs, 6, "properties.id")["problem"]
    assert "twice" in one(probs, 8, "properties.tree_id")["problem"]


def test_a_new_road_needs_a_line_and_traffic():
    probs = rejected(doc(feature(None, change="road_change", id="neue-strasse", factor=2)))
    assert one(probs, 0, "geometry") and one(probs, 0, "properties.factor") and one(probs, 0, "properties.dtv")


def test_an_unknown_parent_and_a_reserved_id_are_rejected():
    probs = rejected(good_doc(parent={"id": "gibt-es-nicht", "version": 1}, id="submissions"))
    assert "citymodel variant list" in one(probs, None, "variant.parent.id")["fix"]
    assert one(probs, None, "variant.id", "reserved")
    from dataclasses import replace
    ctx = replace(context(), variants={"basis": (1, 2)})
    validate_variant(dumps(good_doc(parent={"id": "basis", "version": 2})), "p.geojson", ctx)
    assert "accepted: 1, 2" in one(rejected(good_doc(parent={"id": "basis", "version": 3}), ctx), None,
                                   "variant.parent.version")["problem"]


def test_an_oversized_file_is_rejected_before_parsing():
    data = dumps(good_doc())
    probs = rejected(data + b" " * 10, context(max_file_bytes=len(data) + 5))
    assert len(probs) == 1 and probs[0]["check"] == "size" and probs[0]["feature"] is None
    assert f"{len(data) + 10:,} bytes" in probs[0]["problem"]
    validate_variant(data, "ok.geojson", context(max_file_bytes=len(data)))


def test_json_syntax_errors_name_line_and_column():
    text = dumps(good_doc()).decode().replace('"schema_version": "1.0",', '"schema_version": "1.0"', 1)
    p = rejected(text.encode())[0]
    assert p["check"] == "json" and "line 4, column 2" in p["problem"]   # the comma is missing at the end of line 3
    assert rejected(b"")[0]["problem"] == "the file is empty"
    assert "UTF-8" in rejected("{\"a\": \"Stra\xdfe\"}".encode("latin-1"))[0]["fix"]
    assert "NaN" in rejected(dumps(good_doc()).replace(b'"eave_height_m": 12.0', b'"eave_height_m": NaN', 1))[0]["problem"]
    dup = dumps(good_doc()).replace(b'"title": "Testvariante"', b'"title": "A", "title": "B"', 1)
    assert "'title' appears more than once" in rejected(dup)[0]["problem"]


def test_nesting_and_number_limits():
    deep_doc = good_doc(description="x")
    deep_doc["variant"]["description"] = None
    nest = [1]
    for _ in range(100):
        nest = [nest]
    deep_doc["bbox"] = nest
    assert rejected(deep_doc)[0]["check"] == "depth"
    assert "nested too deeply" in rejected(b"[" * 100_000 + b"]" * 100_000)[0]["problem"]
    many = doc(*[add(f"neu-{k}", x=FREE_X + 25 * k, w=20) for k in range(4)])
    assert "4 features" in one(rejected(many, context(max_features=3)), None, "features")["problem"]
    assert "coordinates" in rejected(many, context(max_vertices=19))[0]["problem"]


@pytest.mark.parametrize("where, value", [
    ("description", "Plan: https://example.org/plan.pdf"),
    ("description", "HTTP://EXAMPLE.ORG"),
    ("description", "siehe http:plan"),
    ("description", "file:///etc/passwd"),
    ("description", "ftp://files.example.org/a"),
    ("description", "data:text/plain;base64,SGFsbG8="),
    ("description", "//evil.example.org/x.json"),
    ("description", "\\\\server\\share\\plan.dwg"),
    ("description", "www.example.org"),
    ("description", "javascript:alert(1)"),
    ("title", "Plan (mailto:amt@example.org)"),
])
def test_urls_in_any_text_are_rejected(where, value):
    d = good_doc()
    d["variant"][where] = value
    p = one(rejected(d), None, f"variant.{where}")
    assert p["check"] == "external_reference" and "self-contained" in p["fix"]


def test_urls_in_feature_properties_and_member_names_are_rejected():
    d = good_doc()
    d["features"][5]["properties"]["species"] = "Tilia, siehe https://baum.example.org"
    d["features"][0]["properties"]["name"] = "file:/c:/plan"
    d["features"][0]["properties"]["design"] = deep(box_city())
    d["features"][0]["properties"]["design"]["CityObjects"]["Entwurf_1"]["attributes"] = {"https://x.org/a": 1}
    probs = rejected(d)
    assert one(probs, 5, "properties.species")["check"] == "external_reference"
    assert one(probs, 0, "properties.name")["check"] == "external_reference"
    assert one(probs, 0, "properties.design.CityObjects.Entwurf_1.attributes.https://x.org/a")


@pytest.mark.parametrize("key", ["$ref", "$schema", "@context", "@id", "xlink:href", "href"])
def test_reference_members_are_rejected(key):
    d = good_doc()
    d["features"][1]["properties"][key] = "#/definitions/x"
    p = one(rejected(d), 1, f"properties.{key}")
    assert p["check"] == "external_reference"
    d = good_doc()
    d[key] = {"a": 1}
    assert one(rejected(d), None, key)["check"] == "external_reference"


def test_cityjson_extensions_textures_and_foreign_templates_are_rejected():
    c = cityjson_submission()
    c["extensions"] = {"+Laerm": {"url": "https://example.org/noise.ext.json", "version": "1.0"}}
    c["appearance"] = {"textures": [{"type": "PNG", "image": "fassade.png"}]}
    c["CityObjects"]["Entwurf_1"]["geometry"].append({"type": "GeometryInstance", "template": 3, "lod": "2",
                                                      "boundaries": [0], "transformationMatrix": [1, 0, 0, 0, 0, 1, 0,
                                                                                                 0, 0, 0, 1, 0, 0, 0, 0, 1]})
    probs = rejected(c, name="e.city.json")
    assert one(probs, None, "extensions.+Laerm.url")["check"] == "external_reference"
    assert one(probs, None, "appearance.textures")["check"] == "external_reference"
    assert "template 3" in one(probs, 0, "CityObjects.Entwurf_1.geometry[1].template")["problem"]


def _broken_solid() -> dict:
    c = box_city()
    g = c["CityObjects"]["Entwurf_1"]["geometry"][0]
    g["boundaries"][0].pop()          # the west wall is missing: the shell is open
    g["semantics"]["values"][0].pop()
    return c


def test_a_design_with_an_invalid_solid_is_rejected_with_val3dity_codes():
    probs = rejected(doc(feature(None, change="add_building", id="entwurf-1", design=_broken_solid())))
    p = one(probs, 0, "properties.design.CityObjects.Entwurf_1.geometry[0]")
    assert p["codes"] == [302] and "SHELL_NOT_CLOSED" in p["problem"] and "closed" in p["fix"]
    # inverted faces (every ring reversed): the shell is closed but oriented inwards
    c = box_city()
    g = c["CityObjects"]["Entwurf_1"]["geometry"][0]
    g["boundaries"][0] = [[list(reversed(r)) for r in poly] for poly in g["boundaries"][0]]
    p = one(rejected(doc(feature(None, change="add_building", id="entwurf-1", design=c))), 0,
            "properties.design.CityObjects.Entwurf_1.geometry[0]")
    assert p["codes"] == [405]


def test_a_cityjson_file_with_invalid_solids_is_rejected():
    c = _broken_solid()
    c["+variant"] = cityjson_submission()["+variant"]
    p = one(rejected(c, name="e.city.json"), 0, "CityObjects.Entwurf_1.geometry[0]")
    assert p["codes"] == [302]


def test_a_design_in_another_crs_or_without_crs_is_rejected():
    p = one(rejected(doc(feature(None, change="add_building", id="e-1", design=box_city(crs_code=31468)))), 0,
            "properties.design.metadata.referenceSystem")
    assert "EPSG:31468" in p["problem"] and "EPSG/0/25832" in p["fix"]
    c = box_city()
    del c["metadata"]["referenceSystem"]
    assert one(rejected(doc(feature(None, change="add_building", id="e-1", design=c))), 0,
               "properties.design.metadata.referenceSystem")


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"official CityJSON schemas not found at {SCHEMAS}")
def test_a_design_is_checked_against_the_official_cityjson_schema():
    c = box_city()
    c["CityObjects"]["Entwurf_1"]["geometry"][0]["lod"] = 2      # the schema wants the LoD as a string
    p = one(rejected(doc(feature(None, change="add_building", id="e-1", design=c))), 0,
            "properties.design.CityObjects.Entwurf_1.geometry.0.lod")
    assert "CityJSON 2.0" in p["problem"]


def test_a_cityjson_file_without_variant_metadata_is_rejected():
    c = box_city()
    probs = rejected(c, name="e.city.json")
    assert len(probs) == 1
    p = one(probs, None, "+variant")
    assert '"+variant"' in p["fix"] and "author_role" in p["fix"]


def test_validation_is_total():
    """One file with eight planted problems in different features: all eight are reported."""
    d = good_doc()
    d["variant"]["created"] = "morgen"
    d["features"][0]["properties"]["ridge_height_m"] = 8.0                      # below the eave (12)
    d["features"][1]["properties"]["building_id"] = "DETHL-X"                    # unknown
    d["features"][2]["properties"]["colour"] = "blau"                            # schema
    d["features"][3]["properties"]["road_id"] = "r9"                             # unknown road
    d["features"][5]["geometry"]["coordinates"] = [690000.0, 5645000.0]          # outside
    d["features"][6]["properties"]["tree_id"] = "t9"                             # unknown tree
    d["features"].append(add("neu-2", x=FREE_X + 10))                           # overlaps neu-1
    probs = rejected(d)
    planted = {(None, "variant.created"), (0, "properties.eave_height_m"), (1, "properties.building_id"),
               (2, "properties.colour"), (3, "properties.road_id"), (5, "geometry"), (6, "properties.tree_id"),
               (7, "geometry")}
    assert planted <= {(p["feature"], p["field"]) for p in probs}
