"""Parser for the text printed by LCE's ``lce_benchmark_model`` (= TFLite's ``benchmark_model`` + LCE ops).

The tool prints (times in microseconds; the count line of the timed runs precedes the summary, newer TFLite
versions append ``p5=... median=... p95=...`` to it, and newer ones also print a memory line)::

    count=50 first=31929 curr=31278 min=31138 max=31929 avg=31420.6 std=260
    Inference timings in us: Init: 1471, First inference: 41707, Warmup (avg): 32491.4, Inference (avg): 31420.6
    Memory footprint delta from the start of the tool (MB): init=3.14 overall=8.5
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from runtimes.errors import BenchmarkOutputError

_NUM = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf)"
TIMINGS_RE = re.compile(
    rf"Inference timings in us:\s*Init:\s*{_NUM},\s*First inference:\s*{_NUM},\s*"
    rf"Warmup \(avg\):\s*{_NUM},\s*Inference \(avg\):\s*{_NUM}")
COUNT_RE = re.compile(r"\bcount=\d+[^\n]*")
KV_RE = re.compile(rf"(\w+)={_NUM}")
MEMORY_RE = re.compile(rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):"
                       rf"\s*init={_NUM}\s+overall={_NUM}")


@dataclass
class BenchmarkOutput:
    """Parsed timings; all times in microseconds. Fields are None when the tool did not print them."""

    init_us: float
    first_inference_us: float
    warmup_avg_us: float
    inference_avg_us: float
    count: int | None = None
    first_us: float | None = None
    curr_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _parse_count_line(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in KV_RE.findall(line)}


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse the last benchmark in ``text`` (stdout + stderr of one ``lce_benchmark_model`` run).

    The timed-run statistics come from the last ``count=...`` line before the ``Inference timings`` line (the
    earlier count line is the warm-up). Raises BenchmarkOutputError when no ``Inference timings`` line exists.
    """
    matches = list(TIMINGS_RE.finditer(text))
    if not matches:
        tail = "\n".join(text.strip().splitlines()[-5:]) or "<no output>"
        raise BenchmarkOutputError(f"no 'Inference timings in us' line in the benchmark output; last lines:\n{tail}")
    m = matches[-1]
    out = BenchmarkOutput(*(float(g) for g in m.groups()))
    counts = [c for c in COUNT_RE.finditer(text) if c.start() < m.start()]
    if counts:
        kv = _parse_count_line(counts[-1].group(0))
        out.count = int(kv["count"]) if "count" in kv else None
        for key in ("first", "curr", "min", "max", "avg", "std", "p5", "median", "p95"):
            if key in kv:
                setattr(out, f"{key}_us", kv[key])
    mem = [x for x in MEMORY_RE.finditer(text) if x.start() > m.start()]
    if mem:
        out.memory_init_mb, out.memory_overall_mb = float(mem[0].group(1)), float(mem[0].group(2))
    return out
