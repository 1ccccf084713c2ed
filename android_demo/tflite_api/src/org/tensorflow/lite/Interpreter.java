package org.tensorflow.lite;

import java.io.File;
import java.nio.ByteBuffer;

/**
 * Compile-only: the constructors and {@link Options} setters of TensorFlow Lite's
 * {@code org.tensorflow.lite.Interpreter} that the demo app calls, with the real signatures (the setters return
 * {@code Interpreter.Options}, so calls chain). The real class comes from lce-lite or tensorflow-lite.
 */
public final class Interpreter extends InterpreterImpl implements InterpreterApi {

    /** Interpreter options; the real class has more setters than the two the app uses. */
    public static class Options extends InterpreterImpl.Options {
        public Options() {
        }

        @Override
        public Options setNumThreads(int numThreads) {
            throw CompileOnly.error();
        }

        @Override
        public Options setUseXNNPACK(boolean useXNNPACK) {
            throw CompileOnly.error();
        }
    }

    public Interpreter(File modelFile) {
        this(modelFile, null);
    }

    public Interpreter(File modelFile, Options options) {
        super(modelFile, options);
    }

    public Interpreter(ByteBuffer byteBuffer) {
        this(byteBuffer, null);
    }

    public Interpreter(ByteBuffer byteBuffer, Options options) {
        super(byteBuffer, options);
    }
}
