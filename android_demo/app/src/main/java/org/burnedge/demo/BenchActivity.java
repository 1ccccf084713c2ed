package org.burnedge.demo;

import android.app.Activity;
import android.content.Intent;
import android.os.Bundle;
import android.util.Log;
import android.widget.TextView;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.burnedge.demo.logic.BenchRequest;
import org.burnedge.demo.logic.ResultWriter;

/**
 * Headless benchmark, started from the host:
 *
 * <pre>
 * adb shell am start -n org.burnedge.demo/.BenchActivity --es model both --ei threads 4 --ei runs 50 --ei warmup 10
 * </pre>
 *
 * Options are parsed by {@link BenchRequest#fromExtras}. The result JSON (schema: {@link ResultWriter}, parsed on the
 * host by {@code runtimes.app_result}) goes to {@code <external files dir>/<out>}, normally
 * {@code /sdcard/Android/data/org.burnedge.demo/files/bench_result.json}. Any earlier file of that name is deleted
 * first and the new one is written under a temporary name and renamed, so the host can poll for it. When done, the
 * activity logs {@code BURN_EDGE_BENCH_DONE <path>} under the log tag {@code burn-edge-bench} and finishes.
 */
public final class BenchActivity extends Activity {
    static final String TAG = "burn-edge-bench";

    private TextView status;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        status = new TextView(this);
        status.setPadding(32, 32, 32, 32);
        status.setText("benchmarking...");
        setContentView(status);
        final Map<String, Object> extras = extrasOf(getIntent());
        new Thread(new Runnable() {
            @Override
            public void run() {
                final String message = runAndWrite(extras);
                runOnUiThread(new Runnable() {
                    @Override
                    public void run() {
                        status.setText(message);
                        finish();
                    }
                });
            }
        }, "burn-edge-bench").start();
    }

    @SuppressWarnings("deprecation") // Bundle.get(String): the only way to read an extra of unknown type
    private static Map<String, Object> extrasOf(Intent intent) {
        Map<String, Object> out = new HashMap<String, Object>();
        Bundle b = intent.getExtras();
        if (b != null) {
            for (String key : b.keySet()) {
                out.put(key, b.get(key));
            }
        }
        return out;
    }

    private File outputDir() {
        File dir = getExternalFilesDir(null);
        return dir != null ? dir : getFilesDir();
    }

    /** Runs the request and writes the result file; returns a one-line summary for the screen. */
    private String runAndWrite(Map<String, Object> extras) {
        String outName = BenchRequest.DEFAULT_OUT;
        Object requested = extras.get("out");
        BenchRequest req = null;
        ResultWriter writer;
        try {
            req = BenchRequest.fromExtras(extras);
            outName = req.out;
        } catch (IllegalArgumentException e) {
            if (requested != null && !requested.toString().contains("/")) {
                outName = requested.toString();
            }
            writer = newWriter(null).fail("bad options: " + e.getMessage());
            return write(writer, outName);
        }
        File target = new File(outputDir(), outName);
        if (target.exists() && !target.delete()) {
            Log.w(TAG, "could not delete old " + target);
        }
        writer = newWriter(req);
        try {
            DemoRuntime runtime = new DemoRuntime(this);
            for (ResultWriter.Entry e : runtime.benchmark(req)) {
                writer.add(e);
                Log.i(TAG, e.backend + " " + e.model + " threads=" + e.threads + " "
                        + (e.stats != null ? "median " + e.stats.medianMs + " ms" : "error: " + e.error));
            }
        } catch (Exception e) {
            writer.fail(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        return write(writer, outName);
    }

    private ResultWriter newWriter(BenchRequest req) {
        return new ResultWriter(getPackageName(), BuildConfig.VERSION_NAME, BuildConfig.TFLITE_RUNTIME,
                DemoRuntime.device(), req);
    }

    private String write(ResultWriter writer, String outName) {
        File dir = outputDir();
        File target = new File(dir, outName);
        File tmp = new File(dir, "." + outName + ".tmp");
        try {
            OutputStream os = new FileOutputStream(tmp);
            try {
                os.write(writer.toJson(System.currentTimeMillis()).getBytes(StandardCharsets.UTF_8));
            } finally {
                os.close();
            }
            if (!tmp.renameTo(target)) {
                throw new IOException("cannot rename " + tmp + " to " + target);
            }
        } catch (IOException e) {
            Log.e(TAG, "could not write the result file", e);
            return "error: " + e.getMessage();
        }
        Log.i(TAG, "BURN_EDGE_BENCH_DONE " + target.getAbsolutePath());
        return "wrote " + target.getAbsolutePath();
    }
}
