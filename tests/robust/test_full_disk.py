"""Full disks: with the output folder on a 2 MB file system, every writing command ends with one ``error:``
line and exit 2, leaves no temp file and no partial or mixed set, and keeps what was there before
(common.files: OutputError, ArtefactSet). Before: ENOSPC tracebacks from to_onnx, to_lce --float, pretrain,
evaluate --json, audit --json, verify --report and android_assets, and to_lce left a .meta.json and an
.audit.json without their model. Needs root and a permitted ``mount -t tmpfs`` (skips otherwise)."""

from __future__ import annotations

import shutil

import pytest

from common.files import sha256_file
from runtimes.format import AUDIT_SUFFIX, read_sidecar, sidecar_path
from tests.robust.util import assert_one_error, fill, leftovers, run_main, tiny_checkpoint, tiny_filesystem

SUPERVISED = ["--method", "supervised", "--dataset", "digits", "--width", "0.25", "--num-blocks", "1",
              "--limit-train", "64", "--batch-size", "32", "--device", "cpu", "--warmup-epochs", "0"]


@pytest.fixture(scope="module")
def mount(tmp_path_factory):
    with tiny_filesystem(tmp_path_factory.mktemp("disk")) as m:
        yield m


@pytest.fixture
def disk(mount):
    """The 2 MB file system, emptied for each test."""
    for p in mount.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return mount


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two tiny checkpoints (different weights) and the LCE model of the first, on a normal disk."""
    from export import to_lce

    d = tmp_path_factory.mktemp("inputs")
    a, b = tiny_checkpoint(d / "a.pt", seed=0), tiny_checkpoint(d / "b.pt", seed=1)
    assert to_lce.main([str(a), "-o", str(d / "a.tflite")]) == 0
    return a, b, d / "a.tflite"


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def commands(inputs, out):
    from export import android_assets, audit, to_lce, to_onnx
    from runtimes import bench
    from train import evaluate, pretrain

    a, _, lce = inputs
    return {
        "to_onnx": (to_onnx.main, [str(a), "--no-check", "-o", str(out / "m.onnx")]),
        "to_lce": (to_lce.main, [str(a), "-o", str(out / "m.tflite")]),
        "to_lce --float": (to_lce.main, [str(a), "--float", "-o", str(out / "f.tflite")]),
        "audit --json": (audit.main, [str(lce), "--json", str(out / "audit.json")]),
        "evaluate --json": (evaluate.main, [str(a), "--protocol", "knn", "--json", str(out / "e.json")]),
        "android_assets": (android_assets.main, ["--lce", str(lce), "--checkpoint", str(a), "--samples", "2",
                                                 "-o", str(out / "assets")]),
        "pretrain": (pretrain.main, [*SUPERVISED, "--epochs", "1", "--out", str(out / "run")]),
        "bench --json": (bench.main, [str(lce), "--runs", "1", "--warmup", "0", "--no-progress", "--no-isolate",
                                      "--threads", "1", "--kernels", "reference", "--json", str(out / "b.json")]),
    }


@pytest.mark.lce
@pytest.mark.parametrize("name", ["to_onnx", "to_lce", "to_lce --float", "audit --json", "evaluate --json",
                                  "android_assets", "pretrain", "bench --json"])
def test_full_disk_gives_one_error_line_and_writes_nothing(inputs, disk, name):
    fill(disk, leave=0)
    main, argv = commands(inputs, disk)[name]
    rc, _, err = run_main(main, argv)
    assert rc == 2, err[-2000:]
    assert_one_error(err, "no space left on device")
    assert files(disk) == ["filler.bin"]


@pytest.mark.lce
@pytest.mark.parametrize("flt", [False, True], ids=["lce", "float"])
def test_to_lce_keeps_the_old_set_when_the_disk_fills_during_the_save(inputs, disk, flt):
    """Room for a sidecar or two but not the whole set: the old model and its sidecars stay, bound together."""
    from export import to_lce

    a, b, _ = inputs
    out = disk / "m.tflite"
    extra = ["--float"] if flt else []
    assert to_lce.main([str(a), *extra, "-o", str(out)]) == 0
    before = {p: sha256_file(p) for p in (out, sidecar_path(out), sidecar_path(out, AUDIT_SUFFIX))}
    fill(disk, leave=8192)
    rc, _, err = run_main(to_lce.main, [str(b), *extra, "-o", str(out)])
    assert rc == 2
    assert_one_error(err, "no space left on device")
    assert {p: sha256_file(p) for p in before} == before
    assert read_sidecar(out) is not None  # the set's binding holds
    assert leftovers(disk) == []


@pytest.mark.lce
def test_android_assets_keep_the_old_set_when_the_disk_fills(inputs, disk):
    from export import android_assets

    a, _, lce = inputs
    out = disk / "assets"
    assert android_assets.main(["--lce", str(lce), "--checkpoint", str(a), "--samples", "0", "-o", str(out)]) == 0
    before = {p: sha256_file(out / p) for p in files(out)}
    fill(disk, leave=16384)
    rc, _, err = run_main(android_assets.main, ["--lce", str(lce), "--float", str(lce), "--checkpoint", str(a),
                                                "--samples", "10", "-o", str(out)])
    assert rc == 2
    assert_one_error(err, "no space left on device")
    assert {p: sha256_file(out / p) for p in files(out)} == before


@pytest.mark.lce
def test_verify_report_on_a_full_disk(inputs, disk):
    from export import verify

    a, _, lce = inputs
    fill(disk, leave=0)
    rc, _, err = run_main(verify.main, [str(a), "--lce", str(lce), "--runtimes", "lce-reference", "--limit", "2",
                                        "--report", str(disk / "r.json")])
    assert rc == 2
    assert_one_error(err, "no space left on device")
