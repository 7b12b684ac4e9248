"""`make ui` serves the code location: the webserver loads workspace.yaml and lists every asset,
the nightly schedule and the sensors (queried over its GraphQL API, as the UI does)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from citymodel.config import PROJECT_ROOT
from test_definitions import EXPECTED_ASSETS

QUERY = """
{ assetNodes { assetKey { path } groupName isPartitioned }
  repositoriesOrError { ... on RepositoryConnection { nodes { name
      schedules { name cronSchedule executionTimezone }
      sensors { name } } } } }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webserver_lists_assets_schedule_and_sensors(tmp_path):
    exe = Path(sys.executable).parent / "dagster-webserver"
    if not exe.exists():
        pytest.skip("dagster-webserver is not installed in this environment")
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.Popen([str(exe), "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                             "-p", str(port)], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        data = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"webserver exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                r = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=10)
                if r.ok and r.json().get("data", {}).get("assetNodes"):
                    data = r.json()["data"]
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        assert data is not None, "the webserver did not answer within 180 s"
        keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert EXPECTED_ASSETS <= keys
        assert {n["groupName"] for n in data["assetNodes"]} >= {"sources", "staging", "quality", "publish"}
        repo = data["repositoriesOrError"]["nodes"][0]
        sched = {s["name"]: s for s in repo["schedules"]}
        assert sched["nightly_refresh"]["cronSchedule"] == "0 2 * * *"
        assert sched["nightly_refresh"]["executionTimezone"] == "Europe/Berlin"
        assert {"tile_registry", "city_automation"} <= {s["name"] for s in repo["sensors"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
