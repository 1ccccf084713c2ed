package org.burnedge.demo.logic;

/**
 * The latency loop: {@code warmup} untimed calls, then {@code runs} timed calls of one inference.
 * The clock is injectable so the loop is testable without real time.
 */
public final class Benchmark {

    /** One inference; throwing aborts the benchmark. */
    public interface Inference {
        void run() throws Exception;
    }

    /** A monotonic nanosecond clock ({@code System::nanoTime} on device). */
    public interface Clock {
        long nanos();
    }

    public static final Clock SYSTEM_CLOCK = new Clock() {
        @Override
        public long nanos() {
            return System.nanoTime();
        }
    };

    private Benchmark() {
    }

    public static LatencyStats run(Inference inference, int warmup, int runs, Clock clock) throws Exception {
        if (warmup < 0 || runs < 1) {
            throw new IllegalArgumentException("need warmup >= 0 and runs >= 1, got warmup=" + warmup + " runs="
                    + runs);
        }
        for (int k = 0; k < warmup; k++) {
            inference.run();
        }
        long[] nanos = new long[runs];
        for (int k = 0; k < runs; k++) {
            long t0 = clock.nanos();
            inference.run();
            nanos[k] = clock.nanos() - t0;
        }
        return LatencyStats.fromNanos(nanos);
    }
}
