"""CityJSON 2.0 / CityJSONSeq writer, reader and validation against the official schemas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from citymodel.cityjson import (CityBuilding, read_cityjson, reference_system_url, to_cityjson, write_cityjson,
                                write_cityjsonseq)
from citymodel.cityjson_schema import validate_cityjson_schema
from citymodel.errors import ConfigError, SourceDataError
from citymodel.geometry3d import Solid, Surface, prism
from citymodel.validate3d import validate_indexed, validate_solid

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT.parent / "shared" / "schemas" / "cityjson-2.0.2"
DELFT = Path("delft-ahn3") / "reference_lod1_3dfier.city.json"

X0, Y0, Z0 = 682_431.257, 5_645_120.118, 151.304


@pytest.fixture(scope="module")
def schema_dir() -> Path:
    if not (SCHEMA_DIR / "cityjson.schema.json").is_file():
        pytest.skip(f"official CityJSON schemas not found at {SCHEMA_DIR} (../shared/schemas beside "
                    "the project)")
    return SCHEMA_DIR


def gable(x0=X0, y0=Y0, z0=Z0, L=12.0, W=8.0, eave=6.0, ridge=10.5) -> Solid:
    p = lambda x, y, z: [x0 + x, y0 + y, z0 + z]  # noqa: E731
    a = np.array
    return Solid([
        Surface("GroundSurface", [a([p(0, 0, 0), p(0, W, 0), p(L, W, 0), p(L, 0, 0)])]),
        Surface("WallSurface", [a([p(0, 0, 0), p(L, 0, 0), p(L, 0, eave), p(0, 0, eave)])]),
        Surface("WallSurface", [a([p(L, W, 0), p(0, W, 0), p(0, W, eave), p(L, W, eave)])]),
        Surface("WallSurface", [a([p(L, 0, 0), p(L, W, 0), p(L, W, eave), p(L, W / 2, ridge), p(L, 0, eave)])]),
        Surface("WallSurface", [a([p(0, W, 0), p(0, 0, 0), p(0, 0, eave), p(0, W / 2, ridge), p(0, W, eave)])]),
        Surface("RoofSurface", [a([p(0, 0, eave), p(L, 0, eave), p(L, W / 2, ridge), p(0, W / 2, ridge)])],
                {"slope_deg": 41.2, "azimuth_deg": 180.0}),
        Surface("RoofSurface", [a([p(L, W, eave), p(0, W, eave), p(0, W / 2, ridge), p(L, W / 2, ridge)])],
                {"slope_deg": 41.2, "azimuth_deg": 0.0}),
    ], lod=2)


def box(x0=X0 + 30, y0=Y0, z0=Z0, h=7.25) -> Solid:
    return prism(np.array([[0, 0], [9.5, 0], [9.5, 7.2], [0, 7.2]]) + [x0, y0], z0, z0 + h)


def buildings() -> list[CityBuilding]:
    house = CityBuilding("DETH0001", {"function": "31001_1000", "storeys": 2, "measuredHeight": 10.5,
                                      "fit_rmse_m": float("nan"), "roofType": "1030", "valid": True},
                         {"1": box(X0, Y0, Z0, 10.5), "2.2": gable()})
    block = CityBuilding("DETH0002", {"storeys": np.int64(3), "measuredHeight": np.float32(7.25)},
                         [box()])
    annex = CityBuilding("DETH0003-p1", {"storeys": 1}, {"2": box(X0 + 60, Y0, Z0, 3.0)})
    main = CityBuilding("DETH0003", {"storeys": 4}, {"2": box(X0 + 60, Y0 + 20, Z0, 12.0)}, parts=[annex])
    return [house, block, main]


def _by_id(bs):
    out = {}
    for b in bs:
        out[b.id] = b
        for p in b.parts:
            out[p.id] = p
    return out


def _assert_same_solid(a: Solid, b: Solid):
    assert len(a.surfaces) == len(b.surfaces)
    for sa, sb in zip(a.surfaces, b.surfaces):
        assert sa.kind == sb.kind
        assert len(sa.rings) == len(sb.rings)
        for ra, rb in zip(sa.rings, sb.rings):
            np.testing.assert_allclose(np.asarray(ra), rb, atol=0.0005 + 1e-9, rtol=0)
        for k, v in sa.attributes.items():
            assert sb.attributes[k] == pytest.approx(v)


def _assert_round_trip(written: list[CityBuilding], read: list[CityBuilding]):
    w, r = _by_id(written), _by_id(read)
    assert set(w) == set(r)
    assert [b.id for b in read] == [b.id for b in written]        # parts are not top level
    assert [p.id for p in r["DETH0003"].parts] == ["DETH0003-p1"]
    assert r["DETH0003-p1"].type == "BuildingPart"
    for k, b in w.items():
        assert set(r[k].solids) == set(b.solids)
        for lod, s in b.solids.items():
            _assert_same_solid(s, r[k].solids[lod])
    a = r["DETH0001"].attributes
    assert a["fit_rmse_m"] is None and a["storeys"] == 2 and a["valid"] is True
    assert a["function"] == "31001_1000" and a["measuredHeight"] == 10.5
    assert isinstance(r["DETH0002"].attributes["storeys"], int)
    assert r["DETH0002"].attributes["measuredHeight"] == pytest.approx(7.25)


# --------------------------------------------------------------------------------- CityJSON 2.0

def test_cityjson_document_structure():
    doc = to_cityjson(buildings(), title="Jena test")
    assert doc["type"] == "CityJSON" and doc["version"] == "2.0"
    assert doc["transform"]["scale"] == [0.001] * 3
    v = np.array(doc["vertices"])
    assert v.dtype.kind == "i" and v.min() == 0                       # translate = min corner
    np.testing.assert_allclose(doc["transform"]["translate"], [X0, Y0, Z0], atol=1e-9)
    assert len(v) == len(np.unique(v, axis=0))                        # vertices shared in the file
    md = doc["metadata"]
    assert md["referenceSystem"] == "https://www.opengis.net/def/crs/EPSG/0/25832"
    assert "DHHN2016" in md["title"] and "7837" in md["title"]
    ext = md["geographicalExtent"]
    assert ext[2] == pytest.approx(Z0) and ext[5] == pytest.approx(Z0 + 12.0)
    g = doc["CityObjects"]["DETH0001"]["geometry"]
    assert [x["lod"] for x in g] == ["1", "2.2"]
    sem = g[1]["semantics"]
    kinds = [sem["surfaces"][i]["type"] for i in sem["values"][0]]
    assert kinds == ["GroundSurface"] + ["WallSurface"] * 4 + ["RoofSurface"] * 2
    assert sem["surfaces"][sem["values"][0][5]]["slope_deg"] == 41.2
    assert doc["CityObjects"]["DETH0003"]["children"] == ["DETH0003-p1"]
    assert doc["CityObjects"]["DETH0003-p1"]["parents"] == ["DETH0003"]


def test_written_solids_stay_valid_for_the_validator():
    doc = to_cityjson(buildings())
    v = np.array(doc["vertices"]) * 0.001 + doc["transform"]["translate"]
    for oid, co in doc["CityObjects"].items():
        for g in co["geometry"]:
            rep = validate_indexed(v, g["boundaries"], check_unused_vertices=False, feature=oid)
            assert rep.valid, (oid, rep.errors)


def test_reference_system_uses_compound_epsg_code_where_it_exists():
    assert reference_system_url(25832, 5783).endswith("/EPSG/0/5555")   # + DHHN92 height
    assert reference_system_url(25832, 7837).endswith("/EPSG/0/25832")  # no EPSG compound code
    assert reference_system_url(28992, 5709).endswith("/EPSG/0/7415")   # Amersfoort / RD New + NAP


def test_cityjson_file_valid_against_official_schema_and_round_trip(tmp_path, schema_dir):
    bs = buildings()
    path = write_cityjson(tmp_path / "buildings.city.json", bs, title="Jena test",
                          point_of_contact={"contactName": "Stadt Jena", "emailAddress": "geo@jena.de"})
    assert validate_cityjson_schema(path, schema_dir) == []
    assert [p.name for p in tmp_path.iterdir()] == ["buildings.city.json"]   # no temp file left
    data = read_cityjson(path)
    assert data.version == "2.0"
    assert data.metadata["pointOfContact"]["contactName"] == "Stadt Jena"
    _assert_round_trip(bs, data.buildings)


def test_cityjsonseq_valid_against_official_schemas_and_round_trip(tmp_path, schema_dir):
    bs = buildings()
    path = write_cityjsonseq(tmp_path / "32_682_5645.city.jsonl", bs)
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert lines[0]["type"] == "CityJSON" and lines[0]["CityObjects"] == {} and lines[0]["vertices"] == []
    assert "transform" in lines[0]
    assert [o["type"] for o in lines[1:]] == ["CityJSONFeature"] * 3
    assert [o["id"] for o in lines[1:]] == ["DETH0001", "DETH0002", "DETH0003"]
    assert set(lines[3]["CityObjects"]) == {"DETH0003", "DETH0003-p1"}    # parts travel with the feature
    # each feature has its own vertex list: indices run from 0
    for o in lines[1:]:
        used = {i for co in o["CityObjects"].values() for g in co["geometry"]
                for sh in g["boundaries"] for p in sh for r in p for i in r}
        assert used == set(range(len(o["vertices"])))
    assert validate_cityjson_schema(path, schema_dir) == []
    for o in lines:
        assert validate_cityjson_schema(o, schema_dir) == []
    _assert_round_trip(bs, read_cityjson(path).buildings)


def test_invalid_documents_give_schema_errors(tmp_path, schema_dir):
    doc = to_cityjson(buildings())
    doc["CityObjects"]["DETH0001"]["geometry"][1]["semantics"]["surfaces"][0]["type"] = "FloorPlan"
    errs = validate_cityjson_schema(doc, schema_dir)
    assert len(errs) == 1 and "semantics/surfaces/0/type" in errs[0] and "FloorPlan" in errs[0]
    doc = to_cityjson(buildings())
    doc["CityObjects"]["DETH0002"]["geometry"][0]["lod"] = 2
    assert any("lod" in e for e in validate_cityjson_schema(doc, schema_dir))
    path = write_cityjsonseq(tmp_path / "t.city.jsonl", buildings())
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    del header["transform"]
    lines[0] = json.dumps(header)
    bad = tmp_path / "bad.city.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    errs = validate_cityjson_schema(bad, schema_dir)
    assert errs and all(e.startswith("line 1:") for e in errs) and "transform" in errs[0]
    with pytest.raises(SourceDataError, match="transform.*Fix:"):
        read_cityjson(bad)
    feature = json.loads(lines[1])
    feature["transform"] = header.get("transform", {"scale": [1, 1, 1], "translate": [0, 0, 0]})
    assert validate_cityjson_schema(feature, schema_dir)         # features must not carry a transform


def _mutations():
    """Invalid variants of a valid document, each breaking one rule of the schemas (the kinds of
    mistake a writer or a hand edit makes), and one valid variant."""
    def lod(d):
        d["CityObjects"]["DETH0002"]["geometry"][0]["lod"] = "9"

    def depth(d):
        g = d["CityObjects"]["DETH0001"]["geometry"][0]
        g["boundaries"] = g["boundaries"][0]                     # a Solid's boundaries one level short

    def cotype(d):
        d["CityObjects"]["DETH0001"]["type"] = "Hochhaus"

    def extra(d):
        d["CityObjects"]["DETH0003"]["geometry"][0]["colour"] = "red"      # additionalProperties: false

    def vertex(d):
        d["vertices"][5] = d["vertices"][5][:2]

    def parents(d):
        d["CityObjects"]["DETH0003-p1"]["parents"] = "DETH0003"           # must be an array

    def surface(d):
        d["CityObjects"]["DETH0001"]["geometry"][1]["semantics"]["surfaces"][0]["type"] = "FloorPlan"

    def no_transform(d):
        del d["transform"]

    def version(d):
        d["version"] = "1.1"

    def many(d):
        for co in d["CityObjects"].values():
            co["geometry"][0]["lod"] = 7

    def valid(d):
        d["CityObjects"]["DETH0001"]["attributes"]["note"] = "ein Kommentar"
    return [lod, depth, cotype, extra, vertex, parents, surface, no_transform, version, many, valid]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_the_compiled_validator_decides_like_jsonschema_and_reports_its_messages(schema_dir, mutate):
    """The compiled schemas (fastjsonschema) decide; jsonschema explains. On every mutation both
    validators give the same verdict, and the messages are jsonschema's own on the whole document."""
    from citymodel.cityjson_schema import _messages, _validators

    doc = to_cityjson(buildings())
    for b in doc["CityObjects"].values():
        b.setdefault("attributes", {})
    mutate(doc)
    slow = _messages(_validators(str(schema_dir.resolve()))[0], doc, "")
    fast = validate_cityjson_schema(doc, schema_dir)
    assert bool(fast) == bool(slow) == (mutate.__name__ != "valid")
    assert sorted(fast) == sorted(slow)


def test_only_failing_objects_are_explained_and_at_most_a_bounded_number(schema_dir, monkeypatch):
    import citymodel.cityjson_schema as CS

    doc = to_cityjson(buildings())
    for co in doc["CityObjects"].values():
        co["geometry"][0]["lod"] = 7
    monkeypatch.setattr(CS, "DETAIL_OBJECTS", 2)
    errs = validate_cityjson_schema(doc, schema_dir)
    assert errs[-1] == f"CityObjects: {len(doc['CityObjects']) - 2} more CityObjects fail the schema (the first 2 are described)"
    named = {e.split("/")[1] for e in errs[:-1]}
    assert len(named) == 2 and all(e.startswith("CityObjects/") and "lod" in e for e in errs[:-1])


def test_missing_schema_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cityjson\.schema\.json.*Fix:"):
        validate_cityjson_schema({"type": "CityJSON"}, tmp_path / "nowhere")


def test_bad_buildings_are_rejected_with_record_and_fix():
    with pytest.raises(SourceDataError, match=r"record 'DETH0002'.*twice.*Fix:"):
        to_cityjson([CityBuilding("DETH0002", {}, [box()]), CityBuilding("DETH0002", {}, [box()])])
    s = box()
    s.surfaces[0].kind = "FloorSurface"
    with pytest.raises(SourceDataError, match=r"record 'B1'.*FloorSurface.*Fix:"):
        to_cityjson([CityBuilding("B1", {}, [s])])
    with pytest.raises(SourceDataError, match=r"LoD .*Fix:"):
        CityBuilding("B2", {}, {"5": box()})


def test_reading_a_non_cityjson_file_fails_clearly(tmp_path):
    p = tmp_path / "x.city.json"
    p.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(SourceDataError, match="not a CityJSON.*Fix:"):
        read_cityjson(p, dataset="lod2_reference")
    p.write_text('{"type": "CityJSON", ')
    with pytest.raises(SourceDataError, match="not valid JSON.*Fix:"):
        read_cityjson(p)


# --------------------------------------------------------------------------- real data: Delft 1.0

def test_delft_cityjson_1_0_reference_is_read(shared_data):
    path = shared_data / DELFT
    raw = json.loads(path.read_text())
    n_buildings = sum(1 for o in raw["CityObjects"].values() if o["type"] == "Building")
    data = read_cityjson(path, dataset="delft-reference")
    assert data.version == "1.0" and n_buildings == 160
    assert len(data.buildings) == n_buildings
    assert data.reference_system == "urn:ogc:def:crs:EPSG::7415"
    heights = {}
    for b in data.buildings:
        assert set(b.solids) == {"1"}
        s = b.solids["1"]
        zmin, zmax = s.bounds[2], s.bounds[5]
        # 3dfier's measuredHeight is the LoD1 block's height above its base
        assert b.attributes["measuredHeight"] == pytest.approx(zmax - zmin, abs=0.001)
        heights[b.id] = b.attributes["measuredHeight"]
    first = next(k for k, o in raw["CityObjects"].items() if o["type"] == "Building")
    assert heights[first] == raw["CityObjects"][first]["attributes"]["measuredHeight"]
    # vertices decoded unchanged (CityJSON 1.0 without transform)
    v = np.array(raw["vertices"])
    b0 = data.buildings[0].solids["1"].vertices_array()
    assert np.isin(b0[:, 0], v[:, 0]).all()


@pytest.mark.slow
def test_delft_lod1_solids_are_valid_for_val3dity_rules(shared_data):
    data = read_cityjson(shared_data / DELFT)
    reps = [validate_solid(b.solids["1"], feature=b.id) for b in data.buildings]
    assert sum(r.valid for r in reps) == 160
