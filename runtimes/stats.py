"""Latency statistics and peak-memory probes for the benchmark."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Summary of n per-call latencies, all in milliseconds; throughput in images/second (batch / median)."""

    n: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    p5_ms: float
    p95_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(seconds: list[float] | np.ndarray, batch: int = 1) -> LatencyStats:
    """Per-call wall times in seconds (one call = one batch of ``batch`` images) -> LatencyStats.

    Percentiles use numpy's linear interpolation; std is the population std (ddof=0).
    """
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("summarize needs at least one latency sample")
    p5, p10, med, p90, p95 = np.percentile(ms, [5, 10, 50, 90, 95])
    return LatencyStats(n=int(ms.size), median_ms=float(med), p10_ms=float(p10), p90_ms=float(p90),
                        p5_ms=float(p5), p95_ms=float(p95), mean_ms=float(ms.mean()), std_ms=float(ms.std()),
                        min_ms=float(ms.min()), max_ms=float(ms.max()),
                        throughput_ips=float(batch * 1e3 / med) if med > 0 else float("inf"))


# ---- memory -----------------------------------------------------------------------------------------------------
MEMORY_METHOD = ("peak RSS growth while the runner is created and warmed up: VmHWM (reset to the current RSS via "
                 "/proc/self/clear_refs) minus VmRSS before loading, in MiB; backend libraries are imported "
                 "beforehand, so only the model, its arena and the interpreter count")
MEMORY_METHOD_FALLBACK = "RSS growth (VmRSS after warm-up minus before loading; peak reset unavailable), MiB"


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float | None:
    """Current resident set size of this process in MiB (Linux /proc), or None elsewhere."""
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else None


def peak_rss_mib() -> float | None:
    """Peak resident set size (VmHWM) of this process in MiB, or None."""
    kib = _status_kib("VmHWM")
    return kib / 1024 if kib is not None else None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write "5" to /proc/self/clear_refs). True on success."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """``with MemoryProbe() as m: load + warm up`` -> ``m.mib`` (peak growth, MiB) and ``m.method``."""

    def __enter__(self) -> MemoryProbe:
        import gc

        gc.collect()
        self.peak_reset = reset_peak_rss()
        self.before = rss_mib()
        self.mib: float | None = None
        self.method = MEMORY_METHOD if self.peak_reset else MEMORY_METHOD_FALLBACK
        return self

    def __exit__(self, *exc) -> None:
        after = peak_rss_mib() if self.peak_reset else rss_mib()
        if self.before is not None and after is not None:
            self.mib = max(0.0, after - self.before)
