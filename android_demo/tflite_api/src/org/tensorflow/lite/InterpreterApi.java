package org.tensorflow.lite;

/**
 * Compile-only: the members of TensorFlow Lite's {@code org.tensorflow.lite.InterpreterApi} that the demo app calls,
 * with the real signatures and type hierarchy. No behaviour; never packaged into an APK (android_demo/tflite_api/).
 */
public interface InterpreterApi extends AutoCloseable {

    /** Options shared by every interpreter implementation. */
    class Options {
        public Options() {
        }

        public Options setNumThreads(int numThreads) {
            throw CompileOnly.error();
        }

        public Options setUseXNNPACK(boolean useXNNPACK) {
            throw CompileOnly.error();
        }
    }

    void run(Object input, Object output);

    Tensor getInputTensor(int inputIndex);

    Tensor getOutputTensor(int outputIndex);

    @Override
    void close();
}
