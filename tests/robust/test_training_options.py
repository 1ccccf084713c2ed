"""The training and pipeline commands (train.pretrain, train.evaluate, python -m pipeline, pipeline.results,
pipeline.readme_figures) parse with common.cli (one ``error: ... (see <prog> --help)`` line, exit 2) and check
every numeric option with common.cli.Range before any work: NaN, inf, zero or negative sizes never reach a
training loop. Run as subprocesses from a clean environment; each fails while parsing (about 0.3 s of CPU).
Before: ``--lam-start nan`` was caught only by the config, ``--warmup-epochs inf``, ``--weight-decay nan`` or
``--moco-m nan`` started training, ``evaluate --knn-t nan`` reported an accuracy, and argparse printed its
whole usage before ``error:``."""

from __future__ import annotations

import pytest

from tests.robust.util import assert_one_error, run_module

CASES = {
    "train.pretrain": [
        (["--epochs", "nan"], "--epochs"), (["--epochs", "0"], "--epochs"), (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"), (["--batch-size", "0"], "--batch-size"), (["--lam-start", "nan"], "--lam-start"),
        (["--lam-end", "2"], "--lam-end"), (["--warmup-epochs", "inf"], "--warmup-epochs"),
        (["--weight-decay", "nan"], "--weight-decay"), (["--moco-m", "nan"], "--moco-m"),
        (["--width", "0"], "--width"), (["--num-blocks", "14"], "--num-blocks"), (["--seed", "-1"], "--seed"),
        (["--preset"], "--preset"), (["--method", "nope"], "--method"),
    ],
    "train.evaluate": [
        (["--knn-t", "nan"], "--knn-t"), (["--batch-size", "0"], "--batch-size"),
        (["--linear-lr", "-1"], "--linear-lr"),
        (["--semi-fractions", "0", "0.1"], "--semi-fractions"), (["--shots", "0"], "--shots"),
        (["--svm-c", "inf"], "--svm-c"), (["--protocol", "nope"], "--protocol"),
    ],
    "pipeline": [
        (["--epochs", "0"], "--epochs"), (["--threads", "0"], "--threads"), (["--bench-runs", "-5"], "--bench-runs"),
        (["--verify-limit", "nan"], "--verify-limit"), (["--phases", "nope"], "--phases"),
    ],
    "pipeline.results": [
        (["--cmim-weight", "nan"], "--cmim-weight"), (["--seeds", "-1"], "--seeds"), (["--epochs", "0"], "--epochs"),
        (["--warmup-epochs", "-1"], "--warmup-epochs"),
    ],
    "pipeline.readme_figures": [(["--no-such-flag"], "--no-such-flag")],
}


@pytest.mark.parametrize("module, argv, flag", [(m, a, f) for m, cases in CASES.items() for a, f in cases],
                         ids=[f"{m}:{' '.join(a)}" for m, cases in CASES.items() for a, f in cases])
def test_bad_option_is_one_error_line_before_any_work(tmp_path, module, argv, flag):
    out = tmp_path / "out"
    pre = ["ckpt.pt"] if module == "train.evaluate" else []  # evaluate's positional checkpoint (never read)
    extra = ["--json", str(out / "e.json")] if module == "train.evaluate" else ["--out", str(out)]
    r = run_module(module, *pre, *extra, *argv, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert_one_error(r.stderr, flag)
    assert "Traceback" not in r.stderr and not r.stdout.strip(), r.stdout[-500:]
    assert not out.exists()  # nothing was written: the check came before any work


def test_every_numeric_option_has_a_range():
    """A numeric training field or evaluate/pipeline option added later cannot skip the validator."""
    from pipeline.run import get_args_parser as pipeline_parser
    from pipeline.run import option_ranges
    from train.config import RANGES, config_fields
    from train.evaluate import RANGES as EVAL_RANGES
    from train.evaluate import get_args_parser as evaluate_parser

    numeric = {f.name for f in config_fields() if f.type in ("int", "float") and not f.metadata.get("choices")}
    assert numeric == set(RANGES)
    for parser, ranges in ((evaluate_parser(), EVAL_RANGES), (pipeline_parser(), option_ranges())):
        assert {a.dest for a in parser._actions if a.type in (int, float)} == set(ranges)


def test_every_preset_and_recipe_passes_the_ranges():
    from train.config import METHOD_NAMES, PRESETS, RECIPES, resolve_config

    for preset in (None, *PRESETS):
        for method in METHOD_NAMES:
            for recipe in RECIPES:
                resolve_config(preset, method=method, recipe=recipe)  # raises ConfigError on a bad value
