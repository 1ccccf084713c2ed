"""Build the ARM lane's two native pieces, cached by content hash.

- ``count_plugin.so``: the qemu TCG instruction-counting plugin (host ``gcc``; no headers needed).
- ``driver-aarch64``: ``driver.cc`` + ruy, cross-compiled with ``aarch64-linux-gnu-g++ -O2 -march=armv8-a
  -static`` against LCE v0.16.0's core kernels (its NEON/assembly paths); runs under ``qemu-aarch64``.

The upstream sources (LCE, ruy, gemmlowp, tflite-micro headers, LiteRT) are read from a source directory
(``--lce-source DIR``, ``$BURN_EDGE_LCE_SOURCE``, else ``../shared/third_party`` beside the repo); they are
never copied. Build outputs go to ``$BURN_EDGE_CACHE`` or ``~/.cache/burn-edge/arm-lane/<key>/`` where the
key hashes this lane's own sources, the flags and the upstream files' paths, sizes and mtimes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LANE_DIR = Path(__file__).resolve().parent
REPO_ROOT = LANE_DIR.parent.parent
SOURCE_ENV = "BURN_EDGE_LCE_SOURCE"
LEGACY_SOURCE_ENV = "BURN_EDGE_THIRD_PARTY"
CACHE_ENV = "BURN_EDGE_CACHE"
QEMU = "qemu-aarch64"
QEMU_CPU = "cortex-a72"  # Raspberry Pi 4's core
CROSS_CXX = "aarch64-linux-gnu-g++"
CXXFLAGS = ["-std=c++17", "-O2", "-DTFLITE_WITH_RUY", "-DNDEBUG"]
ARCH_FLAGS = ["-march=armv8-a"]
RUY_SOURCES = ("allocator", "apply_multiplier", "block_map", "blocking_counter", "context", "context_get_ctx",
               "cpuinfo", "ctx", "denormal", "frontend", "kernel_arm64", "pack_arm", "prepacked_cache",
               "prepare_packed_matrices", "system_aligned_alloc", "thread_pool", "trmul", "tune", "wait", "pmu")
# folder under the source dir -> a file that must exist there (and the include root it provides)
SOURCE_MARKERS = {
    "larq_compute_engine": "larq_compute_engine/larq_compute_engine/core/indirect_bgemm/select_kernel.h",
    "ruy": "ruy/ruy/trmul.h",
    "gemmlowp": "gemmlowp/fixedpoint/fixedpoint.h",
    "tflite-micro": "tflite-micro/tensorflow/lite/kernels/internal/types.h",
    "litert": "litert/tflite/kernels/cpu_backend_gemm_ruy.h",
}
INCLUDE_ROOTS = ("larq_compute_engine", "ruy", "gemmlowp", "tflite-micro", "litert")
CLONE_HINT = ("git clone https://github.com/larq/compute-engine larq_compute_engine && git -C larq_compute_engine "
              "checkout v0.16.0; likewise google/ruy, google/gemmlowp, tensorflow/tflite-micro, "
              "google-ai-edge/LiteRT (docs/runtimes.md lists the commits)")


def qemu_command() -> list[str]:
    """``qemu-aarch64 -cpu cortex-a72``, under ``setarch -R`` when available: without address-space
    randomisation the guest's mmap addresses repeat run to run, so alignment-dependent code paths (memcpy,
    XNNPACK) and hence the instruction counts do too."""
    qemu = shutil.which(QEMU) or QEMU
    setarch = shutil.which("setarch")
    prefix = [setarch, os.uname().machine, "-R"] if setarch else []
    return [*prefix, qemu, "-cpu", QEMU_CPU]


class LaneUnavailable(RuntimeError):
    """A prerequisite of the ARM lane is missing; the message says which and how to get it."""


def source_dir(explicit: str | Path | None = None) -> Path:
    """``explicit``, else $BURN_EDGE_LCE_SOURCE (or $BURN_EDGE_THIRD_PARTY), else ../shared/third_party."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(SOURCE_ENV) or os.environ.get(LEGACY_SOURCE_ENV)
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "third_party"


def prerequisites(source: str | Path | None = None) -> dict[str, str | None]:
    """Each thing the lane needs -> None when present, else the exact reason it is missing."""
    root = source_dir(source)
    out: dict[str, str | None] = {
        QEMU: None if shutil.which(QEMU) else f"{QEMU} not found (Debian: apt-get install qemu-user)",
        CROSS_CXX: None if shutil.which(CROSS_CXX) else
        f"{CROSS_CXX} not found (Debian: apt-get install g++-aarch64-linux-gnu)",
        "gcc": None if shutil.which("gcc") else
        "gcc not found (Debian: apt-get install gcc), needed for the qemu plugin",
    }
    for name, rel in SOURCE_MARKERS.items():
        out[name] = None if (root / rel).is_file() else (
            f"{root / rel} missing" if root.is_dir() else f"LCE sources: {root} is not a folder")
    return out


def missing(source: str | Path | None = None) -> list[str]:
    """The reasons the lane cannot run (empty when it can); missing sources are named once each, followed by
    one line on where to get them."""
    reasons = list(dict.fromkeys(why for why in prerequisites(source).values() if why))
    if any(why.startswith(("LCE sources:", str(source_dir(source)))) for why in reasons):
        reasons.append(f"get the sources with --lce-source DIR or ${SOURCE_ENV}: {CLONE_HINT}")
    return reasons


def _own_files() -> list[Path]:
    return sorted([LANE_DIR / "driver.cc", LANE_DIR / "count_plugin.c", *(LANE_DIR / "shim").rglob("*.h")])


def _upstream_stamp(root: Path) -> str:
    h = hashlib.sha256()
    for folder in INCLUDE_ROOTS:
        for p in sorted((root / folder).rglob("*")):
            if p.is_file() and p.suffix in (".h", ".cc", ".c"):
                st = p.stat()
                h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(root: Path) -> str:
    h = hashlib.sha256()
    for p in _own_files():
        h.update(p.relative_to(LANE_DIR).as_posix().encode() + b"\0" + p.read_bytes())
    h.update(" ".join([*CXXFLAGS, *RUY_SOURCES]).encode())
    h.update(str(root.resolve()).encode() + _upstream_stamp(root).encode())
    return h.hexdigest()[:16]


def cache_base() -> Path:
    """``$BURN_EDGE_CACHE``, else ``~/.cache/burn-edge``: the lane's build cache and default aarch64 Python."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "burn-edge").expanduser()


def cache_dir(root: Path) -> Path:
    return cache_base() / "arm-lane" / cache_key(root)


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        raise LaneUnavailable(f"building {what} failed: {' '.join(cmd[:2])} ...\n{tail}")


def _build_driver(root: Path, out_dir: Path, jobs: int) -> Path:
    arch, cxx = "aarch64", CROSS_CXX
    exe = out_dir / f"driver-{arch}"
    if exe.is_file():
        return exe
    obj_dir = out_dir / f"obj-{arch}"
    obj_dir.mkdir(parents=True, exist_ok=True)
    flags = ["nice", "-n", "10", cxx, *CXXFLAGS, *ARCH_FLAGS]
    includes = [f"-I{LANE_DIR / 'shim'}", *(f"-I{root / d}" for d in INCLUDE_ROOTS)]
    jobs_list = [(root / "ruy" / "ruy" / f"{s}.cc", obj_dir / f"ruy_{s}.o") for s in RUY_SOURCES]
    jobs_list.append((LANE_DIR / "driver.cc", obj_dir / "driver.o"))

    def compile_one(item):
        src, obj = item
        if not obj.is_file():
            tmp = obj.with_suffix(f".tmp{os.getpid()}.o")
            _run([*flags, *includes, "-c", str(src), "-o", str(tmp)], f"{src.name} for {arch}")
            tmp.replace(obj)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(compile_one, jobs_list))
    tmp = exe.with_suffix(f".tmp{os.getpid()}")
    link = [cxx, "-static", "-o", str(tmp), *(str(o) for _, o in jobs_list), "-lpthread"]
    _run(link, f"driver for {arch}")
    tmp.replace(exe)
    return exe


def _build_plugin(out_dir: Path) -> Path:
    so = out_dir / "count_plugin.so"
    if not so.is_file():
        tmp = out_dir / f"count_plugin.tmp{os.getpid()}.so"
        _run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(tmp), str(LANE_DIR / "count_plugin.c")], "the qemu plugin")
        tmp.replace(so)
    return so


def build(source: str | Path | None = None, jobs: int | None = None) -> dict[str, Path]:
    """Build (or reuse) the plugin and the aarch64 driver. Returns {"plugin": path, "aarch64": path}.

    Raises LaneUnavailable with every missing prerequisite, or the compiler's message."""
    reasons = missing(source)
    if reasons:
        raise LaneUnavailable("; ".join(reasons))
    root = source_dir(source)
    out_dir = cache_dir(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs or min(2, os.cpu_count() or 1)
    return {"plugin": _build_plugin(out_dir), "aarch64": _build_driver(root, out_dir, jobs)}
