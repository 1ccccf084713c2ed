"""The lce_benchmark_model output parser on the tool's exact output formats."""

from __future__ import annotations

import pytest

from runtimes.benchmark_output import parse_benchmark_output
from runtimes.errors import BenchmarkOutputError

# TFLite benchmark_model as shipped in LCE releases (older TF: no percentiles on the count line)
OLD = """STARTING!
Log parameter values verbosely: [0]
Num threads: [1]
Graph: [quicknet.tflite]
#threads used for CPU inference: [1]
Loaded model quicknet.tflite
The input model file size (MB): 13.2365
Initialized session in 1.471ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=16 first=41707 curr=31814 min=31486 max=41707 avg=32491.4 std=2430

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=31929 curr=31278 min=31138 max=31929 avg=31420.6 std=260

Inference timings in us: Init: 1471, First inference: 41707, Warmup (avg): 32491.4, Inference (avg): 31420.6
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your one's own risk.
Memory footprint delta from the start of the tool (MB): init=3.14062 overall=8.53516
"""  # noqa: E501

# newer TFLite: p5/median/p95 on the count line, "Peak memory footprint"
NEW = """INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=12 first=5210 curr=4890 min=4870 max=5210 avg=4950.5 std=95 p5=4870 median=4912 p95=5210

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=204 first=4901 curr=4882 min=4801 max=6120 avg=4903.7 std=121 p5=4810 median=4880 p95=5102

INFO: Inference timings in us: Init: 25113, First inference: 5210, Warmup (avg): 4950.5, Inference (avg): 4903.7
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your one's own risk.
INFO: Memory footprint delta from the start of the tool (MB): init=6.5 overall=9.25
INFO: Peak memory footprint (MB): init=7.1 overall=9.9
"""  # noqa: E501


def test_old_format():
    o = parse_benchmark_output(OLD)
    assert (o.init_us, o.first_inference_us, o.warmup_avg_us, o.inference_avg_us) == (1471, 41707, 32491.4, 31420.6)
    assert o.count == 50 and (o.min_us, o.max_us, o.avg_us, o.std_us) == (31138, 31929, 31420.6, 260)
    assert o.first_us == 31929 and o.curr_us == 31278
    assert o.median_us is None and o.p5_us is None and o.p95_us is None
    assert (o.memory_init_mb, o.memory_overall_mb) == (3.14062, 8.53516)


def test_new_format_with_percentiles():
    o = parse_benchmark_output(NEW)
    assert o.inference_avg_us == 4903.7 and o.init_us == 25113
    assert o.count == 204 and (o.p5_us, o.median_us, o.p95_us) == (4810, 4880, 5102)
    assert o.memory_overall_mb == 9.25


def test_scientific_notation_and_last_run_wins():
    text = OLD + "\ncount=10 first=1e+05 curr=1 min=1 max=2 avg=1.5e+05 std=0\n" + \
        "Inference timings in us: Init: 1e+03, First inference: 2e+05, Warmup (avg): 1.5e+05, " + \
        "Inference (avg): 1.5e+05\n"
    o = parse_benchmark_output(text)
    assert o.count == 10 and o.inference_avg_us == 1.5e5 and o.init_us == 1e3 and o.memory_overall_mb is None


@pytest.mark.parametrize("text", ["", "ERROR: Didn't find op for builtin opcode 'LceBconv2d'\nAborted\n"])
def test_no_timings(text):
    with pytest.raises(BenchmarkOutputError, match="Inference timings"):
        parse_benchmark_output(text)
