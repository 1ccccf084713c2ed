package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class BenchmarkTest {

    /** A fake clock: each inference "takes" the next duration of a script, in milliseconds. */
    private static final class ScriptedWork implements Benchmark.Clock, Benchmark.Inference {
        private final long[] durationsMs;
        private long now;
        int calls;

        ScriptedWork(long... durationsMs) {
            this.durationsMs = durationsMs;
        }

        @Override
        public long nanos() {
            return now;
        }

        @Override
        public void run() {
            now += durationsMs[calls++] * 1_000_000L;
        }
    }

    @Test
    public void warmupCallsAreNotTimed() throws Exception {
        // 2 warm-up calls of 100 ms each, then 3 timed runs of 5, 1, 3 ms.
        ScriptedWork w = new ScriptedWork(100, 100, 5, 1, 3);
        LatencyStats s = Benchmark.run(w, 2, 3, w);
        assertEquals(5, w.calls);
        assertEquals(3, s.runs);
        assertEquals(3.0, s.medianMs, 1e-9);
        assertEquals(5.0, s.maxMs, 1e-9);
        assertEquals(1.0, s.minMs, 1e-9);
    }

    @Test(expected = IllegalArgumentException.class)
    public void zeroRunsIsAnError() throws Exception {
        ScriptedWork w = new ScriptedWork();
        Benchmark.run(w, 0, 0, w);
    }

    @Test
    public void theSystemClockMeasuresRealWork() throws Exception {
        final int[] sink = new int[1];
        LatencyStats s = Benchmark.run(new Benchmark.Inference() {
            @Override
            public void run() {
                for (int k = 0; k < 1000; k++) {
                    sink[0] += k;
                }
            }
        }, 1, 4, Benchmark.SYSTEM_CLOCK);
        assertEquals(4, s.runs);
        assertEquals(true, s.minMs >= 0 && s.p10Ms <= s.medianMs && s.medianMs <= s.p90Ms);
    }
}
