"""Metadata parsing, preprocessing, statistics and host facts (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.errors import ModelFileError
from runtimes.base import ModelMeta, preprocess
from runtimes.format import AUDIT_SUFFIX, META_INPUT_SIZE, META_MEAN, META_STD, sidecar_path
from runtimes.hostinfo import cpu_model_from_cpuinfo, host_info, lce_kernel_note, warnings_for
from runtimes.stats import MemoryProbe, summarize


class TestMeta:
    @pytest.mark.parametrize("size, hw", [("[32, 48]", (32, 48)), ("[3, 32, 48]", (32, 48)),
                                          ("[1, 3, 32, 48]", (32, 48)), ("[32, 48, 3]", (32, 48)), ("64", (64, 64)),
                                          (None, None)])
    def test_input_size_forms(self, size, hw):
        d = {} if size is None else {META_INPUT_SIZE: size}
        assert ModelMeta.from_dict(d).input_hw == hw

    def test_json_strings(self):
        m = ModelMeta.from_dict({META_MEAN: "[0.1, 0.2, 0.3]", META_STD: [1, 2, 3], "other": "ignored"})
        assert m.mean == (0.1, 0.2, 0.3) and m.std == (1.0, 2.0, 3.0)
        assert set(m.raw) == {META_MEAN, META_STD}

    @pytest.mark.parametrize("model, side, audit", [
        ("m.tflite", "m.meta.json", "m.audit.json"),            # the exporter's default name
        ("m.TFLITE", "m.TFLITE.meta.json", "m.TFLITE.audit.json"),
        ("m.bin", "m.bin.meta.json", "m.bin.audit.json"),       # any other suffix is kept, so m.bin and
        ("m.v2.tflite", "m.v2.meta.json", "m.v2.audit.json"),   # m.tflite never share a sidecar
        ("m", "m.meta.json", "m.audit.json"),
    ])
    def test_sidecar_naming_rule(self, model, side, audit):
        assert sidecar_path(f"/d/{model}") == Path("/d") / side
        assert sidecar_path(f"/d/{model}", AUDIT_SUFFIX) == Path("/d") / audit

    def test_sidecar(self, tmp_path):
        model = tmp_path / "m.tflite"
        assert ModelMeta.from_sidecar(model) == ModelMeta()
        (tmp_path / "m.tflite.meta.json").write_text(json.dumps({META_MEAN: [0.25] * 3}))
        assert ModelMeta.from_sidecar(model) == ModelMeta()  # one rule: only m.meta.json is read
        sidecar_path(model).write_text(json.dumps({META_MEAN: [0.5] * 3}))
        assert ModelMeta.from_sidecar(model).mean == (0.5,) * 3
        sidecar_path(model).write_text("[1, 2]")
        with pytest.raises(ModelFileError, match="JSON object"):
            ModelMeta.from_sidecar(model)


class TestPreprocess:
    def test_uint8_nhwc_matches_torchvision_formula(self):
        img = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
        meta = ModelMeta(mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
        x = preprocess(img, meta)
        assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32
        want = (img.transpose(0, 3, 1, 2) / 255.0 - np.reshape(meta.mean, (1, 3, 1, 1))) / np.reshape(meta.std,
                                                                                                      (1, 3, 1, 1))
        np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)

    def test_float_nchw_and_single_image(self):
        img = np.full((3, 4, 4), 0.5, np.float32)
        x = preprocess(img, mean=(0.5, 0.5, 0.5), std=(1, 1, 1))
        assert x.shape == (1, 3, 4, 4) and np.all(x == 0)

    def test_grayscale_repeated(self):
        assert preprocess(np.zeros((2, 8, 8), np.uint8)).shape == (2, 3, 8, 8)

    def test_explicit_layout(self):
        img = np.zeros((1, 3, 3, 3), np.uint8)
        assert preprocess(img, layout="NHWC").shape == (1, 3, 3, 3)


class TestStats:
    def test_summarize(self):
        s = summarize([0.001 * i for i in range(1, 101)], batch=2)
        assert s.n == 100 and s.min_ms == pytest.approx(1) and s.max_ms == pytest.approx(100)
        assert s.median_ms == pytest.approx(50.5)
        assert s.p10_ms == pytest.approx(10.9) and s.p90_ms == pytest.approx(90.1)
        assert s.throughput_ips == pytest.approx(2e3 / 50.5)

    def test_empty(self):
        with pytest.raises(ValueError):
            summarize([])

    def test_memory_probe_sees_an_allocation(self):
        with MemoryProbe() as m:
            a = np.ones(64 * 2**20 // 8)  # 64 MiB touched
        assert m.mib is not None and m.mib > 40 and a.sum() > 0


class TestHostInfo:
    def test_host_facts(self):
        info = host_info()
        assert info["arch"] and info["logical_cpus"] >= 1 and info["cpu_model"]
        assert info["lce_note"].startswith("LCE optimised ARM kernels:")

    @pytest.mark.parametrize("arch, want", [("x86_64", "no (x86 host runs portable kernels)"), ("aarch64", "yes"),
                                            ("armv7l", "32-bit")])
    def test_lce_note(self, arch, want):
        assert want in lce_kernel_note(arch)

    def test_warnings(self):
        assert warnings_for("aarch64", "performance") == []
        w = warnings_for("armv7l", "ondemand")
        assert len(w) == 2 and "64-bit" in w[0] and "ondemand" in w[1]

    def test_cpuinfo_arm(self):
        text = "processor\t: 0\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
        assert cpu_model_from_cpuinfo(text) == "Raspberry Pi 4 Model B Rev 1.4"
