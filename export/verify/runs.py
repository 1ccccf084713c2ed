"""Running PyTorch and the runtimes: PyTorch's stage inputs/outputs, the given files (whole, or cut into their
own stages at the stage marks), fresh exports (whole, isolated stages, chained taps). Every runtime is opened
through :func:`runtimes.session.open_session`."""

from __future__ import annotations

import numpy as np
import torch

from export.stage_cut import cut_onnx, cut_tflite
from runtimes.session import open_session
from train.models.reactnet import ReActNetA


def _lce_run(flatbuffer: bytes, kernel: str, inputs: list[np.ndarray], what: str) -> list[np.ndarray]:
    """Run an LCE model on NCHW / (N, C) batches (one per model input, in input order); outputs NCHW."""
    return [nchw(o) for o in run_session(flatbuffer, f"lce-{kernel}", [nhwc(a) for a in inputs], what)]


def _keras_input_name(tensor_name: str) -> str:
    """A converted Keras model's input tensor name -> the Keras input name (``serving_default_s03_in:0`` ->
    ``s03_in``)."""
    return tensor_name.removeprefix("serving_default_").rsplit(":", 1)[0]


def whole_model_outputs(model: ReActNetA, runtimes, x: np.ndarray, output: str, onnx_path=None,
                        lce_path=None) -> dict[str, np.ndarray]:
    """{runtime: (N, K) output of the whole model} for the given files (run as is; :func:`verify` test-loads
    them in a child process first) or fresh ONNX exports. Fresh LCE whole models come with the stage model
    (:func:`isolated_outputs`), one conversion for both."""
    from export.onnx_graph import build_onnx

    res = {}
    if "onnxruntime" in runtimes:
        if onnx_path:
            sess = open_session(onnx_path, "onnxruntime")
        else:
            sess = open_session(build_onnx(model, output=output).SerializeToString(), "onnxruntime",
                                what="the fresh ONNX export")
        res["onnxruntime"] = next(iter(sess.run([x]).values()))
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts and lce_path:
        for rt in lce_rts:
            sess = open_session(lce_path, rt)
            res[rt] = nchw(next(iter(sess.run_batched([nhwc(x)]).values())))
    return res


def isolated_outputs(model: ReActNetA, runtimes, stage_inputs: dict[str, np.ndarray], output: str,
                     lce_whole_input: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Teacher-forced outputs: {runtime: {"<stage>" or "<stage>:<value>": array (NCHW / (N, C))}}.

    stage_inputs: {stage: PyTorch's (N, ...) input to it}. One multi-input model per runtime family
    (``onnx_graph.build_isolated`` / ``lce.build_isolated_keras``), one conversion for all LCE kernels.
    ``lce_whole_input`` (N, 3, S, S): the LCE model also holds the whole network, run on these images;
    its output comes back under ``"whole"``.
    """
    res: dict[str, dict[str, np.ndarray]] = {}
    if "onnxruntime" in runtimes:
        from export.onnx_graph import build_isolated

        sess = open_session(build_isolated(model, output).SerializeToString(), "onnxruntime",
                            what="the isolated-stage ONNX model")
        res["onnxruntime"] = sess.run({f"{st}:in": a for st, a in stage_inputs.items()})
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts:
        from export import lce
        from runtimes.tflite_flatbuffer import output_names

        whole = lce_whole_input is not None
        km, keys = lce.build_isolated_keras(model, output, whole=whole)
        flat = lce.convert(km)
        order = list(stage_inputs)
        feeds = {f"s{k:02d}_in": stage_inputs[st] for k, st in enumerate(order)} | (
            {"input": lce_whole_input} if whole else {})
        ins = [feeds[_keras_input_name(n)] for n in open_session(flat, lce_rts[0]).input_names]
        outs = [keys[n] for n in output_names(flat)]
        for rt in lce_rts:
            res[rt] = dict(zip(outs, _lce_run(flat, rt[4:], ins, "the isolated-stage LCE model")))
    return res


def chained_outputs(model: ReActNetA, runtimes, x: np.ndarray, stages: list[str],
                    output: str = "logits") -> dict[str, dict[str, np.ndarray]]:
    """{runtime: {stage: output}} of the whole (chained) network, every stage tapped (drift analysis: each
    stage sees the runtime's own upstream values). ONNX: ``build_onnx(taps=...)``; LCE: ``build_keras(taps=...)``
    (spatial stages only), one conversion for all kernels."""
    res: dict[str, dict[str, np.ndarray]] = {}
    if "onnxruntime" in runtimes:
        from export.onnx_graph import build_onnx

        sess = open_session(build_onnx(model, output, taps=stages).SerializeToString(), "onnxruntime",
                            what="the chained ONNX model")
        res["onnxruntime"] = sess.run({"input": x})
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts:
        from export import lce
        from runtimes.tflite_flatbuffer import output_names

        flat = lce.convert(lce.build_keras(model, output, taps=stages))
        order = [stages[int(n.rsplit("_", 1)[1])] for n in output_names(flat)]  # "tap_07" -> stages[7]
        for rt in lce_rts:
            res[rt] = dict(zip(order, _lce_run(flat, rt[4:], [x], "the chained LCE model")))
    return res


@torch.no_grad()
def torch_stages(model: ReActNetA, x: torch.Tensor, output: str = "logits") -> tuple[dict, dict]:
    """PyTorch (eval) ``({stage: input}, {stage: output})`` for every stage of ``model.stages(output)``."""
    model.eval()
    ins, outs, h = {}, {}, x
    for name, y in model.forward_stages(x, output):
        ins[name], outs[name], h = h, y, y
    return ins, outs


def _fresh_file(model: ReActNetA, kind: str, output: str) -> bytes:
    """The file ``export.to_onnx`` / ``export.to_lce`` would write for ``model`` (without metadata)."""
    if kind == "onnx":
        from export.onnx_graph import build_onnx

        return build_onnx(model, output=output).SerializeToString()
    from export import lce

    return lce.convert(lce.build_keras(model, output))


def run_session(model: bytes, engine: str, inputs: list[np.ndarray], what: str) -> list[np.ndarray]:
    """Run ``model`` (bytes) on ``engine`` (``"onnxruntime"`` / ``"lce-<kernel>"``) through
    :func:`runtimes.session.open_session`, one array per model input in input order (a batch: TFLite models
    are invoked once per item); outputs in output order, in the model's own layouts."""
    from runtimes.session import open_session

    sess = open_session(model, engine, what=what)
    return list(sess.run_batched(inputs).values())


def nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1) if a.ndim == 4 else a).astype(np.float32)


def nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def _flip(a: np.ndarray) -> np.ndarray:
    """H/W-flipped NHWC maps as a fresh array: ``.copy()``, not ``ascontiguousarray``, which keeps the negative
    strides of a 1x1 map (numpy calls it contiguous) and torch refuses those."""
    return a[:, ::-1, ::-1, :].copy() if a.ndim == 4 else a


def given_stage_outputs(kind: str, data: bytes, model, output: str, stage_inputs: dict[str, np.ndarray],
                        kernels=()) -> dict[str, dict[str, np.ndarray]]:
    """Teacher-forced outputs of the given file's own stages: {runtime: {"<stage>" | "<stage>:y": array}}
    (NCHW maps, (N, C) vectors), as :func:`export.verify.isolated_outputs` returns for a fresh export.

    kind: "onnx" (runtime ``onnxruntime``) or "lce" (runtimes ``lce-<kernel>`` for each of ``kernels``).
    stage_inputs: {stage: PyTorch's (N, ...) NCHW input to it}, every stage of ``model.stages(output)``.
    Raises :class:`export.stage_cut.CutError` when the file cannot be cut at stage marks.
    """
    stages = list(stage_inputs)
    if kind == "onnx":
        cut, in_names, keys = cut_onnx(data, model, output)
        outs = run_session(cut, "onnxruntime", [stage_inputs[st] for st in stages], "the given ONNX file's stages")
        return {"onnxruntime": dict(zip(keys, outs))}
    cut, _, keys = cut_tflite(data, model, output)
    # Inside burn-edge's LCE model maps are H/W-flipped NHWC; the model input is a normal NHWC image.
    ins = [nhwc(stage_inputs[stages[0]])] + [_flip(nhwc(stage_inputs[st])) for st in stages[1:]]
    res = {}
    for k in kernels:
        outs = run_session(cut, f"lce-{k}", ins, "the given LCE file's stages")
        res[f"lce-{k}"] = {key: nchw(_flip(o)) for key, o in zip(keys, outs)}
    return res
