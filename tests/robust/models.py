"""Hostile model files for the robustness tests, built from the real tiny models (no mocks)."""

from __future__ import annotations

import struct

import numpy as np

from runtimes import tflite_verify as tv


def _conv_options(data: bytes) -> tuple[tv._Verifier, dict[str, int]]:
    """Field positions of the first Conv2DOptions table in a TFLite flatbuffer."""
    tables, enums = tv.load_schema()
    v = tv._Verifier(data, tables, enums)
    model = tv._fields(v, v.deref(0, "root"), "Model")
    graph = tv._fields(v, tv._vec_tables(v, model["Subgraphs"])[0], "SubGraph")
    for op in tv._vec_tables(v, graph["Operators"]):
        of = tv._fields(v, op, "Operator")
        if "BuiltinOptions" in of and enums["BuiltinOptions"].get(v.u8(of["BuiltinOptionsType"])) == "Conv2DOptions":
            return v, tv._fields(v, v.deref(of["BuiltinOptions"], "options"), "Conv2DOptions")
    raise AssertionError("no CONV_2D with options in this model")


def zero_conv_stride(data: bytes) -> bytes:
    """The same model with the first CONV_2D's stride_w set to 0: structurally valid (the flatbuffer verifier
    accepts it) but LCE's interpreter aborts (SIGABRT) on it in Prepare."""
    _, f = _conv_options(data)
    out = bytearray(data)
    struct.pack_into("<i", out, f["StrideW"], 0)
    return bytes(out)


def onnx_with_inputs(path, inputs: list[tuple[str, int, list]], op: str = "Identity"):
    """A one-node ONNX model over ``inputs`` [(name, TensorProto type, shape)] (no burn_edge metadata)."""
    import onnx
    from onnx import helper

    vis = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    names = [n for n, _, _ in inputs]
    node = helper.make_node(op, names, ["y"])
    out_t = inputs[0][1]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", out_t, inputs[0][2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
