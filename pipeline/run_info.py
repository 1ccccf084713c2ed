"""What a pipeline run ran on: ``<out>/run_info.json`` next to ``timings.json``.

README's measured figures name the machine and its load; this file is where they come from
(``python -m pipeline.readme_figures --record-run <out>`` copies it into ``docs/pipeline-run.json``).

Keys: ``started_utc`` (ISO 8601), ``seconds`` (wall clock of the phases run), ``phases`` (their names),
``load_start`` / ``load_end`` (the 1-minute load average when the run started / finished; on an idle machine
both are well below the CPU count), ``cpu_model``, ``logical_cpus``, ``usable_cpus``, ``commit`` (the checkout's
git commit, ``""`` outside a git checkout) and ``dirty`` (uncommitted changes to tracked files).
"""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_1min() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def git_state(root: Path = ROOT) -> tuple[str, bool]:
    """(commit, dirty) of the checkout at ``root``; ("", False) outside git or without a git binary."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "", False
    return commit, dirty if commit else False


def run_info(started: float, phases: list[str], load_start: float | None, finished: float) -> dict:
    """The JSON-ready record of one run (see the module doc). ``started``/``finished``: ``time.time()``."""
    from runtimes.hostinfo import cpu_model_from_cpuinfo, usable_cpus

    try:
        cpu = cpu_model_from_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu = ""
    commit, dirty = git_state()
    return {"started_utc": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "seconds": round(finished - started, 1), "phases": list(phases),
            "load_start": load_start, "load_end": load_1min(), "cpu_model": cpu,
            "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(), "commit": commit, "dirty": dirty}
