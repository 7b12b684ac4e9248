"""CityGML 2.0 (AdV) reader, writer and checks.

Expected values come from geometry known by construction (a box, a gable house), from the raw XML
of the real Berlin tiles read with independent lxml XPath, or from shapely on raw posLists.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely
from lxml import etree

from citymodel import citygml as cg
from citymodel.errors import CRSError, GeometryError, SourceDataError
from citymodel.geometry3d import Solid, Surface

NS = {"bldg": "http://www.opengis.net/citygml/building/2.0", "gml": "http://www.opengis.net/gml",
      "core": "http://www.opengis.net/citygml/2.0"}
BERLIN = {"3900_5817.gml": 18, "3910_5819.gml": 35}


# ------------------------------------------------------------------ geometry built for the tests
def box_solid(x0=682000.0, y0=5645000.0, lx=10.0, ly=6.0, z0=200.0, h=8.0) -> Solid:
    """Box with outward rings, built vertex by vertex (independent of ``geometry3d.prism``, whose
    ``_ccw`` once dropped a vertex at UTM coordinates through ``np.allclose``'s relative tolerance)."""
    x1, y1, z1 = x0 + lx, y0 + ly, z0 + h

    def P(*pts):
        return np.array(pts, dtype=float)

    return Solid([
        Surface("GroundSurface", [P([x0, y0, z0], [x0, y1, z0], [x1, y1, z0], [x1, y0, z0])]),
        Surface("RoofSurface", [P([x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1])]),
        Surface("WallSurface", [P([x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1])]),
        Surface("WallSurface", [P([x1, y0, z0], [x1, y1, z0], [x1, y1, z1], [x1, y0, z1])]),
        Surface("WallSurface", [P([x1, y1, z0], [x0, y1, z0], [x0, y1, z1], [x1, y1, z1])]),
        Surface("WallSurface", [P([x0, y1, z0], [x0, y0, z0], [x0, y0, z1], [x0, y1, z1])]),
    ])


def gable_solid(x0=682100.0, y0=5645100.0, length=12.0, width=8.0, zg=210.0, eave_h=6.0,
                ridge_h=10.0) -> Solid:
    """Gable house, ridge along x at y0 + width/2; volume = L*W*eave + L*W*(ridge-eave)/2."""
    x1, y1, ym = x0 + length, y0 + width, y0 + width / 2
    ze, zr = zg + eave_h, zg + ridge_h

    def P(*pts):
        return np.array(pts, dtype=float)

    return Solid([
        Surface("GroundSurface", [P([x0, y0, zg], [x0, y1, zg], [x1, y1, zg], [x1, y0, zg])]),
        Surface("WallSurface", [P([x0, y0, zg], [x1, y0, zg], [x1, y0, ze], [x0, y0, ze])]),
        Surface("WallSurface", [P([x1, y1, zg], [x0, y1, zg], [x0, y1, ze], [x1, y1, ze])]),
        Surface("WallSurface", [P([x1, y0, zg], [x1, y1, zg], [x1, y1, ze], [x1, ym, zr], [x1, y0, ze])]),
        Surface("WallSurface", [P([x0, y1, zg], [x0, y0, zg], [x0, y0, ze], [x0, ym, zr], [x0, y1, ze])]),
        Surface("RoofSurface", [P([x0, y0, ze], [x1, y0, ze], [x1, ym, zr], [x0, ym, zr])]),
        Surface("RoofSurface", [P([x1, y1, ze], [x0, y1, ze], [x0, ym, zr], [x1, ym, zr])]),
    ])


def volume(solid: Solid) -> float:
    """Signed volume (divergence theorem) about the solid's own lower corner.

    Kept independent of ``Solid.volume_m3``, which, taking the triple products about the CRS
    origin, once turned a Berlin building of 31 548 m3 into -387 440 m3 at UTM coordinates.
    """
    origin = solid.vertices_array().min(axis=0)
    total = 0.0
    for s in solid.surfaces:
        for ring in s.rings:
            r = np.asarray(ring, dtype=float) - origin
            total += float(np.sum(np.einsum("ij,ij->i", np.broadcast_to(r[0], r[1:-1].shape),
                                            np.cross(r[1:-1], r[2:]))))
    return total / 6.0


def edges_closed(rings: list[np.ndarray]) -> bool:
    """Each directed edge used once and its reverse once (rings unclosed, mm-rounded)."""
    edges = Counter()
    for r in rings:
        rr = [tuple(p) for p in np.round(np.asarray(r, dtype=float), 3)]
        for a, b in zip(rr, rr[1:] + rr[:1]):
            edges[(a, b)] += 1
    return all(n == 1 and edges.get((b, a), 0) == 1 for (a, b), n in edges.items())


def raw_ring(ring_el) -> np.ndarray:
    pts = np.array(ring_el.findtext("gml:posList", namespaces=NS).split(), dtype=float).reshape(-1, 3)
    return pts[:-1]


def house(bid="DETHL51P0000abcd", **kw) -> dict:
    d = {"id": bid, "function": "31001_1010", "roof_type": "3100", "storeys": 2,
         "measured_height_m": 10.0, "solid": gable_solid(),
         "attributes": {"Gemeindeschluessel": "16053000", "DatenquelleDachhoehe": 1000,
                        "fit_rmse_m": 0.125, "lidar_ok": True}}
    d.update(kw)
    return d


# ------------------------------------------------------------------ Berlin: real official tiles
@pytest.fixture(scope="module")
def berlin(shared_data):
    out = {}
    for name in BERLIN:
        path = shared_data / "berlin-lod2" / name
        out[name] = (path, cg.read_citygml(path, "lod2_reference"), etree.parse(str(path)))
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(BERLIN))
def test_berlin_counts_crs_heights(berlin, name):
    path, buildings, doc = berlin[name]
    n_xpath = int(doc.xpath("count(//bldg:Building)", namespaces=NS))
    assert n_xpath == BERLIN[name]
    assert len(buildings) == n_xpath
    assert {b.crs for b in buildings} == {"EPSG:25833"}
    assert {b.vertical_crs for b in buildings} == {None}  # urn:ogc:def:crs:EPSG::25833 has no height
    expected = {}
    for el in doc.xpath("//bldg:Building", namespaces=NS):
        h = el.findtext("bldg:measuredHeight", namespaces=NS)
        expected[el.get(f"{{{NS['gml']}}}id")] = float(h) if h is not None else None
    assert {b.building_id: b.measured_height_m for b in buildings} == expected
    assert all(b.solid is not None and b.reason is None for b in buildings)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(BERLIN))
def test_berlin_solids_closed_as_in_the_file(berlin, name):
    """Every solid is closed where the file's polygons are; the real tiles have a few open shells
    (T-junctions, 1 mm gaps), which the reader must keep as they are, not hide or invent."""
    path, buildings, doc = berlin[name]
    raw_closed = {}
    for el in doc.xpath("//bldg:Building", namespaces=NS):
        rings = [raw_ring(r) for r in el.iterfind(".//gml:Polygon/*/gml:LinearRing", namespaces=NS)]
        raw_closed[el.get(f"{{{NS['gml']}}}id")] = edges_closed(rings)
    read_closed = {b.building_id: edges_closed([r for s in b.solid.surfaces for r in s.rings])
                   for b in buildings}
    assert read_closed == raw_closed
    # the share of closed shells in these tiles (17 of 18, 27 of 35), counted on the raw XML above
    assert sum(raw_closed.values()) >= 0.75 * len(raw_closed)
    for b in buildings:
        if read_closed[b.building_id]:
            assert volume(b.solid) > 0, b.building_id
        kinds = {s.kind for s in b.solid.surfaces}
        assert {"GroundSurface", "WallSurface", "RoofSurface"} <= kinds


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(BERLIN))
def test_berlin_footprints_equal_ground_surfaces(berlin, name):
    path, buildings, doc = berlin[name]
    by_id = {b.building_id: b for b in buildings}
    for el in doc.xpath("//bldg:Building", namespaces=NS):
        polys = []
        for poly in el.xpath(".//bldg:GroundSurface//gml:Polygon", namespaces=NS):
            ext = raw_ring(poly.find("gml:exterior/gml:LinearRing", namespaces=NS))
            holes = [raw_ring(r) for r in poly.iterfind("gml:interior/gml:LinearRing", namespaces=NS)]
            polys.append(shapely.Polygon(ext[:, :2], [h[:, :2] for h in holes]))
        expected = shapely.union_all(polys).area
        b = by_id[el.get(f"{{{NS['gml']}}}id")]
        assert b.footprint.area == pytest.approx(expected, rel=1e-9)
        zs = np.array(" ".join(el.xpath(".//gml:posList/text()", namespaces=NS)).split(),
                      dtype=float).reshape(-1, 3)[:, 2]
        assert b.ground_height_m == pytest.approx(zs.min())
        assert b.max_z_m == pytest.approx(zs.max())


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(BERLIN))
def test_berlin_structure_and_xsd(berlin, name):
    path, buildings, _ = berlin[name]
    report = cg.check_citygml_structure(path)
    assert report.ok, report.errors[:5]
    assert report.n_buildings == BERLIN[name]
    # the Berlin export omits the uom of measuredHeight: a warning here, an XSD error below
    xsd = cg.validate_citygml_xsd(path)
    assert not xsd.ok
    assert all("measuredHeight" in e and "uom" in e for e in xsd.errors)


@pytest.mark.shared_data
def test_berlin_frame_transformed_to_processing_crs(berlin):
    import pyproj

    path, buildings, _ = berlin["3900_5817.gml"]
    fresh = cg.read_citygml(path, "lod2_reference")
    frame = cg.citygml_to_frame(fresh, "EPSG:25832")
    assert frame.crs.to_epsg() == 25832 and len(frame) == 18
    t = pyproj.Transformer.from_crs(25833, 25832, always_xy=True)
    for b, (_, row) in zip(buildings, frame.iterrows()):
        x, y = t.transform(*b.footprint.centroid.coords[0])
        assert row.geometry.centroid.x == pytest.approx(x, abs=0.01)
        assert row.geometry.centroid.y == pytest.approx(y, abs=0.01)
        assert row.ground_height_m == pytest.approx(b.ground_height_m)


# ------------------------------------------------------------------ round trips
def test_round_trip_box_and_gable(tmp_path):
    box = box_solid()
    gable = gable_solid()
    assert volume(gable) == pytest.approx(12 * 8 * 6 + 12 * 8 * 4 / 2)  # 768 m3
    items = [house("DETHL51P0000box1", roof_type="1000", measured_height_m=8.0, storeys=3,
                   solid=box, attributes={"quelle": "lidar"}),
             house("DETHL51P0000gab1", creation_date="2023-05-17")]
    path = cg.write_citygml(items, tmp_path / "t.gml", name="LoD2_32_682_5645_2_TH",
                            creation_date="2024-01-02")
    got = cg.read_citygml(path, "test")
    assert [b.building_id for b in got] == ["DETHL51P0000box1", "DETHL51P0000gab1"]
    for b, item in zip(got, items):
        assert b.crs == "EPSG:25832" and b.vertical_crs == "EPSG:7837"
        assert b.srs_name == "urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH"
        assert b.function == "31001_1010"
        assert b.roof_type == item["roof_type"]
        assert b.storeys == item["storeys"]
        assert b.measured_height_m == item["measured_height_m"]
        assert b.attributes == item["attributes"] | ({"lidar_ok": "true"} if "lidar_ok" in item["attributes"] else {})
        assert b.external_id == item["id"]
        assert b.reason is None and b.solid.lod == 2
        assert [s.kind for s in b.solid.surfaces] == [s.kind for s in item["solid"].surfaces]
        for s_got, s_in in zip(b.solid.surfaces, item["solid"].surfaces):
            assert len(s_got.rings) == len(s_in.rings)
            for r_got, r_in in zip(s_got.rings, s_in.rings):
                np.testing.assert_allclose(r_got, r_in, rtol=0, atol=1e-9)
    box_b, gable_b = got
    assert box_b.creation_date == "2024-01-02" and gable_b.creation_date == "2023-05-17"
    assert volume(box_b.solid) == pytest.approx(480.0)
    assert box_b.footprint.area == pytest.approx(60.0)
    assert (box_b.ground_height_m, box_b.max_z_m, box_b.eave_z_m) == (200.0, 208.0, 208.0)
    assert volume(gable_b.solid) == pytest.approx(768.0)
    assert (gable_b.ground_height_m, gable_b.max_z_m, gable_b.eave_z_m) == (210.0, 220.0, 216.0)
    assert gable_b.footprint.area == pytest.approx(96.0)
    assert edges_closed([r for s in gable_b.solid.surfaces for r in s.rings])
    assert cg.validate_citygml_xsd(path).ok
    assert cg.check_citygml_structure(path).ok


def test_written_element_order_and_links(tmp_path):
    path = cg.write_citygml([house()], tmp_path / "t.gml", creation_date="2024-01-02")
    doc = etree.parse(str(path))
    b = doc.find(".//bldg:Building", NS)
    order = [etree.QName(c).localname for c in b]
    assert order == ["creationDate", "externalReference", "stringAttribute", "intAttribute",
                     "doubleAttribute", "stringAttribute", "function", "roofType",
                     "measuredHeight", "storeysAboveGround", "lod2Solid"] + ["boundedBy"] * 7
    assert b.find("bldg:measuredHeight", NS).get("uom") == "urn:adv:uom:m"
    assert b.findtext("core:externalReference/core:informationSystem", namespaces=NS) == \
        cg.ADV_ALKIS_INFORMATION_SYSTEM
    hrefs = [m.get("{http://www.w3.org/1999/xlink}href")
             for m in b.iterfind("bldg:lod2Solid/gml:Solid/gml:exterior/gml:CompositeSurface/"
                                 "gml:surfaceMember", NS)]
    poly_ids = [p.get(f"{{{NS['gml']}}}id") for p in b.iterfind("bldg:boundedBy//gml:Polygon", NS)]
    assert hrefs == ["#" + p for p in poly_ids] and len(set(poly_ids)) == 7
    env = doc.getroot().find("gml:boundedBy/gml:Envelope", NS)
    assert [float(v) for v in env.findtext("gml:lowerCorner", namespaces=NS).split()] == \
        [682100.0, 5645100.0, 210.0]
    assert [float(v) for v in env.findtext("gml:upperCorner", namespaces=NS).split()] == \
        [682112.0, 5645108.0, 220.0]
    for pl in doc.iterfind(".//gml:posList", NS):
        v = pl.text.split()
        assert pl.get("srsDimension") == "3" and v[:3] == v[-3:] and len(v) >= 12


def test_multi_part_round_trip(tmp_path):
    parts = [{"id": "DETHL51P0000mp01_1", "solid": box_solid(x0=682000.0, lx=10.0),
              "roof_type": "1000", "measured_height_m": 8.0, "storeys": 2},
             {"id": "DETHL51P0000mp01_2", "solid": gable_solid(x0=682010.0, y0=5645000.0),
              "roof_type": "3100", "measured_height_m": 10.0, "storeys": None}]
    item = {"id": "DETHL51P0000mp01", "function": "31001_2000", "roof_type": None, "storeys": None,
            "measured_height_m": None, "solid": None, "parts": parts, "attributes": {}}
    path = cg.write_citygml_zip([item], tmp_path / "LoD2_32_682_5645_2_TH.zip",
                                creation_date="2024-01-02")
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["LoD2_32_682_5645_2_TH.gml"]
    (b,) = cg.read_citygml(path, "test")
    assert b.solid is None and b.reason is None
    assert [p.building_id for p in b.parts] == ["DETHL51P0000mp01_1", "DETHL51P0000mp01_2"]
    assert [p.roof_type for p in b.parts] == ["1000", "3100"]
    assert [p.measured_height_m for p in b.parts] == [8.0, 10.0]
    assert [p.storeys for p in b.parts] == [2, None]
    assert volume(b.parts[0].solid) == pytest.approx(480.0)
    assert volume(b.parts[1].solid) == pytest.approx(768.0)
    # box 10x6 at x 682000..682010 and gable 12x8 at x 682010..682022 touch along x = 682010
    assert b.footprint.area == pytest.approx(60.0 + 96.0)
    assert (b.ground_height_m, b.max_z_m, b.eave_z_m) == (200.0, 220.0, 208.0)
    frame = cg.citygml_to_frame([b])
    assert frame.loc[0, "n_parts"] == 2 and frame.crs.to_epsg() == 25832
    solids = dict(cg.solids_from_json(frame.loc[0, "surfaces_json"]))
    assert set(solids) == {"DETHL51P0000mp01_1", "DETHL51P0000mp01_2"}
    assert volume(solids["DETHL51P0000mp01_2"]) == pytest.approx(768.0)


def test_frame_survives_parquet(tmp_path):
    import geopandas as gpd

    path = cg.write_citygml([house(), house("DETHL51P0000abce", solid=box_solid())],
                            tmp_path / "t.gml", creation_date="2024-01-02")
    frame = cg.citygml_to_frame(cg.read_citygml(path, "test"))
    frame.to_parquet(tmp_path / "f.parquet")
    back = gpd.read_parquet(tmp_path / "f.parquet")
    assert back.crs.to_epsg() == 25832
    assert list(back.columns[:10]) == ["building_id", "external_id", "function_code", "roof_type",
                                       "storeys", "measured_height_m", "ground_height_m", "max_z_m",
                                       "eave_z_m", "n_parts"]
    (sid, solid), = cg.solids_from_json(back.loc[0, "surfaces_json"])
    assert sid == "DETHL51P0000abcd"
    assert volume(solid) == pytest.approx(768.0)
    assert [s.kind for s in solid.surfaces] == [s.kind for s in gable_solid().surfaces]
    assert back.loc[1, "geometry"].area == pytest.approx(60.0)


def test_lod1_block_and_building_without_geometry(tmp_path):
    block = box_solid()
    block.lod = 1  # what prism() returns: a LoD1 block
    path = cg.write_citygml([house("DETHL51P000lod1", solid=block),
                             house("DETHL51P0000none", solid=None)],
                            tmp_path / "t.gml", creation_date="2024-01-02")
    assert cg.validate_citygml_xsd(path).ok
    lod1, none = cg.read_citygml(path, "test")
    assert lod1.solid.lod == 1 and volume(lod1.solid) == pytest.approx(480.0)
    assert Counter(s.kind for s in lod1.solid.surfaces) == {"WallSurface": 4, "RoofSurface": 1,
                                                             "GroundSurface": 1}
    assert none.solid is None and "no LoD1/LoD2 geometry" in none.reason
    assert none.footprint is None and none.measured_height_m == 10.0


def test_streaming_generator_and_atomic_failure(tmp_path):
    def gen():
        yield house("DETHL51P0000gen1")
        yield house("DETHL51P0000gen2", solid=box_solid())
        raise RuntimeError("source broke")

    target = tmp_path / "out.gml"
    with pytest.raises(RuntimeError):
        cg.write_citygml(gen(), target)
    assert list(tmp_path.iterdir()) == []  # neither a partial file nor a temp file is left


def test_writer_rejects_bad_ids(tmp_path):
    with pytest.raises(GeometryError, match="not a valid gml:id"):
        cg.write_citygml([house("1234 x")], tmp_path / "a.gml")
    with pytest.raises(GeometryError, match="used twice"):
        cg.write_citygml([house(), house()], tmp_path / "b.gml")


# ------------------------------------------------------------------ checks find what is wrong
@pytest.fixture
def good_file(tmp_path) -> Path:
    return cg.write_citygml([house(), house("DETHL51P0000abce", solid=box_solid())],
                            tmp_path / "good.gml", creation_date="2024-01-02")


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t.replace('xlink:href="#DETHL51P0000abcd_p3"', 'xlink:href="#nowhere"', 1),
     "does not resolve"),
    (lambda t: t.replace('gml:id="DETHL51P0000abce_p1"', 'gml:id="DETHL51P0000abcd_p1"', 1),
     "not unique"),
    (lambda t: t.replace("682100.000 5645100.000 210.000</gml:posList>", "682100.000 5645100.000 211.000</gml:posList>", 1),
     "not closed"),
    (lambda t: t.replace('<gml:posList srsDimension="3">', '<gml:posList srsDimension="2">', 1),
     "srsDimension"),
    (lambda t: t.replace("<bldg:roofType>3100</bldg:roofType>", "", 1).replace(
        "<bldg:storeysAboveGround>2</bldg:storeysAboveGround>",
        "<bldg:storeysAboveGround>2</bldg:storeysAboveGround><bldg:roofType>3100</bldg:roofType>", 1),
     "order"),
])
def test_structure_check_finds_errors(good_file, mutation, message):
    text = good_file.read_text()
    bad = mutation(text)
    assert bad != text
    good_file.write_text(bad)
    report = cg.check_citygml_structure(good_file)
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors


def test_xsd_finds_wrong_order(good_file):
    text = good_file.read_text()
    bad = text.replace("<bldg:roofType>3100</bldg:roofType>", "", 1).replace(
        "<bldg:storeysAboveGround>2</bldg:storeysAboveGround>",
        "<bldg:storeysAboveGround>2</bldg:storeysAboveGround><bldg:roofType>3100</bldg:roofType>", 1)
    good_file.write_text(bad)
    report = cg.validate_citygml_xsd(good_file)
    assert not report.ok and any("roofType" in e for e in report.errors)


# ------------------------------------------------------------------ CRS names
@pytest.mark.parametrize("srs, hor, ver", [
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH", "EPSG:25832", "EPSG:7837"),
    ("urn:adv:crs:ETRS89_UTM33*DE_DHHN92_NH", "EPSG:25833", "EPSG:5783"),
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016", "EPSG:25832", "EPSG:7837"),
    ("urn:adv:crs:ETRS89_UTM32", "EPSG:25832", None),
    ("urn:ogc:def:crs:EPSG::25833", "EPSG:25833", None),
    ("urn:ogc:def:crs:EPSG:6.12:25832", "EPSG:25832", None),
    ("http://www.opengis.net/def/crs/EPSG/0/25832", "EPSG:25832", None),
    ("EPSG:25832", "EPSG:25832", None),
    ("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::7837", "EPSG:25832", "EPSG:7837"),
    ("urn:ogc:def:crs:EPSG::5555", "EPSG:25832", "EPSG:5783"),  # EPSG compound UTM32 + DHHN92
])
def test_parse_srs_name(srs, hor, ver):
    crs = cg.parse_srs_name(srs)
    assert (crs.horizontal, crs.vertical) == (hor, ver)


@pytest.mark.parametrize("srs", ["urn:adv:crs:GK_UNKNOWN", "urn:adv:crs:ETRS89_UTM32*XX_NN",
                                 "local", "urn:ogc:def:crs:EPSG::999999"])
def test_parse_srs_name_unknown(srs):
    assert cg.parse_srs_name(srs) is None


def test_srs_name_for_writer():
    assert cg.srs_name_for("EPSG:25833", "EPSG:5783") == "urn:adv:crs:ETRS89_UTM33*DE_DHHN92_NH"
    assert cg.srs_name_for("EPSG:25832", None) == "urn:ogc:def:crs:EPSG::25832"
    assert cg.parse_srs_name(cg.srs_name_for("EPSG:3044", "EPSG:7837")).horizontal == "EPSG:3044"


# ------------------------------------------------------------------ bad input
def test_truncated_file(good_file):
    data = good_file.read_bytes()
    good_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceDataError) as exc:
        cg.read_citygml(good_file, "lod2_reference")
    msg = str(exc.value)
    assert "lod2_reference" in msg and "good.gml" in msg and "line" in msg and "Fix:" in msg


def test_not_xml(tmp_path):
    path = tmp_path / "LoD2_32_682_5645_2_TH.gml"
    path.write_text("PK this is not XML at all\n")
    with pytest.raises(SourceDataError, match=r"line 1.*Fix:"):
        cg.read_citygml(path, "lod2_reference")


def test_xml_but_not_citygml(tmp_path):
    path = tmp_path / "x.gml"
    path.write_text('<FeatureCollection xmlns:gml="http://www.opengis.net/gml" '
                    'xmlns:bldg="http://www.opengis.net/citygml/building/2.0">'
                    '<bldg:Building gml:id="a"/></FeatureCollection>')
    with pytest.raises(SourceDataError, match="not a CityGML CityModel"):
        cg.read_citygml(path, "lod2_reference")


def test_zip_without_gml(tmp_path):
    path = tmp_path / "LoD2_32_682_5645_2_TH.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(SourceDataError, match=r"holds no CityGML.*Fix:"):
        cg.read_citygml(path, "lod2_reference")


def test_missing_srs_name_needs_override(good_file):
    text = good_file.read_text().replace(' srsName="urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH"', "")
    good_file.write_text(text)
    with pytest.raises(CRSError) as exc:
        cg.read_citygml(good_file, "lod2_reference")
    msg = str(exc.value)
    assert "good.gml" in msg and "sources.lod2_reference.crs" in msg and "DETHL51P0000abcd" in msg
    got = cg.read_citygml(good_file, "lod2_reference", crs_override="EPSG:25832")
    assert {b.crs for b in got} == {"EPSG:25832"} and len(got) == 2
    with pytest.raises(CRSError, match="sources.lod2_reference.crs"):
        cg.read_citygml(good_file, "lod2_reference", crs_override="not a crs")


def test_unknown_srs_name(good_file):
    text = good_file.read_text().replace("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH",
                                         "urn:adv:crs:DE_DHDN_SOLDNER_BERLIN")
    good_file.write_text(text)
    with pytest.raises(CRSError, match=r"DE_DHDN_SOLDNER_BERLIN.*not a known.*Fix: set "
                                       r"sources.lod2_reference.crs"):
        cg.read_citygml(good_file, "lod2_reference")


def test_missing_file(tmp_path):
    with pytest.raises(SourceDataError, match="does not exist"):
        cg.read_citygml(tmp_path / "nope.gml", "lod2_reference")


def test_checks_read_zips(tmp_path):
    path = cg.write_citygml_zip([house()], tmp_path / "LoD2_32_682_5645_2_TH.zip",
                                creation_date="2024-01-02")
    for report in (cg.check_citygml_structure(path), cg.validate_citygml_xsd(path)):
        assert report.ok and report.n_buildings == 1


def test_empty_city_model_and_foreign_root(tmp_path):
    path = cg.write_citygml([], tmp_path / "empty.gml", creation_date="2024-01-02")
    assert cg.read_citygml(path, "lod2_reference") == []
    assert cg.validate_citygml_xsd(path).ok and cg.check_citygml_structure(path).ok
    other = tmp_path / "other.gml"
    other.write_text('<gml:FeatureCollection xmlns:gml="http://www.opengis.net/gml"/>')
    with pytest.raises(SourceDataError, match="not a CityGML CityModel"):
        cg.read_citygml(other, "lod2_reference")
    assert not cg.check_citygml_structure(other).ok
