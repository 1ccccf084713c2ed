package org.burnedge.demo.logic;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Options of one headless benchmark, parsed from the launching intent's extras:
 *
 * <pre>
 * adb shell am start -n org.burnedge.demo/.BenchActivity \
 *     --es model both --ei threads 4 --ei runs 50 --ei warmup 10 --es out bench_result.json
 * </pre>
 *
 * Keys: {@code model} = lce | float | both (default both); {@code threads} >= 1 (default 1);
 * {@code runs} >= 1 (default 50); {@code warmup} >= 0 (default 10); {@code out} = a plain file name in the app's
 * external files folder (default bench_result.json); {@code xnnpack} = use XNNPACK for the float model (default
 * true; never used for the LCE model). Integers may be given as {@code --ei} or as numeric {@code --es}, booleans
 * as {@code --ez} or "true"/"false". Unknown keys are errors, so a typo is not silently ignored.
 */
public final class BenchRequest {
    public static final List<String> MODELS = Collections.unmodifiableList(Arrays.asList("lce", "float", "both"));
    public static final List<String> KEYS = Collections.unmodifiableList(
            Arrays.asList("model", "threads", "runs", "warmup", "out", "xnnpack"));
    public static final String DEFAULT_OUT = "bench_result.json";

    public final String model;
    public final int threads;
    public final int runs;
    public final int warmup;
    public final String out;
    public final boolean xnnpack;

    public BenchRequest(String model, int threads, int runs, int warmup, String out, boolean xnnpack) {
        if (!MODELS.contains(model)) {
            throw new IllegalArgumentException("model must be one of " + MODELS + ", got \"" + model + "\"");
        }
        if (threads < 1 || runs < 1 || warmup < 0) {
            throw new IllegalArgumentException("need threads >= 1, runs >= 1, warmup >= 0; got threads=" + threads
                    + " runs=" + runs + " warmup=" + warmup);
        }
        if (out.isEmpty() || out.contains("/") || out.contains("\\") || out.startsWith(".")) {
            throw new IllegalArgumentException("out must be a plain file name (no folders, not hidden), got \""
                    + out + "\"");
        }
        this.model = model;
        this.threads = threads;
        this.runs = runs;
        this.warmup = warmup;
        this.out = out;
        this.xnnpack = xnnpack;
    }

    /** Defaults: both models, 1 thread, 50 runs, 10 warm-up runs. */
    public static BenchRequest defaults() {
        return new BenchRequest("both", 1, 50, 10, DEFAULT_OUT, true);
    }

    /** Parses intent extras (key to String / Integer / Long / Boolean), see the class comment. */
    public static BenchRequest fromExtras(Map<String, Object> extras) {
        for (String key : extras.keySet()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("unknown option \"" + key + "\"; known options: " + KEYS);
            }
        }
        BenchRequest d = defaults();
        return new BenchRequest(
                str(extras, "model", d.model),
                integer(extras, "threads", d.threads),
                integer(extras, "runs", d.runs),
                integer(extras, "warmup", d.warmup),
                str(extras, "out", d.out),
                bool(extras, "xnnpack", d.xnnpack));
    }

    /** The backends to run, in report order ("lce" before "float"). */
    public List<String> backends() {
        List<String> out = new ArrayList<String>();
        if (!"float".equals(model)) {
            out.add("lce");
        }
        if (!"lce".equals(model)) {
            out.add("float");
        }
        return out;
    }

    private static String str(Map<String, Object> extras, String key, String dflt) {
        Object v = extras.get(key);
        return v == null ? dflt : v.toString().trim();
    }

    private static int integer(Map<String, Object> extras, String key, int dflt) {
        Object v = extras.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Integer || v instanceof Long) {
            return ((Number) v).intValue();
        }
        try {
            return Integer.parseInt(v.toString().trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be an integer, got \"" + v + "\"");
        }
    }

    private static boolean bool(Map<String, Object> extras, String key, boolean dflt) {
        Object v = extras.get(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Boolean) {
            return (Boolean) v;
        }
        String s = v.toString().trim().toLowerCase(java.util.Locale.ROOT);
        if (s.equals("true") || s.equals("1")) {
            return true;
        }
        if (s.equals("false") || s.equals("0")) {
            return false;
        }
        throw new IllegalArgumentException(key + " must be true or false, got \"" + v + "\"");
    }
}
