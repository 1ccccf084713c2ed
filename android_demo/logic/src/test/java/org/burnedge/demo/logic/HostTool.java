package org.burnedge.demo.logic;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Host-side entry point used by the Python tests (tests/android/) to check that Java and Python agree. Not
 * shipped in the app. Commands:
 *
 * <pre>
 * preprocess METADATA.json IMAGE.rgb WIDTH HEIGHT OUT.f32   raw RGB bytes -> little-endian float32 NHWC tensor
 * stats SAMPLES.txt OUT.json                                 one latency (ms) per line -> LatencyStats as JSON
 * sample-result METADATA.json OUT.json                       a real ResultWriter file (host JVM "device")
 * describe METADATA.json OUT.json                            what ModelMetadata.parse read, as JSON
 * </pre>
 */
public final class HostTool {
    private HostTool() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 6 && args[0].equals("preprocess")) {
            ModelMetadata meta = ModelMetadata.parse(readText(args[1]));
            float[] x = new Preprocessor(meta).fromRgbBytes(readBytes(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]));
            ByteBuffer buf = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(x);
            writeBytes(args[5], buf.array());
        } else if (args.length == 3 && args[0].equals("stats")) {
            List<Double> values = new ArrayList<Double>();
            for (String line : readText(args[1]).split("\n")) {
                if (!line.trim().isEmpty()) {
                    values.add(Double.valueOf(line.trim()));
                }
            }
            double[] ms = new double[values.size()];
            for (int k = 0; k < ms.length; k++) {
                ms[k] = values.get(k);
            }
            LatencyStats s = LatencyStats.fromMillis(ms);
            String json = new JSONObject().put("runs", s.runs).put("median_ms", s.medianMs).put("p10_ms", s.p10Ms)
                    .put("p90_ms", s.p90Ms).put("mean_ms", s.meanMs).put("min_ms", s.minMs).put("max_ms", s.maxMs)
                    .toString();
            writeBytes(args[2], json.getBytes(StandardCharsets.UTF_8));
        } else if (args.length == 3 && args[0].equals("describe")) {
            writeBytes(args[2], describe(ModelMetadata.parse(readText(args[1]))).getBytes(StandardCharsets.UTF_8));
        } else if (args.length == 3 && args[0].equals("sample-result")) {
            writeBytes(args[2], sampleResult(ModelMetadata.parse(readText(args[1]))).getBytes(StandardCharsets.UTF_8));
        } else {
            System.err.println("usage: HostTool preprocess META RGB W H OUT | stats IN OUT | sample-result META OUT"
                    + " | describe META OUT");
            System.exit(2);
        }
    }

    static String describe(ModelMetadata m) throws JSONException {
        JSONObject o = new JSONObject().put("height", m.height).put("width", m.width).put("channels", m.channels)
                .put("scale", (double) m.scale);
        for (String key : new String[] {"mean", "std"}) {
            JSONArray values = new JSONArray();
            for (float v : key.equals("mean") ? m.mean : m.std) {
                values.put((double) v);
            }
            o.put(key, values);
        }
        o.put("class_names", new JSONArray(m.classNames));
        o.put("lce", ResultWriter.orNull(m.lceModelFile)).put("float", ResultWriter.orNull(m.floatModelFile));
        JSONArray samples = new JSONArray();
        for (ModelMetadata.Sample s : m.samples) {
            samples.put(new JSONArray().put(s.file).put(s.label));
        }
        return o.put("samples", samples).toString();
    }

    /**
     * A result file as the app writes it, timing real work on this JVM (preprocessing a mid-grey image stands in
     * for an interpreter call) for each model the metadata lists, plus one failed entry.
     */
    static String sampleResult(ModelMetadata meta) throws Exception {
        final Preprocessor pre = new Preprocessor(meta);
        final byte[] image = new byte[meta.inputLength()];
        java.util.Arrays.fill(image, (byte) 128);
        Benchmark.Inference work = new Benchmark.Inference() {
            @Override
            public void run() {
                pre.fromRgbBytes(image, meta.width, meta.height);
            }
        };
        String abi = System.getProperty("os.arch");
        ResultWriter.Device dev = new ResultWriter.Device("host", "jvm-" + System.getProperty("java.version"), abi,
                "n/a", 0, Runtime.getRuntime().availableProcessors());
        BenchRequest req = new BenchRequest("both", 2, 7, 3, BenchRequest.DEFAULT_OUT, true);
        ResultWriter w = new ResultWriter("org.burnedge.demo", "host-test", "host-jvm", dev, req);
        String[][] models = {{"lce", meta.lceModelFile}, {"float", meta.floatModelFile}};
        for (String[] m : models) {
            String kernel = ResultWriter.kernelLabel(m[0], abi, req.xnnpack);
            if (m[1] == null) {
                w.add(new ResultWriter.Entry("(none)", m[0], kernel, req.threads, req.warmup, null,
                        "metadata lists no " + m[0] + " model"));
            } else {
                LatencyStats s = Benchmark.run(work, req.warmup, req.runs, Benchmark.SYSTEM_CLOCK);
                w.add(new ResultWriter.Entry(m[1], m[0], kernel, req.threads, req.warmup, s, null));
            }
        }
        w.add(new ResultWriter.Entry("missing.tflite", "lce", ResultWriter.kernelLabel("lce", abi, false), 1, 0, null,
                "Encountered unresolved custom op: LceQuantize (example failure)"));
        return w.toJson(System.currentTimeMillis());
    }

    private static byte[] readBytes(String path) throws IOException {
        return Streams.readAll(new FileInputStream(new File(path)));
    }

    private static String readText(String path) throws IOException {
        return new String(readBytes(path), StandardCharsets.UTF_8);
    }

    private static void writeBytes(String path, byte[] data) throws IOException {
        OutputStream out = new FileOutputStream(new File(path));
        try {
            out.write(data);
        } finally {
            out.close();
        }
    }
}
