"""common.files: atomic writes leave the old file or the new one, never a half file or a stray temp."""

import json
import os
import subprocess
import sys

import pytest

from common.errors import BurnEdgeError, ConfigError
from common.files import (
    atomic_copy,
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    ensure_writable_dir,
    refuse_same_path,
    remove_stale_temps,
    sha256_file,
)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_writes_create_parents_and_leave_no_temp(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "a" / "t.txt", "x\ny\n")
    atomic_write_json(tmp_path / "a" / "j.json", {"k": [1, 2]})
    atomic_copy(tmp_path / "a" / "b.bin", tmp_path / "a" / "c.bin")
    assert _names(tmp_path / "a") == ["b.bin", "c.bin", "j.json", "t.txt"]
    assert (tmp_path / "a" / "c.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a" / "t.txt").read_bytes() == b"x\ny\n"  # \n on every platform
    assert json.loads((tmp_path / "a" / "j.json").read_text()) == {"k": [1, 2]}


@pytest.mark.parametrize("how", ["writer", "save"])
def test_failure_keeps_old_file_and_removes_temp(tmp_path, how):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    def boom(*_):
        raise KeyboardInterrupt  # BaseException, like Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        if how == "writer":
            with atomic_writer(target) as f:
                f.write(b"half")
                boom()
        else:
            atomic_save(target, lambda tmp: (tmp.write_bytes(b"half"), boom()))
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["m.tflite"]


def test_atomic_save_temp_keeps_suffix(tmp_path):
    seen = []
    atomic_save(tmp_path / "plot.png", lambda tmp: (seen.append(tmp), tmp.write_bytes(b"png")))
    assert seen[0].suffix == ".png" and seen[0].parent == tmp_path and seen[0].name.startswith(".plot.png.tmp-")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_json_refuses_nan_before_touching_the_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("{}")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})
    assert target.read_text() == "{}" and _names(tmp_path) == ["r.json"]


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_refuse_same_path(tmp_path):
    src = tmp_path / "ckpt.pt"
    src.write_bytes(b"x")
    refuse_same_path(tmp_path / "out.onnx", src, None)  # different: fine
    with pytest.raises(ConfigError, match="ckpt.pt"):
        refuse_same_path(tmp_path / "sub" / ".." / "ckpt.pt", src)
    os.link(src, tmp_path / "hard.pt")
    with pytest.raises(ConfigError):
        refuse_same_path(tmp_path / "hard.pt", None, src)
    assert issubclass(ConfigError, BurnEdgeError)


def test_ensure_writable_dir(tmp_path):
    assert ensure_writable_dir(tmp_path / "new" / "dir").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ensure_writable_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match="cannot create"):
        ensure_writable_dir(tmp_path / "file" / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="not writable"):
            ensure_writable_dir(ro)


def test_remove_stale_temps_keeps_live_processes_and_real_files(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".model.onnx.tmp-{dead_pid}-abc.onnx").write_bytes(b"x")
    (tmp_path / f".model.onnx.tmp-{os.getpid()}-abc.onnx").write_bytes(b"x")
    (tmp_path / "model.onnx").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [f".model.onnx.tmp-{dead_pid}-abc.onnx"]
    assert _names(tmp_path) == sorted([".hidden", f".model.onnx.tmp-{os.getpid()}-abc.onnx", "model.onnx"])
