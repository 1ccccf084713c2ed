package org.burnedge.demo;

import android.content.Context;
import android.os.Build;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.burnedge.demo.logic.BenchRequest;
import org.burnedge.demo.logic.Benchmark;
import org.burnedge.demo.logic.LatencyStats;
import org.burnedge.demo.logic.ModelMetadata;
import org.burnedge.demo.logic.Preprocessor;
import org.burnedge.demo.logic.ResultWriter;

/**
 * What both activities share: open a model by backend, benchmark it, describe the phone. Thin on purpose; the
 * logic (statistics, JSON, preprocessing, top-k) is in the plain-Java {@code :logic} module.
 */
final class DemoRuntime {
    final AssetStore assets;
    final ModelMetadata meta;
    final Preprocessor preprocessor;

    DemoRuntime(Context context) throws IOException {
        this.assets = new AssetStore(context.getAssets());
        this.meta = assets.metadata();
        this.preprocessor = new Preprocessor(meta);
    }

    /** The asset file of "lce" or "float", or null if metadata.json lists none. */
    String modelFile(String backend) {
        return "lce".equals(backend) ? meta.lceModelFile : meta.floatModelFile;
    }

    TfliteModel open(String backend, int threads, boolean xnnpack) throws IOException {
        String file = modelFile(backend);
        if (file == null) {
            throw new IOException("metadata.json lists no " + backend + " model");
        }
        return new TfliteModel(assets.mapModel(file), file, backend, meta, threads, xnnpack);
    }

    /** ABI this process runs as (the first supported ABI; arm64-v8a on a 64-bit ARM phone). */
    static String abi() {
        return Build.SUPPORTED_ABIS.length > 0 ? Build.SUPPORTED_ABIS[0] : "unknown";
    }

    static ResultWriter.Device device() {
        return new ResultWriter.Device(Build.MANUFACTURER, Build.MODEL, abi(), Build.VERSION.RELEASE,
                Build.VERSION.SDK_INT, Runtime.getRuntime().availableProcessors());
    }

    /**
     * Benchmarks every backend the request names on a fixed input (the first sample image, or mid-grey), one
     * after the other; a backend that cannot be loaded yields an entry with its error instead of timings.
     */
    List<ResultWriter.Entry> benchmark(BenchRequest req) throws IOException {
        float[] x = firstInput();
        List<ResultWriter.Entry> out = new ArrayList<ResultWriter.Entry>();
        for (String backend : req.backends()) {
            String file = modelFile(backend);
            boolean xnn = !"lce".equals(backend) && req.xnnpack;
            String kernel = ResultWriter.kernelLabel(backend, abi(), xnn);
            if (file == null) {
                out.add(new ResultWriter.Entry("(none)", backend, kernel, req.threads, req.warmup, null,
                        "metadata.json lists no " + backend + " model"));
                continue;
            }
            try {
                TfliteModel model = open(backend, req.threads, req.xnnpack);
                try {
                    model.setInput(x);
                    LatencyStats s = Benchmark.run(model.inference(), req.warmup, req.runs, Benchmark.SYSTEM_CLOCK);
                    out.add(new ResultWriter.Entry(file, backend, kernel, req.threads, req.warmup, s, null));
                } finally {
                    model.close();
                }
            } catch (Exception e) { // e.g. "unresolved custom op: LceQuantize" without the LCE AAR
                out.add(new ResultWriter.Entry(file, backend, kernel, req.threads, req.warmup, null,
                        e.getClass().getSimpleName() + ": " + e.getMessage()));
            }
        }
        return out;
    }

    private float[] firstInput() throws IOException {
        if (!meta.samples.isEmpty()) {
            return pixels(meta.samples.get(0).file);
        }
        byte[] grey = new byte[meta.inputLength()];
        java.util.Arrays.fill(grey, (byte) 128);
        return preprocessor.fromRgbBytes(grey, meta.width, meta.height);
    }

    /** A sample asset as the model's NHWC input. */
    float[] pixels(String sampleFile) throws IOException {
        android.graphics.Bitmap bmp = assets.sample(sampleFile, meta.width, meta.height);
        int[] argb = new int[meta.width * meta.height];
        bmp.getPixels(argb, 0, meta.width, 0, 0, meta.width, meta.height);
        return preprocessor.fromArgbPixels(argb, meta.width, meta.height);
    }
}
