"""Facts about a machine that explain benchmark numbers: CPU model, threads, arch, governor, LCE kernel support."""

from __future__ import annotations

import os
import platform
from pathlib import Path

GOVERNOR_PATH = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
ARCH_64_ARM = ("aarch64", "arm64", "armv8l")
ARCH_32_ARM = ("armv7l", "armv6l", "armv7", "armhf", "arm")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where that is unavailable)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_thread_counts(cpus: int | None = None) -> list[int]:
    """Thread counts a benchmark on this host can honestly time: 1, 2, 4, 8 up to ``cpus - 1`` (one CPU stays
    free for the timing loop and the OS), at least ``[1]``. On a 2-CPU host that is ``[1]``: a 2-thread row
    there competes with the driver and reads 0.8-33 ms around a 0.5 ms median."""
    cpus = usable_cpus() if cpus is None else cpus
    return [t for t in (1, 2, 4, 8) if t == 1 or t <= cpus - 1]


def lce_kernel_note(arch: str) -> str:
    """One line saying whether LCE's optimised ARM kernels can run on a machine of architecture ``arch``."""
    a = (arch or "").lower()
    if a in ("aarch64", "arm64"):
        return "LCE optimised ARM kernels: yes (aarch64)"
    if a in ARCH_32_ARM or a == "armv8l":
        return f"LCE optimised ARM kernels: no ({a} = 32-bit OS; LCE needs a 64-bit OS, install 64-bit Raspberry Pi OS)"
    family = "x86" if a in ("x86_64", "amd64", "i386", "i686", "x86") else (a or "unknown")
    return f"LCE optimised ARM kernels: no ({family} host runs portable kernels)"


def cpu_model_from_cpuinfo(text: str) -> str:
    """CPU name from /proc/cpuinfo text (x86 'model name', ARM 'Model'/'Hardware'/'CPU part')."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip().lower(), v.strip())
    for key in ("model name", "model", "hardware", "processor", "cpu model"):
        v = fields.get(key)
        if v and not v.isdigit():
            return v
    if "cpu part" in fields:
        return f"ARM CPU part {fields['cpu part']} (implementer {fields.get('cpu implementer', '?')})"
    return "unknown"


def warnings_for(arch: str, governor: str | None) -> list[str]:
    """Warnings for a 32-bit ARM OS and a CPU governor other than 'performance'."""
    out = []
    a = (arch or "").lower()
    if a in ARCH_32_ARM or a == "armv8l":
        out.append(f"WARNING: {a} is a 32-bit OS. LCE needs a 64-bit OS (aarch64) for its optimised kernels; "
                   "install 64-bit Raspberry Pi OS and use lce_benchmark_model_aarch64.")
    if governor and governor.strip() != "performance":
        out.append(f"WARNING: CPU governor is '{governor.strip()}', not 'performance'; latencies will be noisy "
                   f"(echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor).")
    return out


def host_info() -> dict:
    """Facts about this machine as a JSON-ready dict (keys: cpu_model, logical_cpus, usable_cpus, arch, os,
    python, governor, lce_optimized_kernels, lce_note, versions, warnings)."""
    try:
        cpu = cpu_model_from_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        governor = Path(GOVERNOR_PATH).read_text().strip()
    except OSError:
        governor = None
    arch = platform.machine()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "device": "host",
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "arch": arch,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": governor,
        "lce_optimized_kernels": arch.lower() in ("aarch64", "arm64"),
        "lce_note": lce_kernel_note(arch),
        "versions": package_versions(),
        "warnings": warnings_for(arch, governor),
    }


def package_versions() -> dict[str, str]:
    """Installed versions of the runtime packages (without importing them)."""
    from importlib import metadata

    out = {}
    for pkg in ("onnxruntime", "tensorflow", "larq-compute-engine", "ai-edge-litert", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def format_host(info: dict) -> str:
    """Multi-line human summary of host_info()/remote facts."""
    lines = [f"{info.get('device', 'host')}: {info.get('cpu_model', '?')} | arch {info.get('arch', '?')} | "
             f"{info.get('usable_cpus', info.get('logical_cpus', '?'))} usable of {info.get('logical_cpus', '?')} "
             f"logical CPUs | governor {info.get('governor') or 'n/a'}"]
    if info.get("versions"):
        lines.append("  versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    lines.append("  " + info.get("lce_note", lce_kernel_note(info.get("arch", ""))))
    lines += ["  " + w for w in info.get("warnings", [])]
    return "\n".join(lines)
