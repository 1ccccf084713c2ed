"""runtimes.arm: the per-layer aarch64 kernel dispatch table of an LCE model, and its CLI errors."""

from types import SimpleNamespace

from runtimes import arm


def _op(in_hw, cin, cout, k=3, out_type="float32"):
    return SimpleNamespace(index=0, input_shapes=[[1, in_hw, in_hw, (cin + 31) // 32], [cout, k, k, (cin + 31) // 32]],
                           output_shapes=[[1, in_hw, in_hw, cout]], output_types=[out_type],
                           options={"channels_in": cin, "stride_height": 1})


def test_dispatch_matches_lce_conditions():
    assert arm.layer_dispatch(_op(16, 64, 64))["indirect"] == "neon"          # 32*16*16*2 = 16384
    r = arm.layer_dispatch(_op(32, 64, 64))                                    # 32*32*32*2 = 65536
    assert r["indirect"] == "portable" and "65536" in r["indirect_fallback_reason"]
    assert arm.layer_dispatch(_op(32, 64, 64))["default"] == "neon (int16 acc)"
    assert arm.layer_dispatch(_op(7, 8192, 64))["default"] == "neon (int32 acc)"


def test_cli_on_tiny_lce_model(lce_model, tmp_path, capsys):
    out = tmp_path / "arm.json"
    assert arm.main([str(lce_model), "--json", str(out), "--third-party", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "LceBconv2d layers" in text and "MISSING" in text and out.is_file()


def test_cli_error_line(tmp_path, capsys):
    assert arm.main([str(tmp_path / "none.tflite")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
