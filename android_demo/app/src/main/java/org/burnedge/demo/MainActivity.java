package org.burnedge.demo;

import android.app.Activity;
import android.graphics.Bitmap;
import android.graphics.Typeface;
import android.os.Bundle;
import android.view.View;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.LinearLayout;
import android.widget.ScrollView;
import android.widget.Spinner;
import android.widget.TextView;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.burnedge.demo.logic.BenchRequest;
import org.burnedge.demo.logic.Classification;
import org.burnedge.demo.logic.ModelMetadata;
import org.burnedge.demo.logic.ResultWriter;

/**
 * Interactive demo: classify the bundled sample images with the binary (LCE) model and its float twin (top-5 each),
 * and benchmark both side by side at a chosen thread count. Views are built in code; all work runs off the UI thread.
 */
public final class MainActivity extends Activity {
    private static final Integer[] THREADS = {1, 2, 4, 8};
    private static final int BENCH_RUNS = 50;
    private static final int BENCH_WARMUP = 10;

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private DemoRuntime runtime;
    private ImageView image;
    private TextView output;
    private Spinner threads;
    private int sampleIndex = -1;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        LinearLayout col = new LinearLayout(this);
        col.setOrientation(LinearLayout.VERTICAL);
        col.setPadding(24, 24, 24, 24);

        TextView header = new TextView(this);
        String abi = DemoRuntime.abi();
        header.setText("runtime: " + BuildConfig.TFLITE_RUNTIME + "   ABI: " + abi
                + ("arm64-v8a".equals(abi) ? "" : "\nnot arm64-v8a: LCE runs unoptimised code here, timings are not "
                + "representative of a phone"));
        col.addView(header);

        image = new ImageView(this);
        image.setScaleType(ImageView.ScaleType.FIT_CENTER);
        col.addView(image, new LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 320));

        Button next = new Button(this);
        next.setText("Classify next sample");
        next.setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                classifyNext();
            }
        });
        col.addView(next);

        LinearLayout row = new LinearLayout(this);
        row.setOrientation(LinearLayout.HORIZONTAL);
        TextView tl = new TextView(this);
        tl.setText("threads ");
        row.addView(tl);
        threads = new Spinner(this);
        ArrayAdapter<Integer> adapter = new ArrayAdapter<Integer>(this, android.R.layout.simple_spinner_item, THREADS);
        adapter.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
        threads.setAdapter(adapter);
        row.addView(threads);
        Button bench = new Button(this);
        bench.setText("Benchmark binary vs float");
        bench.setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                benchmark();
            }
        });
        row.addView(bench);
        col.addView(row);

        output = new TextView(this);
        output.setTypeface(Typeface.MONOSPACE);
        output.setTextIsSelectable(true);
        col.addView(output);

        ScrollView scroll = new ScrollView(this);
        scroll.addView(col);
        setContentView(scroll);

        worker.execute(new Runnable() {
            @Override
            public void run() {
                try {
                    runtime = new DemoRuntime(MainActivity.this);
                    show(describe(runtime.meta));
                } catch (Exception e) {
                    show("cannot load the assets: " + e.getMessage());
                }
            }
        });
    }

    @Override
    protected void onDestroy() {
        worker.shutdownNow();
        super.onDestroy();
    }

    private static String describe(ModelMetadata m) {
        return String.format(Locale.ROOT, "input %dx%dx3, %d classes, %d samples%nLCE model: %s%nfloat model: %s",
                m.height, m.width, m.classNames.size(), m.samples.size(), m.lceModelFile, m.floatModelFile);
    }

    private int selectedThreads() {
        Object t = threads.getSelectedItem();
        return t instanceof Integer ? (Integer) t : 1;
    }

    private void classifyNext() {
        final int n = selectedThreads(); // read the spinner on the UI thread
        worker.execute(new Runnable() {
            @Override
            public void run() {
                if (runtime == null || runtime.meta.samples.isEmpty()) {
                    show("no sample images in the assets (python -m export.android_assets --samples N)");
                    return;
                }
                sampleIndex = (sampleIndex + 1) % runtime.meta.samples.size();
                ModelMetadata.Sample sample = runtime.meta.samples.get(sampleIndex);
                StringBuilder text = new StringBuilder("sample " + sample.file + "   true label: " + sample.label
                        + "\n");
                try {
                    final Bitmap bmp = runtime.assets.sample(sample.file, runtime.meta.width, runtime.meta.height);
                    runOnUiThread(new Runnable() {
                        @Override
                        public void run() {
                            image.setImageBitmap(Bitmap.createScaledBitmap(bmp, 320, 320, false));
                        }
                    });
                    float[] x = runtime.pixels(sample.file);
                    for (String backend : new String[] {"lce", "float"}) {
                        text.append('\n').append(backend).append(": ");
                        if (runtime.modelFile(backend) == null) {
                            text.append("no model in the assets\n");
                            continue;
                        }
                        try {
                            TfliteModel model = runtime.open(backend, n, true);
                            try {
                                List<Classification.Prediction> top =
                                        Classification.topK(model.run(x), runtime.meta.classNames, 5);
                                text.append(model.file).append('\n');
                                for (Classification.Prediction p : top) {
                                    text.append(String.format(Locale.ROOT, "  %-12s %6.2f %%%n", p.label,
                                            100f * p.probability));
                                }
                            } finally {
                                model.close();
                            }
                        } catch (Exception e) {
                            text.append("failed: ").append(e.getMessage()).append('\n');
                        }
                    }
                } catch (Exception e) {
                    text.append("failed: ").append(e.getMessage());
                }
                show(text.toString());
            }
        });
    }

    private void benchmark() {
        final int n = selectedThreads();
        show("benchmarking with " + n + " thread(s): " + BENCH_WARMUP + " warm-up + " + BENCH_RUNS + " runs each...");
        worker.execute(new Runnable() {
            @Override
            public void run() {
                if (runtime == null) {
                    show("assets not loaded");
                    return;
                }
                try {
                    BenchRequest req = new BenchRequest("both", n, BENCH_RUNS, BENCH_WARMUP, BenchRequest.DEFAULT_OUT,
                            true);
                    StringBuilder t = new StringBuilder(String.format(Locale.ROOT, "%-6s %-22s %8s %8s %8s%n",
                            "model", "kernel", "p10 ms", "median", "p90 ms"));
                    for (ResultWriter.Entry e : runtime.benchmark(req)) {
                        if (e.stats == null) {
                            t.append(String.format(Locale.ROOT, "%-6s %-22s failed: %s%n", e.backend, e.kernel,
                                    e.error));
                        } else {
                            t.append(String.format(Locale.ROOT, "%-6s %-22s %8.2f %8.2f %8.2f%n", e.backend,
                                    e.kernel, e.stats.p10Ms, e.stats.medianMs, e.stats.p90Ms));
                        }
                    }
                    show(t.toString());
                } catch (Exception e) {
                    show("benchmark failed: " + e.getMessage());
                }
            }
        });
    }

    private void show(final String text) {
        runOnUiThread(new Runnable() {
            @Override
            public void run() {
                output.setText(text);
            }
        });
    }
}
