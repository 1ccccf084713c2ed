package org.burnedge.demo.logic;

import java.util.Arrays;

/**
 * Summary of per-run latencies. Percentiles use linear interpolation between the two closest ranks
 * (numpy's default {@code percentile(..., method="linear")}): position {@code q/100 * (n-1)} in the sorted list.
 */
public final class LatencyStats {
    public final int runs;
    public final double medianMs;
    public final double p10Ms;
    public final double p90Ms;
    public final double meanMs;
    public final double minMs;
    public final double maxMs;

    private LatencyStats(int runs, double medianMs, double p10Ms, double p90Ms, double meanMs, double minMs,
                         double maxMs) {
        this.runs = runs;
        this.medianMs = medianMs;
        this.p10Ms = p10Ms;
        this.p90Ms = p90Ms;
        this.meanMs = meanMs;
        this.minMs = minMs;
        this.maxMs = maxMs;
    }

    /** Stats of latencies given in nanoseconds (what {@code System.nanoTime} differences give). */
    public static LatencyStats fromNanos(long[] nanos) {
        double[] ms = new double[nanos.length];
        for (int k = 0; k < nanos.length; k++) {
            ms[k] = nanos[k] / 1e6;
        }
        return fromMillis(ms);
    }

    public static LatencyStats fromMillis(double[] ms) {
        if (ms.length == 0) {
            throw new IllegalArgumentException("no latency samples (runs must be >= 1)");
        }
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double sum = 0;
        for (double v : sorted) {
            if (Double.isNaN(v) || v < 0) {
                throw new IllegalArgumentException("latency samples must be >= 0, got " + v);
            }
            sum += v;
        }
        return new LatencyStats(sorted.length, percentile(sorted, 50), percentile(sorted, 10),
                percentile(sorted, 90), sum / sorted.length, sorted[0], sorted[sorted.length - 1]);
    }

    /** q-th percentile (0..100) of an ascending array, linear interpolation between closest ranks. */
    public static double percentile(double[] sorted, double q) {
        if (sorted.length == 0 || q < 0 || q > 100) {
            throw new IllegalArgumentException("percentile needs samples and 0 <= q <= 100");
        }
        double pos = q / 100.0 * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, sorted.length - 1);
        double frac = pos - lo;
        return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
    }
}
