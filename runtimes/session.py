"""One way into every runtime: a model (bytes or a file) opened on an engine, named inputs in, named outputs out.

    from runtimes.session import Engine, open_session
    s = open_session("model.tflite", Engine("lce", "indirect"), threads=1, isolate=True)
    outs = s.run({"serving_default_input:0": x_nhwc})        # {output name: array}, the model's own layouts

This is the only module that creates onnxruntime sessions or TFLite / LCE interpreters. Everything above it
-- the image-batch runners (:func:`runtimes.load`), ``runtimes.bench``, ``export.verify`` (whole files and
files cut into stages), the exporters' self-checks and the tests -- opens models here
(``tests/test_architecture.py`` keeps it so).

* :class:`Engine` is the typed (backend, kernel) pair: ``Engine("onnxruntime")``, ``Engine("tflite")``,
  ``Engine("lce", "indirect")``; :meth:`Engine.parse` reads report labels such as ``"lce-indirect"``.
* Bytes handed to a TFLite / LCE interpreter are bounds-verified first (:mod:`runtimes.tflite_verify`);
  ONNX files go through ``onnx.checker``. ``isolate=True`` also loads and runs the model once in a child
  process (:mod:`runtimes.isolate`), so a file that crashes the native runtime (a conv stride of 0, a
  corrupt ``LceBconv2d`` option) becomes one ``ModelFileError``, not a dead process.
* Inputs and outputs are named as in the file (ONNX value names; TFLite tensor names) and keep the model's
  own layout and batch: TFLite / LCE models take batch 1 per invoke (:meth:`Session.run_batched` loops).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from common.tfenv import native_stderr_filtered
from runtimes.errors import RuntimeBackendError
from runtimes.format import LCE_INTERPRETER_FLAGS, LCE_KERNELS

BACKENDS = ("onnxruntime", "tflite", "lce")


@dataclass(frozen=True)
class Engine:
    """A backend and, for LCE, the ``LceBconv2d`` kernel (``default`` / ``indirect`` / ``reference``)."""

    backend: str
    kernel: str = "-"

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise RuntimeBackendError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend == "lce":
            if self.kernel == "-":
                object.__setattr__(self, "kernel", "default")
            elif self.kernel not in LCE_KERNELS:
                raise RuntimeBackendError(f"unknown LCE kernel {self.kernel!r}; choose one of "
                                          f"{', '.join(LCE_KERNELS)}")
        elif self.kernel not in ("-", "default"):
            raise RuntimeBackendError(f"kernel={self.kernel!r} applies to LCE models only (backend {self.backend})")
        else:
            object.__setattr__(self, "kernel", "-")

    @property
    def label(self) -> str:
        """``onnxruntime``, ``tflite`` or ``lce-<kernel>`` (the names reports use)."""
        return f"lce-{self.kernel}" if self.backend == "lce" else self.backend

    @classmethod
    def parse(cls, label: str) -> Engine:
        """The inverse of :attr:`label`."""
        if label.startswith("lce-"):
            return cls("lce", label[4:])
        return cls(label)

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: name, shape as the file declares it (-1 for symbolic dims), numpy dtype,
    and (scale, zero point) for quantized tensors."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: tuple[float, int] | None = None


class Session:
    """One model on one engine. ``run(feeds) -> {output name: array}``; see the module docstring."""

    engine: Engine
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    metadata: dict[str, str]  # ONNX ``metadata_props``; empty for TFLite (its metadata is the sidecar)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def _feeds(self, feeds) -> list[np.ndarray]:
        if isinstance(feeds, Mapping):
            missing = [n for n in self.input_names if n not in feeds]
            if missing:
                raise ValueError(f"missing model inputs {missing}; the model takes {self.input_names}")
            return [np.asarray(feeds[n]) for n in self.input_names]
        feeds = list(feeds) if not isinstance(feeds, np.ndarray) else [feeds]
        if len(feeds) != len(self.inputs):
            raise ValueError(f"the model takes {len(self.inputs)} inputs ({self.input_names}), got {len(feeds)}")
        return [np.asarray(f) for f in feeds]

    def run(self, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """One invoke: feeds by name (or in input order) -> {output name: array}."""
        return dict(zip(self.output_names, self._run(self._feeds(feeds))))

    def run_batched(self, feeds) -> dict[str, np.ndarray]:
        """Like :meth:`run` for a batch larger than the model's fixed batch 1: one invoke per item, outputs
        concatenated along axis 0. Models with a dynamic batch run in one invoke."""
        xs = self._feeds(feeds)
        fixed = self.inputs[0].shape[:1] == (1,)
        if not fixed or len(xs[0]) == 1:
            return self.run(xs)
        runs = [self._run([x[i:i + 1] for x in xs]) for i in range(len(xs[0]))]
        return {n: np.concatenate([r[j] for r in runs]) for j, n in enumerate(self.output_names)}

    def _run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


# ----------------------------------------------------------------------------------- onnxruntime

def _ort_dtype(type_str: str) -> np.dtype:
    table = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
             "tensor(float16)": np.float16, "tensor(bool)": np.bool_}
    return np.dtype(table.get(type_str, np.float32))


def check_onnx(data: bytes, what: str) -> None:
    """``onnx.checker`` on the model before onnxruntime parses it; ModelFileError names what is wrong."""
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError and friends
        raise ModelFileError(f"{what} is not a readable ONNX model (corrupt or truncated?): "
                             f"{type(e).__name__}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{what} is not a valid ONNX model: {first[:300]}") from None


class OrtSession(Session):
    def __init__(self, data: bytes, engine: Engine, what: str, threads: int = 1, spinning: bool = False):
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - onnxruntime is a core dependency
            raise RuntimeBackendError("onnxruntime is not installed: pip install onnxruntime") from e
        check_onnx(data, what)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            self.native = ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
            raise ModelFileError(f"onnxruntime cannot load {what}: {str(e).splitlines()[0][:300]}") from None
        self.engine = engine
        dims = lambda shape: tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)
        self.inputs = [TensorInfo(i.name, dims(i.shape), _ort_dtype(i.type)) for i in self.native.get_inputs()]
        self.outputs = [TensorInfo(o.name, dims(o.shape), _ort_dtype(o.type)) for o in self.native.get_outputs()]
        self.metadata = dict(self.native.get_modelmeta().custom_metadata_map)

    def _run(self, xs):
        try:
            return self.native.run(None, dict(zip(self.input_names, xs)))
        except Exception as e:  # noqa: BLE001 - onnxruntime's pybind errors (shape / type mismatches)
            raise ValueError(f"onnxruntime cannot run the model on inputs of shapes "
                             f"{[tuple(x.shape) for x in xs]}: {str(e).splitlines()[0][:300]}") from None


# ----------------------------------------------------------------------------------- TFLite / LCE

def _tf_env() -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _tensor_names(data: bytes) -> tuple[list[str], list[str]]:
    """(input names, output names) of the main subgraph, in the interpreter's order (tensor names)."""
    from runtimes.tflite_flatbuffer import _need_schema

    schema = _need_schema()
    g = schema.Model.GetRootAs(data, 0).Subgraphs(0)
    name = lambda i: g.Tensors(i).Name().decode("utf-8", "replace")
    return ([name(g.Inputs(i)) for i in range(g.InputsLength())],
            [name(g.Outputs(i)) for i in range(g.OutputsLength())])


def _np_dtype(t) -> np.dtype:
    try:
        return np.dtype(t)
    except TypeError:
        return np.dtype(getattr(t, "as_numpy_dtype", np.float32))


def _quant(scale, zero) -> tuple[float, int] | None:
    if scale is None or (np.ndim(scale) == 0 and not scale):
        return None
    return scale, zero


class LceSession(Session):
    """LCE's Python interpreter (TFLite + the ``Lce*`` ops; float ops with XNNPACK when ``xnnpack``)."""

    def __init__(self, data: bytes, engine: Engine, what: str, threads: int = 1, xnnpack: bool = True):
        _tf_env()
        try:
            from larq_compute_engine.tflite.python.interpreter import Interpreter
        except ImportError as e:
            raise RuntimeBackendError("LCE models need larq-compute-engine: pip install 'burn-edge[lce]'") from e
        try:
            with native_stderr_filtered():  # TFLite's "Created ... XNNPACK delegate" notice, once per session
                self.native = Interpreter(data, num_threads=int(threads), use_xnnpack=bool(xnnpack),
                                          **LCE_INTERPRETER_FLAGS[engine.kernel])
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelFileError(f"LCE cannot load {what}: {str(e).splitlines()[0] if str(e) else e!r}") from None
        self.engine, self.metadata = engine, {}
        in_names, out_names = _tensor_names(data)
        it = self.native
        self.inputs = [TensorInfo(n, tuple(int(d) for d in s), _np_dtype(t), _quant(sc, z)) for n, s, t, sc, z in
                       zip(in_names, it.input_shapes, it.input_types, it.input_scales, it.input_zero_points)]
        self.outputs = [TensorInfo(n, tuple(int(d) for d in s), _np_dtype(t), _quant(sc, z)) for n, s, t, sc, z in
                        zip(out_names, it.output_shapes, it.output_types, it.output_scales,
                            it.output_zero_points)]
        self._wrapper = it.interpreter  # the pybind LiteInterpreter: predict(list) -> list

    def _run(self, xs):
        return self._wrapper.predict([np.ascontiguousarray(x) for x in xs])


def _tflite_interpreter_module():
    """(Interpreter class, OpResolverType enum or None) of the first available TFLite Python runtime."""
    try:
        from ai_edge_litert import interpreter as litert  # type: ignore[import-not-found]

        return litert.Interpreter, getattr(litert, "OpResolverType", None)
    except ImportError:
        pass
    _tf_env()
    try:
        import tensorflow as tf
    except ImportError as e:
        raise RuntimeBackendError("TFLite models need tensorflow or ai-edge-litert: "
                                  "pip install 'burn-edge[lce]' (or ai-edge-litert)") from e
    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType


class TFLiteSession(Session):
    """The stock TFLite interpreter (``ai_edge_litert`` if installed, else ``tf.lite``); builtin op resolver
    with the XNNPACK delegate when ``xnnpack``, else ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``."""

    def __init__(self, data: bytes, engine: Engine, what: str, threads: int = 1, xnnpack: bool = True):
        cls, resolver = _tflite_interpreter_module()
        kw = {}
        if not xnnpack and resolver is not None:
            kw["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with native_stderr_filtered():  # TFLite's "Created ... XNNPACK delegate" notice, once per session
                self.native = cls(model_content=data, num_threads=int(threads), **kw)
                ins = self.native.get_input_details()
                for d in ins:  # a dynamic batch is run as batch 1 (one invoke per item)
                    if len(d["shape"]) and d["shape"][0] != 1:
                        self.native.resize_tensor_input(d["index"], [1, *d["shape"][1:]])
                self.native.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            hint = " (it uses LCE custom ops: load it with the lce backend)" if "Lce" in str(e) else ""
            raise ModelFileError(f"TFLite cannot load {what}: {msg}{hint}") from None
        self.engine, self.metadata = engine, {}
        info = lambda d: TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]),
                                    _quant(*d["quantization"]))
        self._in = self.native.get_input_details()
        self._out = self.native.get_output_details()
        self.inputs, self.outputs = [info(d) for d in self._in], [info(d) for d in self._out]

    def _run(self, xs):
        for d, x in zip(self._in, xs):
            self.native.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]))
        self.native.invoke()
        return [self.native.get_tensor(d["index"]) for d in self._out]


# ----------------------------------------------------------------------------------- open

def import_backend(backend: str) -> None:
    """Import a backend's native runtime now (``runtimes.bench``: so the import is not counted as model
    memory). RuntimeBackendError when it is not installed."""
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:  # pragma: no cover - onnxruntime is a core dependency
            raise RuntimeBackendError("onnxruntime is not installed: pip install onnxruntime") from e
    elif backend == "tflite":
        _tflite_interpreter_module()
    elif backend == "lce":
        _tf_env()
        try:
            import larq_compute_engine.tflite.python.interpreter  # noqa: F401
        except ImportError as e:
            raise RuntimeBackendError("LCE models need larq-compute-engine: pip install 'burn-edge[lce]'") from e
    else:
        raise RuntimeBackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def open_session(model: bytes | str | os.PathLike, engine: Engine | str, *, threads: int = 1,
                 xnnpack: bool = True, spinning: bool = False, isolate: bool = False,
                 what: str | None = None) -> Session:
    """Open ``model`` (bytes, or a file path) on ``engine`` (an :class:`Engine` or a label like
    ``"lce-indirect"``).

    threads: intra-op threads (>= 1); xnnpack: TFLite / LCE float ops through XNNPACK; spinning: onnxruntime
    thread-pool spinning. isolate: first load and run the model once in a child process (see the module
    docstring). what: how errors name the model (default: its path, or "the model"). Raises ModelFileError
    for a missing, corrupt or crashing model and RuntimeBackendError for a bad engine or a missing runtime.
    """
    eng = engine if isinstance(engine, Engine) else Engine.parse(engine)
    if int(threads) < 1:
        raise RuntimeBackendError(f"threads must be >= 1, got {threads}")
    path = None if isinstance(model, (bytes, bytearray, memoryview)) else Path(model)
    what = what or (str(path) if path else "the model")
    if path is not None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    else:
        data = bytes(model)
    if eng.backend != "onnxruntime":
        from runtimes.tflite_verify import verify_tflite

        verify_tflite(data, what)  # never hand unverified bytes to the native interpreter
    if isolate:
        _probe(data, path, eng, xnnpack, what)
    if eng.backend == "onnxruntime":
        return OrtSession(data, eng, what, threads, spinning)
    cls = LceSession if eng.backend == "lce" else TFLiteSession
    return cls(data, eng, what, threads, xnnpack)


def _probe(data: bytes, path: Path | None, eng: Engine, xnnpack: bool, what: str) -> None:
    from runtimes.isolate import probe_load

    if path is not None:
        probe_load(path, eng.backend, [eng.kernel] if eng.backend == "lce" else ["default"], xnnpack=xnnpack)
        return
    suffix = ".onnx" if eng.backend == "onnxruntime" else ".tflite"
    with tempfile.TemporaryDirectory(prefix="burn_edge_probe_") as d:
        p = Path(d) / f"model{suffix}"
        p.write_bytes(data)
        try:
            probe_load(p, eng.backend, [eng.kernel] if eng.backend == "lce" else ["default"], xnnpack=xnnpack)
        except ModelFileError as e:
            raise ModelFileError(str(e).replace(str(p), what)) from None
