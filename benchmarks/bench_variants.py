"""Benchmark of planning variants: from submission to the published comparison.

Run from the project root after a refresh of the sample city (``make run``)::

    .venv/bin/python -m benchmarks.bench_variants            # the three cases of issue #12
    .venv/bin/python -m benchmarks.bench_variants --cases one_building

Prints per case the seconds of validation + registration, of each step of the ``variant_assess`` job
(model, analysis, comparison, tiles, publication) and in all, next to the goal (one building on the
sample city ≤ 60 s, a 20-building district ≤ 5 min, a road change ≤ 60 s), and the impact area's
share of the city's analysis work per layer (recomputed ÷ total cells, facades, roofs, receivers).
The variants are placed in free space of the sample city (courtyards, as the demonstration variants);
each run submits new versions (``bench-*`` ids) and assesses them in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time

GOALS_S = {"one_building": 60.0, "district_20": 300.0, "road_change": 60.0}


def _city_free_space(settings):
    from citymodel.samplecity.demo_variants import free_space
    from citymodel.store import CityStore

    store = CityStore(settings)
    t = store.building_table()
    roads = store.roads()
    return free_space(list(t.geometry), list(roads.geometry) if roads is not None else [], None)


def _doc(vid: str, features: list, crs: str) -> bytes:
    doc = {"type": "FeatureCollection", "schema_version": "1.0", "crs": crs,
           "variant": {"id": vid, "title": vid, "author_role": "planning_office", "created": "2026-12-06T12:00:00Z"},
           "features": features}
    return json.dumps(doc).encode("utf-8")


def _house(k, poly, storeys, form):
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[list(c) for c in poly.exterior.coords]]},
            "properties": {"change": "add_building", "id": f"b{k}", "storeys": storeys, "roof_form": form}}


def cases(settings) -> dict[str, bytes]:
    import shapely

    from citymodel.samplecity.demo_variants import largest_courtyard, place

    free = _city_free_space(settings)
    court = largest_courtyard(free)
    one = place(court, [(14.0, 10.0)], (court.bounds[0], court.bounds[1]))
    out = {"one_building": _doc("bench-one", [_house(0, one[0], 3, "3100")], settings.processing_crs)}
    # 20 buildings: 12 x 9 m houses in the courtyards, 4 m apart
    polys: list = []
    rest = free
    while len(polys) < 20:
        try:
            c = largest_courtyard(rest)
        except ValueError:  # no courtyard left: the rest anywhere in the free space
            clear = rest.difference(shapely.union_all([p.buffer(4.0) for p in polys])) if polys else rest
            polys += place(clear, [(12.0, 9.0)] * (20 - len(polys)), (clear.bounds[0], clear.bounds[1]),
                           spacing_m=4.0)
            break
        try:
            polys += place(c, [(12.0, 9.0)] * (20 - len(polys)), (c.bounds[0], c.bounds[1]), spacing_m=4.0)
        except ValueError:
            got = []
            for _ in range(20 - len(polys)):
                try:
                    got += place(c.difference(shapely.union_all([p.buffer(4.0) for p in got]) if got else c),
                                  [(12.0, 9.0)], (c.bounds[0], c.bounds[1]))
                except ValueError:
                    break
            polys += got
        rest = rest.difference(c.buffer(1.0))
    out["district_20"] = _doc("bench-district", [_house(k, p, 2 + k % 4, ("3100", "1000", "3200")[k % 3])
                                                 for k, p in enumerate(polys[:20])], settings.processing_crs)
    from citymodel.store import CityStore

    roads = CityStore(settings).roads()
    rid = str(roads.iloc[0]["road_id"])
    out["road_change"] = _doc("bench-road", [{"type": "Feature", "geometry": None,
                                              "properties": {"change": "road_change", "road_id": rid, "factor": 2.0}}],
                              settings.processing_crs)
    return out


def main(argv=None) -> int:
    import dagster as dg

    from citymodel.config import load_config
    from citymodel.store import CityStore
    from citymodel.variants import registry
    from citymodel.variants.validation import context_for
    from pipelines.definitions import build_definitions
    from pipelines.instance import prepare_instance
    from pipelines.variant_runner import assess

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="*", default=list(GOALS_S))
    args = p.parse_args(argv)
    settings = load_config(None)
    _, instance = prepare_instance(settings)
    load = os.getloadavg()[0]
    defs = build_definitions(settings=settings)
    docs = cases(settings)
    print(f"planning variants on the sample city ({settings.name}), load average {load:.1f}")
    for name in args.cases:
        t0, c0 = time.perf_counter(), time.process_time()
        v = registry.submit(docs[name], f"{name}.geojson", settings, context_for(settings, CityStore(settings)))
        t_submit = time.perf_counter() - t0
        out = assess(defs, instance, [v.key], log=lambda *_: None)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        steps, share = {}, {}
        for step in ("model", "analysis", "comparison", "tiles", "publication"):
            ev = instance.get_latest_materialization_event(dg.AssetKey(["variants", step]))
            md = ev.asset_materialization.metadata if ev else {}
            steps[step] = md.get("seconds").value if "seconds" in md else float("nan")
            if step == "analysis" and "work_share" in md:
                share = md["work_share"].value
        ok = "ok" if out.ok else f"FAILED {out.failed}"
        print(f"\n{name} ({v.key}): {total:.1f} s from submission to published comparison "
              f"(goal <= {GOALS_S[name]:.0f} s) {ok}; CPU {cpu:.1f} s (all threads of this process: "
              f"the load-independent figure; on an idle 2-core machine wall ~ CPU / 1-2)")
        print(f"  validation + registration {t_submit:.1f} s; " +
              ", ".join(f"{k} {s:.1f} s" for k, s in steps.items()))
        print("  impact area's share of the city's analysis work: " +
              ", ".join(f"{k} {v_:.3f}" for k, v_ in share.items()))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
