"""Bounds verifier for TFLite flatbuffers, run before any native interpreter sees the bytes.

TFLite's Python interpreters (``tf.lite.Interpreter``, LCE's ``Interpreter``) build models with
``FlatBufferModel::BuildFromBuffer``, which does **not** run the flatbuffers verifier: a truncated or
bit-flipped file makes them read outside the buffer and the process dies with SIGSEGV. This module does
what the C++ ``flatbuffers::Verifier`` does, in Python, against the real TFLite schema:

* every table's vtable and inline fields, every offset, vector, string (with its terminating 0) and
  union member lies inside the buffer (depth <= 64, at most 1,000,000 tables, as the C++ defaults);
* then the references the interpreter follows: operator -> operator code, operator / subgraph tensor
  indices, tensor -> buffer, constant-buffer sizes against shape x element size, external buffer
  ``offset``/``size`` (the > 2 GB layout) inside the file, and LCE custom options parse as flexbuffers.

The schema is not hand-copied: field kinds (scalar of n bytes, string, table, vector of scalars / strings /
tables, union) are read from TensorFlow's generated ``schema_py_generated.py`` (the file the op reader uses).
:func:`verify_tflite` raises :class:`common.errors.ModelFileError` naming the first problem.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from common.errors import ModelFileError

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
MAX_TENSOR_BYTES = 1 << 32  # one tensor of at most 4 GiB (16 bytes per element assumed): a corrupt dimension
                            # otherwise makes the interpreter try to allocate it and crash
IDENTIFIER = b"TFL3"

_FLAG_SIZES = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4, "Float32": 4,
               "Int64": 8, "Uint64": 8, "Float64": 8}
# union accessor (table, field) -> the enum class listing its member tables (default: the field's own name)
_UNION_ENUMS = {("QuantizationParameters", "Details"): "QuantizationDetails",
                ("DimensionMetadata", "ArraySegments"): "SparseIndexVector",
                ("DimensionMetadata", "ArrayIndices"): "SparseIndexVector"}
# TensorType -> bytes per element (None: variable-size or not checked)
_TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: None,
               14: None, 15: 2, 16: 4, 17: 1, 18: None}


@dataclass(frozen=True)
class Field:
    """One table field: ``kind`` in scalar | string | table | vector_scalar | vector_string | vector_table |
    union; ``size`` = bytes of a scalar / of a vector element (non-scalars sit inline as a 4-byte uoffset);
    ``ref`` = table or union-enum class name."""

    name: str
    kind: str
    size: int = 0
    ref: str = ""


def schema_source_path() -> Path | None:
    """TensorFlow's (or ai-edge-litert's) generated TFLite schema module file, or None."""
    for pkg, rel in (("tensorflow", "lite/python/schema_py_generated.py"),
                     ("ai_edge_litert", "schema_py_generated.py")):
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            return path
    return None


_METHOD = re.compile(r"    # (\w+)\n    def (\w+)\(self(?:, j)?\):\n(.*?)(?=\n    # \w+\n    def |\nclass |\Z)", re.S)


def _classify(body: str) -> Field | None:
    m = re.search(r"self\._tab\.Offset\((\d+)\)", body)
    if not m:
        return None
    if "self._tab.Union(" in body:
        return Field("", "union", 4)
    obj = re.search(r"obj = (\w+)\(\)", body)
    flags = [f for f in re.findall(r"number_types\.(\w+?)Flags", body) if f in _FLAG_SIZES]
    flags = flags[-1] if flags else None
    kind = "vector_" if "self._tab.Vector(" in body else ""  # element kinds below, for vectors
    if obj and "Indirect" in body:
        return Field("", kind + "table", 4, obj.group(1))
    if "self._tab.String(" in body:
        return Field("", kind + "string", 4)
    if flags:
        return Field("", kind + "scalar", _FLAG_SIZES[flags])
    return None  # structs and vectors of structs: none in the TFLite schema


@functools.lru_cache(maxsize=2)
def load_schema(path: str | None = None) -> tuple[dict[str, dict[int, Field]], dict[str, dict[int, str]]]:
    """Parse the generated schema: ({table: {field id: Field}}, {union enum: {value: table}})."""
    p = Path(path) if path else schema_source_path()
    if p is None:
        raise ModelFileError("cannot verify TFLite models: TensorFlow's TFLite schema (schema_py_generated.py) "
                             "was not found; pip install 'burn-edge[lce]'")
    src = p.read_text()
    tables: dict[str, dict[int, Field]] = {}
    enums: dict[str, dict[int, str]] = {}
    for block in re.split(r"\n(?=class \w+\(object\):)", src):
        head = re.match(r"class (\w+)\(object\):\n", block)
        if not head:
            continue
        name = head.group(1)
        if "def Init(self, buf, pos)" not in block:
            members = re.findall(r"^    (\w+) = (\d+)$", block, re.M)
            if members:
                enums[name] = {int(v): k for k, v in members}
            continue
        fields: dict[int, Field] = {}
        for cls, meth, body in _METHOD.findall(block):
            if cls != name or meth.endswith(("AsNumpy", "Length", "IsNone")) or meth in ("Init",):
                continue
            f = _classify(body)
            if f is None:
                continue
            fid = (int(re.search(r"Offset\((\d+)\)", body).group(1)) - 4) // 2
            ref = f.ref
            if f.kind == "union":
                ref = _UNION_ENUMS.get((name, meth), meth)
            fields[fid] = Field(meth, f.kind, f.size, ref)
        tables[name] = fields
    if "Model" not in tables or "BuiltinOptions" not in enums:
        raise ModelFileError(f"{p} does not look like the TFLite schema (no Model table)")
    return tables, enums


class _Verifier:
    def __init__(self, buf: bytes, tables, enums):
        self.buf, self.n, self.tables, self.enums = buf, len(buf), tables, enums
        self.count = 0

    def fail(self, what: str):
        raise ModelFileError(what)

    def u8(self, p):
        return self.buf[p]

    def u16(self, p):
        return struct.unpack_from("<H", self.buf, p)[0]

    def u32(self, p):
        return struct.unpack_from("<I", self.buf, p)[0]

    def i32(self, p):
        return struct.unpack_from("<i", self.buf, p)[0]

    def need(self, p: int, size: int, what: str):
        if p < 0 or size < 0 or p + size > self.n:
            self.fail(f"{what} at byte {p} (+{size}) lies outside the {self.n:,}-byte file (truncated or corrupt)")

    def deref(self, p: int, what: str) -> int:
        """Follow the uoffset at p; the target must lie inside the buffer."""
        self.need(p, 4, what)
        if p % 4:
            self.fail(f"{what}: misaligned offset at byte {p}")
        off = self.u32(p)
        if off == 0 or p + off >= self.n:
            self.fail(f"{what}: offset {off} at byte {p} points outside the {self.n:,}-byte file")
        return p + off

    def vector(self, v: int, elem: int, what: str) -> int:
        self.need(v, 4, what)
        if v % 4:
            self.fail(f"{what}: misaligned vector at byte {v}")
        length = self.u32(v)
        self.need(v + 4, length * elem, f"{what} ({length} elements)")
        return length

    def string(self, s: int, what: str) -> None:
        length = self.vector(s, 1, what)
        self.need(s + 4 + length, 1, f"{what} terminator")
        if self.buf[s + 4 + length] != 0:
            self.fail(f"{what}: string at byte {s} is not 0-terminated")

    def table(self, pos: int, name: str, depth: int, what: str) -> dict[str, int]:
        """Verify a table; returns {field name: absolute position of its inline value}."""
        if depth > MAX_DEPTH:
            self.fail(f"{what}: nesting deeper than {MAX_DEPTH}")
        self.count += 1
        if self.count > MAX_TABLES:
            self.fail(f"more than {MAX_TABLES:,} tables")
        self.need(pos, 4, f"{what} ({name} table)")
        if pos % 4:
            self.fail(f"{what}: misaligned {name} table at byte {pos}")
        vt = pos - self.i32(pos)
        self.need(vt, 4, f"{what} ({name} vtable)")
        if vt % 2:
            self.fail(f"{what}: misaligned {name} vtable at byte {vt}")
        vt_size, tbl_size = self.u16(vt), self.u16(vt + 2)
        if vt_size < 4 or vt_size % 2:
            self.fail(f"{what}: {name} vtable size {vt_size} is invalid")
        self.need(vt, vt_size, f"{what} ({name} vtable)")
        self.need(pos, tbl_size, f"{what} ({name} table body)")
        fields = self.tables.get(name, {})
        present: dict[str, int] = {}
        for fid in range((vt_size - 4) // 2):
            off = self.u16(vt + 4 + 2 * fid)
            if off == 0:
                continue
            f = fields.get(fid)
            size = 1 if f is None else f.size if f.kind == "scalar" else 4  # inline: the value or a uoffset
            if off + size > tbl_size:
                self.fail(f"{what}: field {f.name if f else fid} of {name} lies outside its table")
            if f is None:
                continue
            p = pos + off
            present[f.name] = p
            label = f"{what}.{f.name}"
            if f.kind == "string":
                self.string(self.deref(p, label), label)
            elif f.kind == "table":
                self.table(self.deref(p, label), f.ref, depth + 1, label)
            elif f.kind == "vector_scalar":
                self.vector(self.deref(p, label), f.size, label)
            elif f.kind == "vector_string":
                v = self.deref(p, label)
                for i in range(self.vector(v, 4, label)):
                    self.string(self.deref(v + 4 + 4 * i, f"{label}[{i}]"), f"{label}[{i}]")
            elif f.kind == "vector_table":
                v = self.deref(p, label)
                for i in range(self.vector(v, 4, label)):
                    self.table(self.deref(v + 4 + 4 * i, f"{label}[{i}]"), f.ref, depth + 1, f"{label}[{i}]")
        for f in fields.values():  # unions: member table type from the <name>Type field
            if f.kind != "union" or f.name not in present:
                continue
            tp = present.get(f.name + "Type")
            utype = self.u8(tp) if tp is not None else 0
            member = self.enums.get(f.ref, {}).get(utype)
            if member is None or member not in self.tables:
                self.fail(f"{what}.{f.name}: unknown union type {utype}")
            self.table(self.deref(present[f.name], f"{what}.{f.name}"), member, depth + 1, f"{what}.{f.name}")
        return present


def _vec_ints(v: _Verifier, p: int | None, fmt: str = "<i") -> list[int]:
    if p is None:
        return []
    a = v.deref(p, "vector")
    n = v.u32(a)
    size = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, v.buf, a + 4 + size * i)[0] for i in range(n)]


def _vec_tables(v: _Verifier, p: int | None) -> list[int]:
    if p is None:
        return []
    a = v.deref(p, "vector")
    return [v.deref(a + 4 + 4 * i, "vector") for i in range(v.u32(a))]


def _fields(v: _Verifier, pos: int, name: str) -> dict[str, int]:
    """{field: inline position} of an already verified table (no re-verification of children)."""
    vt = pos - v.i32(pos)
    vt_size = v.u16(vt)
    out = {}
    for fid, f in v.tables[name].items():
        if 4 + 2 * fid < vt_size:
            off = v.u16(vt + 4 + 2 * fid)
            if off:
                out[f.name] = pos + off
    return out


def _check_references(v: _Verifier, root: int) -> None:
    """The indices the interpreter follows, and constant-buffer sizes."""
    from math import prod

    m = _fields(v, root, "Model")
    codes = _vec_tables(v, m.get("OperatorCodes"))
    n_codes = len(codes)
    buffers = _vec_tables(v, m.get("Buffers"))
    subgraphs = _vec_tables(v, m.get("Subgraphs"))
    if not subgraphs:
        v.fail("the model has no subgraph")
    for si, sg in enumerate(subgraphs):
        g = _fields(v, sg, "SubGraph")
        tensors = _vec_tables(v, g.get("Tensors"))
        nt = len(tensors)
        for key in ("Inputs", "Outputs"):
            bad = [i for i in _vec_ints(v, g.get(key)) if not 0 <= i < nt]
            if bad:
                v.fail(f"subgraph {si} {key.lower()} name tensor {bad[0]} of {nt}")
        ops = _vec_tables(v, g.get("Operators"))
        for oi, op in enumerate(ops):
            of = _fields(v, op, "Operator")
            for key in ("Inputs", "Outputs", "Intermediates"):
                bad = [i for i in _vec_ints(v, of.get(key)) if not -1 <= i < nt or (key != "Inputs" and i < 0)]
                if bad:
                    v.fail(f"subgraph {si} operator {oi} {key.lower()} name tensor {bad[0]} of {nt}")
        for ti, t in enumerate(tensors):
            tf = _fields(v, t, "Tensor")
            b = v.u32(tf["Buffer"]) if "Buffer" in tf else 0
            if b >= max(len(buffers), 1):
                v.fail(f"subgraph {si} tensor {ti} uses buffer {b} of {len(buffers)}")
            if not buffers:
                continue
            bf = _fields(v, buffers[b], "Buffer")
            offset = struct.unpack_from("<Q", v.buf, bf["Offset"])[0] if "Offset" in bf else 0
            size = struct.unpack_from("<Q", v.buf, bf["Size"])[0] if "Size" in bf else 0
            if offset > 1:
                v.need(offset, size, f"buffer {b} (external data)")
                nbytes = size
            else:
                nbytes = v.u32(v.deref(bf["Data"], "buffer data")) if "Data" in bf else 0
            shape = _vec_ints(v, tf.get("Shape"))
            if len(shape) > 8 or prod(max(d, 1) for d in shape) * 16 > MAX_TENSOR_BYTES:
                v.fail(f"subgraph {si} tensor {ti} has an implausible shape {shape} (over {MAX_TENSOR_BYTES:,} bytes)")
            if any(d < 0 for d in shape):
                if nbytes:
                    v.fail(f"subgraph {si} tensor {ti} is constant but has shape {shape}")
                continue
            itemsize = _TYPE_BYTES.get(v.u8(tf["Type"]) if "Type" in tf else 0)
            if nbytes and itemsize and "Sparsity" not in tf and nbytes < prod(shape) * itemsize:
                v.fail(f"subgraph {si} tensor {ti} shape {shape} needs {prod(shape) * itemsize:,} bytes, "
                       f"its buffer {b} holds {nbytes:,}")
        # dataflow, as the interpreter executes it (in list order): every tensor an operator reads is a
        # subgraph input, a constant, a variable or the output of an earlier operator; one producer per tensor
        available = set(_vec_ints(v, g.get("Inputs")))
        for ti, t in enumerate(tensors):
            tf = _fields(v, t, "Tensor")
            b = v.u32(tf["Buffer"]) if "Buffer" in tf else 0
            if (tf.get("IsVariable") is not None and v.u8(tf["IsVariable"])) or (buffers and _has_data(v, buffers[b])):
                available.add(ti)
        for oi, op in enumerate(_vec_tables(v, g.get("Operators"))):
            of = _fields(v, op, "Operator")
            missing = [i for i in _vec_ints(v, of.get("Inputs")) if i >= 0 and i not in available]
            if missing:
                v.fail(f"subgraph {si} operator {oi} reads tensor {missing[0]}, which nothing before it produces")
            for i in _vec_ints(v, of.get("Outputs")):
                if i in available:
                    v.fail(f"subgraph {si} operator {oi} writes tensor {i}, which is already an input, constant "
                           "or another operator's output")
                available.add(i)
            idx = v.u32(of["OpcodeIndex"]) if "OpcodeIndex" in of else 0
            if idx >= n_codes:
                v.fail(f"subgraph {si} operator {oi} uses operator code {idx} of {n_codes}")
            if "LargeCustomOptionsOffset" in of:
                off = struct.unpack_from("<Q", v.buf, of["LargeCustomOptionsOffset"])[0]
                size_at = of.get("LargeCustomOptionsSize")
                size = struct.unpack_from("<Q", v.buf, size_at)[0] if size_at is not None else 0
                if off > 1:
                    v.need(off, size, f"subgraph {si} operator {oi} large custom options")
            if "CustomOptions" in of:
                oc = _fields(v, codes[idx], "OperatorCode")
                if "CustomCode" in oc:
                    _check_flexbuffer(v, of["CustomOptions"], f"subgraph {si} operator {oi} custom options")
        unset = [i for i in _vec_ints(v, g.get("Outputs")) if i not in available]
        if unset:
            v.fail(f"subgraph {si} output tensor {unset[0]} is never produced")


def _has_data(v: _Verifier, buf_pos: int) -> bool:
    bf = _fields(v, buf_pos, "Buffer")
    if "Offset" in bf and struct.unpack_from("<Q", v.buf, bf["Offset"])[0] > 1:
        return True
    return "Data" in bf and v.u32(v.deref(bf["Data"], "buffer data")) > 0


def _check_flexbuffer(v: _Verifier, p: int, what: str) -> None:
    """Custom options of LCE ops are flexbuffer maps: they must parse (the C++ side reads them unchecked)."""
    a = v.deref(p, what)
    data = bytes(v.buf[a + 4: a + 4 + v.u32(a)])
    if not data:
        return
    try:
        from flatbuffers import flexbuffers

        root = flexbuffers.GetRoot(data)
        if root.IsMap:
            m = root.AsMap
            for key, val in zip(m.Keys, m.Values):
                _ = key.AsKey, val.Value
        else:
            _ = root.Value
    except ImportError:
        return
    except Exception as e:  # noqa: BLE001 - a corrupt flexbuffer raises assorted errors
        v.fail(f"{what} are not a valid flexbuffer ({type(e).__name__})")


def verify_tflite(data: bytes, name: str = "model") -> None:
    """Raise ModelFileError unless ``data`` is a TFLite flatbuffer that is safe to hand to a native runtime."""
    data = bytes(data)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise ModelFileError(f"{name} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    tables, enums = load_schema()
    v = _Verifier(data, tables, enums)
    try:
        root = v.deref(0, "root")
        v.table(root, "Model", 0, "Model")
        _check_references(v, root)
    except ModelFileError as e:
        raise ModelFileError(f"{name} is a corrupt TFLite flatbuffer: {e}") from None
    except (struct.error, IndexError, KeyError, OverflowError) as e:  # defensive: a check above missed a bound
        raise ModelFileError(f"{name} is a corrupt TFLite flatbuffer ({type(e).__name__}: {e})") from None


def verify_tflite_file(path: str | Path) -> bytes:
    """Read ``path``, verify it (:func:`verify_tflite`) and return its bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    verify_tflite(data, str(path))
    return data
