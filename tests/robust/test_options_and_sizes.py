"""Numeric options go through one validator (common.cli.check_number: finite, in range) and sizes through one
bound (common.limits.require_fits: what this machine can hold, said in one line before allocating).
Before: ``verify --block-rtol nan`` PASSed with every stage "exact"; ``to_onnx --input-size 1000000`` and
``bench --batch`` ended in allocation tracebacks; ``bench --threads 100000`` grew to 6 GB."""

from __future__ import annotations

import math

import pytest

from common import limits
from common.cli import Range, check_number
from common.errors import CheckpointError, ConfigError
from tests.robust.util import assert_one_error, run_main, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("opt") / "c.pt")


@pytest.mark.parametrize("argv, needle", [
    (["--block-rtol", "nan"], "--block-rtol must be a finite number"),
    (["--max-flip-rate", "nan"], "--max-flip-rate must be a finite number"),
    (["--rounding-factor", "inf"], "--rounding-factor must be a finite number"),
    (["--min-cosine", "nan"], "--min-cosine"),
    (["--width", "nan"], "--width must be a finite number"),
    (["--num-classes", "-1"], "--num-classes must be an integer"),
    (["--input-size", "1000000"], "more than this machine can hold"),
])
def test_verify_options(ckpt, argv, needle):
    from export import verify

    rc, _, err = run_main(verify.main, [str(ckpt), "--runtimes", "onnxruntime", "--limit", "2", *argv])
    assert rc == 2
    assert_one_error(err, needle)


@pytest.mark.parametrize("argv, needle", [
    (["--input-size", "1000000"], "TiB, more than this machine can hold"),
    (["--input-size", "x"], "invalid int value"),
    (["--width", "inf"], "--width"),
    (["--head-hidden", "-3"], "--head-hidden"),
])
def test_to_onnx_options(ckpt, tmp_path, argv, needle):
    from export import to_onnx

    rc, _, err = run_main(to_onnx.main, [str(ckpt), "-o", str(tmp_path / "m.onnx"), *argv])
    assert rc == 2
    assert_one_error(err, needle)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("argv, needle", [
    (["--threads", "100000"], "--threads must be an integer in [1, "),
    (["--threads", "0"], "--threads"),
    (["--batch", "0"], "--batch"),
    (["--batch", "1e8"], "invalid int value"),
    (["--runs", "nan"], "invalid int value"),
    (["--warmup", "-1"], "--warmup"),
])
def test_bench_options(onnx_model, argv, needle):
    from runtimes import bench

    rc, _, err = run_main(bench.main, [str(onnx_model), "--no-progress", *argv])
    assert rc == 2
    assert_one_error(err, needle)


def test_bench_batch_is_bounded_by_memory_before_allocating(onnx_model, monkeypatch):
    """The bound is what the machine holds: with a budget of ~0 bytes even --batch 2 is refused, by one line
    naming the need and the budget (and no input is allocated)."""
    from runtimes import bench

    monkeypatch.setattr(limits, "BUDGET_FRACTION", 1e-12)
    rc, _, err = run_main(bench.main, [str(onnx_model), "--no-progress", "--no-isolate", "--batch", "2",
                                       "--runs", "1", "--warmup", "0", "--threads", "1"])
    assert rc == 2
    assert_one_error(err, "--batch 2", "more than this machine can hold")


def test_checkpoint_architecture_is_bounded(tmp_path, monkeypatch):
    """An arch claiming width 8 over width-0.25 weights is refused from shapes on a meta-device skeleton; a
    consistent one bigger than the machine is refused by the memory bound, before anything is built."""
    from train.checkpoint import model_from_checkpoint, read_checkpoint

    p = tiny_checkpoint(tmp_path / "c.pt")
    ck = read_checkpoint(p)
    ck["arch"]["width"] = 8.0
    with pytest.raises(CheckpointError, match="do not match its own architecture"):
        model_from_checkpoint(ck)
    monkeypatch.setattr(limits, "BUDGET_FRACTION", 1e-12)
    with pytest.raises(ConfigError, match="more than this machine can hold"):
        model_from_checkpoint(read_checkpoint(p))


def test_android_assets_options(ckpt, lce_model, tmp_path):
    from export import android_assets

    for argv, needle in ((["--mean", "nan", "0", "0"], "--mean"), (["--std", "1", "0", "1"], "--std"),
                         (["--samples", "-1"], "--samples")):
        rc, _, err = run_main(android_assets.main, ["--lce", str(lce_model), "--checkpoint", str(ckpt),
                                                    "-o", str(tmp_path / "a"), *argv])
        assert rc == 2
        assert_one_error(err, needle)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", None, [1, math.nan], 1.5, -1, 11])
def test_check_number_refuses(value):
    with pytest.raises(ConfigError, match="--x must be an integer in"):
        check_number("--x", value, Range(0, 10, integer=True, optional=False))


def test_check_number_accepts_bounds():
    for v in (0, 10, 3.0, [1, 2]):
        check_number("--x", v, Range(0, 10, integer=True))
    check_number("--x", None, Range(0, 10))
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        check_number("--x", 0.0, Range(0, 1, lo_open=True))
