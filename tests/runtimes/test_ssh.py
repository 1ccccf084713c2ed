"""The ssh device path for real: an sshd on 127.0.0.1 (throwaway keys), scp of models + a stand-in benchmark binary
that prints lce_benchmark_model's exact output, parsing, and the remote ``python -m runtimes.bench`` mode."""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

import pytest

from runtimes import bench
from runtimes.errors import RemoteError
from runtimes.remote import bench_with_binary, probe
from runtimes.ssh import SshTransport
from tests.runtimes.sshd import SSHD, free_port, start_sshd

HERE = Path(__file__).parent
FAKE_BINARY = HERE / "fake_lce_benchmark_model.sh"
REPO = HERE.parents[1]

pytestmark = pytest.mark.skipif(not os.path.exists(SSHD), reason=f"{SSHD} missing: apt-get install -y openssh-server")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def transport(sshd):
    with SshTransport(sshd.destination, port=sshd.port, key=sshd.key, options=sshd.options) as t:
        yield t


def _leftover_dirs() -> set[str]:
    return set(glob.glob("/tmp/burn_edge_bench.*"))


class TestSshTransport:
    def test_probe_facts(self, transport):
        facts = probe(transport)
        assert facts["device"] == transport.label and facts["arch"] == os.uname().machine
        assert facts["logical_cpus"] == os.cpu_count() and facts["cpu_model"] != "unknown"
        assert facts["lce_note"].startswith("LCE optimised ARM kernels:")

    def test_binary_rows(self, transport, lce_model, float_tflite_model, onnx_model):
        before = _leftover_dirs()
        logs = []
        rows, facts = bench_with_binary(transport, [onnx_model, lce_model, float_tflite_model], FAKE_BINARY,
                                        threads=(1, 2), runs=7, warmup=2, progress=False, log=logs.append)
        assert any("skipping tiny.onnx" in m for m in logs)
        assert _leftover_dirs() == before  # the remote temp dir was removed
        got = {(r["model"], r["backend"], r["kernel"], r["threads"]): r for r in rows}
        assert set(got) == {("tiny_lce.tflite", "lce", k, t) for k in ("default", "indirect", "reference")
                            for t in (1, 2)} | {("tiny_float.tflite", "tflite", "-", t) for t in (1, 2)}
        base = {"default": 30000, "indirect": 20000, "reference": 40000}
        for (_, _, kernel, t), r in got.items():
            avg = base["default" if kernel == "-" else kernel] // t
            assert r["device"] == transport.label and r["runs"] == 7 and r["runner"] == "lce_benchmark_model"
            assert r["mean_ms"] == pytest.approx(avg / 1e3) and r["std_ms"] == pytest.approx(0.12)
            assert r["min_ms"] == pytest.approx((avg - 100) / 1e3) and r["peak_mem_mb"] == 8.5
            if kernel == "indirect":  # newer output: p5/median/p95 printed
                assert r["median_ms"] == pytest.approx((avg - 10) / 1e3) and r["p95_ms"] == pytest.approx(
                    (avg + 400) / 1e3)
                assert r["median_source"].startswith("median printed")
            else:
                assert r["median_ms"] == pytest.approx(avg / 1e3) and r["p5_ms"] is None
                assert "Inference (avg)" in r["median_source"]

    def test_failing_binary_is_reported(self, transport, float_tflite_model):
        with pytest.raises(RemoteError, match="Unconsumed cmdline flags"):
            bench_with_binary(transport, [float_tflite_model], FAKE_BINARY, extra_args=["--bogus"], progress=False,
                              log=lambda m: None)


class TestBenchCliOverSsh:
    def test_binary_merged_into_table(self, sshd, lce_model, float_tflite_model, tmp_path, capsys):
        out = tmp_path / "bench.json"
        rc = bench.main([str(lce_model), str(float_tflite_model), "--threads", "1", "--runs", "3", "--warmup", "1",
                         "--kernels", "indirect", "--no-memory", *sshd.cli_args(), "--benchmark-binary",
                         str(FAKE_BINARY), "--json", str(out), "--no-progress"])
        assert rc == 0
        data = json.loads(out.read_text())
        devices = {r["device"] for r in data["rows"]}
        assert devices == {"host", f"ssh:{sshd.destination}:{sshd.port}"}
        assert [h["device"] for h in data["hosts"]] == ["host", f"ssh:{sshd.destination}:{sshd.port}"]
        remote = [r for r in data["rows"] if r["device"] != "host"]
        assert {(r["backend"], r["kernel"]) for r in remote} == {("lce", "indirect"), ("tflite", "-")}
        lce = next(r for r in remote if r["backend"] == "lce")
        assert lce["speedup_vs_float_tflite"] == pytest.approx(30000 / 19990)  # binary's float median / LCE median
        table = capsys.readouterr().out
        assert f"ssh:{sshd.destination}" in table and "LCE optimised ARM kernels" in table

    def test_remote_python(self, sshd, onnx_model, tmp_path):
        out = tmp_path / "remote.json"
        python = f"env PYTHONPATH={REPO} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 {sys.executable}"
        rc = bench.main([str(onnx_model), "--runs", "3", "--warmup", "1", "--no-host", *sshd.cli_args(),
                         "--ssh-remote-python", python, "--json", str(out), "--no-progress"])
        assert rc == 0
        rows = json.loads(out.read_text())["rows"]
        assert len(rows) == 1 and rows[0]["device"].startswith("ssh:") and rows[0]["backend"] == "onnxruntime"
        assert rows[0]["model"] == "tiny.onnx" and rows[0]["path"] == str(onnx_model) and rows[0]["runs"] == 3
        assert rows[0]["median_ms"] > 0

    def test_unreachable_host(self, sshd, float_tflite_model, capsys):
        rc = bench.main([str(float_tflite_model), "--no-host", "--ssh", "root@127.0.0.1", "--ssh-port",
                         str(free_port()), "--ssh-key", str(sshd.key), "--benchmark-binary", str(FAKE_BINARY)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: cannot reach root@127.0.0.1") and "Traceback" not in err

    def test_missing_binary(self, sshd, float_tflite_model, tmp_path, capsys):
        rc = bench.main([str(float_tflite_model), "--no-host", *sshd.cli_args(), "--benchmark-binary",
                         str(tmp_path / "nope")])
        assert rc == 2 and "benchmark binary not found" in capsys.readouterr().err


class TestDeviceChecksFirst:
    """Device problems are found before any model is loaded or timed on the host (the host benchmark is on in
    these runs: its machine summary line would be printed first if it ran)."""

    def test_unreachable_host_fails_before_host_timing(self, sshd, float_tflite_model, capsys):
        rc = bench.main([str(float_tflite_model), "--runs", "500", "--ssh", "root@127.0.0.1", "--ssh-port",
                         str(free_port()), "--ssh-key", str(sshd.key), "--benchmark-binary", str(FAKE_BINARY)])
        out, err = capsys.readouterr()
        assert rc == 2 and err.startswith("error: cannot reach root@127.0.0.1")
        assert "host:" not in out and "usable of" not in out

    def test_missing_binary_fails_before_host_timing(self, sshd, float_tflite_model, tmp_path, capsys):
        rc = bench.main([str(float_tflite_model), "--runs", "500", *sshd.cli_args(), "--benchmark-binary",
                         str(tmp_path / "nope")])
        out, err = capsys.readouterr()
        assert rc == 2 and "benchmark binary not found" in err and "usable of" not in out

    def test_remote_python_without_burn_edge(self, sshd, onnx_model, capsys):
        rc = bench.main([str(onnx_model), "--runs", "500", *sshd.cli_args(), "--ssh-remote-python",
                         f"{sys.executable} -I -S"])  # -S: no site-packages, so no burn-edge
        out, err = capsys.readouterr()
        assert rc == 2 and "-m runtimes.bench' cannot run there" in err and "usable of" not in out

    def test_checks_pass_and_are_reported(self, transport):
        from runtimes.remote import preflight

        assert preflight(transport, FAKE_BINARY)["arch"] == os.uname().machine
