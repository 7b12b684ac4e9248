"""The one atomic writer: all or nothing, world-readable like a normally created file."""

from __future__ import annotations

import os
import stat

import pytest

from citymodel.fileio import atomic_output, atomic_write_bytes, atomic_write_text, dir_mode, file_mode


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_written_files_get_the_mode_of_a_normal_file(tmp_path):
    old = os.umask(0o022)
    try:
        a = atomic_write_text(tmp_path / "a.json", "{}")
        b = atomic_write_bytes(tmp_path / "sub" / "b.bin", b"\x00")
        with atomic_output(tmp_path / "c.parquet", suffix=".parquet") as tmp:
            assert tmp.name.endswith(".parquet") and tmp.parent == tmp_path
            tmp.write_bytes(b"x")
        plain = tmp_path / "plain"
        plain.write_text("x")
        assert _mode(a) == _mode(b) == _mode(tmp_path / "c.parquet") == _mode(plain) == 0o644
        assert file_mode() == 0o644 and dir_mode() == 0o755
    finally:
        os.umask(old)


def test_umask_is_respected(tmp_path):
    old = os.umask(0o077)
    try:
        assert _mode(atomic_write_text(tmp_path / "a", "x")) == 0o600
    finally:
        os.umask(old)


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def chunks():
        yield "new"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_text(target, chunks())
    with pytest.raises(ValueError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise ValueError("writer failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
