# Two commands set everything up on a fresh machine (Debian 12/13, Python 3.11):
#   make run    install into .venv, generate the sample city, run the whole pipeline headless
#   make test   install into .venv, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the deployment file: CONFIG=path (or CITYMODEL_CONFIG); default the sample city. Its Dagster instance
# (DAGSTER_HOME) is derived from it: `make ui` and `citymodel run` share <output_dir>/dagster_home
ifdef CONFIG
export CITYMODEL_CONFIG := $(abspath $(CONFIG))
endif
PYTEST_ARGS ?=

.PHONY: install run test test-slow test-all ui bench bench-city clean

install: $(STAMP)

$(STAMP): pyproject.toml tests/js/package-lock.json viewer/package-lock.json
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"' 
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv' (or set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev,distributed]'
	@# byte-compile the project too: imports stay fast where PYTHONDONTWRITEBYTECODE is set
	$(PY) -m compileall -q citymodel pipelines assets resources quality >/dev/null
	@# optional system parts: EGM96 geoid grid (Debian proj-data) for 3D Tiles heights, npm validators for tests
	@if [ ! -f /usr/share/proj/egm96_15.gtx ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q proj-data >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q proj-data >/dev/null 2>&1; } || echo "note: proj-data (EGM96 geoid grid) could not be installed; 3D Tiles use the recorded constant-undulation fallback"; \
	  else echo "note: install Debian's proj-data for the EGM96 geoid grid (sudo apt-get install proj-data); without it 3D Tiles use a recorded constant-undulation fallback"; fi; fi
	@# QGIS's Python API (Debian python3-qgis, for the system python3) checks the releases' QGIS projects in
	@# the tests; measured: 8 min to install with --no-install-recommends on a busy 2-core machine. SKIP_QGIS=1 skips it.
	@if [ -z "$(SKIP_QGIS)" ] && ! /usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's python3-qgis (QGIS project tests; takes minutes; SKIP_QGIS=1 skips it)"; \
	    apt-get install -y -q --no-install-recommends python3-qgis >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends python3-qgis >/dev/null 2>&1; } || echo "note: python3-qgis could not be installed: the QGIS project tests will be skipped"; \
	  else echo "note: install Debian's python3-qgis (sudo apt-get install --no-install-recommends python3-qgis) to check the QGIS projects; without it those tests are skipped"; fi; fi
	@# the distributed engine's servers for its slow test: Redis (Celery broker) and PostgreSQL (instance storage)
	@if ! command -v redis-server >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q redis-server postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q redis-server postgresql >/dev/null 2>&1; } || echo "note: redis-server / postgresql could not be installed: the Celery/PostgreSQL test will be skipped"; \
	  else echo "note: install Debian's redis-server and postgresql (sudo apt-get install redis-server postgresql) for the Celery/PostgreSQL test; without them it is skipped"; fi; fi
	@if command -v npm >/dev/null; then npm ci --prefix tests/js --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null || echo "note: npm ci failed: the glTF / 3D Tiles validator tests will be skipped"; \
	  else echo "note: npm not found: the glTF / 3D Tiles validator tests will be skipped"; fi
	@# the 3D viewer: CesiumJS from the npm registry (pinned in viewer/package-lock.json), copied into every release
	@if command -v npm >/dev/null; then npm ci --prefix viewer --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null || echo "note: npm ci --prefix viewer failed: releases are published without the 3D viewer"; \
	  else echo "note: npm not found (Debian: apt-get install npm): releases are published without the 3D viewer"; fi
	@# headless Chromium for the viewer's browser tests and benchmark (Debian chromium + chromium-driver)
	@if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } || echo "note: chromium/chromium-driver could not be installed: the viewer's browser tests will be skipped"; \
	  else echo "note: install Debian's chromium and chromium-driver (sudo apt-get install chromium chromium-driver) for the viewer's browser tests; they are skipped without"; fi; fi
	@touch $(STAMP)

run: install
	$(VENV)/bin/citymodel samplecity
	$(VENV)/bin/citymodel run

test: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest $(PYTEST_ARGS)

ui: install
	home="$$($(VENV)/bin/citymodel prepare-home)" && echo "Dagster instance: $$home" && \
	  DAGSTER_HOME="$$home" $(VENV)/bin/dagster dev -w workspace.yaml

bench: install
	$(PY) -m benchmarks.bench_lidar
	$(PY) -m benchmarks.bench_refresh
	$(PY) -m benchmarks.bench_concurrency
	$(PY) -m benchmarks.bench_pointcloud
	$(PY) -m benchmarks.bench_viewer

bench-city: install   # the city-scale benchmark: 2 full 1 km tiles, two refreshes (tens of minutes)
	$(PY) -m benchmarks.bench_city_scale --tiles $(or $(TILES),2)

clean:
	rm -rf outputs/* $(VENV)
