"""Each bad input gives exit 2 and exactly one ``error: ...`` line (no traceback), in both export CLIs."""

from __future__ import annotations

import pytest
import torch

from export import audit, to_lce, to_onnx
from train.checkpoint import reactnet_payload, save_checkpoint


class NotATensor:  # a pickled object that weights_only=True must refuse
    pass


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _write(path, payload):
    torch.save(payload, path)
    return str(path)


@pytest.fixture
def bad_inputs(tmp_path, tiny_reactnet):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    return {
        "missing": (str(tmp_path / "nope.pt"), [], "checkpoint not found"),
        "corrupt": (str(corrupt), [], "corrupt or truncated"),
        "pickle": (_write(tmp_path / "evil.pt", {"model": NotATensor()}), [], "is never unpickled"),
        "unknown-arch": (_write(tmp_path / "arch.pt", {"kind": "reactnet", "arch": {"depth": 50}, "model": {}}), [],
                         "unknown architecture fields ['depth']"),
        "other-kind": (_write(tmp_path / "teacher.pt", {"kind": "teacher", "model": {}}), [], "not a ReActNet"),
        "input-size": (str(save_checkpoint(tmp_path / "ok.pt", reactnet_payload(tiny_reactnet(blocks=2)))),
                       ["--input-size", "90"], "input_size 90 is not a positive multiple of 4"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "pickle", "unknown-arch", "other-kind", "input-size"])
@pytest.mark.parametrize("cli", [to_onnx, to_lce], ids=["to_onnx", "to_lce"])
def test_bad_checkpoint_gives_one_line(cli, case, bad_inputs, capsys):
    path, extra, message = bad_inputs[case]
    assert cli.main([path, *extra]) == 2
    assert message in _one_error_line(capsys)


def test_stage1_checkpoint_needs_float(tmp_path, tiny_reactnet, capsys):
    path = save_checkpoint(tmp_path / "s1.pt", reactnet_payload(tiny_reactnet(blocks=1, binary_weights=False)))
    assert to_lce.main([str(path)]) == 2
    assert "stage-1 checkpoint (float weights)" in _one_error_line(capsys) and not (tmp_path / "s1.tflite").exists()


def test_audit_of_missing_or_garbage_model(tmp_path, capsys):
    assert audit.main([str(tmp_path / "none.tflite")]) == 2
    assert "model not found" in _one_error_line(capsys)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    assert audit.main([str(junk)]) == 2
    assert "not a TFLite flatbuffer" in _one_error_line(capsys)


@pytest.mark.parametrize("cli", [to_onnx, to_lce, audit], ids=["to_onnx", "to_lce", "audit"])
def test_help_documents_every_option(cli):
    text = cli.get_args_parser().format_help()
    for action in cli.get_args_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings
    assert "usage" in text
