"""The adb path with a stand-in ``adb`` (push = cp, shell = sh): argument building, push, shell exit status and
parsing run for real; only the Android device is replaced."""

from __future__ import annotations

import json
import os
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


def _fake_elf(path: Path, machine: int) -> Path:
    """An ELF header for ``machine`` (183 = aarch64, 62 = x86-64): enough for the architecture check."""
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44))
    return path


def test_device_checks_come_before_host_timing(lce_model, tmp_path, monkeypatch, capsys):
    """Unknown device and missing binary fail at once, with the host benchmark on (its summary line would be
    printed first if it ran)."""
    monkeypatch.setenv("FAKE_ADB_SERIALS", "emu-5554")
    for extra, message in ((["--adb", "XYZ", "--benchmark-binary", str(FAKE_BINARY)], "cannot reach Android device"),
                           (["--adb", "emu-5554", "--benchmark-binary", str(tmp_path / "nope")],
                            "benchmark binary not found")):
        rc = bench.main([str(lce_model), "--runs", "500", "--adb-executable", str(FAKE_ADB), "--adb-dir",
                         str(tmp_path / "d"), *extra])
        out, err = capsys.readouterr()
        assert rc == 2 and message in err and "usable of" not in out, (extra, err)


@pytest.mark.skipif(os.uname().machine in ("aarch64", "arm64"), reason="the fake device is this host")
def test_binary_for_another_cpu(lce_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_SERIALS", "emu-5554")
    binary = _fake_elf(tmp_path / "lce_benchmark_model_android_arm64", 183)
    rc = bench.main([str(lce_model), "--adb", "emu-5554", "--adb-executable", str(FAKE_ADB), "--adb-dir",
                     str(tmp_path / "d"), "--benchmark-binary", str(binary)])
    err = capsys.readouterr().err
    assert rc == 2 and f"is built for aarch64, but adb:emu-5554 is {os.uname().machine}" in err


def test_work_folder_that_cannot_run_programs(lce_model, tmp_path, monkeypatch, capsys):
    """/proc is not a folder a program can be written to: the check names the folder before any timing."""
    monkeypatch.setenv("FAKE_ADB_SERIALS", "emu-5554")
    rc = bench.main([str(lce_model), "--adb", "emu-5554", "--adb-executable", str(FAKE_ADB), "--adb-dir",
                     "/proc/burn_edge_bench", "--benchmark-binary", str(FAKE_BINARY)])
    out, err = capsys.readouterr()
    assert rc == 2 and "adb:emu-5554: cannot write and run a program in /proc/burn_edge_bench" in err, err
    assert "usable of" not in out
