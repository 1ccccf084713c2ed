"""The one size bound: refuse, in one line and before allocating, what this machine cannot hold.

``require_fits(nbytes, what)`` compares an estimate with :func:`memory_budget` -- :data:`BUDGET_FRACTION` of the
memory available now (``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup limit; ``os.sysconf`` elsewhere)
-- and raises ConfigError (``error: ...`` exit 2) naming the estimate and the budget. A command asking for
terabytes (``--input-size 1000000``, a checkpoint claiming width 64) fails at once instead of in an allocator
traceback or the OOM killer. ``thread_limit()`` bounds thread counts the same way (per-thread stacks and
runtime pools grow with the count).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import ConfigError

BUDGET_FRACTION = 0.75   # of the memory available when the check runs
THREADS_PER_CPU = 8      # --threads above max(64, this x CPUs) is refused


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None when unlimited or unknown."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes this process could still allocate without swapping (None when the platform cannot tell)."""
    avail = _meminfo_available()
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    cg = _cgroup_headroom()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def memory_budget() -> int | None:
    avail = available_memory()
    return None if avail is None else int(avail * BUDGET_FRACTION)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def require_fits(nbytes: float, what: str, hint: str = "") -> None:
    """ConfigError when ``nbytes`` (an estimate) exceeds :func:`memory_budget`; the message is one line:
    ``<what> needs about X, more than this machine can hold (Y = 75% of the Z available now)<hint>``."""
    budget = memory_budget()
    if budget is None:
        return
    if not nbytes <= budget:  # NaN and inf estimates are refused too
        avail = human_bytes(budget / BUDGET_FRACTION)
        raise ConfigError(f"{what} needs about {human_bytes(nbytes)}, more than this machine can hold "
                          f"({human_bytes(budget)} = {BUDGET_FRACTION:.0%} of the {avail} available now)"
                          f"{'; ' + hint if hint else ''}")


def thread_limit() -> int:
    """The largest thread count a command accepts: max(64, THREADS_PER_CPU x CPUs)."""
    return max(64, THREADS_PER_CPU * (os.cpu_count() or 1))
