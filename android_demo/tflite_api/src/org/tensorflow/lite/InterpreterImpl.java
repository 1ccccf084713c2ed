package org.tensorflow.lite;

import java.io.File;
import java.nio.ByteBuffer;

/** Compile-only: package-private base class of {@link Interpreter}, as in TensorFlow Lite. */
class InterpreterImpl implements InterpreterApi {

    static class Options extends InterpreterApi.Options {
        public Options() {
        }
    }

    InterpreterImpl(File modelFile, Options options) {
        throw CompileOnly.error();
    }

    InterpreterImpl(ByteBuffer byteBuffer, Options options) {
        throw CompileOnly.error();
    }

    @Override
    public void run(Object input, Object output) {
        throw CompileOnly.error();
    }

    @Override
    public Tensor getInputTensor(int inputIndex) {
        throw CompileOnly.error();
    }

    @Override
    public Tensor getOutputTensor(int outputIndex) {
        throw CompileOnly.error();
    }

    @Override
    public void close() {
        throw CompileOnly.error();
    }
}
