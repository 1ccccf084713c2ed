"""Fuzz suite: truncations, bit flips, random bytes and wrong types for checkpoints, .tflite and
.onnx files through the loaders and CLI entry points. The contract: a loader raises only its BurnEdgeError
subclass; a CLI returns 0 or 2 (verify: 1 = gate failed), and on 2 prints exactly one ``error:`` line --
never a traceback, a signal or a hang. CLIs run in-process (``main([...])``); only the native runtimes'
loads, where a crash must be observed, run in a subprocess. Examples are bounded and derandomised so the
suite is fast and reproducible in CI. Also fuzzed: sidecar metadata values (one validator, runtimes.format),
numeric options (one validator, common.cli) and NaN/Inf/negative/huge checkpoint statistics (one validity check).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import BurnEdgeError, CheckpointError, ModelFileError
from export import audit, to_lce, to_onnx
from export.loading import load_model
from runtimes import bench
from runtimes.ort import check_onnx_file
from runtimes.tflite_verify import verify_tflite
from train.checkpoint import model_from_checkpoint, reactnet_payload, save_checkpoint
from train.evaluate import load_backbone

REPO = Path(__file__).parents[2]
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.data_too_large])


def _flip(data: bytes, flips) -> bytes:
    out = bytearray(data)
    for pos, bit in flips:
        out[pos % len(out)] ^= 1 << bit
    return bytes(out)


def mutants(data: bytes):
    """Truncations, 1-8 bit flips, and random bytes (sometimes behind the original header)."""
    n = len(data)
    return st.one_of(
        st.integers(0, n - 1).map(lambda k: data[:k]),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7)), min_size=1, max_size=8).map(
            lambda fl: _flip(data, fl)),
        st.binary(max_size=4096),
        st.binary(min_size=1, max_size=512).map(lambda b: data[:16] + b),
    )


def run_cli(main, argv, allowed=(0, 2)) -> tuple[int, str]:
    """Run ``main(argv)`` in-process; assert the exit-code / one-error-line contract; return (rc, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
    text = err.getvalue()
    assert rc in allowed, (rc, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    if rc == 2:
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return rc, text


class Seed(bytes):
    """Seed file bytes with a short repr (hypothesis prints the arguments of a falsifying example)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed bytes>"


@pytest.fixture(scope="module")
def ckpt_bytes(tmp_path_factory):
    torch.manual_seed(0)
    from train.models import reactnet_a

    m = reactnet_a(width=0.25, input_size=32, num_classes=10, num_blocks=1).eval()
    p = save_checkpoint(tmp_path_factory.mktemp("fz") / "seed.pt", reactnet_payload(m, step=1))
    return Seed(p.read_bytes())


# ------------------------------------------------------------------------------------------ checkpoints

@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_checkpoint_loaders(ckpt_bytes, tmp_path, data):
    p = tmp_path / "c.pt"
    p.write_bytes(data.draw(mutants(ckpt_bytes)))
    for load in (lambda: model_from_checkpoint(p), lambda: load_model(p), lambda: load_backbone(str(p))):
        with contextlib.suppress(CheckpointError):
            load()


@settings(max_examples=15, **FUZZ)
@given(data=st.data())
def test_checkpoint_export_clis(ckpt_bytes, tmp_path, data):
    p = tmp_path / "c.pt"
    p.write_bytes(data.draw(mutants(ckpt_bytes)))
    run_cli(to_onnx.main, [str(p), "--no-check", "-o", str(tmp_path / "m.onnx")])


@settings(max_examples=6, **FUZZ)
@given(k=st.integers(0, 10_000))
def test_truncated_checkpoint_to_lce(ckpt_bytes, tmp_path, k):
    p = tmp_path / "c.pt"
    p.write_bytes(ckpt_bytes[: k * len(ckpt_bytes) // 10_001])
    rc, _ = run_cli(to_lce.main, [str(p), "-o", str(tmp_path / "m.tflite")])
    assert rc == 2


@settings(max_examples=6, **FUZZ)
@given(k=st.integers(0, 10_000))
def test_truncated_checkpoint_resume_and_evaluate(ckpt_bytes, tmp_path, k):
    """--resume and train.evaluate on a truncated checkpoint: one error line (never a KeyError traceback)."""
    from train import evaluate, pretrain

    p = tmp_path / "c.pt"
    p.write_bytes(ckpt_bytes[: k * len(ckpt_bytes) // 10_001])
    rc, _ = run_cli(pretrain.main, ["--resume", str(p)])
    assert rc == 2
    rc, _ = run_cli(evaluate.main, [str(p), "--protocol", "knn"])
    assert rc == 2


def test_resume_from_a_model_only_checkpoint(ckpt_bytes, tmp_path):
    """A model checkpoint (no optimizer/rng) given to --resume is refused by name, not with a KeyError."""
    from train import pretrain

    p = tmp_path / "c.pt"
    p.write_bytes(ckpt_bytes)
    rc, err = run_cli(pretrain.main, ["--resume", str(p)])
    assert rc == 2 and ("run config" in err or "not a run checkpoint" in err)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                    st.text(max_size=8), st.just(torch.zeros(2)), st.just(torch.full((3, 3), float("nan"))))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                     st.dictionaries(st.text(max_size=6), c, max_size=3)),
                      max_leaves=8)
keys = st.sampled_from(["kind", "arch", "model", "state_dict", "format", "step", "config", "feature.0.conv1.weight"])


@settings(max_examples=60, **FUZZ)
@given(payload=st.one_of(values, st.dictionaries(keys, st.one_of(values, st.just("reactnet")), max_size=5)),
       arch=st.dictionaries(st.sampled_from(["width", "input_size", "num_blocks", "padding", "binary_weights",
                                             "num_classes", "head_hidden", "act_grad"]), scalars, max_size=3))
def test_wrong_types_in_checkpoints(tmp_path, payload, arch, tiny_reactnet):
    p = tmp_path / "c.pt"
    torch.save(payload, p)
    with contextlib.suppress(CheckpointError):
        model_from_checkpoint(p)
    good = reactnet_payload(tiny_reactnet(blocks=1))
    good["arch"] = {**good["arch"], **arch}
    torch.save(good, p)
    with contextlib.suppress(CheckpointError):
        model_from_checkpoint(p)
    run_cli(to_onnx.main, [str(p), "--no-check", "-o", str(tmp_path / "m.onnx")])


# ------------------------------------------------------------------------------------------ TFLite

@pytest.fixture(scope="module")
def tflite_seeds(lce_model, float_tflite_model):
    return [Seed(lce_model.read_bytes()), Seed(float_tflite_model.read_bytes())]


@pytest.mark.lce
@settings(max_examples=150, **FUZZ)
@given(data=st.data(), which=st.integers(0, 1))
def test_tflite_verifier(tflite_seeds, data, which):
    with contextlib.suppress(ModelFileError):
        verify_tflite(data.draw(mutants(tflite_seeds[which])))


@pytest.mark.lce
@settings(max_examples=40, **FUZZ)
@given(data=st.data(), which=st.integers(0, 1))
def test_tflite_audit_cli(tflite_seeds, tmp_path, data, which):
    p = tmp_path / "m.tflite"
    p.write_bytes(data.draw(mutants(tflite_seeds[which])))
    run_cli(audit.main, [str(p), "--allow-float-fallback"])
    from runtimes.detect import detect_backend

    with contextlib.suppress(ModelFileError):
        detect_backend(p)


@pytest.mark.lce
@settings(max_examples=20, **FUZZ)
@given(data=st.data(), which=st.integers(0, 1))
def test_tflite_android_assets_cli(tflite_seeds, ckpt_bytes, tmp_path, data, which):
    from export import android_assets

    ck = tmp_path / "c.pt"
    ck.write_bytes(ckpt_bytes)
    p = tmp_path / "m.tflite"
    p.write_bytes(data.draw(mutants(tflite_seeds[which])))
    run_cli(android_assets.main, ["--lce", str(p), "--checkpoint", str(ck), "-o", str(tmp_path / "assets"),
                                  "--samples", "0"])


@pytest.mark.lce
def test_tflite_native_runtimes_in_a_subprocess(tflite_seeds, tmp_path):
    """Bit-flipped models the verifier accepts go through the real bench CLI (native LCE / TFLite loads): exit
    0 or 2 with one error line, never a signal. Seeds are fixed so the files are the same on every run."""
    import random

    rng, picked = random.Random(12), []
    for i in range(400):
        which = i % 2
        flips = [(rng.randrange(10**9), rng.randrange(8)) for _ in range(rng.choice([1, 2, 4]))]
        data = _flip(tflite_seeds[which], flips)
        try:
            verify_tflite(data)
        except ModelFileError:
            continue
        picked.append(data)
        if len(picked) == 2:
            break
    for i, data in enumerate(picked):
        p = tmp_path / f"m{i}.tflite"
        p.write_bytes(data)
        r = subprocess.run([sys.executable, "-m", "runtimes.bench", str(p), "--runs", "1", "--warmup", "0",
                            "--kernels", "indirect", "--no-progress"], cwd=REPO, capture_output=True, text=True,
                           errors="replace", timeout=300)
        assert r.returncode in (0, 2), (i, r.returncode, r.stderr[-2000:])
        if r.returncode == 2:
            err = [ln for ln in r.stderr.splitlines() if ln.startswith(("error", "Traceback"))]
            assert len(err) == 1 and err[0].startswith("error: "), err


# ------------------------------------------------------------------------------------------ ONNX

@settings(max_examples=100, **FUZZ)
@given(data=st.data())
def test_onnx_checker(onnx_model, tmp_path, data):
    p = tmp_path / "m.onnx"
    p.write_bytes(data.draw(mutants(onnx_model.read_bytes())))
    with contextlib.suppress(ModelFileError):
        check_onnx_file(p)


@settings(max_examples=15, **FUZZ)
@given(data=st.data())
def test_onnx_bench_cli(onnx_model, tmp_path, data):
    """onnxruntime in-process (0 crashes on 1,789 checker-passing mutants when this suite was written; the
    CLI's default --isolate child covers the rest)."""
    p = tmp_path / "m.onnx"
    p.write_bytes(data.draw(mutants(onnx_model.read_bytes())))
    run_cli(bench.main, [str(p), "--runs", "1", "--warmup", "0", "--no-progress", "--no-isolate"])


def test_fuzz_contract_helper_catches_tracebacks():
    """The checker itself must fail on a CLI that raises (so the suite cannot pass vacuously)."""
    def bad_main(argv):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        run_cli(bad_main, [])

    def two_lines(argv):
        print("error: a\nerror: b", file=sys.stderr)
        return 2

    with pytest.raises(AssertionError):
        run_cli(two_lines, [])
    assert isinstance(BurnEdgeError("x"), RuntimeError)


# ------------------------------------------------------------------------ metadata, options, statistics

meta_values = st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True),
                        st.integers(-2**70, 2**70), st.booleans(), st.none(),
                        st.lists(st.one_of(st.floats(allow_nan=True), st.integers(-10, 10**9), st.text(max_size=3)),
                                 max_size=5),
                        st.dictionaries(st.text(max_size=6), st.one_of(st.floats(allow_nan=True), st.text(max_size=4)),
                                        max_size=3))


@settings(max_examples=80, **FUZZ)
@given(meta=st.dictionaries(st.sampled_from(["burn_edge.input_size", "burn_edge.mean", "burn_edge.std",
                                             "burn_edge.layout", "burn_edge.output", "burn_edge.arch",
                                             "burn_edge.kind", "burn_edge.model_sha256", "other"]),
                            st.one_of(meta_values, meta_values.map(lambda v: __import__("json").dumps(v))),
                            max_size=5))
def test_sidecar_values(tmp_path_factory, meta):
    """Any sidecar content is either refused by the one validator (ModelFileError) or safe for every reader:
    the runtimes' ModelMeta and android_assets' consistency check never raise anything else."""
    import json

    from export.android.checks import check_sidecar
    from export.errors import AndroidAssetsError
    from runtimes.base import ModelMeta
    from runtimes.format import read_sidecar, sidecar_path

    d = tmp_path_factory.mktemp("side")
    model = d / "m.tflite"
    model.write_bytes(b"x")
    try:
        text = json.dumps(meta)
    except ValueError:
        return
    sidecar_path(model).write_text(text)
    try:
        read_sidecar(model, check_binding=False)
    except ModelFileError:
        return
    if "burn_edge.model_sha256" not in meta:  # (a digest never matches the 1-byte model: refused by binding)
        ModelMeta.from_sidecar(model)
    with contextlib.suppress(AndroidAssetsError):
        check_sidecar(model, "lce", (32, 32), [0.5] * 3, [0.5] * 3)


floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**40, 2**40))


@settings(max_examples=25, **FUZZ)
@given(width=floats, size=st.integers(-2**40, 2**40), classes=st.integers(-5, 2**40))
def test_numeric_options_to_onnx(ckpt_bytes, tmp_path, width, size, classes):
    """Random option values: 0 or 2 with one line (never an allocation traceback or a hang)."""
    p = tmp_path / "c.pt"
    p.write_bytes(ckpt_bytes)
    run_cli(to_onnx.main, [str(p), "--no-check", "-o", str(tmp_path / "m.onnx"), "--width", repr(float(width)),
                           "--input-size", str(size), "--num-classes", str(classes)])


@settings(max_examples=20, **FUZZ)
@given(runs=st.integers(-5, 2**40), batch=st.integers(-5, 2**40), threads=st.integers(-5, 2**40))
def test_numeric_options_bench(onnx_model, runs, batch, threads):
    from common.limits import thread_limit

    if 1 <= threads <= thread_limit():
        threads = 1  # a valid count: keep the run short
    if 1 <= runs:
        runs = min(runs, 2)
    run_cli(bench.main, [str(onnx_model), "--no-progress", "--no-isolate", "--runs", str(runs), "--warmup", "0",
                         "--batch", str(batch), "--threads", str(threads)])


@settings(max_examples=40, **FUZZ)
@given(data=st.data())
def test_checkpoint_statistics(ckpt_bytes, tmp_path, data):
    """Random entries of random tensors set to NaN/Inf/negative/huge: every loader either refuses with
    CheckpointError or returns a model that passes the validity check (finite, variances >= 0, sane sizes)."""
    from train.checkpoint import check_model_values

    p = tmp_path / "c.pt"
    p.write_bytes(ckpt_bytes)
    ck = torch.load(p, weights_only=True)
    sd = ck["model"]
    keys = sorted(k for k, v in sd.items() if v.is_floating_point())
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.sampled_from(keys))
        t = sd[k].clone().view(-1)
        t[data.draw(st.integers(0, t.numel() - 1))] = data.draw(
            st.sampled_from([float("nan"), float("inf"), -float("inf"), -5.0, -1e-30, 1e30, 3e38, 0.0]))
        sd[k] = t.view(sd[k].shape)
    torch.save(ck, p)
    for load in (lambda: model_from_checkpoint(p), lambda: load_model(p).model,
                 lambda: load_backbone(str(p))[0]):
        try:
            m = load()
        except CheckpointError:
            continue
        check_model_values(m)
        with torch.no_grad():
            m.eval()
            out = m(torch.zeros(1, 3, 32, 32))
        assert bool(torch.isfinite(out).all())
