package org.burnedge.demo.logic;

import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.TimeZone;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Writes the headless benchmark's result JSON, read on the host by {@code runtimes.app_result.parse_app_result}
 * (which documents the same schema). Version 1:
 *
 * <pre>
 * {"format": "burn-edge/android-bench", "version": 1, "status": "ok" | "error", "error": null | "message",
 *  "created_utc": "2026-11-25T14:00:00Z",
 *  "app": {"package": ..., "version_name": ..., "runtime": "lce-lite" | "tensorflow-lite"},
 *  "device": {"manufacturer": ..., "model": ..., "abi": "arm64-v8a", "android_release": "14", "sdk_int": 34,
 *             "cores": 8},
 *  "request": {"model": "both", "threads": 4, "runs": 50, "warmup": 10, "xnnpack": true},
 *  "results": [{"model": "model_lce.tflite", "backend": "lce", "kernel": "lce-arm64-optimized", "threads": 4,
 *               "warmup": 10, "runs": 50, "median_ms": .., "p10_ms": .., "p90_ms": .., "mean_ms": ..,
 *               "min_ms": .., "max_ms": .., "error": null}, ...]}
 * </pre>
 *
 * A result whose backend failed (e.g. "unresolved custom op: LceQuantize" without the LCE AAR) has null timings and
 * its message in "error"; the file's "status" is "error" only if the whole run failed before benchmarking.
 */
public final class ResultWriter {
    public static final String FORMAT = "burn-edge/android-bench";
    public static final int VERSION = 1;

    /** Facts about the phone (Build.* on Android, anything descriptive on the host). */
    public static final class Device {
        public final String manufacturer;
        public final String model;
        public final String abi;
        public final String androidRelease;
        public final int sdkInt;
        public final int cores;

        public Device(String manufacturer, String model, String abi, String androidRelease, int sdkInt, int cores) {
            this.manufacturer = manufacturer;
            this.model = model;
            this.abi = abi;
            this.androidRelease = androidRelease;
            this.sdkInt = sdkInt;
            this.cores = cores;
        }
    }

    /** One benchmarked model; {@code stats == null} with an {@code error} when it could not run. */
    public static final class Entry {
        public final String model;
        public final String backend;
        public final String kernel;
        public final int threads;
        public final int warmup;
        public final LatencyStats stats;
        public final String error;

        public Entry(String model, String backend, String kernel, int threads, int warmup, LatencyStats stats,
                     String error) {
            if ((stats == null) == (error == null)) {
                throw new IllegalArgumentException("an entry has either stats or an error");
            }
            this.model = model;
            this.backend = backend;
            this.kernel = kernel;
            this.threads = threads;
            this.warmup = warmup;
            this.stats = stats;
            this.error = error;
        }
    }

    private final String appPackage;
    private final String versionName;
    private final String runtime;
    private final Device device;
    private final BenchRequest request;
    private final List<Entry> entries = new ArrayList<Entry>();
    private String failure;

    public ResultWriter(String appPackage, String versionName, String runtime, Device device, BenchRequest request) {
        this.appPackage = appPackage;
        this.versionName = versionName;
        this.runtime = runtime;
        this.device = device;
        this.request = request;
    }

    public ResultWriter add(Entry e) {
        entries.add(e);
        return this;
    }

    /** Marks the whole run as failed (bad options, missing assets); results may be empty. */
    public ResultWriter fail(String message) {
        this.failure = message;
        return this;
    }

    /**
     * Label of the kernels a backend runs on an ABI: LCE's hand-optimised kernels exist only for arm64-v8a (x86
     * emulators run LCE's portable code, slow and not representative); the float model uses TFLite's builtin kernels
     * or XNNPACK.
     */
    public static String kernelLabel(String backend, String abi, boolean xnnpack) {
        if ("lce".equals(backend)) {
            return "arm64-v8a".equals(abi) ? "lce-arm64-optimized" : "lce-unoptimized-" + abi;
        }
        return xnnpack ? "tflite-xnnpack" : "tflite-builtin";
    }

    /** ISO-8601 UTC time stamp with seconds, e.g. 2026-11-25T14:00:00Z. */
    public static String isoUtc(long epochMillis) {
        SimpleDateFormat f = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss'Z'", Locale.ROOT);
        f.setTimeZone(TimeZone.getTimeZone("UTC"));
        return f.format(new Date(epochMillis));
    }

    /**
     * The result file's text (org.json, 2-space indent, keys in schema order). Non-finite latencies, which JSON
     * cannot hold, are written as null.
     */
    public String toJson(long createdEpochMillis) {
        try {
            JSONObject o = new JSONObject();
            o.put("format", FORMAT);
            o.put("version", VERSION);
            o.put("status", failure == null ? "ok" : "error");
            o.put("error", orNull(failure));
            o.put("created_utc", isoUtc(createdEpochMillis));
            o.put("app", new JSONObject()
                    .put("package", orNull(appPackage))
                    .put("version_name", orNull(versionName))
                    .put("runtime", orNull(runtime)));
            o.put("device", new JSONObject()
                    .put("manufacturer", orNull(device.manufacturer))
                    .put("model", orNull(device.model))
                    .put("abi", orNull(device.abi))
                    .put("android_release", orNull(device.androidRelease))
                    .put("sdk_int", device.sdkInt)
                    .put("cores", device.cores));
            o.put("request", request == null ? JSONObject.NULL : new JSONObject()
                    .put("model", request.model)
                    .put("threads", request.threads)
                    .put("runs", request.runs)
                    .put("warmup", request.warmup)
                    .put("xnnpack", request.xnnpack));
            JSONArray results = new JSONArray();
            for (Entry e : entries) {
                LatencyStats s = e.stats;
                results.put(new JSONObject()
                        .put("model", orNull(e.model))
                        .put("backend", orNull(e.backend))
                        .put("kernel", orNull(e.kernel))
                        .put("threads", e.threads)
                        .put("warmup", e.warmup)
                        .put("runs", s == null ? 0 : s.runs)
                        .put("median_ms", s == null ? JSONObject.NULL : finiteOrNull(s.medianMs))
                        .put("p10_ms", s == null ? JSONObject.NULL : finiteOrNull(s.p10Ms))
                        .put("p90_ms", s == null ? JSONObject.NULL : finiteOrNull(s.p90Ms))
                        .put("mean_ms", s == null ? JSONObject.NULL : finiteOrNull(s.meanMs))
                        .put("min_ms", s == null ? JSONObject.NULL : finiteOrNull(s.minMs))
                        .put("max_ms", s == null ? JSONObject.NULL : finiteOrNull(s.maxMs))
                        .put("error", orNull(e.error)));
            }
            o.put("results", results);
            return o.toString(2);
        } catch (JSONException e) { // only for non-finite numbers, which finiteOrNull already replaced
            throw new IllegalStateException("cannot write the result as JSON: " + e.getMessage(), e);
        }
    }

    /** {@code v}, or JSON null for a Java null (org.json's put(key, null) would drop the key instead). */
    static Object orNull(Object v) {
        return v == null ? JSONObject.NULL : v;
    }

    /** A finite double as a JSON number, NaN and the infinities as JSON null. */
    static Object finiteOrNull(double v) {
        return Double.isNaN(v) || Double.isInfinite(v) ? JSONObject.NULL : (Object) v;
    }
}
