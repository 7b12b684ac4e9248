"""``citymodel serve``: the static server over the output folder and the viewer's URL it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from citymodel.errors import ConfigError
from citymodel.viewer.serve import StaticServer, viewer_path


def _fake_output(root: Path) -> Path:
    rel = root / "releases" / "20261206T000000Z-abcdef12"
    (rel / "viewer" / "js").mkdir(parents=True)
    (rel / "viewer" / "index.html").write_text("<!doctype html><title>v</title>", encoding="utf-8")
    (rel / "viewer" / "js" / "main.js").write_text("export const x = 1;\n", encoding="utf-8")
    (rel / "tiles").mkdir()
    (rel / "tiles" / "a.glb").write_bytes(b"glTF")
    (rel / "release.json").write_text("{}", encoding="utf-8")
    os.symlink(f"releases/{rel.name}", root / "latest")
    return rel


def test_the_server_serves_the_viewer_with_module_media_types(tmp_path):
    _fake_output(tmp_path)
    assert viewer_path(tmp_path) == "latest/viewer/"
    with StaticServer(tmp_path) as s:
        with urllib.request.urlopen(s.url("latest/viewer/")) as r:
            assert r.status == 200 and b"<title>v</title>" in r.read()
        with urllib.request.urlopen(s.url("latest/viewer/js/main.js")) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")  # ES modules need a JS type
        with urllib.request.urlopen(s.url("latest/tiles/a.glb")) as r:
            assert r.headers["Content-Type"] == "model/gltf-binary"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(s.url("latest/../../etc/passwd"))
        assert e.value.code == 404


def test_without_symlinks_the_viewer_is_found_through_LATEST(tmp_path):
    rel = _fake_output(tmp_path)
    (tmp_path / "latest").unlink()
    (tmp_path / "LATEST").write_text(rel.name + "\n", encoding="utf-8")
    assert viewer_path(tmp_path) == f"releases/{rel.name}/viewer/"


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="no release"):
        viewer_path(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        StaticServer(tmp_path / "missing")


def test_the_serve_command_prints_the_viewer_url_and_serves_it(tmp_path):
    import yaml

    from citymodel.config import DEFAULT_CONFIG

    _fake_output(tmp_path / "out")
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["output_dir"] = str(tmp_path / "out")
    raw["catalog"]["url"] = str(tmp_path / "catalog.jsonld")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    exe = Path(sys.executable).parent / "citymodel"
    proc = subprocess.Popen([str(exe), "--config", str(cfg), "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        t0 = time.monotonic()
        while url is None and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if line.startswith("3D viewer: "):
                url = line.split(": ", 1)[1].strip()
        assert url and url.endswith("/latest/viewer/")
        with urllib.request.urlopen(url) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
