"""Builders for the tiny models the runtime tests run (each takes seconds; conftest builds them once)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from runtimes.format import META_INPUT_SIZE, META_LAYOUT, META_MEAN, META_OUTPUT, META_STD, sidecar_path

SIZE = 16  # input H = W
CLASSES = 5
MEAN, STD = [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]


def meta(layout: str) -> dict[str, str]:
    return {META_INPUT_SIZE: json.dumps([SIZE, SIZE]), META_MEAN: json.dumps(MEAN), META_STD: json.dumps(STD),
            META_LAYOUT: layout, META_OUTPUT: "logits"}


def build_onnx(path: Path) -> Path:
    """Conv3x3(3->4, pad 1) -> ReLU -> GlobalAveragePool -> Flatten -> Gemm(4->5); input (N, 3, 16, 16)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((CLASSES, 4)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            ["N", 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])], [w, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, meta("NCHW"))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras

    return tf_keras


def build_float_tflite(path: Path) -> Path:
    """tf_keras Conv2D(4, 3, same) -> ReLU -> GAP -> Dense(5), NHWC (1, 16, 16, 3), via tf.lite.TFLiteConverter."""
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = keras.Input((SIZE, SIZE, 3), batch_size=1)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    y = keras.layers.Dense(CLASSES)(keras.layers.GlobalAveragePooling2D()(y))
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, y))
    path.write_bytes(conv.convert())
    sidecar_path(path).write_text(json.dumps(meta("NHWC")))
    return path


def build_lce_tflite(path: Path) -> Path:
    """Conv2D(8) -> larq QuantConv2D(16, 3, same, pad 1, ste_sign in/kernel) -> BN -> GAP -> Dense(5),
    converted with ``larq_compute_engine.convert_keras_model`` (gives LceQuantize + LceBconv2d)."""
    import larq as lq
    from larq_compute_engine import convert_keras_model

    keras = _keras()
    keras.utils.set_random_seed(0)
    x = keras.Input((SIZE, SIZE, 3), batch_size=1)
    y = keras.layers.Conv2D(8, 3, padding="same")(x)
    y = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                              kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.Dense(CLASSES)(keras.layers.GlobalAveragePooling2D()(y))
    path.write_bytes(convert_keras_model(keras.Model(x, y)))
    sidecar_path(path).write_text(json.dumps(meta("NHWC")))
    return path
