package org.tensorflow.lite;

/** Compile-only: the shape accessors of TensorFlow Lite's {@code org.tensorflow.lite.Tensor} interface. */
public interface Tensor {
    int numDimensions();

    int numBytes();

    int numElements();

    int[] shape();

    int[] shapeSignature();

    int index();
}
