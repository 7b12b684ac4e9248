"""``python -m citymodel.samplecity OUT_DIR [--seed N] [--force]``: write the sample city."""

from __future__ import annotations

import argparse
import sys

from ..errors import CityModelError
from .generator import DEFAULT_SEED, generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citymodel.samplecity",
                                 description="Generate the bundled sample city (data files, DCAT-AP catalog, "
                                             "ground truth) into OUT_DIR.")
    ap.add_argument("out_dir", help="target folder; an existing complete city of the same version and seed "
                                    "is reused")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    ap.add_argument("--force", action="store_true", help="regenerate even if OUT_DIR is complete")
    args = ap.parse_args(argv)
    try:
        city = generate(args.out_dir, seed=args.seed, force=args.force, verbose=True)
    except CityModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"catalog: {city.catalog_path}")
    print(f"ground truth: {city.ground_truth_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
