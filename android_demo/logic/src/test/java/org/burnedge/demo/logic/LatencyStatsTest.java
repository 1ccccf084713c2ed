package org.burnedge.demo.logic;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class LatencyStatsTest {

    @Test
    public void percentilesInterpolateLinearlyBetweenRanks() {
        // sorted: 1 2 3 4 10; positions: p10 -> 0.4, p50 -> 2, p90 -> 3.6
        LatencyStats s = LatencyStats.fromMillis(new double[] {10, 3, 1, 4, 2});
        assertEquals(5, s.runs);
        assertEquals(3.0, s.medianMs, 1e-12);
        assertEquals(1.4, s.p10Ms, 1e-12);
        assertEquals(4.0 + 0.6 * 6.0, s.p90Ms, 1e-12);
        assertEquals(4.0, s.meanMs, 1e-12);
        assertEquals(1.0, s.minMs, 0.0);
        assertEquals(10.0, s.maxMs, 0.0);
    }

    @Test
    public void evenCountMedianIsTheMidpointAndOneSampleIsEverything() {
        assertEquals(2.5, LatencyStats.fromMillis(new double[] {4, 1, 3, 2}).medianMs, 1e-12);
        LatencyStats one = LatencyStats.fromMillis(new double[] {7});
        assertEquals(7.0, one.p10Ms, 0.0);
        assertEquals(7.0, one.medianMs, 0.0);
        assertEquals(7.0, one.p90Ms, 0.0);
    }

    @Test
    public void nanosAreConvertedToMillis() {
        LatencyStats s = LatencyStats.fromNanos(new long[] {1_500_000L, 2_500_000L});
        assertEquals(2.0, s.medianMs, 1e-12);
    }

    @Test(expected = IllegalArgumentException.class)
    public void noSamplesIsAnError() {
        LatencyStats.fromMillis(new double[0]);
    }

    @Test(expected = IllegalArgumentException.class)
    public void negativeSamplesAreAnError() {
        LatencyStats.fromMillis(new double[] {1, -1});
    }
}
