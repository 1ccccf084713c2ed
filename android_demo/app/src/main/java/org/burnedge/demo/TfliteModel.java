package org.burnedge.demo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.util.Arrays;

import org.burnedge.demo.logic.Benchmark;
import org.burnedge.demo.logic.ModelMetadata;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * Android-side wrapper of one TFLite interpreter: NHWC float32 input (1, H, W, 3), logits output (1, K).
 *
 * <p>The LCE model runs with XNNPACK disabled, as LCE's Android guide instructs for its example app (LCE's own
 * kernels do the binary work); the float twin may use XNNPACK ({@code xnnpack}), and the result file records which.
 * Not thread-safe: one caller at a time.
 */
final class TfliteModel implements AutoCloseable {
    final String file;
    final String backend;
    final int threads;
    final boolean xnnpack;
    private final Interpreter interpreter;
    private final ByteBuffer input;
    private final float[][] output;
    private final int numClasses;

    TfliteModel(MappedByteBuffer model, String file, String backend, ModelMetadata meta, int threads,
                boolean xnnpack) {
        this.file = file;
        this.backend = backend;
        this.threads = threads;
        this.xnnpack = "lce".equals(backend) ? false : xnnpack;
        Interpreter.Options options = new Interpreter.Options();
        options.setNumThreads(threads);
        options.setUseXNNPACK(this.xnnpack);
        // Throws IllegalArgumentException("... unresolved custom op: LceQuantize ...") without the LCE AAR.
        this.interpreter = new Interpreter(model, options);
        int[] inShape = interpreter.getInputTensor(0).shape();
        int[] want = {1, meta.height, meta.width, meta.channels};
        if (!Arrays.equals(inShape, want)) {
            interpreter.close();
            throw new IllegalArgumentException(file + " takes input " + Arrays.toString(inShape)
                    + " but metadata.json says " + Arrays.toString(want) + " (NHWC, batch 1)");
        }
        Tensor out = interpreter.getOutputTensor(0);
        int[] outShape = out.shape();
        numClasses = outShape[outShape.length - 1];
        if (out.numElements() != numClasses || numClasses != meta.classNames.size()) {
            interpreter.close();
            throw new IllegalArgumentException(file + " outputs " + Arrays.toString(outShape) + " but there are "
                    + meta.classNames.size() + " class names");
        }
        input = ByteBuffer.allocateDirect(4 * meta.inputLength()).order(ByteOrder.nativeOrder());
        output = new float[1][numClasses];
    }

    /** Runs one NHWC image (from {@code Preprocessor}) and returns a copy of the K logits. */
    float[] run(float[] nhwc) {
        setInput(nhwc);
        interpreter.run(input, output);
        return output[0].clone();
    }

    /** Loads an input once; {@link #inference()} then re-runs the interpreter on it (for timing). */
    void setInput(float[] nhwc) {
        input.rewind();
        FloatBuffer fb = input.asFloatBuffer();
        fb.put(nhwc);
        input.rewind();
    }

    /** One interpreter call on the current input, as the benchmark loop's unit of work. */
    Benchmark.Inference inference() {
        return new Benchmark.Inference() {
            @Override
            public void run() {
                input.rewind();
                interpreter.run(input, output);
            }
        };
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
