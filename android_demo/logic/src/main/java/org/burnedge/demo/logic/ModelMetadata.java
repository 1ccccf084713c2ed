package org.burnedge.demo.logic;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

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

    /**
     * Parses and validates metadata.json. Every error is a {@link JSONException} whose message names the bad key:
     * unlike org.json's own getters, the typed readers below never coerce (a string is not a number, 32.5 is not an
     * integer), so a writer that drifts from the schema fails here instead of being silently rounded.
     */
    public static ModelMetadata parse(String jsonText) throws JSONException {
        JSONObject root = new JSONObject(jsonText);
        String format = string(root, "format");
        if (!FORMAT.equals(format)) {
            throw new JSONException("not a burn-edge assets file: format is \"" + format + "\", expected \""
                    + FORMAT + "\"");
        }
        int version = integer(root, "version");
        if (version != VERSION) {
            throw new JSONException("metadata version " + version + " is not supported by this app (reads "
                    + VERSION + "); rebuild the app or re-run python -m export.android_assets");
        }
        JSONObject input = root.getJSONObject("input");
        String layout = string(input, "layout");
        String dtype = string(input, "dtype");
        if (!"NHWC".equals(layout) || !"float32".equals(dtype)) {
            throw new JSONException("input must be NHWC float32, got " + layout + " " + dtype);
        }
        if (integer(input, "batch") != 1) {
            throw new JSONException("input batch must be 1");
        }
        int height = integer(input, "height");
        int width = integer(input, "width");
        int channels = integer(input, "channels");
        if (height < 1 || width < 1 || channels != 3) {
            throw new JSONException("input must be H x W x 3 with H, W >= 1, got " + height + " x " + width
                    + " x " + channels);
        }
        String color = string(input, "color");
        if (!"RGB".equals(color)) {
            throw new JSONException("input color must be RGB, got " + color);
        }
        float scale = (float) number(input, "scale");
        float[] mean = floats(input, "mean", channels);
        float[] std = floats(input, "std", channels);
        for (float s : std) {
            if (!(s > 0f)) {
                throw new JSONException("every std value must be > 0, got " + s);
            }
        }
        List<String> names = new ArrayList<String>();
        JSONArray classNames = root.getJSONArray("class_names");
        for (int k = 0; k < classNames.length(); k++) {
            names.add(string(classNames.get(k), "class_names[" + k + "]"));
        }
        int numClasses = integer(root.getJSONObject("output"), "num_classes");
        if (numClasses != names.size()) {
            throw new JSONException("output.num_classes is " + numClasses + " but class_names has "
                    + names.size() + " entries");
        }
        JSONObject models = root.getJSONObject("models");
        String lce = modelFile(models, "lce");
        String flt = modelFile(models, "float");
        if (lce == null && flt == null) {
            throw new JSONException("models lists neither an \"lce\" nor a \"float\" model");
        }
        List<Sample> samples = new ArrayList<Sample>();
        if (root.has("samples")) {
            JSONArray list = root.getJSONArray("samples");
            for (int k = 0; k < list.length(); k++) {
                JSONObject m = list.getJSONObject(k);
                samples.add(new Sample(string(m, "file"), string(m, "label")));
            }
        }
        return new ModelMetadata(height, width, channels, scale, mean, std, names, lce, flt, samples);
    }

    /** Number of float32 values of one input tensor (1 x H x W x C). */
    public int inputLength() {
        return height * width * channels;
    }

    private static String modelFile(JSONObject models, String key) throws JSONException {
        return models.isNull(key) ? null : string(models.getJSONObject(key), "file");
    }

    private static float[] floats(JSONObject obj, String key, int n) throws JSONException {
        JSONArray values = obj.getJSONArray(key);
        if (values.length() != n) {
            throw new JSONException("\"" + key + "\" must have " + n + " values, got " + values.length());
        }
        float[] out = new float[n];
        for (int k = 0; k < n; k++) {
            out[k] = (float) number(values.get(k), key + "[" + k + "]");
        }
        return out;
    }

    private static String string(JSONObject obj, String key) throws JSONException {
        return string(obj.get(key), key);
    }

    private static String string(Object v, String what) throws JSONException {
        if (!(v instanceof String)) {
            throw new JSONException("\"" + what + "\" must be a string, got " + describe(v));
        }
        return (String) v;
    }

    private static double number(JSONObject obj, String key) throws JSONException {
        return number(obj.get(key), key);
    }

    private static double number(Object v, String what) throws JSONException {
        if (!(v instanceof Number)) {
            throw new JSONException("\"" + what + "\" must be a number, got " + describe(v));
        }
        return ((Number) v).doubleValue();
    }

    private static int integer(JSONObject obj, String key) throws JSONException {
        double d = number(obj, key);
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw new JSONException("\"" + key + "\" must be an integer, got " + obj.get(key));
        }
        return (int) d;
    }

    private static String describe(Object v) {
        return v == JSONObject.NULL ? "null" : v.getClass().getSimpleName() + " " + v;
    }
}
