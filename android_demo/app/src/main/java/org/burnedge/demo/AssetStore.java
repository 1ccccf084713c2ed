package org.burnedge.demo;

import android.content.res.AssetFileDescriptor;
import android.content.res.AssetManager;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;

import org.burnedge.demo.logic.ModelMetadata;
import org.burnedge.demo.logic.Streams;
import org.json.JSONException;

/** Android glue: reads metadata.json, memory-maps models and decodes sample images from the APK's assets. */
final class AssetStore {
    static final String METADATA = "metadata.json";

    private final AssetManager assets;

    AssetStore(AssetManager assets) {
        this.assets = assets;
    }

    /**
     * Parses metadata.json; an IOException names the missing file and the command that writes it, or the key that
     * does not match the schema.
     */
    ModelMetadata metadata() throws IOException {
        String text;
        try {
            text = readText(METADATA);
        } catch (IOException e) {
            throw new IOException("assets/" + METADATA + " is missing: run `python -m export.android_assets ... -o "
                    + "android_demo/app/src/main/assets` and rebuild the app", e);
        }
        try {
            return ModelMetadata.parse(text);
        } catch (JSONException e) {
            throw new IOException("assets/" + METADATA + " does not match this app: " + e.getMessage(), e);
        }
    }

    /** Maps an (uncompressed, see noCompress in app/build.gradle) asset into memory for the TFLite interpreter. */
    MappedByteBuffer mapModel(String file) throws IOException {
        AssetFileDescriptor fd = assets.openFd(file);
        try {
            FileInputStream in = new FileInputStream(fd.getFileDescriptor());
            try {
                FileChannel ch = in.getChannel();
                return ch.map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
            } finally {
                in.close();
            }
        } finally {
            fd.close();
        }
    }

    /** Decodes a sample image; scaled (bilinear) to the model input size if it is not already that size. */
    Bitmap sample(String file, int width, int height) throws IOException {
        InputStream in = assets.open(file);
        Bitmap bmp;
        try {
            BitmapFactory.Options opts = new BitmapFactory.Options();
            opts.inPreferredConfig = Bitmap.Config.ARGB_8888;
            opts.inScaled = false;
            bmp = BitmapFactory.decodeStream(in, null, opts);
        } finally {
            in.close();
        }
        if (bmp == null) {
            throw new IOException("cannot decode image asset " + file);
        }
        if (bmp.getWidth() != width || bmp.getHeight() != height) {
            bmp = Bitmap.createScaledBitmap(bmp, width, height, true);
        }
        return bmp;
    }

    private String readText(String file) throws IOException {
        return new String(Streams.readAll(assets.open(file)), StandardCharsets.UTF_8);
    }
}
