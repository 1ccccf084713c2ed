"""Losses as pure functions (no modules, no state), pinned to hand-computed values in tests.

BURN (Kim & Choi, CVPR 2022), Eq. 4::

    L = (1 - lambda) * KL(softmax(g/T) || softmax(l/T)) + lambda * L_FS

``g`` are the target (float) head outputs, ``l`` the binary network's head outputs, both (N, D).
Gradients flow into *both* arguments: BURN trains the target classifier g jointly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from common.errors import ConfigError
from train.config import FS_KINDS  # defined there, torch-free, for --help


class LossParts(NamedTuple):
    """The two BURN terms and their lambda-weighted sum (scalar tensors)."""

    kl: torch.Tensor
    fs: torch.Tensor
    total: torch.Tensor


def kl_loss(target_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(softmax(target/T) || softmax(student/T)): summed over classes, averaged over the batch.

    target_logits, student_logits: (N, D) -> scalar. No T^2 factor (as the official BURN code).
    """
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    log_p = F.log_softmax(target_logits / temperature, dim=1)  # (N, D) target
    log_q = F.log_softmax(student_logits / temperature, dim=1)  # (N, D) student
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def feature_similarity(a: torch.Tensor, b: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """L_FS between two (N, D) feature batches -> scalar.

    cosine: mean over the batch of 1 - <a,b>/(|a||b|)   (paper; 0 for parallel, 1 for orthogonal)
    normalized-l2: mean over the batch of sum_d (a/|a| - b/|b|)_d^2 = 2 (1 - cos)   (official code)
    l1:     mean |a - b| over all N*D elements
    l2:     mean (a - b)^2 over all N*D elements
    none:   0 (a zero that keeps the graph)
    """
    if a.shape != b.shape:
        raise ConfigError(f"feature similarity needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()
    if kind == "normalized-l2":
        return (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(1).mean()
    if kind == "l1":
        return F.l1_loss(a, b)
    if kind == "l2":
        return F.mse_loss(a, b)
    if kind == "none":
        return (a.sum() + b.sum()) * 0.0
    raise ConfigError(f"unknown feature-similarity kind {kind!r}; choose one of {FS_KINDS}")


def burn_loss(target_logits: torch.Tensor, student_logits: torch.Tensor, lam: float,
              temperature: float = 0.2, fs: str = "cosine", target_feats: torch.Tensor | None = None,
              student_feats: torch.Tensor | None = None) -> LossParts:
    """Eq. 4 on one (target, student) pair.

    target_logits, student_logits: (N, D) head outputs g(h(x)), l(k(x)) for the KL term.
    target_feats, student_feats: (N, C) vectors for the FS term (default: the head outputs).
    total = (1 - lam) * KL + lam * FS; with ``fs="none"`` the FS term is dropped and total = KL
    (the paper's ablation (1), joint classifier only).
    """
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"lambda must be in [0, 1], got {lam}")
    kl = kl_loss(target_logits, student_logits, temperature)
    if target_feats is None or student_feats is None:
        target_feats, student_feats = target_logits, student_logits
    sim = feature_similarity(target_feats, student_feats, fs)
    total = kl if fs == "none" else (1.0 - lam) * kl + lam * sim
    return LossParts(kl, sim, total)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2,
             neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """MoCo's contrastive loss: cross entropy with the positive key at index 0.

    q, k: (N, D) L2-normalised queries and keys; queue: (K, D) L2-normalised negatives -> scalar.
    neg_mask: optional (N, K) bool, True = queue entry k is *not* a negative of query n (dropped
    from the denominator; used for in-batch negatives, where the queue holds the positives too).
    Per query: -log( exp(q.k/T) / (exp(q.k/T) + sum_{kept j} exp(q.queue_j/T)) ).
    """
    pos = torch.einsum("nd,nd->n", q, k).unsqueeze(1)  # (N, 1)
    neg = torch.einsum("nd,kd->nk", q, queue)  # (N, K)
    if neg_mask is not None:
        neg = neg.masked_fill(neg_mask, float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / temperature  # (N, 1+K)
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def cmim_loss(e_b: torch.Tensor, e_f: torch.Tensor, neg_b: torch.Tensor, neg_f: torch.Tensor,
              temperature: float = 0.1, neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """CMIM (Shang et al., ECCV 2022) for one binariser: symmetric InfoNCE between binary and float embeddings.

    e_b, e_f: (N, D) L2-normalised embeddings of the binarised activation a_B = sign(a_F) and of the
    latent float activation a_F of the *same* N images (row i of e_b and of e_f is the positive pair).
    neg_b, neg_f: (K, D) L2-normalised negatives of each kind (a memory bank, or the batch itself).
    neg_mask: optional (N, K) bool, True = not a negative of row n (in-batch: the positive itself and
    the other views of the same image).

    ``(info_nce(e_b, e_f, neg_f) + info_nce(e_f, e_b, neg_b)) / 2``: a binary anchor is pulled towards
    its own float embedding and pushed from other images' float embeddings, and vice versa.
    InfoNCE with K negatives bounds the mutual information: I(a_B; a_F) >= log(K + 1) - loss.
    """
    if temperature <= 0:
        raise ConfigError(f"CMIM temperature must be > 0, got {temperature}")
    return (info_nce(e_b, e_f, neg_f, temperature, neg_mask) + info_nce(e_f, e_b, neg_b, temperature, neg_mask)) / 2
