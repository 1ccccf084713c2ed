"""The adb path with a stand-in ``adb`` (push = cp, shell = sh): argument building, push, shell exit status and
parsing run for real; only the Android device is replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes import bench
from runtimes.adb import AdbTransport
from runtimes.errors import RemoteError

HERE = Path(__file__).parent
FAKE_ADB = HERE / "fake_adb.sh"
FAKE_BINARY = HERE / "fake_lce_benchmark_model.sh"


def test_argv():
    assert AdbTransport("R58M").argv("shell", "ls") == ["adb", "-s", "R58M", "shell", "ls"]
    assert AdbTransport().argv("push", "a", "b") == ["adb", "push", "a", "b"]


def test_cli_adb(lce_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_SERIALS", "emu-5554")
    out = tmp_path / "adb.json"
    rc = bench.main([str(lce_model), "--no-host", "--adb", "emu-5554", "--adb-executable", str(FAKE_ADB),
                     "--adb-dir", str(tmp_path / "data_local_tmp"), "--benchmark-binary", str(FAKE_BINARY),
                     "--kernels", "default", "indirect", "--threads", "1", "4", "--runs", "9", "--json", str(out),
                     "--no-progress"])
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert {(r["device"], r["kernel"], r["threads"]) for r in rows} == {
        ("adb:emu-5554", k, t) for k in ("default", "indirect") for t in (1, 4)}
    assert not (tmp_path / "data_local_tmp").exists()  # cleaned up


def test_unknown_device(lce_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_SERIALS", "emu-5554")
    rc = bench.main([str(lce_model), "--no-host", "--adb", "XYZ", "--adb-executable", str(FAKE_ADB),
                     "--benchmark-binary", str(FAKE_BINARY)])
    assert rc == 2 and "cannot reach Android device XYZ" in capsys.readouterr().err


def test_failing_shell_command(tmp_path):
    t = AdbTransport(adb=str(FAKE_ADB), remote_dir=str(tmp_path / "d"))
    with pytest.raises(RemoteError, match="exit 3"):
        t.run("exit 3")
