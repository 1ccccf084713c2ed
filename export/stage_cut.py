"""Cut a *given* exported file at its stage marks into teacher-forced stages (what ``export.verify`` judges).

Stage marks. Both exporters name the value at every stage boundary of ``model.stages(output)`` and every
binariser input inside a stage that is not the stage input (a Block's ``y``) ``burn_edge/<key>``, e.g.
``burn_edge/blocks.3`` and ``burn_edge/blocks.3:y`` (ONNX value names; TFLite tensor names). The marks
change no operator: they are names only (test: tests/export/test_verify_given.py).

Cutting. :func:`partition` assigns every operator of the file to one stage by data flow: an operator belongs
to stage k when all its non-constant inputs are values of stage k or the boundary mark of stage k-1. A file
whose operators cannot be assigned that way (an operator reading across a boundary, a mark produced in the
wrong stage, a missing or duplicated mark) raises :class:`CutError` and is not cut. A cut file becomes one
multi-input model: stage k's reads of mark k-1 are rewired to a new input ``<stage>:in``, and every mark is
an output. Running it on PyTorch's own stage inputs is teacher forcing *of the given file*, and since the
stages chain from the file's input to its output and cover every operator, a file whose every stage
matches computes the checkpoint's network.

Layouts: ONNX values are NCHW; TFLite values inside burn-edge's LCE model are NHWC *flipped in H and W*
(the flip trick, :mod:`export.lce`), except the model input (normal NHWC) and (N, C) vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

from export.errors import ExportError

MARK_PREFIX = "burn_edge/"


class CutError(ExportError):
    """The given file cannot be cut at stage marks (no marks, or marks inconsistent with its data flow)."""


def mark(key: str) -> str:
    """The value / tensor name of a stage mark: ``mark("blocks.3:y") == "burn_edge/blocks.3:y"``."""
    return MARK_PREFIX + key


def mark_keys(model, output: str = "logits") -> list[tuple[str, list[str]]]:
    """``[(stage, [inner keys])]`` in order: each stage of ``model.stages(output)`` with the keys of its
    binariser inputs that are not the stage input (``["blocks.3:y"]`` for a Block, ``[]`` otherwise)."""
    res = []
    for name, m in model.stages(output):
        inner = [f"{name}:{v}" for _, v in m.presign_points() if v != "x"] if hasattr(m, "presign_points") else []
        res.append((name, inner))
    return res


@dataclass(frozen=True)
class Op:
    """One operator of a file, in execution order: the value names / tensor ids it reads and writes."""

    inputs: tuple
    outputs: tuple


def partition(ops: list[Op], *, graph_input, consts: set, stage_outs: list, inner: dict) -> list[int]:
    """Stage index of every op (``len(stage_outs)`` for ops after the last stage, e.g. an output Identity).

    graph_input: the model input value (read by stage 0); consts: constant values (initializers, buffers);
    stage_outs: the boundary value of each stage, in order; inner: {value: stage index} for inner marks.
    Raises CutError when the data flow does not split at the marks.
    """
    n = len(stage_outs)
    boundary = {v: k for k, v in enumerate(stage_outs)}
    if len(boundary) != n:
        raise CutError("two stages share one boundary value")
    level = {graph_input: -1}  # a value's stage; boundary k is read by stage k + 1, the input by stage 0
    consts = set(consts)
    res = []
    for i, op in enumerate(ops):
        reads = set()
        for v in op.inputs:
            if v in consts or v in (None, "", -1):
                continue
            if v not in level:
                raise CutError(f"operator {i} reads {v!r}, which no earlier operator writes")
            reads.add(level[v] + 1 if (v in boundary and boundary[v] == level[v]) or v == graph_input else level[v])
        if not reads:  # constant-only operator (folding left in the file): its outputs are constants
            consts.update(op.outputs)
            res.append(-1)
            continue
        if len(reads) > 1:
            raise CutError(f"operator {i} reads values of stages {sorted(reads)}: it crosses a stage boundary")
        k = reads.pop()
        for v in op.outputs:
            level[v] = k
        res.append(k)
    for k, v in enumerate(stage_outs):
        if level.get(v) != k:
            raise CutError(f"stage mark {k} ({v!r}) is not written by stage {k}'s operators")
    for v, k in inner.items():
        if level.get(v) != k:
            raise CutError(f"inner mark {v!r} is not written by stage {k}'s operators")
    return res


def _resolve(names: dict, model, output: str) -> tuple[list, dict, list[str]]:
    """(boundary values, {inner value: stage}, keys of all marks in output order) from {mark name: value}."""
    stage_outs, inner, keys = [], {}, []
    for k, (stage, inner_keys) in enumerate(mark_keys(model, output)):
        for key in inner_keys + [stage]:
            if mark(key) not in names:
                raise CutError(f"the file has no stage mark {mark(key)!r}")
            keys.append(key)
        stage_outs.append(names[mark(stage)])
        inner |= {names[mark(key)]: k for key in inner_keys}
    return stage_outs, inner, keys


# ------------------------------------------------------------------------------------------------ ONNX

def cut_onnx(data: bytes, model, output: str = "logits") -> tuple[bytes, list[str], list[str]]:
    """The given ONNX file as one teacher-forcing model.

    Returns (model bytes, input names in stage order -- ``input`` for the first stage, ``<stage>:in``
    after --, output keys ``"<stage>"`` / ``"<stage>:y"`` in output order). Raises CutError.
    """
    import onnx
    from onnx import helper

    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise CutError(f"not a readable ONNX model ({type(e).__name__})") from None
    g = proto.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise CutError(f"expected one graph input and one output, found {len(g.input)} and {len(g.output)}")
    written = {o: o for node in g.node for o in node.output}
    marks = {v: v for v in written if v.startswith(MARK_PREFIX)}
    stage_outs, inner, keys = _resolve(marks, model, output)
    ops = [Op(tuple(nd.input), tuple(nd.output)) for nd in g.node]
    consts = {t.name for t in g.initializer}
    levels = partition(ops, graph_input=g.input[0].name, consts=consts, stage_outs=stage_outs, inner=inner)
    n = len(stage_outs)
    trailing = [nd for nd, k in zip(g.node, levels) if k == n]
    if not (len(trailing) == 1 and trailing[0].op_type == "Identity" and trailing[0].output[0] == g.output[0].name):
        raise CutError("the graph output is not the last stage's mark (through one Identity)")
    stages = [s for s, _ in mark_keys(model, output)]
    in_names = [g.input[0].name] + [f"{s}:in" for s in stages[1:]]
    nodes = []
    for nd, k in zip(g.node, levels):
        if k == n:
            continue
        new = onnx.NodeProto()
        new.CopyFrom(nd)
        if k >= 1:
            for j, v in enumerate(new.input):
                if v == stage_outs[k - 1]:
                    new.input[j] = in_names[k]
        nodes.append(new)
    types = _onnx_value_types(proto)
    for v in stage_outs[:-1] + [mark(key) for key in keys]:
        if v not in types:
            raise CutError(f"cannot infer the type and shape of {v!r}")
    inputs = [g.input[0]] + [helper.make_value_info(nm, types[v]) for nm, v in zip(in_names[1:], stage_outs[:-1])]
    outputs = [helper.make_value_info(mark(key), types[mark(key)]) for key in keys]
    graph = helper.make_graph(nodes, "stages", inputs, outputs, initializer=list(g.initializer))
    cut = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    return cut.SerializeToString(), in_names, keys


def _onnx_value_types(proto) -> dict:
    """{value name: TypeProto} of every value ONNX shape inference can type in ``proto`` (plus its outputs)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - inference errors on unusual graphs: no types, the caller says which
        return {}
    g = inferred.graph
    return {vi.name: vi.type for vi in list(g.value_info) + list(g.output) + list(g.input)}


# ------------------------------------------------------------------------------------------------ TFLite

def cut_tflite(data: bytes, model, output: str = "logits") -> tuple[bytes, list[str], list[str]]:
    """The given TFLite / LCE file as one teacher-forcing model (built with the schema's object API).

    Returns (flatbuffer, input keys in input order -- ``"<stage>:in"``, the first being the model input --,
    output keys in output order). Raises CutError.
    """
    from runtimes.tflite_flatbuffer import _need_schema, model_bytes, model_object

    schema = _need_schema()
    mt = model_object(data)
    g = mt.subgraphs[0]
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CutError(f"expected one model input and one output, found {len(g.inputs)} and {len(g.outputs)}")
    names: dict[str, int] = {}
    for i, t in enumerate(g.tensors):
        nm = (t.name or b"").decode("utf-8", "replace")
        if nm.startswith(MARK_PREFIX):
            if nm in names:
                raise CutError(f"two tensors are named {nm!r}")
            names[nm] = i
    stage_outs, inner, keys = _resolve(names, model, output)
    consts = {i for i, t in enumerate(g.tensors)
              if t.buffer and t.buffer < len(mt.buffers) and mt.buffers[t.buffer].data is not None
              and len(mt.buffers[t.buffer].data)}
    ops = [Op(tuple(op.inputs), tuple(op.outputs)) for op in g.operators]
    levels = partition(ops, graph_input=int(g.inputs[0]), consts=consts, stage_outs=stage_outs, inner=inner)
    n = len(stage_outs)
    if any(k == n for k in levels) or int(g.outputs[0]) != stage_outs[-1]:
        raise CutError("the model output is not the last stage's mark")
    stages = [s for s, _ in mark_keys(model, output)]
    new_in = [int(g.inputs[0])]
    empty = next((i for i, b in enumerate(mt.buffers) if b.data is None or not len(b.data)), 0)
    for k in range(1, n):
        src = g.tensors[stage_outs[k - 1]]
        t = schema.TensorT()
        t.shape, t.shapeSignature, t.type = src.shape, src.shapeSignature, src.type
        t.name, t.buffer = f"{stages[k]}:in".encode(), empty
        g.tensors.append(t)
        new_in.append(len(g.tensors) - 1)
    for op, k in zip(g.operators, levels):
        if k >= 1:
            op.inputs = [new_in[k] if v == stage_outs[k - 1] else v for v in op.inputs]
    g.inputs = new_in
    g.outputs = [names[mark(key)] for key in keys]
    mt.signatureDefs = None
    return model_bytes(mt, len(data) + 4096), [f"{s}:in" for s in stages], keys


def mark_tflite(data: bytes, tensor_marks: dict[str, str], main_mark: str) -> bytes:
    """Name an LCE/TFLite file's stage marks (used by :func:`export.lce.convert_marked`).

    tensor_marks: {signature output name (a Keras ``mark_<i>`` layer): mark key}; those outputs exist only to
    keep the tensors findable through conversion: their tensors are renamed ``burn_edge/<key>`` and they stop
    being model outputs. main_mark: the key of the remaining (real) output's tensor.
    """
    from runtimes.tflite_flatbuffer import model_bytes, model_object

    mt = model_object(data)
    g = mt.subgraphs[0]
    sd = mt.signatureDefs[0]
    by_name = {o.name.decode(): o.tensorIndex for o in sd.outputs}
    drop = set()
    for out_name, key in tensor_marks.items():
        t = by_name[out_name]
        g.tensors[t].name = mark(key).encode()
        drop.add(t)
    keep = [o for o in g.outputs if o not in drop]
    if len(keep) != 1:
        raise ExportError(f"expected one real model output beside the marks, found {len(keep)}")
    g.outputs = keep
    sd.outputs = [o for o in sd.outputs if o.tensorIndex not in drop]
    g.tensors[keep[0]].name = mark(main_mark).encode()
    return model_bytes(mt, len(data) + 4096)
