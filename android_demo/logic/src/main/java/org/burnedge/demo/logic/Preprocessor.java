package org.burnedge.demo.logic;

/**
 * Turns an 8-bit RGB image of the model's input size into the model's NHWC float32 input.
 *
 * <p>Same arithmetic as the training code's {@code train.data.eval_transform} (torchvision
 * {@code ToDtype(float32, scale=True)} then {@code Normalize(mean, std)}), in float32:
 * {@code x[h][w][c] = (u8[h][w][c] * scale - mean[c]) / std[c]} with {@code scale = 1/255}.
 * Any H/W flip the LCE port needs is inside the exported model, so the image is fed upright.
 * Resizing is not done here: the Android glue scales bitmaps to H x W first.
 */
public final class Preprocessor {
    private final ModelMetadata meta;

    public Preprocessor(ModelMetadata meta) {
        this.meta = meta;
    }

    public int height() {
        return meta.height;
    }

    public int width() {
        return meta.width;
    }

    /**
     * Interleaved RGB bytes (row-major, H x W x 3, as read from a raw .rgb file) to H x W x 3 floats.
     */
    public float[] fromRgbBytes(byte[] rgb, int width, int height) {
        checkSize(width, height);
        if (rgb.length != width * height * 3) {
            throw new IllegalArgumentException("expected " + (width * height * 3) + " RGB bytes for " + width + "x"
                    + height + ", got " + rgb.length);
        }
        float[] out = new float[rgb.length];
        for (int p = 0; p < width * height; p++) {
            for (int c = 0; c < 3; c++) {
                out[3 * p + c] = normalise(rgb[3 * p + c] & 0xff, c);
            }
        }
        return out;
    }

    /**
     * Packed ARGB pixels (Android's {@code Bitmap.getPixels} layout, row-major) to H x W x 3 floats; alpha is ignored.
     */
    public float[] fromArgbPixels(int[] argb, int width, int height) {
        checkSize(width, height);
        if (argb.length != width * height) {
            throw new IllegalArgumentException("expected " + (width * height) + " pixels, got " + argb.length);
        }
        float[] out = new float[argb.length * 3];
        for (int p = 0; p < argb.length; p++) {
            int px = argb[p];
            out[3 * p] = normalise((px >> 16) & 0xff, 0);
            out[3 * p + 1] = normalise((px >> 8) & 0xff, 1);
            out[3 * p + 2] = normalise(px & 0xff, 2);
        }
        return out;
    }

    private float normalise(int u8, int c) {
        return ((float) u8 * meta.scale - meta.mean[c]) / meta.std[c];
    }

    private void checkSize(int width, int height) {
        if (width != meta.width || height != meta.height) {
            throw new IllegalArgumentException("image is " + width + "x" + height + " but the model takes "
                    + meta.width + "x" + meta.height + "; scale it first");
        }
    }
}
