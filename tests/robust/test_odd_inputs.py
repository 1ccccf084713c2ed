"""Odd but plausible inputs give one ``error:`` line, never a traceback: a PNG whose header claims a huge image
(export.samples), hostile ``.meta.json`` values (validated in one place, runtimes.format.validate_metadata, for
every reader: bench, audit, android_assets), custom options without ``channels_in`` (export.audit) and
unreadable sidecars."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from common.errors import DatasetError, ModelFileError
from runtimes.format import META_ARCH, META_INPUT_SIZE, META_MEAN, META_STD, read_sidecar, sidecar_path
from tests.robust.util import assert_one_error, run_main, tiny_checkpoint


def huge_png(path, side=100_000):
    """A PNG whose IHDR claims side x side RGB pixels (the data is one empty IDAT)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side, needle", [(10_000, "claims 10000x10000 pixels"), (100_000, "DecompressionBomb")])
def test_verify_images_with_a_huge_png_header(tmp_path, side, needle):
    """10000^2 is under PIL's own bomb error (it only warns, then would decode 300 MB): our pixel bound refuses
    it from the header; 100000^2 PIL refuses itself, which is reported the same way."""
    from export import verify
    from export.samples import load_inputs

    folder = tmp_path / "imgs"
    folder.mkdir()
    huge_png(folder / "a.png", side)
    with pytest.raises(DatasetError, match=needle):
        load_inputs(str(folder), 32, (0.5,) * 3, (0.5,) * 3)
    ck = tiny_checkpoint(tmp_path / "c.pt")
    rc, _, err = run_main(verify.main, [str(ck), "--images", str(folder), "--runtimes", "onnxruntime"])
    assert rc == 2
    assert_one_error(err, "a.png")


HOSTILE = {
    "mean 'a'": {META_MEAN: "a"},
    "mean NaN": {META_MEAN: "[NaN, 0, 0]"},
    "std 0": {META_STD: "[1, 0, 1]"},
    "size inf": {META_INPUT_SIZE: "1e999"},
    "size dict": {META_INPUT_SIZE: '{"h": 3}'},
    "size huge": {META_INPUT_SIZE: "[1, 3, 1000000000, 2]"},
    "arch width 1e308 as text": {META_ARCH: '{"width": 1e999}'},
    "layout": {"burn_edge.layout": 7},
    "model_sha256 other": {"burn_edge.model_sha256": "0" * 64},
}


@pytest.fixture
def hostile_model(lce_model, tmp_path, request):
    model = tmp_path / "m.tflite"
    model.write_bytes(lce_model.read_bytes())
    sidecar_path(model).write_text(json.dumps(HOSTILE[request.param]))
    return model


@pytest.mark.lce
@pytest.mark.parametrize("hostile_model", list(HOSTILE), indirect=True)
def test_hostile_sidecar_values(hostile_model, tmp_path):
    from export import android_assets, audit
    from runtimes import bench

    with pytest.raises(ModelFileError):
        read_sidecar(hostile_model)
    ck = tiny_checkpoint(tmp_path / "c.pt")
    for main, argv in (
            (audit.main, [str(hostile_model), "--allow-float-fallback"]),
            (bench.main, [str(hostile_model), "--runs", "1", "--warmup", "0", "--no-progress", "--no-isolate",
                          "--threads", "1", "--kernels", "reference"]),
            (android_assets.main, ["--lce", str(hostile_model), "--checkpoint", str(ck), "--samples", "0",
                                   "-o", str(tmp_path / "assets")])):
        rc, _, err = run_main(main, argv)
        assert rc == 2, (main.__module__, err[-2000:])
        assert_one_error(err, "sidecar")


@pytest.mark.lce
def test_arch_width_1e308_in_a_sidecar(lce_model, tmp_path):
    from export import audit

    model = tmp_path / "m.tflite"
    model.write_bytes(lce_model.read_bytes())
    sidecar_path(model).write_text(json.dumps({META_ARCH: json.dumps({"width": 1e308})}))
    rc, _, err = run_main(audit.main, [str(model)])
    assert rc == 2
    assert_one_error(err, "not a ReActNet architecture")


@pytest.mark.lce
@pytest.mark.parametrize("content", [b"\xff\xfe{", b"[" * 100_000, b'{"burn_edge.mean": NaN}'])
def test_unreadable_sidecars(lce_model, tmp_path, content):
    from export import audit

    model = tmp_path / "m.tflite"
    model.write_bytes(lce_model.read_bytes())
    sidecar_path(model).write_bytes(content)
    rc, _, err = run_main(audit.main, [str(model)])
    assert rc == 2
    assert_one_error(err, "not valid JSON")


def test_audit_model_that_is_a_folder(tmp_path):
    from export import audit

    (tmp_path / "m.tflite").mkdir()
    rc, _, err = run_main(audit.main, [str(tmp_path / "m.tflite")])
    assert rc == 2
    assert_one_error(err, "not found")


@pytest.mark.parametrize("options", [{}, {"channels_in": None}, {"channels_in": "x"}, {"channels_in": 1e308},
                                     {"channels_in": 8, "stride_height": None}])
def test_audit_custom_options_without_channels_in(options):
    """A LceBconv2d whose custom options lack a usable channels_in matches no PyTorch conv (reported as a
    fallback), instead of a KeyError/TypeError traceback."""
    from export.audit import _conv_signature, audit_flatbuffer  # noqa: F401 - audit_flatbuffer: the caller
    from runtimes.tflite_flatbuffer import OpInfo

    op = OpInfo(0, "LceBconv2d", [[1, 8, 8, 8], [8, 3, 3, 1]], [[1, 8, 8, 8]], ["float32"], 0, options)
    assert _conv_signature(op) is None
    good = OpInfo(0, "LceBconv2d", [[1, 8, 8, 8], [8, 3, 3, 1]], [[1, 8, 8, 8]], ["float32"], 0,
                  {"channels_in": 8, "stride_height": 1})
    assert _conv_signature(good) == (8, 3, 1, 8)


@pytest.mark.parametrize("key, value", [(META_MEAN, '"a"'), (META_STD, "[1, 1, 0]"), (META_INPUT_SIZE, "1e400")])
def test_hostile_onnx_metadata_props(onnx_model, tmp_path, key, value):
    """ONNX files carry their metadata inside (metadata_props): the same one check applies there."""
    import onnx

    from runtimes import bench

    proto = onnx.load(str(onnx_model))
    for p in proto.metadata_props:
        if p.key == key:
            p.value = value
            break
    else:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    rc, _, err = run_main(bench.main, [str(tmp_path / "m.onnx"), "--runs", "1", "--warmup", "0", "--no-progress",
                                       "--no-isolate", "--threads", "1", "--no-memory"])
    assert rc == 2, err[-2000:]
    assert_one_error(err, "model metadata")
