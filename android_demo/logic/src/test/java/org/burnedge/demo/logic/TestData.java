package org.burnedge.demo.logic;

import org.json.JSONException;

/** A valid metadata.json for tests, in the shape the Python assets step writes. */
final class TestData {
    private TestData() {
    }

    static String metadata(int height, int width) {
        return "{\"format\": \"burn-edge/android-assets\", \"version\": 1,\n"
                + " \"input\": {\"layout\": \"NHWC\", \"dtype\": \"float32\", \"batch\": 1, \"height\": " + height
                + ", \"width\": " + width + ", \"channels\": 3, \"color\": \"RGB\", \"scale\": 0.00392156862745098,"
                + " \"mean\": [0.485, 0.456, 0.406], \"std\": [0.229, 0.224, 0.225]},\n"
                + " \"output\": {\"kind\": \"logits\", \"num_classes\": 3},\n"
                + " \"class_names\": [\"cat\", \"dog\", \"b\\u00e4r\"], \"labels_file\": \"labels.txt\",\n"
                + " \"models\": {\"lce\": {\"file\": \"model_lce.tflite\"}, \"float\": null},\n"
                + " \"samples\": [{\"file\": \"samples/0.png\", \"label\": \"cat\"}]}";
    }

    /** {@link #metadata} parsed; a parse error fails the test that asked for it. */
    static ModelMetadata parsed(int height, int width) {
        try {
            return ModelMetadata.parse(metadata(height, width));
        } catch (JSONException e) {
            throw new AssertionError("TestData.metadata does not parse: " + e.getMessage(), e);
        }
    }
}
