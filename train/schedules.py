"""Schedules as pure functions of the iteration: BURN's lambda(t) and the learning rate.

All return a Python ``float`` (never a tensor or np.float64), so values stored in a checkpoint stay
loadable with ``torch.load(weights_only=True)``.

Convention (the paper's, Eq. 4): ``lambda`` weighs the feature-similarity term,
``loss = (1 - lambda) * KL + lambda * FS``; it starts at ``lam_start`` (lambda_0) and ends at
``lam_end`` (lambda_T).
"""

from __future__ import annotations

import math

from common.errors import ConfigError

LAMBDA_SCHEDULES = ("cosine", "step", "constant")


def _check(step: int, total: int) -> None:
    if total < 1:
        raise ConfigError(f"total steps must be >= 1, got {total}")
    if not 0 <= step <= total:
        raise ConfigError(f"step must be in [0, {total}], got {step}")


def burn_lambda(step: int, total: int, lam_start: float, lam_end: float) -> float:
    """Eq. 3: lambda(t) = lam_end - (lam_end - lam_start) * (cos(pi t / T) + 1) / 2.

    lambda(0) = lam_start, lambda(T/2) = (lam_start + lam_end) / 2, lambda(T) = lam_end.
    """
    _check(step, total)
    return float(lam_end - (lam_end - lam_start) * (math.cos(math.pi * step / total) + 1.0) / 2.0)


def step_lambda(step: int, total: int, lam_start: float, lam_end: float) -> float:
    """Table 7's step schedule H(-t + T/2): lam_start while t < T/2, lam_end from T/2 on."""
    _check(step, total)
    return float(lam_start if step < total / 2 else lam_end)


def constant_lambda(step: int, total: int, lam_start: float, lam_end: float) -> float:
    """Table 7's constant schedule: lam_start for every t (lam_end is ignored)."""
    _check(step, total)
    return float(lam_start)


_LAMBDA_FNS = {"cosine": burn_lambda, "step": step_lambda, "constant": constant_lambda}


def lambda_at(kind: str, step: int, total: int, lam_start: float, lam_end: float) -> float:
    """Dispatch on ``kind`` in LAMBDA_SCHEDULES ("cosine" = Eq. 3)."""
    if kind not in _LAMBDA_FNS:
        raise ConfigError(f"unknown lambda schedule {kind!r}; choose one of {LAMBDA_SCHEDULES}")
    return _LAMBDA_FNS[kind](step, total, lam_start, lam_end)


def lr_factor(step: int, total: int, warmup: int, min_factor: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up from 1/warmup to 1 over the first ``warmup`` steps, then cosine from 1 down to
    ``min_factor`` at step ``total``. Used through ``torch.optim.lr_scheduler.LambdaLR``.
    """
    if total < 1 or warmup < 0:
        raise ConfigError(f"need total >= 1 and warmup >= 0, got total={total}, warmup={warmup}")
    if step < warmup:
        return float((step + 1) / warmup)
    span = max(1, total - warmup)
    t = min(1.0, (step - warmup) / span)
    return float(min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t)))
