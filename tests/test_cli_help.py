"""Every command a user types answers ``--help`` at once and truly.

"At once" is measured by what the help imports, not by a clock: ``python -X importtime -m <cli> --help``
lists every module the interpreter loaded, and none of torch, TensorFlow, onnxruntime, LCE, matplotlib or
scikit-learn may be among them (each costs seconds and hundreds of MB; the help needs none). The usage line
must name the command as it is typed (``usage: python -m <module>``). About 0.3 s of CPU per command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "tensorflow", "onnxruntime", "larq_compute_engine", "matplotlib", "sklearn")

CLIS = ["pipeline", "pipeline.results", "pipeline.readme_figures", "train.pretrain", "train.evaluate",
        "export.to_onnx", "export.to_lce", "export.audit", "export.android_assets", "runtimes.bench", "runtimes.arm",
        "export.verify"]


def _help(module: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", module, *extra, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", CLIS)
def test_help_is_fast_and_names_the_command(module):
    res = _help(module)
    assert res.returncode == 0, res.stderr[-2000:]
    prog = "pipeline" if module == "pipeline" else module
    assert res.stdout.startswith(f"usage: python -m {prog}"), res.stdout[:200]
    loaded = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", res.stderr, flags=re.M))
    assert loaded, "no -X importtime output"
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"{module} --help imports {heavy[:5]}"


def test_pretrain_help_shows_the_values_a_run_uses(monkeypatch):
    """Each option's shown default is the resolved value for the --preset/--method/--recipe given with --help,
    and names where it comes from (the preset or the recipe)."""
    monkeypatch.setenv("COLUMNS", "2000")  # no line breaks inside the phrases checked below
    from train.config import PRESETS, RECIPES, config_fields, resolve_config
    from train.pretrain import get_args_parser

    for preset in (None, *PRESETS):
        for method in ("burn", "teacher", "supervised"):
            argv = ["--method", method] + (["--preset", preset] if preset else [])
            cfg = resolve_config(preset, method=method)
            actions = {a.dest: a.help for a in get_args_parser(argv=argv)._actions}
            for f in config_fields():
                text = actions[f.name] % {}
                assert f"default: {getattr(cfg, f.name)}" in text, (argv, f.name, text)
                if method == "burn" and f.name in RECIPES["official"]:
                    assert "from --recipe official" in text, (f.name, text)
                elif preset and f.name in {**PRESETS[preset]["*"], **PRESETS[preset].get(method, {})}:
                    assert f"from --preset {preset}" in text, (f.name, text)
    tiny = get_args_parser(argv=["--preset", "digits-tiny"]).format_help()
    assert "default: 10 from --preset digits-tiny" in re.sub(r"\s+", " ", tiny)  # BURN's epochs, not 200
    plain = re.sub(r"\s+", " ", get_args_parser(argv=[]).format_help())
    assert "(default: 200; with --preset digits-tiny: 10)" in plain
    assert "jointly trained random classifier" not in plain  # the default recipe keeps g fixed


def test_arch_help_matches_the_network(monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")
    from export.to_onnx import get_args_parser
    from train.models.reactnet import NUM_BLOCKS

    assert f"all {NUM_BLOCKS} of ReActNet-A" in re.sub(r"\s+", " ", get_args_parser().format_help())


def test_export_loading_num_blocks_constant_matches_the_network():
    """export.loading and train.config keep ReActNet-A's block count without importing torch; it must equal
    the network's."""
    from export.loading import NUM_BLOCKS
    from train.config import NUM_BLOCKS as CONFIG_BLOCKS
    from train.models.reactnet import NUM_BLOCKS as NETWORK_BLOCKS

    assert NUM_BLOCKS == CONFIG_BLOCKS == NETWORK_BLOCKS
