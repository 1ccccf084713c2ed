"""Benchmarking on another machine through a transport (ssh or adb): probe facts, copy files, run the
``lce_benchmark_model`` binary per configuration, parse its output into the same rows as host runs.

Remote rows are timed by the binary itself (``--num_runs`` consecutive runs per configuration), so unlike host
rows they are *not* interleaved round-robin; configurations run one after another.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from runtimes.benchmark_output import BenchmarkOutput, parse_benchmark_output
from runtimes.detect import detect_backend
from runtimes.errors import RemoteError
from runtimes.format import LCE_BENCHMARK_FLAGS, LCE_KERNELS
from runtimes.hostinfo import GOVERNOR_PATH, cpu_model_from_cpuinfo, lce_kernel_note, warnings_for

BINARY_MEMORY_METHOD = "benchmark binary's 'Memory footprint' overall (MB, approximate, as printed by the tool)"


class Transport(Protocol):
    """How to reach a device. ``label`` names it in tables, e.g. ``ssh:pi@raspberrypi`` or ``adb:R58M``."""

    label: str

    def run(self, command: str, timeout: float | None = None) -> str:
        """Run a shell command remotely; return stdout+stderr. Raise RemoteError on failure."""
        ...

    def push(self, local: Path, remote_path: str) -> None:
        """Copy one local file to ``remote_path`` (a full file path) on the device."""
        ...

    def make_temp_dir(self) -> str: ...

    def remove_dir(self, path: str) -> None: ...


PROBE_COMMAND = ("echo arch=$(uname -m); echo governor=$(cat " + GOVERNOR_PATH + " 2>/dev/null || echo n/a); "
                 "echo nproc=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?'); "
                 "echo model=$(getprop ro.product.model 2>/dev/null); "
                 "echo ---cpuinfo---; cat /proc/cpuinfo 2>/dev/null | head -60")


def probe(transport: Transport) -> dict:
    """Facts about the remote machine (same keys as :func:`runtimes.hostinfo.host_info` where known)."""
    text = transport.run(PROBE_COMMAND, timeout=60)
    head, _, cpuinfo = text.partition("---cpuinfo---")
    kv = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    arch = kv.get("arch", "").strip()
    governor = kv.get("governor", "n/a").strip()
    governor = None if governor in ("", "n/a") else governor
    nproc = kv.get("nproc", "").strip()
    cpu = cpu_model_from_cpuinfo(cpuinfo)
    if kv.get("model", "").strip():
        cpu = f"{kv['model'].strip()} ({cpu})"
    return {"device": transport.label, "cpu_model": cpu, "logical_cpus": int(nproc) if nproc.isdigit() else None,
            "arch": arch, "governor": governor, "lce_optimized_kernels": arch.lower() in ("aarch64", "arm64"),
            "lce_note": lce_kernel_note(arch), "warnings": warnings_for(arch, governor)}


# ELF e_machine values of the binaries a device can run, by ``uname -m``.
_ELF_MACHINES = {183: ("aarch64", "arm64", "armv8l"), 40: ("armv7l", "armv6l", "armv8l", "arm"),
                 62: ("x86_64", "amd64"), 3: ("i386", "i686", "x86")}


def elf_machine(path: Path) -> int | None:
    """The ELF ``e_machine`` field of a local executable, or None when it is not an ELF file (e.g. a script)."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def preflight(transport: Transport, binary: str | Path | None = None) -> dict:
    """Before any timing, in seconds: the binary exists here, the device answers, the binary is built for the
    device's CPU, and the device's work folder accepts and runs an executable (not a noexec mount). Returns
    :func:`probe`'s facts; RemoteError names the first problem."""
    if binary is not None and not Path(binary).is_file():
        raise RemoteError(f"benchmark binary not found: {binary} (download lce_benchmark_model_aarch64 or "
                          "_android_arm64 from github.com/larq/compute-engine/releases)")
    facts = probe(transport)  # reachability (ssh ConnectTimeout / adb device list)
    machine = elf_machine(Path(binary)) if binary is not None else None
    arch = (facts.get("arch") or "").lower()
    if machine in _ELF_MACHINES and arch and arch not in _ELF_MACHINES[machine]:
        raise RemoteError(f"{Path(binary).name} is built for {_ELF_MACHINES[machine][0]}, but {transport.label} "
                          f"is {arch}: pick the LCE benchmark binary for {arch}")
    rdir = None
    try:
        rdir = transport.make_temp_dir()
        check = f"{rdir}/burn_edge_exec_check"
        transport.run(f"printf '#!/bin/sh\\necho exec-ok\\n' > {shlex.quote(check)} && chmod +x {shlex.quote(check)} "
                      f"&& {shlex.quote(check)}", timeout=30)
    except RemoteError as e:
        where = rdir or getattr(transport, "remote_dir", "its temp folder")
        raise RemoteError(f"{transport.label}: cannot write and run a program in {where} (missing, read-only or "
                          f"noexec folder?): {e}") from None
    finally:
        if rdir is not None:
            try:
                transport.remove_dir(rdir)
            except RemoteError:
                pass
    return facts


def row_from_output(out: BenchmarkOutput, *, model: Path, backend: str, kernel: str, threads: int, device: str,
                    runs: int, warmup: int) -> dict:
    """One benchmark row (same keys as host rows) from a parsed binary output (µs -> ms)."""
    ms = lambda us: None if us is None else us / 1e3
    if out.median_us is not None:
        median, source = out.median_us, "median printed by the binary"
    else:
        median, source = out.inference_avg_us, "binary printed no median: 'Inference (avg)' used"
    return {
        "model": model.name, "path": str(model), "model_bytes": model.stat().st_size, "backend": backend,
        "kernel": kernel, "threads": threads, "device": device, "runner": "lce_benchmark_model",
        "batch": 1, "runs": out.count if out.count is not None else runs, "warmup": warmup,
        "median_ms": ms(median), "median_source": source, "p10_ms": None, "p90_ms": None,
        "p5_ms": ms(out.p5_us), "p95_ms": ms(out.p95_us), "mean_ms": ms(out.inference_avg_us),
        "std_ms": ms(out.std_us), "min_ms": ms(out.min_us), "max_ms": ms(out.max_us),
        "throughput_ips": 1e6 / median if median else None,
        "peak_mem_mb": out.memory_overall_mb, "mem_method": BINARY_MEMORY_METHOD if out.memory_overall_mb else None,
        "init_ms": ms(out.init_us), "first_inference_ms": ms(out.first_inference_us),
    }


def binary_configs(models: Sequence[Path], threads: Sequence[int], kernels: Sequence[str]) -> list[tuple]:
    """(model, backend, kernel, threads) for the binary: .tflite only; kernel choices only for LCE models."""
    configs = []
    for m in models:
        if m.suffix.lower() != ".tflite":
            continue
        backend = detect_backend(m)
        for k in (kernels if backend == "lce" else ["-"]):
            configs += [(m, backend, k, t) for t in threads]
    return configs


def bench_with_binary(transport: Transport, models: Sequence[str | Path], binary: str | Path, *,
                      threads: Sequence[int] = (1,), runs: int = 50, warmup: int = 5,
                      kernels: Sequence[str] = LCE_KERNELS, extra_args: Sequence[str] = (), keep: bool = False,
                      progress: bool = True, log=print, facts: dict | None = None) -> tuple[list[dict], dict]:
    """Copy ``binary`` + the .tflite models to a temp dir on the device, run every configuration, parse.

    Returns (rows, facts). .onnx models are skipped (the binary runs TFLite only). ``facts``: the result of an
    earlier :func:`preflight` of this transport (else it runs first). Raises RemoteError when the device is
    unreachable or the binary fails, BenchmarkOutputError when its output holds no timings.
    """
    from tqdm import tqdm

    binary = Path(binary)
    if facts is None:
        facts = preflight(transport, binary)
    models = [Path(m) for m in models]
    skipped = [m.name for m in models if m.suffix.lower() != ".tflite"]
    if skipped:
        log(f"{transport.label}: skipping {', '.join(skipped)} (lce_benchmark_model runs .tflite models only)")
    configs = binary_configs(models, threads, kernels)
    for w in facts["warnings"]:
        log(f"{transport.label}: {w}")
    rdir = transport.make_temp_dir()
    try:
        rbin = f"{rdir}/{binary.name}"
        transport.push(binary, rbin)
        transport.run(f"chmod +x {shlex.quote(rbin)}")
        remote_model = {}
        for i, m in enumerate(dict.fromkeys(c[0] for c in configs)):
            remote_model[m] = f"{rdir}/{i}_{m.name}"
            transport.push(m, remote_model[m])
        rows = []
        for m, backend, kernel, t in tqdm(configs, desc=f"bench {transport.label}", disable=not progress):
            args = [rbin, f"--graph={remote_model[m]}", f"--num_threads={t}", f"--num_runs={runs}",
                    f"--warmup_runs={warmup}", *LCE_BENCHMARK_FLAGS.get(kernel, []), *extra_args]
            text = transport.run(" ".join(shlex.quote(a) for a in args) + " 2>&1", timeout=None)
            out = parse_benchmark_output(text)
            rows.append(row_from_output(out, model=m, backend=backend, kernel=kernel, threads=t,
                                        device=transport.label, runs=runs, warmup=warmup))
        return rows, facts
    finally:
        if not keep:
            try:
                transport.remove_dir(rdir)
            except RemoteError as e:
                log(f"{transport.label}: could not remove {rdir}: {e}")
