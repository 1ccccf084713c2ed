package org.burnedge.demo.logic;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import org.json.JSONException;
import org.junit.Test;

public class ModelMetadataTest {

    @Test
    public void readsEveryField() throws JSONException {
        ModelMetadata m = ModelMetadata.parse(TestData.metadata(4, 6));
        assertEquals(4, m.height);
        assertEquals(6, m.width);
        assertEquals(3, m.channels);
        assertEquals(4 * 6 * 3, m.inputLength());
        assertEquals((float) (1.0 / 255.0), m.scale, 0f);
        assertArrayEquals(new float[] {0.485f, 0.456f, 0.406f}, m.mean, 0f);
        assertArrayEquals(new float[] {0.229f, 0.224f, 0.225f}, m.std, 0f);
        assertEquals(Arrays.asList("cat", "dog", "b\u00e4r"), m.classNames);
        assertEquals("model_lce.tflite", m.lceModelFile);
        assertNull(m.floatModelFile);
        assertEquals(1, m.samples.size());
        assertEquals("samples/0.png", m.samples.get(0).file);
        assertEquals("cat", m.samples.get(0).label);
    }

    private static void assertRejected(String json, String messagePart) {
        try {
            ModelMetadata.parse(json);
            fail("accepted: " + json);
        } catch (JSONException e) {
            assertTrue(e.getMessage() + " should contain " + messagePart, e.getMessage().contains(messagePart));
        }
    }

    @Test
    public void rejectsWrongFormatVersionAndShapes() {
        String ok = TestData.metadata(4, 6);
        assertRejected(ok.replace("burn-edge/android-assets", "other"), "not a burn-edge assets file");
        assertRejected(ok.replace("\"version\": 1", "\"version\": 2"), "metadata version 2 is not supported");
        assertRejected(ok.replace("NHWC", "NCHW"), "input must be NHWC float32");
        assertRejected(ok.replace("\"channels\": 3", "\"channels\": 1"), "H x W x 3");
        assertRejected(ok.replace("[0.229, 0.224, 0.225]", "[0.229, 0.0, 0.225]"), "std value must be > 0");
        assertRejected(ok.replace("[0.485, 0.456, 0.406]", "[0.485, 0.456]"), "\"mean\" must have 3 values");
        assertRejected(ok.replace("\"num_classes\": 3", "\"num_classes\": 4"), "class_names has 3 entries");
        assertRejected(ok.replace("{\"file\": \"model_lce.tflite\"}", "null"), "neither");
        assertRejected(ok.replace("\"batch\": 1", "\"batch\": 8"), "batch must be 1");
    }

    @Test
    public void typesAreCheckedNotCoerced() {
        String ok = TestData.metadata(4, 6);
        assertRejected(ok.replace("\"height\": 4", "\"height\": 4.5"), "\"height\" must be an integer, got 4.5");
        assertRejected(ok.replace("\"height\": 4", "\"height\": \"4\""), "\"height\" must be a number");
        assertRejected(ok.replace("\"color\": \"RGB\"", "\"color\": 3"), "\"color\" must be a string");
        assertRejected(ok.replace("[\"cat\", \"dog\"", "[\"cat\", 2"), "\"class_names[1]\" must be a string");
        assertRejected(ok.replace("[0.485, 0.456, 0.406]", "[0.485, true, 0.406]"), "\"mean[1]\" must be a number");
        assertRejected(ok.replace("\"layout\": \"NHWC\", ", ""), "layout");
        assertRejected(ok.substring(0, ok.length() / 2), "");
    }

    @Test
    public void aWholeNumberWrittenAsFloatIsAnInteger() throws JSONException {
        String text = TestData.metadata(4, 6).replace("\"height\": 4", "\"height\": 4.0");
        assertEquals(4, ModelMetadata.parse(text).height);
    }
}
