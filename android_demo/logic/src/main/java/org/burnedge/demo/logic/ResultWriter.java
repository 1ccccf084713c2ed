package org.burnedge.demo.logic;

import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.TimeZone;

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

    public String toJson(long createdEpochMillis) {
        JsonWriter w = new JsonWriter().beginObject();
        w.name("format").value(FORMAT);
        w.name("version").value(VERSION);
        w.name("status").value(failure == null ? "ok" : "error");
        w.name("error").value(failure);
        w.name("created_utc").value(isoUtc(createdEpochMillis));
        w.name("app").beginObject()
                .name("package").value(appPackage)
                .name("version_name").value(versionName)
                .name("runtime").value(runtime)
                .endObject();
        w.name("device").beginObject()
                .name("manufacturer").value(device.manufacturer)
                .name("model").value(device.model)
                .name("abi").value(device.abi)
                .name("android_release").value(device.androidRelease)
                .name("sdk_int").value(device.sdkInt)
                .name("cores").value(device.cores)
                .endObject();
        w.name("request");
        if (request == null) {
            w.nullValue();
        } else {
            w.beginObject()
                    .name("model").value(request.model)
                    .name("threads").value(request.threads)
                    .name("runs").value(request.runs)
                    .name("warmup").value(request.warmup)
                    .name("xnnpack").value(request.xnnpack)
                    .endObject();
        }
        w.name("results").beginArray();
        for (Entry e : entries) {
            w.beginObject()
                    .name("model").value(e.model)
                    .name("backend").value(e.backend)
                    .name("kernel").value(e.kernel)
                    .name("threads").value(e.threads)
                    .name("warmup").value(e.warmup);
            LatencyStats s = e.stats;
            w.name("runs");
            if (s == null) {
                w.value(0);
                for (String k : new String[] {"median_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms", "max_ms"}) {
                    w.name(k).nullValue();
                }
            } else {
                w.value(s.runs)
                        .name("median_ms").value(s.medianMs)
                        .name("p10_ms").value(s.p10Ms)
                        .name("p90_ms").value(s.p90Ms)
                        .name("mean_ms").value(s.meanMs)
                        .name("min_ms").value(s.minMs)
                        .name("max_ms").value(s.maxMs);
            }
            w.name("error").value(e.error);
            w.endObject();
        }
        w.endArray();
        return w.endObject().toString();
    }
}
