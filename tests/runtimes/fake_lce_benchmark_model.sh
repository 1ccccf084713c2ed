#!/bin/sh
# Stand-in for lce_benchmark_model_aarch64 (an ARM binary cannot run on the x86 test host). It checks its flags
# and the --graph file like the real tool and prints the tool's exact output format. The numbers are derived from
# the kernel and thread flags so the test can tell the runs apart: the indirect kernel prints the newer count line
# with p5/median/p95, the others the older one.
graph=""; threads=1; runs=50; kernel=default
for a in "$@"; do
  case "$a" in
    --graph=*) graph="${a#--graph=}" ;;
    --num_threads=*) threads="${a#--num_threads=}" ;;
    --num_runs=*) runs="${a#--num_runs=}" ;;
    --warmup_runs=*) ;;
    --use_indirect_bgemm=true) kernel=indirect ;;
    --use_reference_bconv=true) kernel=reference ;;
    *) echo "ERROR: Unconsumed cmdline flags: $a"; exit 1 ;;
  esac
done
[ -f "$graph" ] || { echo "ERROR: File does not exist: $graph"; exit 1; }
case $kernel in default) avg=30000 ;; indirect) avg=20000 ;; reference) avg=40000 ;; esac
avg=$((avg / threads))
echo "STARTING!"
echo "Num threads: [$threads]"
echo "Graph: [$graph]"
echo "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds."
echo "count=5 first=$((avg + 9000)) curr=$avg min=$avg max=$((avg + 9000)) avg=$((avg + 1000)) std=300"
echo ""
echo "Running benchmark for at least $runs iterations and at least 1 seconds but terminate if exceeding 150 seconds."
if [ "$kernel" = indirect ]; then
  echo "count=$runs first=$avg curr=$avg min=$((avg - 100)) max=$((avg + 500)) avg=$avg std=120 p5=$((avg - 90)) median=$((avg - 10)) p95=$((avg + 400))"
else
  echo "count=$runs first=$avg curr=$avg min=$((avg - 100)) max=$((avg + 500)) avg=$avg std=120"
fi
echo ""
echo "Inference timings in us: Init: 1471, First inference: $((avg + 9000)), Warmup (avg): $((avg + 1000)), Inference (avg): $avg"
echo "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your one's own risk."
echo "Memory footprint delta from the start of the tool (MB): init=3.1 overall=8.5"
