"""Evidence that a self-supervised teacher learned, written at the end of ``--method teacher`` (MoCo).

A randomly initialised ResNet with re-estimated BatchNorm statistics already gives usable kNN features on
small data sets, so a falling loss alone proves little. Three checks, each against a baseline:

* **InfoNCE vs chance.** With K queue negatives plus the positive, a network that cannot tell the
  positive from a negative scores log(K + 1) (1/(K+1) on each candidate). Check: the mean loss of the
  last epoch <= ``LOSS_RATIO`` x log(K + 1).
* **View invariance of h(x).** On held-out images (the test split), two augmented views of one image
  (the training augmentation) against two different images: mean cos(h(v1_i), h(v2_i)) minus mean
  cos(h(v1_i), h(v2_j)), j != i. Check: the gap >= ``MIN_VIEW_GAP``.
* **kNN vs the random-init twin.** Weighted kNN (:func:`train.evaluate.knn_classify`) of the teacher's
  features against a freshly initialised network of the same architecture (BN re-estimated on the training
  images, as ``python -m train.evaluate --random-init``). Check: >= ``MIN_KNN_MARGIN`` above.

:func:`teacher_evidence` returns all of it as one dict (``passed`` per check and overall);
``python -m train.pretrain`` prints it and writes ``<out>/teacher_check.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from train.data import TwoViews, build_dataset
from train.metrics import read_jsonl

LOSS_RATIO = 0.6  # InfoNCE must end at or below this fraction of its chance value log(K + 1)
MIN_VIEW_GAP = 0.3  # cos(two views of one image) - cos(two images), on the teacher's pooled features h(x)
MIN_KNN_MARGIN = 0.02  # kNN top-1 above the random-init twin's


@torch.no_grad()
def view_cosines(backbone: torch.nn.Module, dataset, batch_size: int = 256, seed: int = 0) -> dict:
    """Mean feature cosines over a two-view data set (items ``((v1, v2), label)``).

    Returns ``{"same": mean_i cos(f(v1_i), f(v2_i)), "other": mean_{i != j} cos(f(v1_i), f(v2_j)),
    "gap": same - other}``, pairs j taken within each batch; ``backbone`` runs in eval mode.
    """
    backbone.eval()
    torch.manual_seed(seed)  # the augmentations draw from torch's global RNG
    same, other, n_same, n_other = 0.0, 0.0, 0, 0
    for (v1, v2), _ in DataLoader(dataset, batch_size=batch_size):
        a, b = F.normalize(backbone(v1), dim=1), F.normalize(backbone(v2), dim=1)  # (B, C) each
        sim = a @ b.T  # (B, B): diagonal = same image
        diag = sim.diagonal().sum()
        same += float(diag)
        other += float(sim.sum() - diag)
        n_same += len(a)
        n_other += len(a) * (len(a) - 1)
    s, o = same / n_same, other / max(1, n_other)
    return {"same": s, "other": o, "gap": s - o}


def final_loss(out_dir: str | Path, steps_per_epoch: int) -> float | None:
    """Mean logged ``loss`` over the last epoch's rows of ``<out_dir>/metrics.jsonl`` (None if none)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [r for r in read_jsonl(path) if "loss" in r]
    if not rows:
        return None
    last = rows[-1]["step"]
    tail = [r["loss"] for r in rows if r["step"] > last - steps_per_epoch] or [rows[-1]["loss"]]
    return sum(tail) / len(tail)


def teacher_evidence(ckpt_path: str, *, loss: float | None, queue_size: int, augment: str = "official",
                     crop_min_scale: float = 0.0, hflip: bool = True, seed: int = 0, limit: int = 0) -> dict:
    """The three checks of the module docstring for the teacher checkpoint at ``ckpt_path``.

    ``loss``: the run's final InfoNCE (e.g. :func:`final_loss`); ``queue_size``: K (negatives per query);
    ``augment``, ``crop_min_scale``, ``hflip``: the two-view pipeline the teacher trained with (the view-gap
    views use it).
    ``limit`` > 0: only the first ``limit`` images of each split (smoke runs with ``--limit-train``).
    Also reports the linear probe (:func:`train.evaluate.linear_probe`) of both networks, for reference.
    """
    from torch.utils.data import Subset

    from train.evaluate import (
        EvalConfig,
        eval_dataset,
        extract_features,
        knn_classify,
        linear_probe,
        load_backbone,
        recalibrate_bn,
    )

    chance = math.log(queue_size + 1)
    out: dict = {"infonce": {"final": loss, "chance": chance, "ratio": None if loss is None else loss / chance,
                             "max_ratio": LOSS_RATIO,
                             "passed": loss is not None and loss <= LOSS_RATIO * chance}}
    ecfg = EvalConfig(seed=seed)
    teacher, ckpt = load_backbone(ckpt_path)
    twin, _ = load_backbone(ckpt_path, random_init=True, seed=seed)
    train_set, info = eval_dataset(ckpt, ecfg, "train")
    test_set, _ = eval_dataset(ckpt, ecfg, "test")
    cfg = ckpt.get("config") or {}
    views = build_dataset(cfg.get("dataset") or "digits", "test", root=cfg.get("data_root"),
                          transform=TwoViews(info.input_size, info.mean, info.std, augment, crop_min_scale, hflip))
    if limit:
        train_set, test_set, views = (Subset(d, range(min(limit, len(d)))) for d in (train_set, test_set, views))
    out["images"] = {"train": len(train_set), "test": len(test_set)}
    recalibrate_bn(twin, train_set, ecfg.batch_size)
    res = {}
    for name, net in (("teacher", teacher), ("random_init", twin)):
        trf, trl = extract_features(net, train_set, ecfg.batch_size, desc="train features")
        tef, tey = extract_features(net, test_set, ecfg.batch_size, desc="test features")
        res[name] = {"knn": knn_classify(trf, trl, tef, tey, k=ecfg.knn_k, t=ecfg.knn_t)["top1"],
                     "linear": linear_probe(trf, trl, tef, tey, seed=seed)["top1"],
                     "views": view_cosines(net, views, ecfg.batch_size, seed=seed)}
    gap = res["teacher"]["views"]
    out["view_cosine"] = {**gap, "random_init": res["random_init"]["views"], "min_gap": MIN_VIEW_GAP,
                          "passed": gap["gap"] >= MIN_VIEW_GAP}
    kt, kr = res["teacher"]["knn"], res["random_init"]["knn"]
    out["knn"] = {"teacher": kt, "random_init": kr, "margin": kt - kr, "min_margin": MIN_KNN_MARGIN,
                  "passed": kt - kr >= MIN_KNN_MARGIN}
    out["linear"] = {"teacher": res["teacher"]["linear"], "random_init": res["random_init"]["linear"]}
    out["passed"] = all(out[k]["passed"] for k in ("infonce", "view_cosine", "knn"))
    return out


def format_evidence(ev: dict) -> str:
    """Three lines, one per check, for the run's log."""
    i, v, k = ev["infonce"], ev["view_cosine"], ev["knn"]
    ok = {True: "ok", False: "FAILED"}
    loss = "n/a" if i["final"] is None else f"{i['final']:.3f}"
    ratio = "" if i["ratio"] is None else f" = {i['ratio']:.2f} x"
    return "\n".join([
        f"teacher check: InfoNCE {loss}{ratio} chance log(K+1) = {i['chance']:.3f} (need <= {i['max_ratio']} x): "
        f"{ok[i['passed']]}",
        f"teacher check: cos(two views) {v['same']:.3f} - cos(two images) {v['other']:.3f} = gap {v['gap']:.3f} "
        f"(random init {v['random_init']['gap']:.3f}; need >= {v['min_gap']}): {ok[v['passed']]}",
        f"teacher check: kNN {k['teacher']:.1%} vs random-init twin {k['random_init']:.1%} (margin "
        f"{k['margin']:+.1%}, need >= {k['min_margin']:+.0%}); linear {ev['linear']['teacher']:.1%} vs "
        f"{ev['linear']['random_init']:.1%}: {ok[k['passed']]}",
    ])


def write_random_teacher(like: str, path: str | Path, seed: int = 0) -> Path:
    """A control teacher: the architecture of the teacher checkpoint ``like`` with fresh random weights (seeded),
    BatchNorm statistics re-estimated on the training images (as ``train.evaluate --random-init``), and a
    random projector of the same shape as ``like``'s (for S2-BNN). Saved as a teacher checkpoint at ``path``
    with ``"random_init": True``; every method reads it like a trained one."""
    from train.checkpoint import read_checkpoint, save_checkpoint
    from train.evaluate import EvalConfig, eval_dataset, load_backbone, recalibrate_bn
    from train.methods.common import load_teacher_head

    ckpt = read_checkpoint(like)
    net, _ = load_backbone(like, random_init=True, seed=seed)
    recalibrate_bn(net, eval_dataset(ckpt, EvalConfig(seed=seed), "train")[0])
    heads = {}
    proj = load_teacher_head(like, "projector")
    torch.manual_seed(seed + 1)
    for m in proj.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    heads["projector"] = proj.state_dict()
    cfg = ckpt.get("config") or {}
    return save_checkpoint(path, {
        "kind": "teacher", "teacher_arch": ckpt["teacher_arch"], "model": net.state_dict(), "heads": heads,
        "method": "teacher", "random_init": True,
        "config": {"dataset": cfg.get("dataset", "digits"), "data_root": cfg.get("data_root")}})
