"""The assets step (export.android_assets): files, metadata, CLI errors, and Java preprocessing == Python's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.android.contract import FORMAT, LABELS_FILE, MODEL_FILES
from export.android.samples import digits_samples
from export.android.writer import write_android_assets
from export.android_assets import main
from export.errors import AndroidAssetsError
from runtimes.format import sidecar_path
from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import DigitsDataset, dataset_info, eval_transform


def model_copy(src, path) -> str:
    """A copy at ``path`` of a real, runnable tiny model (the session fixtures ``lce_model`` /
    ``float_tflite_model``: 16x16 input, 5 logits), without its exporter sidecar, so the assets' own size and
    normalisation apply. android_assets test-loads and runs every model it packages (once per file content
    and test process: the probes are cached by sha256)."""
    path.write_bytes(Path(src).read_bytes())
    return str(path)


@pytest.fixture
def checkpoint(tmp_path, tiny_reactnet):
    """A tiny digits checkpoint that records its data set, as the training engine's config does."""
    payload = reactnet_payload(tiny_reactnet(blocks=1, size=32), config={"data": {"dataset": "digits"}})
    return str(save_checkpoint(tmp_path / "ckpt.pt", payload))


def python_reference(img_hwc: np.ndarray, mean, std) -> np.ndarray:
    """train.data.eval_transform on a uint8 (H, W, 3) image, returned NHWC-ordered (H, W, 3) float32."""
    chw = torch.from_numpy(img_hwc).permute(2, 0, 1).contiguous()  # (3, H, W) uint8
    return eval_transform(img_hwc.shape[0], mean, std)(chw).permute(1, 2, 0).numpy()  # (H, W, 3)


class TestJavaPreprocessing:
    @pytest.mark.parametrize("hw", [(32, 32), (5, 7)])
    def test_java_equals_eval_transform(self, java_build, tmp_path, hw, lce_model):
        h, w = hw
        rng = np.random.default_rng(h * 100 + w)
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        img[0, 0] = (0, 0, 0)
        img[-1, -1] = (255, 255, 255)
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        meta = write_android_assets(tmp_path / "assets", lce_model=model_copy(lce_model, tmp_path / "m.tflite"),
                                    arch={"num_classes": 3}, input_size=hw, mean=mean, std=std,
                                    class_names=["a", "b", "c"], source_checkpoint=None)
        (tmp_path / "img.rgb").write_bytes(img.tobytes())  # row-major H x W x 3
        java_build.host_tool("preprocess", meta, tmp_path / "img.rgb", w, h, tmp_path / "x.f32")
        java = np.fromfile(tmp_path / "x.f32", dtype="<f4").reshape(h, w, 3)
        ref = python_reference(img, mean, std)
        np.testing.assert_allclose(java, ref, rtol=0, atol=1e-6)

    def test_bundled_digit_samples_round_trip(self, java_build, tmp_path, checkpoint, lce_model):
        """A sample PNG the app shows, preprocessed by Java, equals the training eval input of that image."""
        from PIL import Image

        out = tmp_path / "assets"
        assert main(["--lce", model_copy(lce_model, tmp_path / "m.tflite"), "--checkpoint", checkpoint, "-o", str(out),
                     "--samples", "3"]) == 0
        meta = json.loads((out / "metadata.json").read_text())
        info = dataset_info("digits")
        sample = meta["samples"][1]
        img = np.asarray(Image.open(out / sample["file"]).convert("RGB"))
        ds = DigitsDataset("test", size=32)
        first = next(i for i, t in enumerate(ds.targets) if DigitsDataset.classes[t] == sample["label"])
        np.testing.assert_array_equal(img, ds.images[first].permute(1, 2, 0).numpy())
        (tmp_path / "s.rgb").write_bytes(img.tobytes())
        java_build.host_tool("preprocess", out / "metadata.json", tmp_path / "s.rgb", 32, 32, tmp_path / "s.f32")
        java = np.fromfile(tmp_path / "s.f32", dtype="<f4").reshape(32, 32, 3)
        ref = eval_transform(32, info.mean, info.std)(ds.images[first]).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(java, ref, rtol=0, atol=1e-6)


def test_java_reads_every_metadata_field(java_build, tmp_path, float_tflite_model):
    """ModelMetadata.parse (Java) reads what write_android_assets (Python) wrote, non-ASCII labels included."""
    names = ["zéro", "один", "二", 'quote " and \\ backslash']
    rng = np.random.default_rng(0)
    samples = [(rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8), n) for n in names[:2]]
    meta_path = write_android_assets(tmp_path / "a", float_model=model_copy(float_tflite_model, tmp_path / "f.tflite"),
                                     arch={"num_classes": 4}, input_size=(6, 4), mean=(0.1, 0.2, 0.3),
                                     std=(0.4, 0.5, 0.6), class_names=names, source_checkpoint=None,
                                     samples=samples)
    java_build.host_tool("describe", meta_path, tmp_path / "d.json")
    got = json.loads((tmp_path / "d.json").read_text())
    meta = json.loads(meta_path.read_text())
    assert (got["height"], got["width"], got["channels"]) == (6, 4, 3)
    assert got["class_names"] == names
    assert got["lce"] is None and got["float"] == "model_float.tflite"
    assert [tuple(s) for s in got["samples"]] == [(s["file"], s["label"]) for s in meta["samples"]]
    for key in ("mean", "std", "scale"):  # Java holds float32: equal to the float32 rounding of the JSON value
        np.testing.assert_array_equal(np.float32(got[key]), np.float32(meta["input"][key]))
    assert all((tmp_path / "a" / s["file"]).is_file() and s["file"].isascii() for s in meta["samples"])


class TestAssetsFiles:
    def test_cli_writes_models_labels_samples_metadata(self, tmp_path, checkpoint, capsys, lce_model,
                                                       float_tflite_model):
        lce = model_copy(lce_model, tmp_path / "model.tflite")
        flt = model_copy(float_tflite_model, tmp_path / "model_float.tflite")
        out = tmp_path / "assets"
        assert main(["--lce", lce, "--float", flt, "--checkpoint", checkpoint, "-o", str(out)]) == 0
        assert "wrote" in capsys.readouterr().out
        meta = json.loads((out / "metadata.json").read_text())
        info = dataset_info("digits")
        assert meta["format"] == FORMAT and meta["version"] == 1
        assert meta["input"] | {} == {**meta["input"], "layout": "NHWC", "height": 32, "width": 32, "channels": 3,
                                      "mean": list(info.mean), "std": list(info.std), "scale": 1 / 255}
        assert meta["class_names"] == DigitsDataset.classes
        assert (out / LABELS_FILE).read_text().splitlines() == DigitsDataset.classes
        assert meta["output"] == {"kind": "logits", "num_classes": 10}
        for role, src in (("lce", lce), ("float", flt)):
            copied = out / MODEL_FILES[role]
            assert copied.read_bytes() == open(src, "rb").read()
            assert meta["models"][role]["sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()
        assert len(meta["samples"]) == 10 and sorted(s["label"] for s in meta["samples"]) == DigitsDataset.classes
        assert all((out / s["file"]).is_file() for s in meta["samples"])
        assert meta["source_checkpoint"]["sha256"] == hashlib.sha256(open(checkpoint, "rb").read()).hexdigest()
        assert meta["arch"]["num_blocks"] == 1

    def test_digits_is_the_default_data_set(self, tmp_path, tiny_reactnet, float_tflite_model):
        ck = save_checkpoint(tmp_path / "c.pt", reactnet_payload(tiny_reactnet(blocks=1)))  # records no data set
        assert main(["--float", model_copy(float_tflite_model, tmp_path / "m.tflite"), "--checkpoint", str(ck), "-o",
                     str(tmp_path / "a"), "--samples", "0"]) == 0
        meta = json.loads((tmp_path / "a/metadata.json").read_text())
        assert meta["input"]["mean"] == list(dataset_info("digits").mean)

    def test_rerun_without_a_model_removes_the_stale_copy(self, tmp_path, checkpoint, lce_model):
        out = tmp_path / "assets"
        lce = model_copy(lce_model, tmp_path / "m.tflite")
        assert main(["--lce", lce, "--float", lce, "--checkpoint", checkpoint, "-o", str(out), "--samples", "0"]) == 0
        assert main(["--float", lce, "--checkpoint", checkpoint, "-o", str(out), "--samples", "0"]) == 0
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["models"]["lce"] is None and not (out / MODEL_FILES["lce"]).exists()
        assert meta["samples"] == []

    def test_sidecar_must_agree_with_the_assets(self, tmp_path, lce_model):
        m = model_copy(lce_model, tmp_path / "m.tflite")
        sidecar_path(m).write_text(json.dumps({"burn_edge.mean": "[0.5, 0.5, 0.5]"}))
        with pytest.raises(AndroidAssetsError, match="exported with mean"):
            write_android_assets(tmp_path / "a", lce_model=m, arch={}, input_size=8, mean=(0.1,) * 3,
                                 std=(0.2,) * 3, class_names=["x"], source_checkpoint=None)

    def test_exporter_metadata_gives_the_default_normalisation(self, tmp_path, tiny_reactnet, lce_model):
        """Without --mean/--std the exporter's sidecar (what verify and runtimes use) wins over the data set."""
        ck = save_checkpoint(tmp_path / "c.pt", reactnet_payload(tiny_reactnet(blocks=1, num_classes=2)))
        m = model_copy(lce_model, tmp_path / "m.tflite")
        (tmp_path / "m.meta.json").write_text(json.dumps({
            "burn_edge.mean": "[0.5, 0.4, 0.3]", "burn_edge.std": "[0.2, 0.2, 0.2]", "burn_edge.input_size": "32",
            "burn_edge.layout": "NHWC", "burn_edge.output": "logits"}))
        (tmp_path / "labels.txt").write_text("cat\ndog\n")
        assert main(["--lce", m, "--checkpoint", str(ck), "-o", str(tmp_path / "a"), "--labels",
                     str(tmp_path / "labels.txt")]) == 0
        meta = json.loads((tmp_path / "a/metadata.json").read_text())
        assert meta["input"]["mean"] == [0.5, 0.4, 0.3] and meta["input"]["std"] == [0.2, 0.2, 0.2]
        assert meta["class_names"] == ["cat", "dog"] and meta["samples"] == []

    def test_features_model_is_refused(self, tmp_path, lce_model):
        m = model_copy(lce_model, tmp_path / "m.tflite")
        sidecar_path(m).write_text(json.dumps({"burn_edge.output": "features"}))
        with pytest.raises(AndroidAssetsError, match="needs a logits model"):
            write_android_assets(tmp_path / "a", float_model=m, arch={}, input_size=8, mean=(0.1,) * 3,
                                 std=(0.2,) * 3, class_names=["x"], source_checkpoint=None)

    def test_digits_samples_are_hwc_uint8(self):
        s = digits_samples(32, limit=4)
        assert [lbl for _, lbl in s] == ["0", "1", "2", "3"]
        assert all(img.dtype == np.uint8 and img.shape == (32, 32, 3) for img, _ in s)


class TestCliErrors:
    def run_err(self, argv, capsys) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        return err[0]

    def test_missing_checkpoint(self, tmp_path, capsys, lce_model):
        msg = self.run_err(["--lce", model_copy(lce_model, tmp_path / "m.tflite"), "--checkpoint",
                            str(tmp_path / "no.pt"), "-o", str(tmp_path / "a")], capsys)
        assert "checkpoint not found" in msg

    def test_not_a_tflite_model(self, tmp_path, checkpoint, capsys):
        (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
        msg = self.run_err(["--lce", str(tmp_path / "bad.tflite"), "--checkpoint", checkpoint, "-o",
                            str(tmp_path / "a")], capsys)
        assert "not a TFLite flatbuffer" in msg

    def test_no_model(self, tmp_path, checkpoint, capsys):
        assert "--lce" in self.run_err(["--checkpoint", checkpoint, "-o", str(tmp_path / "a")], capsys)

    def test_class_count_must_match_the_checkpoint(self, tmp_path, tiny_reactnet, capsys, float_tflite_model):
        ck = save_checkpoint(tmp_path / "c5.pt", reactnet_payload(tiny_reactnet(blocks=1, num_classes=5)))
        msg = self.run_err(["--float", model_copy(float_tflite_model, tmp_path / "m.tflite"), "--checkpoint",
                            str(ck), "-o", str(tmp_path / "a"), "--dataset", "digits"], capsys)
        assert "5 outputs but 10 class names" in msg

    def test_other_data_sets_need_labels(self, tmp_path, checkpoint, capsys, float_tflite_model):
        msg = self.run_err(["--float", model_copy(float_tflite_model, tmp_path / "m.tflite"), "--checkpoint",
                            checkpoint, "-o", str(tmp_path / "a"), "--dataset", "cifar10"], capsys)
        assert "pass --labels FILE" in msg

    def test_explicit_mean_must_match_the_exporter_metadata(self, tmp_path, checkpoint, capsys, lce_model):
        m = model_copy(lce_model, tmp_path / "m.tflite")
        (tmp_path / "m.meta.json").write_text(json.dumps({"burn_edge.mean": "[0.5, 0.5, 0.5]"}))
        msg = self.run_err(["--lce", m, "--checkpoint", checkpoint, "-o", str(tmp_path / "a"), "--mean", "0.1",
                            "0.1", "0.1"], capsys)
        assert "exported with mean=[0.5, 0.5, 0.5]" in msg

    def test_help_explains_every_option(self, capsys):
        with pytest.raises(SystemExit) as e:
            main(["--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        for opt in ("--lce", "--float", "--checkpoint", "--out", "--dataset", "--mean", "--std", "--labels",
                    "--samples"):
            assert opt in text
