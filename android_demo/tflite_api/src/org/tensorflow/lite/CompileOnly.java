package org.tensorflow.lite;

/** Not part of TensorFlow Lite: the error every body of this compile-only API throws if it were ever run. */
final class CompileOnly {
    private CompileOnly() {
    }

    static UnsupportedOperationException error() {
        return new UnsupportedOperationException("compile-only TensorFlow Lite API: the real classes come from "
                + "lce-lite or tensorflow-lite (see android_demo/README.md)");
    }
}
