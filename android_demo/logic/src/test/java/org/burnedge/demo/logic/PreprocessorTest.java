package org.burnedge.demo.logic;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class PreprocessorTest {
    private final ModelMetadata meta = TestData.parsed(1, 2);
    private final Preprocessor pre = new Preprocessor(meta);

    @Test
    public void normalisesEachChannelWithItsMeanAndStd() {
        // pixel 0 = (0, 128, 255), pixel 1 = (255, 0, 64); NHWC order: all channels of a pixel together.
        byte[] rgb = {0, (byte) 128, (byte) 255, (byte) 255, 0, 64};
        float[] x = pre.fromRgbBytes(rgb, 2, 1);
        float[] expected = {
            (0f / 255f - 0.485f) / 0.229f, (128f / 255f - 0.456f) / 0.224f, (1f - 0.406f) / 0.225f,
            (1f - 0.485f) / 0.229f, (0f - 0.456f) / 0.224f, (64f / 255f - 0.406f) / 0.225f};
        assertArrayEquals(expected, x, 1e-6f);
    }

    @Test
    public void argbPixelsGiveTheSameTensorAsRgbBytes() {
        byte[] rgb = {10, 20, 30, (byte) 200, (byte) 150, (byte) 100};
        int[] argb = {0xff0a141e, 0x80c89664}; // alpha is ignored
        assertArrayEquals(pre.fromRgbBytes(rgb, 2, 1), pre.fromArgbPixels(argb, 2, 1), 0f);
    }

    @Test
    public void wrongImageSizeIsRejected() {
        try {
            pre.fromRgbBytes(new byte[12], 2, 2);
        } catch (IllegalArgumentException e) {
            assertEquals("image is 2x2 but the model takes 2x1; scale it first", e.getMessage());
            return;
        }
        throw new AssertionError("accepted a 2x2 image for a 2x1 model");
    }

    @Test(expected = IllegalArgumentException.class)
    public void wrongBufferLengthIsRejected() {
        pre.fromRgbBytes(new byte[5], 2, 1);
    }
}
