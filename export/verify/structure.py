"""Structural comparison of a file without stage marks with a fresh export: operators, options, constants.

None when the given file has the same operator sequence (types, attributes/options) and bit-identical
constants as the fresh export; else the first difference. Names (of values, tensors, marks) are ignored."""

from __future__ import annotations

import numpy as np


def _arr_diff(a: np.ndarray, b: np.ndarray) -> str | None:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"shape/type {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
    if a.tobytes() == b.tobytes():
        return None
    if a.dtype.kind == "f":
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return (f"{int((a != b).sum())} of {a.size} values differ, max |diff| {np.nanmax(d):.3g} "
                f"(max |fresh| {np.abs(b).max(initial=0):.3g})")
    return f"{int((a != b).sum())} of {a.size} values differ"


def structural_difference(kind: str, given: bytes, fresh: bytes) -> str | None:
    """None when ``given`` has the same operator sequence (types, attributes/options) and bit-identical
    constants as ``fresh``; else the first difference, e.g. ``"op 41 (BatchNormalization) input 3: 16 of
    64 values differ, max |diff| 0.7"``. Names (of values, tensors, marks) are ignored."""
    return (_onnx_difference if kind == "onnx" else _tflite_difference)(given, fresh)


def _onnx_difference(given: bytes, fresh: bytes) -> str | None:
    import onnx
    from onnx import helper, numpy_helper

    try:
        a = onnx.load_from_string(given).graph
    except Exception as e:  # noqa: BLE001
        return f"not a readable ONNX model ({type(e).__name__})"
    b = onnx.load_from_string(fresh).graph
    ca = {t.name: t for t in a.initializer}
    cb = {t.name: t for t in b.initializer}
    if len(a.node) != len(b.node):
        return f"{len(a.node)} operators, a fresh export has {len(b.node)}"
    for i, (na, nb) in enumerate(zip(a.node, b.node)):
        where = f"op {i} ({nb.op_type}, fresh export's {nb.name})"
        if na.op_type != nb.op_type:
            return f"{where}: is {na.op_type}"
        at = {x.name: helper.get_attribute_value(x) for x in na.attribute}
        bt = {x.name: helper.get_attribute_value(x) for x in nb.attribute}
        if at != bt:
            return f"{where}: attributes {at} vs {bt}"
        if len(na.input) != len(nb.input):
            return f"{where}: {len(na.input)} inputs vs {len(nb.input)}"
        for j, (xa, xb) in enumerate(zip(na.input, nb.input)):
            if (xa in ca) != (xb in cb):
                return f"{where} input {j}: constant in one file only"
            if xb in cb and (d := _arr_diff(numpy_helper.to_array(ca[xa]), numpy_helper.to_array(cb[xb]))):
                return f"{where} input {j}: {d}"
    return None


def _options(op) -> dict:
    """An operator's builtin options as plain values (arrays as lists), comparable with ``==``."""
    o = op.builtinOptions
    return {} if o is None else {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in vars(o).items()}


def _tflite_difference(given: bytes, fresh: bytes) -> str | None:
    from runtimes.tflite_flatbuffer import model_object, read_ops

    ma, mb = model_object(given), model_object(fresh)
    ga, gb = ma.subgraphs[0], mb.subgraphs[0]
    names_a, names_b = [o.name for o in read_ops(given)], [o.name for o in read_ops(fresh)]
    if len(names_a) != len(names_b):
        return f"{len(names_a)} operators, a fresh export has {len(names_b)}"

    def const(m, g, t):
        if t < 0:
            return None
        tt = g.tensors[t]
        buf = m.buffers[tt.buffer].data if tt.buffer < len(m.buffers) else None
        return None if buf is None or not len(buf) else np.asarray(buf, np.uint8)

    for i, (oa, ob) in enumerate(zip(ga.operators, gb.operators)):
        where = f"op {i} ({names_b[i]})"
        if names_a[i] != names_b[i]:
            return f"{where}: is {names_a[i]}"
        if oa.builtinOptionsType != ob.builtinOptionsType or _options(oa) != _options(ob):
            return f"{where}: builtin options {_options(oa)} vs {_options(ob)}"
        if bytes(np.asarray(oa.customOptions if oa.customOptions is not None else [], np.uint8)) != bytes(
                np.asarray(ob.customOptions if ob.customOptions is not None else [], np.uint8)):
            return f"{where}: custom options differ"
        if len(oa.inputs) != len(ob.inputs):
            return f"{where}: {len(oa.inputs)} inputs vs {len(ob.inputs)}"
        for j, (ta, tb) in enumerate(zip(oa.inputs, ob.inputs)):
            xa, xb = const(ma, ga, ta), const(mb, gb, tb)
            if (xa is None) != (xb is None):
                return f"{where} input {j}: constant in one file only"
            if xb is None:
                continue
            dt = np.float32 if gb.tensors[tb].type == 0 and xb.size % 4 == 0 else np.uint8
            if xa.size != xb.size:
                return f"{where} input {j}: {xa.size} bytes vs {xb.size}"
            if d := _arr_diff(xa.view(dt), xb.view(dt)):
                return f"{where} input {j}: {d}"
            if list(ga.tensors[ta].shape) != list(gb.tensors[tb].shape):
                return f"{where} input {j}: shape {list(ga.tensors[ta].shape)} vs {list(gb.tensors[tb].shape)}"
    return None
