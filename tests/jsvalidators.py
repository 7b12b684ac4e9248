"""The independent Node validators of tests/js (Khronos glTF-Validator, CesiumGS 3d-tiles-tools)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (needed for the Khronos glTF-Validator and 3d-tiles-tools)")
    for pkg in ("gltf-validator", "3d-tiles-tools"):
        if not (JS_DIR / "node_modules" / pkg).is_dir():
            pytest.skip(f"npm package {pkg} is not installed: run 'npm ci --prefix tests/js'")
    return node


def run_node(script: str, *args: str) -> dict:
    node = node_or_skip()
    proc = subprocess.run([node, str(JS_DIR / script), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
