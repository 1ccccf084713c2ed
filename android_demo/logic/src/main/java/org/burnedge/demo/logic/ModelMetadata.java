package org.burnedge.demo.logic;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The app's view of {@code metadata.json}, written by {@code python -m export.android_assets}.
 *
 * <p>The app never hard-codes preprocessing: input size, mean/std, scale and class names all come from here.
 * Schema (version 1; the Python writer documents the same keys):
 *
 * <pre>
 * {"format": "burn-edge/android-assets", "version": 1,
 *  "input": {"layout": "NHWC", "dtype": "float32", "batch": 1, "height": 32, "width": 32, "channels": 3,
 *            "color": "RGB", "scale": 0.00392156862745098, "mean": [..3..], "std": [..3..]},
 *  "output": {"kind": "logits", "num_classes": 10},
 *  "class_names": ["0", ...], "labels_file": "labels.txt",
 *  "models": {"lce": {"file": "model_lce.tflite", ...}, "float": {"file": "model_float.tflite", ...}},
 *  "samples": [{"file": "samples/0.png", "label": "0"}, ...], ...}
 * </pre>
 */
public final class ModelMetadata {
    public static final String FORMAT = "burn-edge/android-assets";
    public static final int VERSION = 1;

    public final int height;
    public final int width;
    public final int channels;
    /** Multiplier applied to a uint8 pixel before normalising (1/255). */
    public final float scale;
    public final float[] mean;
    public final float[] std;
    public final List<String> classNames;
    /** Asset file of the binary (LCE) model, or null if the assets hold none. */
    public final String lceModelFile;
    /** Asset file of the float twin, or null if the assets hold none. */
    public final String floatModelFile;
    public final List<Sample> samples;

    /** A bundled sample image (path relative to the assets root) and its true label. */
    public static final class Sample {
        public final String file;
        public final String label;

        public Sample(String file, String label) {
            this.file = file;
            this.label = label;
        }
    }

    private ModelMetadata(int height, int width, int channels, float scale, float[] mean, float[] std,
                          List<String> classNames, String lceModelFile, String floatModelFile, List<Sample> samples) {
        this.height = height;
        this.width = width;
        this.channels = channels;
        this.scale = scale;
        this.mean = mean;
        this.std = std;
        this.classNames = Collections.unmodifiableList(classNames);
        this.lceModelFile = lceModelFile;
        this.floatModelFile = floatModelFile;
        this.samples = Collections.unmodifiableList(samples);
    }

    /** Parses and validates metadata.json; errors are {@link Json.JsonException}s naming the bad key. */
    public static ModelMetadata parse(String jsonText) {
        Map<String, Object> root = Json.parseObject(jsonText);
        String format = Json.getString(root, "format");
        if (!FORMAT.equals(format)) {
            throw new Json.JsonException("not a burn-edge assets file: format is \"" + format + "\", expected \""
                    + FORMAT + "\"");
        }
        int version = Json.getInt(root, "version");
        if (version != VERSION) {
            throw new Json.JsonException("metadata version " + version + " is not supported by this app (reads "
                    + VERSION + "); rebuild the app or re-run python -m export.android_assets");
        }
        Map<String, Object> input = Json.getObject(root, "input");
        String layout = Json.getString(input, "layout");
        String dtype = Json.getString(input, "dtype");
        if (!"NHWC".equals(layout) || !"float32".equals(dtype)) {
            throw new Json.JsonException("input must be NHWC float32, got " + layout + " " + dtype);
        }
        if (Json.getInt(input, "batch") != 1) {
            throw new Json.JsonException("input batch must be 1");
        }
        int height = Json.getInt(input, "height");
        int width = Json.getInt(input, "width");
        int channels = Json.getInt(input, "channels");
        if (height < 1 || width < 1 || channels != 3) {
            throw new Json.JsonException("input must be H x W x 3 with H, W >= 1, got " + height + " x " + width
                    + " x " + channels);
        }
        String color = Json.getString(input, "color");
        if (!"RGB".equals(color)) {
            throw new Json.JsonException("input color must be RGB, got " + color);
        }
        float scale = (float) Json.getNumber(input, "scale");
        float[] mean = floats(Json.getArray(input, "mean"), "mean", channels);
        float[] std = floats(Json.getArray(input, "std"), "std", channels);
        for (float s : std) {
            if (!(s > 0f)) {
                throw new Json.JsonException("every std value must be > 0, got " + s);
            }
        }
        List<String> names = new ArrayList<String>();
        for (Object o : Json.getArray(root, "class_names")) {
            if (!(o instanceof String)) {
                throw new Json.JsonException("class_names must hold strings, got " + Json.typeName(o));
            }
            names.add((String) o);
        }
        Map<String, Object> output = Json.getObject(root, "output");
        int numClasses = Json.getInt(output, "num_classes");
        if (numClasses != names.size()) {
            throw new Json.JsonException("output.num_classes is " + numClasses + " but class_names has "
                    + names.size() + " entries");
        }
        Map<String, Object> models = Json.getObject(root, "models");
        String lce = modelFile(models, "lce");
        String flt = modelFile(models, "float");
        if (lce == null && flt == null) {
            throw new Json.JsonException("models lists neither an \"lce\" nor a \"float\" model");
        }
        List<Sample> samples = new ArrayList<Sample>();
        if (root.containsKey("samples")) {
            for (Object o : Json.getArray(root, "samples")) {
                if (!(o instanceof Map)) {
                    throw new Json.JsonException("samples must hold objects");
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> m = (Map<String, Object>) o;
                samples.add(new Sample(Json.getString(m, "file"), Json.getString(m, "label")));
            }
        }
        return new ModelMetadata(height, width, channels, scale, mean, std, names, lce, flt, samples);
    }

    /** Number of float32 values of one input tensor (1 x H x W x C). */
    public int inputLength() {
        return height * width * channels;
    }

    private static String modelFile(Map<String, Object> models, String key) {
        if (!models.containsKey(key) || models.get(key) == null) {
            return null;
        }
        return Json.getString(Json.getObject(models, key), "file");
    }

    private static float[] floats(List<Object> values, String key, int n) {
        if (values.size() != n) {
            throw new Json.JsonException("\"" + key + "\" must have " + n + " values, got " + values.size());
        }
        float[] out = new float[n];
        for (int k = 0; k < n; k++) {
            Object o = values.get(k);
            if (!(o instanceof Double)) {
                throw new Json.JsonException("\"" + key + "\" must hold numbers, got " + Json.typeName(o));
            }
            out[k] = (float) (double) (Double) o;
        }
        return out;
    }
}
