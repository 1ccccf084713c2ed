"""README.md's reproducible figures match the current code (pipeline.readme_figures)."""

from __future__ import annotations

import pytest

from pipeline.readme_figures import README, compute, drift, readme_claims


def test_verify_stage_list_matches_the_pipeline_network():
    """Seconds: builds the network, no conversion."""
    figures = compute(export=False)
    assert "mlp" in figures["verify_stages"] and figures["verify_stages"][-1] == "head"
    assert drift(figures, readme_claims(README.read_text())) == []


def test_drift_is_reported():
    figures = {"verify_stages": ["stem", "blocks.0", "blocks.1", "pool", "head"], "lce_kb": "617", "float_mb": "7.45"}
    claims = {"verify_stages": ["stem", "blocks.0", "blocks.1", "pool", "head"], "lce_kb": "354", "float_mb": "7.45"}
    assert drift(figures, claims) == ["lce_kb: README says 354, the current code gives 617"]
    claims = {**claims, "lce_kb": "617", "verify_stages": ["stem", "blocks.0", "blocks.1", "head"]}
    assert "missing ['pool']" in drift(figures, claims)[0]


@pytest.mark.slow
@pytest.mark.lce
def test_model_sizes_match_readme():
    """One LCE and one float TFLite conversion of the digits-tiny classifier (about a minute of CPU)."""
    figures = compute(export=True)
    assert drift(figures, readme_claims(README.read_text())) == []
