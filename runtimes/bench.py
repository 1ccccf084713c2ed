"""Latency benchmark: ``python -m runtimes.bench model.onnx model.tflite model_float.tflite [--threads 1 2 ...]``.

Host runs: every configuration (model x backend x LCE kernel x threads) is loaded and warmed up once, then the
timed rounds are interleaved round-robin -- each round times one call of every configuration, starting one
configuration later than the previous round -- so machine noise (other processes, thermal drift) hits all
configurations alike. Reported per configuration: median / p10 / p90 latency (ms per call of ``--batch``
images), throughput (images/s from the median), file size and peak memory (``CHILD_MEMORY_METHOD``: each
configuration loaded in a fresh process, so no figure depends on what another configuration loaded first).

Devices: ``--ssh user@host`` / ``--adb [serial]`` copy the .tflite models and ``--benchmark-binary``
(LCE's ``lce_benchmark_model_aarch64`` / ``_android_arm64``) to the device, run it per configuration and merge its
timings into the same table; ``--ssh-remote-python`` runs this module on the remote instead. Each device is checked
first (:func:`runtimes.remote.preflight`: reachable, binary present and built for its CPU, work folder writable and
executable), so a wrong address or binary fails in seconds, before any host timing.

ARM without a device: ``--arm`` runs every ``LceBconv2d`` of each LCE model on LCE's own aarch64 kernels under
qemu (:func:`runtimes.arm.arm_report`, the lane of ``python -m runtimes.arm``) and prints its per-layer verdicts
and aarch64 instruction counts after the host latency table (JSON: ``"arm"``). Where the lane cannot run (no
qemu-aarch64, no cross g++, no LCE sources) each layer says why. Without ``--arm`` one line per LCE model says
the table was not run and whether the lane is available here. A layer that disagrees on aarch64 makes the
command exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# TensorFlow's environment (legacy Keras, quiet logs: no CUDA/TensorRT start-up lines in logs) is set when
# ``common`` is imported: common.tfenv.
from common.cli import Range, check_options, parse_args  # noqa: E402
from common.errors import BurnEdgeError, ConfigError  # noqa: E402
from common.files import ensure_writable_dir, refuse_same_path, remove_stale_temps  # noqa: E402
from common.limits import require_fits, thread_limit  # noqa: E402
from runtimes import load, runner_class  # noqa: E402
from runtimes.adb import ADB_DIR  # noqa: E402
from runtimes.detect import detect_backend  # noqa: E402
from runtimes.errors import RemoteError  # noqa: E402
from runtimes.format import LCE_KERNELS  # noqa: E402
from runtimes.hostinfo import default_thread_counts, format_host, host_info, usable_cpus  # noqa: E402
from runtimes.isolate import probe_models  # noqa: E402
from runtimes.latency_table import add_speedups, format_table, plot_rows, write_csv, write_json  # noqa: E402
from runtimes.session import import_backend  # noqa: E402
from runtimes.stats import MEMORY_METHOD, MemoryProbe, summarize  # noqa: E402


def _import_backend(backend: str) -> None:
    """Import a backend's libraries up front so their import cost is not counted as model memory."""
    runner_class(backend)
    import_backend(backend)


def _load_options(c: dict, xnnpack: bool) -> dict:
    opts = {"kernel": c["kernel"]} if c["backend"] == "lce" else {}
    if c["backend"] in ("tflite", "lce"):
        opts["xnnpack"] = xnnpack
    return opts


CHILD_MEMORY_METHOD = ("peak RSS growth of a fresh process per configuration while the runner is created and warmed "
                       "up (VmHWM, reset after the backend's libraries are imported, minus VmRSS before loading), MiB: "
                       "the model, its arena and the interpreter, independent of the other configurations")


def child_peak_memory(configs: Sequence[dict], *, batch: int = 1, warmup: int = 5, xnnpack: bool = True,
                      seed: int = 0, timeout: float = 300) -> list[tuple[float | None, str | None]]:
    """``(MiB, method)`` per configuration, each measured in its own fresh Python process (up to the usable CPUs
    at a time, before any timing), so no configuration's figure depends on what another one loaded first. A child
    that fails gives ``(None, None)``: the timing run reports the error itself."""
    import json
    import subprocess

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = "import sys; from runtimes.bench import _memory_child; _memory_child(sys.argv[1])"
    out: list[tuple[float | None, str | None]] = [(None, None)] * len(configs)
    todo, width = list(enumerate(configs)), max(1, usable_cpus())
    while todo:
        batch_now, todo = todo[:width], todo[width:]
        procs = []
        for i, c in batch_now:
            spec = json.dumps({**c, "path": str(c["path"]), "batch": batch, "warmup": warmup, "xnnpack": xnnpack,
                               "seed": seed})
            procs.append((i, subprocess.Popen([sys.executable, "-c", code, spec], stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL, text=True, env=env)))
        for i, p in procs:
            try:
                text, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                continue
            lines = [ln for ln in text.splitlines() if ln.startswith("{")]
            if p.returncode == 0 and lines:
                res = json.loads(lines[-1])
                out[i] = (res["mib"], res["method"])
    return out


def _memory_child(spec: str) -> None:
    """Child side of :func:`child_peak_memory`: import the backend, then load + warm up one configuration."""
    import json

    c = json.loads(spec)
    _import_backend(c["backend"])
    with MemoryProbe() as mem:
        runner = load(c["path"], backend=c["backend"], threads=c["threads"], **_load_options(c, c["xnnpack"]))
        x = runner.example_input(c["batch"], c["seed"])
        for _ in range(c["warmup"]):
            runner.run(x)
    method = CHILD_MEMORY_METHOD if mem.method == MEMORY_METHOD else mem.method
    print(json.dumps({"mib": mem.mib, "method": method}), flush=True)


def host_configs(models: Sequence[str | Path], threads: Sequence[int], kernels: Sequence[str],
                 backend: str | None = None) -> list[dict]:
    """Expand models x (LCE kernels | "-") x threads into config dicts {path, backend, kernel, threads}."""
    configs = []
    for m in models:
        be = backend or detect_backend(m)
        for k in (kernels if be == "lce" else ["-"]):
            configs += [{"path": Path(m), "backend": be, "kernel": k, "threads": int(t)} for t in threads]
    return configs


def run_bench(models: Sequence[str | Path], *, threads: Sequence[int] = (1,), runs: int = 50, warmup: int = 5,
              kernels: Sequence[str] = LCE_KERNELS, backend: str | None = None, batch: int = 1,
              xnnpack: bool = True, seed: int = 0, progress: bool = True, memory: bool = True) -> list[dict]:
    """Benchmark models on this host; returns one row dict per configuration (keys: ``report.COLUMNS``).

    models: .onnx / .tflite paths; backend: force one backend for all (default: detect per file);
    kernels: LCE kernels to try for LCE models; runs: timed calls per configuration (round-robin);
    warmup: untimed calls per configuration after loading; batch: images per call (input (batch, 3, H, W)
    standard-normal float32, fixed seed); memory: measure each configuration's peak memory in a fresh child
    process first (:func:`child_peak_memory`). Raises ModelFileError / RuntimeBackendError / ConfigError.
    """
    from tqdm import tqdm

    check_options({"runs": runs, "warmup": warmup, "batch": batch, "threads": list(threads)}, option_ranges())
    if not threads:
        raise ConfigError("--threads needs at least one thread count")
    bad = [k for k in kernels if k not in LCE_KERNELS]
    if bad:
        raise ConfigError(f"unknown LCE kernel(s) {bad}; choose from {', '.join(LCE_KERNELS)}")
    configs = host_configs(models, threads, kernels, backend)
    for be in dict.fromkeys(c["backend"] for c in configs):
        _import_backend(be)
    mems = child_peak_memory(configs, batch=batch, warmup=warmup, xnnpack=xnnpack, seed=seed) if memory else None
    loaded = []
    for i, c in enumerate(tqdm(configs, desc="load + warm-up", disable=not progress)):
        runner = load(c["path"], backend=c["backend"], threads=c["threads"], **_load_options(c, xnnpack))
        per_image = 4 * math.prod(runner.input_shape[1:])  # float32 (3, H, W)
        require_fits(per_image * batch * 2, f"--batch {batch} of {c['path'].name}'s "  # input + its NHWC copy
                     f"{'x'.join(map(str, runner.input_shape[1:]))} inputs")
        x = runner.example_input(batch, seed)
        for _ in range(warmup):
            runner.run(x)
        loaded.append((c, runner, x, mems[i] if mems else (None, None)))
    times = [[] for _ in loaded]
    n = len(loaded)
    perf = time.perf_counter
    for r in tqdm(range(runs), desc=f"timed rounds ({n} configs each)", disable=not progress):
        for j in range(n):
            i = (r + j) % n  # rotate the starting configuration every round
            _, runner, x, _ = loaded[i]
            t0 = perf()
            runner.run(x)
            times[i].append(perf() - t0)
    rows = []
    for (c, runner, _, mem), t in zip(loaded, times):
        s = summarize(t, batch)
        rows.append({"device": "host", "model": c["path"].name, "path": str(c["path"]),
                     "model_bytes": c["path"].stat().st_size, "backend": c["backend"], "kernel": c["kernel"],
                     "threads": c["threads"], "batch": batch, "runs": runs, "warmup": warmup,
                     "runner": "python " + type(runner).__name__, "median_source": "measured",
                     **s.as_dict(), "peak_mem_mb": mem[0], "mem_method": mem[1],
                     "xnnpack": getattr(runner, "xnnpack", None)})
    add_speedups(rows, cpus=usable_cpus())
    return rows


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where it tells something: not for None/False, nor where the help already
    states its default in words."""

    def _get_help_string(self, action):
        h = action.help or ""
        if "default" in h or action.default in (None, False, []) or action.default is argparse.SUPPRESS:
            return h
        return super()._get_help_string(action)


def option_ranges() -> dict[str, Range]:
    """The numeric options (common.cli's one validator): finite, in range; thread counts bounded by this
    machine (common.limits.thread_limit)."""
    return {"runs": Range(1, 1_000_000, integer=True), "warmup": Range(0, 1_000_000, integer=True),
            "batch": Range(1, 1 << 20, integer=True), "threads": Range(1, thread_limit(), integer=True),
            "seed": Range(0, 2**32 - 1, integer=True), "ssh_port": Range(1, 65535, integer=True)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "python -m runtimes.bench", add_help=add_help, formatter_class=_DefaultsFormatter,
        description="Latency benchmark of .onnx / .tflite (float or LCE) models on this host and on devices "
                    "(ssh / adb). Devices are checked first, in seconds (reachable, benchmark binary present and "
                    "built for their CPU, work folder writable and executable), before any host timing. Host "
                    "configurations are interleaved round-robin; peak memory is measured per configuration in a "
                    "fresh process.")
    p.add_argument("models", nargs="*", help="model files: .onnx (onnxruntime), .tflite (LCE if it has Lce* ops, "
                                             "else TFLite)")
    g = p.add_argument_group("what to run")
    g.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts to try, each one a config (default: 1, 2, 4, 8 up to the usable CPUs "
                        f"minus one, here {' '.join(map(str, default_thread_counts()))}); rows with more threads "
                        "than usable CPUs or a wide p10-p90 are flagged unstable (!)")
    g.add_argument("--runs", type=int, default=50, help="timed runs per configuration")
    g.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs per configuration")
    g.add_argument("--kernels", nargs="+", choices=LCE_KERNELS, default=list(LCE_KERNELS),
                   help="LCE bconv kernels to try for LCE models: default = optimised BGEMM, indirect = indirect "
                        "BGEMM, reference = reference kernel (default: all three); ignored for other backends")
    g.add_argument("--backend", choices=["onnxruntime", "tflite", "lce"], default=None,
                   help="force this backend for every model (default: detect from each file)")
    g.add_argument("--batch", type=int, default=1, help="images per timed call (TFLite/LCE loop over the batch)")
    g.add_argument("--no-xnnpack", action="store_true", help="TFLite/LCE: no XNNPACK delegate for float ops")
    g.add_argument("--no-host", action="store_true", help="skip the host benchmark (devices only)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random input")
    g.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory column (it loads each configuration once more in a fresh process, "
                        "about 3 s of CPU each, before the timing)")
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, help="write {hosts, settings, rows} JSON here")
    o.add_argument("--csv", type=Path, help="write one CSV line per row here")
    o.add_argument("--plot", type=Path, help="write a PNG bar chart (median, p10-p90 whiskers) here")
    o.add_argument("--no-progress", action="store_true",
                   help="no progress bars (by default they are drawn on a terminal only, never into a log file)")
    o.add_argument("--no-isolate", action="store_true",
                   help="skip the test load of each model in a child process (by default a model that crashes the "
                        "native runtime is reported as an error instead of killing the benchmark)")
    d = p.add_argument_group("devices")
    d.add_argument("--ssh", metavar="USER@HOST", help="benchmark on this Linux device over ssh (key login)")
    d.add_argument("--ssh-port", type=int, default=22, help="ssh port")
    d.add_argument("--ssh-key", type=Path, help="ssh private key file (-i)")
    d.add_argument("--ssh-option", action="append", default=[], metavar="OPT",
                   help="extra ssh/scp -o option, repeatable (e.g. StrictHostKeyChecking=accept-new)")
    d.add_argument("--ssh-remote-python", nargs="?", const="python3", default=None, metavar="CMD",
                   help="over ssh, run 'CMD -m runtimes.bench' on the remote (burn-edge installed there) instead "
                        "of the benchmark binary; CMD defaults to python3")
    d.add_argument("--benchmark-binary", type=Path,
                   help="LCE benchmark binary to copy to the device (lce_benchmark_model_aarch64 for a 64-bit "
                        "Raspberry Pi, lce_benchmark_model_android_arm64 for Android; from the LCE GitHub releases)")
    d.add_argument("--benchmark-arg", action="append", default=[], metavar="FLAG",
                   help="extra flag for the benchmark binary, repeatable (e.g. --benchmark-arg=--use_xnnpack=true)")
    d.add_argument("--adb", nargs="?", const="", default=None, metavar="SERIAL",
                   help="benchmark on an Android device via adb (optional serial, default: the only device)")
    d.add_argument("--adb-binary", type=Path, help="benchmark binary for --adb (default: --benchmark-binary)")
    d.add_argument("--adb-executable", default="adb", help="adb program")
    d.add_argument("--adb-dir", default=ADB_DIR, help="device directory the binary and models are pushed to")
    d.add_argument("--adb-app-result", type=Path, action="append", default=[], metavar="JSON",
                   help="merge a result JSON written by the Android demo app (repeatable)")
    d.add_argument("--keep-remote", action="store_true", help="keep the copied files on the device")
    a = p.add_argument_group("ARM (aarch64) without a device: LCE's own aarch64 kernels under qemu "
                             "(the lane of python -m runtimes.arm)")
    a.add_argument("--arm", action="store_true",
                   help="after the host table, run every LceBconv2d of each LCE model on LCE's aarch64 kernels under "
                        "qemu-aarch64: per-layer verdicts against the x86 interpreter and aarch64 instruction counts, "
                        "NEON vs portable fallback per layer (about a minute for a small model; without qemu, the "
                        "cross g++ or the sources, each layer says why it was not run)")
    a.add_argument("--arm-float-model", type=Path, metavar="TFLITE",
                   help="with --arm: the LCE model's float twin (export.to_lce --float), counted in one invoke for "
                        "the whole-model float / LCE instruction estimate")
    a.add_argument("--lce-source", metavar="DIR",
                   help="with --arm: folder with the LCE, ruy, gemmlowp, tflite-micro and LiteRT sources (default "
                        "$BURN_EDGE_LCE_SOURCE, else ../shared/third_party beside the repo)")
    a.add_argument("--aarch64-python", metavar="DIR",
                   help="with --arm: aarch64 Python folder for the float twin's counts (default "
                        "$BURN_EDGE_AARCH64_PYTHON, else ~/.cache/burn-edge/aarch64-python; made by "
                        "runtimes/arm_lane/aarch64_python.sh)")
    return p


def _app_result_rows(path: Path) -> list[dict]:
    """Rows from a result JSON of the Android demo app (see runtimes/app_result.py), with throughput filled in."""
    from runtimes.app_result import load_app_result

    rows = load_app_result(path)
    for r in rows:
        if r.get("median_ms") and r.get("throughput_ips") is None:
            r["throughput_ips"] = 1e3 / r["median_ms"]
    return rows


def bench_cli(args: argparse.Namespace, log=print) -> tuple[list[dict], list[dict]]:
    """Everything main() does except printing/writing: returns (rows, host facts)."""
    check_options(args, option_ranges())  # before any model is opened
    models = [Path(m) for m in args.models]
    for m in models:
        detect_backend(m)  # fail early on a missing/unknown/corrupt file
    if not models and not args.adb_app_result:
        raise ConfigError("nothing to benchmark: give model files (and/or --adb-app-result)")
    if args.threads is None:
        args.threads = default_thread_counts()
    inputs = [*models, *args.adb_app_result, args.benchmark_binary, args.adb_binary, args.ssh_key]
    for out in (args.json, args.csv, args.plot):
        if out is not None:  # before any long work: never clobber an input, never fail only at the end
            refuse_same_path(out, *inputs)
            ensure_writable_dir(Path(out).parent)
            remove_stale_temps(Path(out).parent)
    _check_arm_options(args, models)
    if args.ssh and not args.benchmark_binary and not args.ssh_remote_python:
        raise ConfigError("--ssh needs --benchmark-binary (or --ssh-remote-python)")
    if args.adb is not None and not (args.adb_binary or args.benchmark_binary):
        raise ConfigError("--adb needs --adb-binary or --benchmark-binary (lce_benchmark_model_android_arm64)")
    with contextlib.ExitStack() as stack:
        devices = _check_devices(args, stack, log)  # seconds: before any model load or host timing
        if models and not args.no_host and not args.no_isolate:
            probe_models([(m, args.backend, args.kernels) for m in models], xnnpack=not args.no_xnnpack)
        progress = not args.no_progress and sys.stderr.isatty()  # bars on a terminal only, never into a log file
        rows, hosts = [], []
        if models and not args.no_host:
            facts = host_info()
            hosts.append(facts)
            log(format_host(facts))
            rows += run_bench(models, threads=args.threads, runs=args.runs, warmup=args.warmup, kernels=args.kernels,
                              backend=args.backend, batch=args.batch, xnnpack=not args.no_xnnpack, seed=args.seed,
                              progress=progress, memory=not args.no_memory)
        common = dict(threads=args.threads, runs=args.runs, warmup=args.warmup, kernels=args.kernels)
        for kind, t, facts in devices:
            from runtimes.remote import bench_with_binary
            from runtimes.ssh import bench_with_remote_python

            if kind == "ssh-python":
                r, facts = bench_with_remote_python(t, models, python=args.ssh_remote_python,
                                                    keep=args.keep_remote, log=log, **common)
            else:
                binary = args.benchmark_binary if kind == "ssh" else (args.adb_binary or args.benchmark_binary)
                r, facts = bench_with_binary(t, models, binary, extra_args=args.benchmark_arg, keep=args.keep_remote,
                                             progress=progress, log=log, facts=facts, **common)
            hosts.append(facts)
            log(format_host(facts))
            rows += r
    for path in args.adb_app_result:
        rows += _app_result_rows(path)
    add_speedups(rows, cpus=usable_cpus() if models and not args.no_host else None)
    return rows, hosts


def _check_arm_options(args: argparse.Namespace, models: Sequence[Path]) -> None:
    """--arm's options, before any long work: they need --arm, an LCE model, and a float .tflite twin."""
    for opt in ("arm_float_model", "lce_source", "aarch64_python"):
        if getattr(args, opt, None) and not args.arm:
            raise ConfigError(f"--{opt.replace('_', '-')} needs --arm")
    if args.arm and not any(_is_lce(m, args.backend) for m in models):
        raise ConfigError("--arm needs an LCE .tflite model (one with LceBconv2d ops) among the models")
    f = args.arm_float_model
    if f is not None and detect_backend(f) != "tflite":
        raise ConfigError(f"--arm-float-model {f}: not a float .tflite model (export.to_lce --float makes one)")


def _is_lce(model: Path, backend: str | None) -> bool:
    return (backend or detect_backend(model)) == "lce"


def arm_section(args: argparse.Namespace, log=print) -> list[dict]:
    """The ARM lane for each LCE model among ``args.models`` (:func:`runtimes.arm.arm_report`), printed with
    ``log``; returns the reports ([] without --arm, after one line per LCE model saying so and whether the lane
    could run here)."""
    from runtimes.arm import arm_report, format_report
    from runtimes.arm_lane.build import missing

    lce = [Path(m) for m in args.models if _is_lce(Path(m), args.backend)]
    if not args.arm:
        reasons = missing(args.lce_source)
        here = "available here" if not reasons else "unavailable here: " + "; ".join(reasons)
        for m in lce:
            log(f"ARM (aarch64) lane for {m.name}: not run (add --arm; LCE's aarch64 kernels under qemu, about a "
                f"minute for a small model; {here})")
        return []
    reports = []
    for m in lce:
        log(f"\nARM (aarch64) lane for {m.name}: LCE's own aarch64 kernels under qemu (python -m runtimes.arm)")
        try:
            rep = arm_report(m, source=args.lce_source, aarch64_python=args.aarch64_python,
                             float_model=args.arm_float_model,
                             progress=lambda i, n, r: print(f"  [{i}/{n}] op {r.layer.op} {r.layer.describe()}: "
                                                            f"{'PASS' if r.ok else 'FAIL'}", file=sys.stderr))
        except BurnEdgeError as e:  # e.g. an LCE file without LceBconv2d: nothing for the lane to run
            log(f"ARM lane for {m.name}: not run: {e}")
            reports.append({"model": str(m), "dispatch": [], "lane": {"unavailable": [str(e)]}})
            continue
        log(format_report(rep))
        reports.append(rep)
    return reports


def _check_devices(args: argparse.Namespace, stack: contextlib.ExitStack, log) -> list[tuple[str, object, dict]]:
    """Open the --ssh / --adb transports and check each device before any timing (reachable, binary present and
    built for its CPU, work folder writable and executable; over --ssh-remote-python: burn-edge importable
    there). Returns ``(kind, transport, facts)`` per device; RemoteError names the first problem."""
    from runtimes.remote import preflight, probe

    devices = []
    if args.ssh:
        from runtimes.ssh import SshTransport

        t = stack.enter_context(SshTransport(args.ssh, port=args.ssh_port, key=args.ssh_key, options=args.ssh_option))
        if args.ssh_remote_python:
            facts = probe(t)
            try:
                t.run(f"{args.ssh_remote_python} -c 'import runtimes.bench'", timeout=120)
            except RemoteError as e:
                raise RemoteError(f"{t.label}: '{args.ssh_remote_python} -m runtimes.bench' cannot run there "
                                  f"(burn-edge installed? --ssh-remote-python 'env PYTHONPATH=... python3'): {e}") \
                    from None
            devices.append(("ssh-python", t, facts))
        else:
            devices.append(("ssh", t, preflight(t, args.benchmark_binary)))
        log(f"{t.label}: reachable ({devices[-1][2].get('arch') or '?'}), checks passed")
    if args.adb is not None:
        from runtimes.adb import AdbTransport

        t = AdbTransport(args.adb or None, adb=args.adb_executable, remote_dir=args.adb_dir)
        devices.append(("adb", t, preflight(t, args.adb_binary or args.benchmark_binary)))
        log(f"{t.label}: reachable ({devices[-1][2].get('arch') or '?'}), checks passed")
    return devices


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(get_args_parser(), argv)  # robust: one-line argparse errors (common.cli)
    try:
        rows, hosts = bench_cli(args)
        print()
        print(format_table(rows))
        for r in rows:
            if r.get("unstable"):
                print(f"unstable: {r['device']} {r['model']} {r['backend']}/{r['kernel']} {r['threads']} thr: "
                      f"{r['unstable_why']}")
        for r in rows:
            if r.get("backend") == "lce" and r.get("speedup_vs_float_tflite"):
                print(f"{r['device']}: {r['model']} LCE/{r['kernel']} at {r['threads']} thread(s) is "
                      f"{r['speedup_vs_float_tflite']:.2f}x the speed of the float TFLite model"
                      + (" (unstable rows: not a reliable ratio)" if r.get("speedup_unstable") else ""))
        if rows and rows[0].get("mem_method"):
            print(f"peak memory = {rows[0]['mem_method']}")
        arm = arm_section(args)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        for out, write in ((args.json, lambda p: write_json(p, rows, hosts, settings, arm=arm)),
                           (args.csv, lambda p: write_csv(p, rows)), (args.plot, lambda p: plot_rows(p, rows))):
            if out:
                write(out)
                print(f"wrote {out}")
    except (BurnEdgeError, RemoteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {e.filename or 'output'}: {e.strerror or e}", file=sys.stderr)
        return 2
    from runtimes.arm import lane_passed

    failed = [Path(r["model"]).name for r in arm if lane_passed(r) is False]
    if failed:
        print(f"ARM lane: a layer of {', '.join(failed)} disagrees with the x86 interpreter on LCE's aarch64 "
              "kernels (FAIL above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
