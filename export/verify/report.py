"""The verify report: gate thresholds, per-stage verdicts, end-to-end differences, what each judged file got."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from common.errors import ConfigError
from runtimes.format import LCE_KERNELS

RUNTIMES = ("onnxruntime",) + tuple(f"lce-{k}" for k in LCE_KERNELS)


EXACT, FLIPS, BUG, NONFINITE = "exact", "near-zero flips", "real bug", "non-finite"


@dataclass
class Tolerances:
    """Gate thresholds (all configurable from the CLI). End-to-end ones are off (None) by default."""

    block_rtol: float = 1e-4      # floor of a stage's tolerance (max|diff|/max|ref|, after replaying bit flips)
    rounding_factor: float = 8.0  # a stage's tolerance: max(block_rtol, rounding_factor * PyTorch float32's own
                                  # error against float64 on that stage, same bits) -- see stage_yardsticks
    max_flip_rate: float = 1e-3   # near-zero bit flips allowed per stage, as a fraction of its binarised values
    min_top1: float | None = None     # end to end: top-1 agreement with PyTorch (fraction)
    min_cosine: float | None = None   # end to end: mean centred cosine similarity of the outputs
    logit_rtol: float | None = None   # end to end: max |diff| / max |ref|

    def validate(self) -> None:
        """ConfigError unless every set threshold is a finite number in its range (a NaN would switch the
        gate off: ``x > nan`` is always false)."""
        ranges = {"block_rtol": (0.0, 1.0), "rounding_factor": (1.0, 1e6), "max_flip_rate": (0.0, 1.0),
                  "min_top1": (0.0, 1.0), "min_cosine": (-1.0, 1.0), "logit_rtol": (0.0, math.inf)}
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if v is None:
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be a finite number in [{lo:g}, {hi:g}], got {v!r}")


@dataclass
class OutputDiff:
    """End-to-end comparison of one runtime's whole model with PyTorch."""

    runtime: str
    max_abs: float
    max_rel: float
    cosine: float          # mean centred cosine (each row minus its mean), nan if any value is non-finite
    top1: float            # fraction of images with the same top-1 class
    top1_low: float        # 95 % Wilson interval of top1
    top1_high: float
    top5: float            # mean overlap of the two top-5 sets
    nonfinite: int = 0     # non-finite values in the runtime's output


@dataclass
class StageVerdict:
    """Teacher-forced comparison of one stage of one runtime (see the module docstring)."""

    runtime: str
    stage: str
    verdict: str
    max_rel: float         # runtime vs PyTorch, same stage input
    replay_rel: float      # runtime vs PyTorch replayed with the runtime's bits (== max_rel without flips)
    flips: int = 0         # binariser bits that differ from PyTorch's
    bits: int = 0          # binarised values in the stage
    flip_margin: float = 0.0   # max |pre-sign| / max|pre-sign| over the flipped values (how near zero)
    exact_zero: int = 0    # PyTorch pre-sign values exactly 0 (they must binarise to +1)
    yardstick: float = 0.0  # PyTorch float32's own error on this stage vs float64 (same bits), relative
    tolerance: float = 0.0  # the bound max_rel / replay_rel was held to: max(block_rtol, factor * yardstick)
    detail: str = ""


STAGE_EXACT = "stage-exact"


STRUCTURAL = "structurally identical to a fresh export"


STATISTICAL = "statistically consistent only"


NOT_JUDGED = "not judged"


FRESH = "fresh export (no file given)"


E2E_ONLY = "end to end only (--no-localise)"


@dataclass
class GivenFile:
    """What the gate established about one judged file (or the fresh export standing in for a missing one).

    guarantee: ``stage-exact`` -- the file's own stages, cut at its stage marks, each matched PyTorch;
    ``structurally identical to a fresh export`` -- no marks, but the same operators and bit-identical
    constants as a fresh export, whose stages were judged; ``statistically consistent only`` -- neither, but
    its whole-model outputs differ from PyTorch's no more than PyTorch's own outputs move under 1e-6 input
    noise (fails the gate unless accepted); ``not judged`` -- none of these (the gate fails);
    ``fresh export (no file given)``; ``end to end only (--no-localise)``.
    """

    kind: str                    # "onnx" | "lce"
    path: str | None
    guarantee: str
    runtimes: list[str]
    passed: bool = True
    detail: str = ""
    other_checkpoint: str = ""   # the checkpoint hash the file's metadata names, when not the given one


@dataclass
class VerifyReport:
    images: str
    n_inputs: int
    outputs: list[OutputDiff] = field(default_factory=list)
    stages: list[StageVerdict] = field(default_factory=list)
    files: list[GivenFile] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tolerances: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        """JSON-ready: non-finite numbers become None (JSON has no NaN)."""
        d = _json_safe(asdict(self))
        d["passed"] = self.passed
        d["summary"] = {rt: verdict_summary(self, rt) for rt in dict.fromkeys(v.runtime for v in self.stages)}
        return d


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def verdict_summary(rep: VerifyReport, runtime: str) -> str:
    """``"15 stages: 13 exact, 2 near-zero flips (31 bits), 0 real bugs"`` for one runtime."""
    vs = [v for v in rep.stages if v.runtime == runtime]
    n = {k: sum(v.verdict == k for v in vs) for k in (EXACT, FLIPS, BUG, NONFINITE)}
    flips = sum(v.flips for v in vs if v.verdict == FLIPS)
    bugs = f"{n[BUG]} real bug{'s' if n[BUG] != 1 else ''}"
    s = f"{len(vs)} stages: {n[EXACT]} exact, {n[FLIPS]} near-zero flips ({flips} bits), {bugs}"
    return s + (f", {n[NONFINITE]} non-finite" if n[NONFINITE] else "")


def checkpoint_hint(f: GivenFile) -> str:
    if not f.other_checkpoint:
        return ""
    return (f" -- {f.path}'s metadata names another checkpoint (sha256 {f.other_checkpoint[:12]}...): it was "
            "probably exported from a different checkpoint")
