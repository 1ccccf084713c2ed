"""Downstream evaluation of a pretrained backbone (the paper's protocols, scaled by options).

Protocols (``--protocol``, repeatable, or ``all``):
  linear       fast probe: linear classifier on frozen, pooled features (cached once, no augmentation,
               standardised, Adam); top-1/top-5. It reads ``forward_features``: for a backbone with the
               official FC(C,C)+ReLU (``feature_mlp``) that FC's post-ReLU output, frozen; the result's
               ``"features"`` says which (also printed)
  linear-paper the paper's linear evaluation (official react_last_full.py): a linear classifier on the
               frozen backbone (BN in eval mode) trained on *augmented* images (random resized crop +
               flip) with SGD lr 0.01, momentum 0.9, no weight decay, batch 256, 100 epochs with the LR
               divided by 10 at epochs 60 and 80 (scaled by --linear-paper-epochs); features are
               recomputed for every augmented batch, so it costs ~epochs forward passes of the train set
  linear-fc    the official BURN linear evaluation proper (react_last_full.py, frozen_stages=14): as
               linear-paper, but the backbone is frozen up to the pool and its FC(C,C)+ReLU is *retrained*
               together with the linear classifier (ReActNet checkpoints with that FC only)
  knn          weighted k-nearest-neighbour on L2-normalised features (Wu et al. 2018): k, tau
  semi         fine-tune the whole network + a linear head on 1 % / 10 % of the labels (class-balanced)
  fewshot-svm  linear SVM (scikit-learn) on k labelled images per class, mean +- std over seeds

The backbone is the binary network k_phi of a ReActNet checkpoint (``forward_features``, the head is
dropped) or the float teacher of a teacher checkpoint. ``--random-init`` evaluates a freshly
initialised network of the checkpoint's architecture instead (BN statistics re-estimated on the
training images, so the random baseline gets its best shot). The data set defaults to the one the
checkpoint was trained on.

  python -m train.evaluate runs/burn-s2/checkpoint.pt --protocol linear --protocol knn
  python -m train.evaluate runs/burn-s2/checkpoint.pt --protocol all --json runs/burn-s2/eval.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import reprlib
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from common.cli import Range, check_options, parse_args
from common.errors import BurnEdgeError, CheckpointError, ConfigError
from common.files import atomic_write_text, ensure_writable_dir, refuse_same_path, remove_stale_temps

PROTOCOLS = ("linear", "linear-paper", "knn", "semi", "fewshot-svm")  # what "all" runs
FC_PROTOCOLS = ("linear-fc",)  # only for backbones with the FC(C,C)+ReLU; asked for by name


@dataclass
class EvalConfig:
    """Options of every protocol; defaults suit the embedded digits data set."""

    dataset: str | None = None  # None = the checkpoint's training data set
    data_root: str | None = None
    batch_size: int = 256
    seed: int = 0
    # linear probe (Adam on cached features)
    linear_epochs: int = 100
    linear_lr: float = 1e-2
    linear_wd: float = 0.0
    # the paper's linear evaluation (augmented images through the frozen backbone, SGD, step LR)
    linear_paper_epochs: int = 100
    linear_paper_lr: float = 0.01
    linear_paper_batch_size: int = 256
    # weighted kNN
    knn_k: int = 20
    knn_t: float = 0.07
    # semi-supervised fine-tuning
    semi_fractions: tuple = (0.01, 0.1)
    semi_epochs: int = 30
    semi_lr: float = 1e-3
    # few-shot linear SVM
    shots: tuple = (1, 5, 10)
    fewshot_seeds: int = 5
    svm_c: float = 1.0
    random_init: bool = False
    test_on_train: bool = False  # an image folder without val/ may be tested on its training images
    device: str = "cpu"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    d = EvalConfig()
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge ReActNet or teacher checkpoint (checkpoint.pt)")
    p.add_argument("--protocol", action="append", choices=PROTOCOLS + FC_PROTOCOLS + ("all",),
                   help="protocol to run; repeat for several; 'all' = every protocol but linear-fc (default: linear "
                        "and knn)")
    p.add_argument("--dataset", default=None, help="evaluation data set (default: the checkpoint's)")
    p.add_argument("--data-root", default=None, help="data folder for cifar*/imagefolder")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate a randomly initialised network of the checkpoint's architecture (baseline)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed for subsets, SVM draws and init (default {d.seed})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"feature batch size (default {d.batch_size})")
    p.add_argument("--linear-epochs", type=int, default=d.linear_epochs,
                   help=f"linear probe epochs ({d.linear_epochs})")
    p.add_argument("--linear-lr", type=float, default=d.linear_lr, help=f"linear probe Adam lr ({d.linear_lr})")
    p.add_argument("--linear-paper-epochs", type=int, default=d.linear_paper_epochs,
                   help=f"epochs of the paper's linear evaluation ({d.linear_paper_epochs}, as the paper)")
    p.add_argument("--linear-paper-lr", type=float, default=d.linear_paper_lr,
                   help=f"SGD lr of the paper's linear evaluation ({d.linear_paper_lr})")
    p.add_argument("--knn-k", type=int, default=d.knn_k, help=f"neighbours of the kNN classifier ({d.knn_k})")
    p.add_argument("--knn-t", type=float, default=d.knn_t, help=f"kNN vote temperature ({d.knn_t})")
    p.add_argument("--semi-fractions", type=float, nargs="+", default=list(d.semi_fractions),
                   help="label fractions for semi-supervised fine-tuning (default 0.01 0.1)")
    p.add_argument("--semi-epochs", type=int, default=d.semi_epochs, help=f"fine-tuning epochs ({d.semi_epochs})")
    p.add_argument("--semi-lr", type=float, default=d.semi_lr, help=f"fine-tuning Adam lr ({d.semi_lr})")
    p.add_argument("--shots", type=int, nargs="+", default=list(d.shots), help="few-shot k values (default 1 5 10)")
    p.add_argument("--fewshot-seeds", type=int, default=d.fewshot_seeds,
                   help=f"random draws per k for the SVM (default {d.fewshot_seeds})")
    p.add_argument("--svm-c", type=float, default=d.svm_c, help=f"LinearSVC C (default {d.svm_c})")
    p.add_argument("--test-on-train", action="store_true",
                   help="imagefolder without a val/ (or test/) split: test on the training images (refused by "
                        "default: the accuracy would mean nothing)")
    p.add_argument("--device", default=d.device, help="cpu or cuda (default cpu)")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    p.add_argument("--classifier", default=None, metavar="CKPT.pt",
                   help="also save the deployable classifier here: the network with its linear probe folded into "
                        "the head (adds the linear protocol; ReActNet checkpoints only); export it with "
                        "python -m export.to_onnx / export.to_lce")
    return p


# Allowed values of the numeric options (common.cli.Range: finite, in range).
RANGES = {"seed": Range(0, 2**32 - 1, integer=True), "batch_size": Range(1, 1 << 20, integer=True),
          "linear_epochs": Range(1, 1 << 20, integer=True), "linear_lr": Range(0, lo_open=True),
          "linear_paper_epochs": Range(1, 1 << 20, integer=True), "linear_paper_lr": Range(0, lo_open=True),
          "knn_k": Range(1, 1 << 20, integer=True), "knn_t": Range(0, lo_open=True),
          "semi_fractions": Range(0, 1, lo_open=True), "semi_epochs": Range(1, 1 << 20, integer=True),
          "semi_lr": Range(0, lo_open=True), "shots": Range(1, 1 << 20, integer=True),
          "fewshot_seeds": Range(1, 1 << 20, integer=True), "svm_c": Range(0, lo_open=True)}


def parse_cli(argv=None) -> argparse.Namespace:
    """The parsed command line, every numeric option checked: one ``error:`` line and exit 2 otherwise."""
    args = parse_args(get_args_parser(), argv)  # one-line argparse errors (common.cli)
    try:
        check_options(args, RANGES)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return args


if __name__ == "__main__":  # --help, usage errors and bad numbers answer here, before torch is imported (seconds)
    parse_cli()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402
from tqdm import tqdm  # noqa: E402

from train.checkpoint import (  # noqa: E402
    check_model_values,
    model_from_checkpoint,
    reactnet_payload,
    read_checkpoint,
    save_checkpoint,
)
from train.data import build_dataset, dataset_info, eval_transform, train_transform  # noqa: E402
from train.models import Teacher, TeacherConfig  # noqa: E402
from train.models.teacher import load_teacher_weights  # noqa: E402

# ------------------------------------------------------------------------------------ backbones


def load_backbone(ckpt_path: str, random_init: bool = False, seed: int = 0) -> tuple[nn.Module, dict]:
    """(backbone, ckpt) where backbone(x) -> (N, C) pooled features, in eval mode.

    ReActNet checkpoints (burn-edge or official BURN/OpenSelfSup state dicts, whose backbone FC(1024,1024)
    is part of the features) give ``forward_features`` of the binary network; teacher checkpoints the
    float ResNet. ``random_init`` rebuilds the same architecture with fresh weights (seeded).
    """
    ckpt = read_checkpoint(ckpt_path)
    kind = ckpt.get("kind")
    if kind == "reactnet":
        model = model_from_checkpoint(ckpt)
        if random_init:
            torch.manual_seed(seed)
            model = type(model)(model.cfg)
        return _Features(model), ckpt
    if kind == "teacher":
        arch = ckpt.get("teacher_arch")
        try:
            t = Teacher(TeacherConfig(**arch))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{ckpt_path}: teacher_arch {reprlib.repr(arch)} is not a teacher "
                                  f"architecture: {e}") from None
        if not random_init:
            load_teacher_weights(t, ckpt)
            check_model_values(t, ckpt_path)  # the one validity check, as for ReActNet checkpoints
        else:
            torch.manual_seed(seed)
            t = Teacher(TeacherConfig(**ckpt["teacher_arch"]))
        return t, ckpt
    if kind is None:  # an official state dict: BURN (OpenSelfSup) layouts record their structure
        model = model_from_checkpoint(ckpt)
        if random_init:
            torch.manual_seed(seed)
            model = type(model)(model.cfg)
        return _Features(model), ckpt
    raise CheckpointError(f"{ckpt_path}: not a burn-edge ReActNet or teacher checkpoint (kind={kind!r})")


class _Features(nn.Module):
    """k_phi only: ReActNet without its head."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class _Pooled(nn.Module):
    """ReActNet up to the global pool: (N, 3, S, S) -> (N, C), before the backbone FC(C,C)+ReLU."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        for name, m in self.model.stages("features"):
            if name == "mlp":
                break
            x = m(x)
        return x


def features_read(backbone: nn.Module) -> str:
    """Which features the frozen-feature protocols (linear, knn, fewshot-svm) read from ``backbone``."""
    if isinstance(backbone, _Features):
        c = backbone.model.cfg.feature_dim()
        if backbone.model.mlp is not None:
            return f"k(x): output of the backbone FC({c},{c})+ReLU after the pool (frozen, post-ReLU)"
        return f"k(x): globally pooled output of the last binary block ({c}-d)"
    return "h(x): globally pooled float ResNet features"


def eval_dataset(ckpt: dict, ecfg: EvalConfig, split: str, augment: bool = False):
    """(data set, DatasetInfo) of ``split``: ``ecfg.dataset``, else the one the checkpoint was trained on (digits)."""
    name = ecfg.dataset or (ckpt.get("config") or {}).get("dataset") or "digits"
    root = ecfg.data_root or (ckpt.get("config") or {}).get("data_root")
    info = dataset_info(name)
    tf = train_transform(info.input_size, info.mean, info.std) if augment else \
        eval_transform(info.input_size, info.mean, info.std, resize=name == "imagefolder")
    if split != "train" and ecfg.test_on_train and name == "imagefolder":
        print(f"warning: --test-on-train: testing on the training images of {root}", file=sys.stderr)
    return build_dataset(name, split, root=root, transform=tf, test_on_train=ecfg.test_on_train), info


def _labels(ds) -> np.ndarray:
    base, idx = (ds.dataset, ds.indices) if isinstance(ds, Subset) else (ds, None)
    y = np.asarray(base.targets)
    return y if idx is None else y[np.asarray(idx)]


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset, batch_size: int = 256, device: str = "cpu",
                     desc: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features of a whole data set: (N, C) float32 and (N,) int64 labels."""
    backbone.eval().to(device)
    feats, labels = [], []
    for x, y in tqdm(DataLoader(dataset, batch_size=batch_size), desc=desc, leave=False, disable=None):
        feats.append(backbone(x.to(device)).float().cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def recalibrate_bn(backbone: nn.Module, dataset, batch_size: int = 256, batches: int = 20) -> None:
    """Re-estimate BN running statistics of a (random) network on training images (cumulative average)."""
    bns = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    backbone.train()
    for (x, _), _ in zip(DataLoader(dataset, batch_size=batch_size, shuffle=True), range(batches)):
        backbone(x)
    backbone.eval()


# ------------------------------------------------------------------------------------ protocols


def _topk(logits: torch.Tensor, y: torch.Tensor) -> dict:
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return {"top1": float((top[:, 0] == y).float().mean()), f"top{k}": float((top == y[:, None]).any(1).float().mean())}


@dataclass
class LinearProbe:
    """A trained linear probe: ``logits = linear((f - mean) / std)``.

    f: (N, C) frozen features -> (N, K) logits; mean/std: (C,) statistics of the training features
    (std has 1e-6 added, so a constant feature does not divide by zero).
    """

    linear: nn.Linear
    mean: torch.Tensor
    std: torch.Tensor

    @torch.no_grad()
    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        return self.linear((f - self.mean) / self.std)

    def folded(self) -> nn.Linear:
        """One ``nn.Linear`` equal to the probe on raw features: W' = W / std, b' = b - W' mean."""
        head = nn.Linear(self.linear.in_features, self.linear.out_features)
        with torch.no_grad():
            head.weight.copy_(self.linear.weight / self.std)
            head.bias.copy_(self.linear.bias - head.weight @ self.mean)
        return head


def linear_probe(train_f, train_y, test_f, test_y, *, epochs: int = 100, lr: float = 1e-2, wd: float = 0.0,
                 batch_size: int = 256, seed: int = 0, return_model: bool = False):
    """Linear classifier on standardised frozen features (Adam, cosine LR). Returns top-1/top-5
    (and, with ``return_model``, the trained :class:`LinearProbe`)."""
    g = torch.Generator().manual_seed(seed)
    mean, std = train_f.mean(0), train_f.std(0) + 1e-6
    xtr = (train_f - mean) / std
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    torch.manual_seed(seed)
    clf = nn.Linear(xtr.shape[1], n_cls)
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * max(1, -(-len(xtr) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(clf(xtr[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    probe = LinearProbe(clf, mean, std)
    res = _topk(probe(test_f), test_y)
    return (res, probe) if return_model else res


def linear_paper(backbone: nn.Module, feat_dim: int, train_set, test_set, *, epochs: int = 100, lr: float = 0.01,
                 batch_size: int = 256, seed: int = 0, device: str = "cpu", retrain: nn.Module | None = None) -> dict:
    """The paper's linear evaluation: ``Linear(feat_dim, classes)`` on the frozen backbone (eval mode, no
    gradient) over augmented training images (``train_set`` carries the augmentation); SGD(lr, momentum
    0.9, no weight decay), LR x0.1 at 60 % and 80 % of the epochs (the official 60 and 80 of 100).
    ``retrain``: a module trained together with the classifier, between backbone and classifier (a copy of
    it; the official protocol's FC(C,C)+ReLU). Returns test top-1/top-5."""
    torch.manual_seed(seed)
    backbone.eval().to(device)
    labels = _labels(train_set)
    head = nn.Linear(feat_dim, int(labels.max()) + 1).to(device)
    if retrain is not None:
        head = nn.Sequential(copy.deepcopy(retrain).requires_grad_(True), head).to(device)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [round(0.6 * epochs), round(0.8 * epochs)], gamma=0.1)
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=min(batch_size, len(train_set)), shuffle=True, generator=g)
    t0, log_every = time.perf_counter(), max(1, epochs // 10)
    for epoch in tqdm(range(epochs), desc="linear (paper)", leave=False, disable=None):
        if epoch and epoch % log_every == 0 and not sys.stderr.isatty():  # a log file sees progress too
            spent = time.perf_counter() - t0
            print(f"evaluate: linear (paper) epoch {epoch}/{epochs}, {spent:.0f}s, about "
                  f"{spent / epoch * (epochs - epoch):.0f}s left", flush=True)
        for x, y in loader:
            with torch.no_grad():
                f = backbone(x.to(device))
            loss = F.cross_entropy(head(f), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    f, y = extract_features(backbone, test_set, device=device, desc="test")
    with torch.no_grad():
        return {**_topk(head.cpu()(f), y), "epochs": epochs}


def fold_linear_probe(model, probe: LinearProbe):
    """The deployable classifier: ``model`` (a ReActNetA, changed in place and returned) with its head
    replaced by ``probe.folded()``, so ``model(x) == probe(model.forward_features(x))``.
    ``model.cfg`` is updated (num_classes = the probe's classes, head_hidden = 0) so checkpoints rebuild it."""
    model.cfg = replace(model.cfg, num_classes=probe.linear.out_features, head_hidden=0)
    model.head = probe.folded()
    return model


def knn_classify(train_f, train_y, test_f, test_y, *, k: int = 20, t: float = 0.07, batch_size: int = 512) -> dict:
    """Weighted kNN: cosine similarity, votes exp(sim / t) over the k nearest training features."""
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_f))
    tr, te = F.normalize(train_f, dim=1), F.normalize(test_f, dim=1)
    scores = []
    for i in range(0, len(te), batch_size):
        sim = te[i:i + batch_size] @ tr.T  # (B, N_train)
        s, idx = sim.topk(k, dim=1)  # (B, k)
        votes = torch.zeros(len(s), n_cls).scatter_add_(1, train_y[idx], (s / t).exp())  # (B, classes)
        scores.append(votes)
    return _topk(torch.cat(scores), test_y)


def fewshot_svm(train_f, train_y, test_f, test_y, *, shots=(1, 5, 10), seeds: int = 5, c: float = 1.0) -> dict:
    """Linear SVM on ``k`` random labelled images per class (L2-normalised features): test accuracy
    mean and std over ``seeds`` draws, per k."""
    from sklearn.svm import LinearSVC

    xtr, xte = F.normalize(train_f, dim=1).numpy(), F.normalize(test_f, dim=1).numpy()
    ytr, yte = train_y.numpy(), test_y.numpy()
    out = {}
    for k in shots:
        accs = []
        for s in range(seeds):
            rng = np.random.default_rng(s)
            idx = np.concatenate([rng.choice(np.flatnonzero(ytr == c_), size=min(k, int((ytr == c_).sum())),
                                             replace=False) for c_ in np.unique(ytr)])
            svm = LinearSVC(C=c, max_iter=5000).fit(xtr[idx], ytr[idx])
            accs.append(float((svm.predict(xte) == yte).mean()))
        out[f"{k}-shot"] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "runs": accs}
    return out


def balanced_subset(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of ``fraction`` of each class (at least one image per class), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    idx = [rng.choice(np.flatnonzero(labels == c), size=max(1, round(fraction * int((labels == c).sum()))),
                      replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(idx))


def semi_supervised(backbone: nn.Module, feat_dim: int, train_set, test_set, *, fraction: float, epochs: int = 30,
                    lr: float = 1e-3, batch_size: int = 64, seed: int = 0, device: str = "cpu") -> dict:
    """Fine-tune a copy of ``backbone`` + a new linear head on a class-balanced ``fraction`` of the
    labelled training images (augmented), then report test top-1/top-5."""
    torch.manual_seed(seed)
    net = copy.deepcopy(backbone).to(device)
    net.requires_grad_(True)  # a loaded teacher is frozen; fine-tuning unfreezes the copy
    labels = _labels(train_set)
    sub = Subset(train_set, balanced_subset(labels, fraction, seed).tolist())
    head = nn.Linear(feat_dim, int(labels.max()) + 1).to(device)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    loader = DataLoader(sub, batch_size=min(batch_size, len(sub)), shuffle=True, drop_last=len(sub) > batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * len(loader)))
    for _ in tqdm(range(epochs), desc=f"semi {fraction:.0%}", leave=False, disable=None):
        net.train()
        for x, y in loader:
            loss = F.cross_entropy(head(net(x.to(device))), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    f, y = extract_features(net, test_set, device=device, desc="test")
    with torch.no_grad():
        res = _topk(head.cpu()(f), y)
    return {**res, "labelled_images": len(sub)}


# ------------------------------------------------------------------------------------ driver


def evaluate(ckpt_path: str, protocols=("linear", "knn"), ecfg: EvalConfig | None = None) -> dict:
    """Run ``protocols`` on a checkpoint; returns ``{protocol: result dict}`` plus ``"checkpoint"`` info."""
    return _evaluate(ckpt_path, protocols, ecfg)[0]


@contextlib.contextmanager
def _progress(what: str):
    """One plain line when a protocol starts and one when it ends (with its time), so a log file shows where a
    long evaluation is; the tqdm bars inside appear on a terminal only."""
    print(f"evaluate: {what} ...", flush=True)
    t0 = time.perf_counter()
    yield
    print(f"evaluate: {what} done in {time.perf_counter() - t0:.1f}s", flush=True)


def _evaluate(ckpt_path: str, protocols, ecfg: EvalConfig | None):
    """:func:`evaluate` -> (results, backbone, probe or None, (test features, test labels) or None)."""
    ecfg = ecfg or EvalConfig()
    bad = [p for p in protocols if p not in PROTOCOLS + FC_PROTOCOLS]
    if bad:
        raise ConfigError(f"unknown protocol(s) {bad}; choose from {list(PROTOCOLS + FC_PROTOCOLS)} or 'all'")
    backbone, ckpt = load_backbone(ckpt_path, ecfg.random_init, ecfg.seed)
    train_set, info = eval_dataset(ckpt, ecfg, "train")
    test_set, _ = eval_dataset(ckpt, ecfg, "test")
    if len(train_set) == 0 or len(test_set) == 0:
        raise ConfigError("empty evaluation data set")
    if ecfg.random_init:
        recalibrate_bn(backbone, train_set, ecfg.batch_size)
    out = {"checkpoint": str(ckpt_path), "method": ckpt.get("method"), "stage": ckpt.get("stage"),
           "random_init": ecfg.random_init, "features": features_read(backbone)}
    probe = None
    need_feats = any(p in protocols for p in ("linear", "knn", "fewshot-svm"))
    if need_feats:
        with _progress(f"features of {len(train_set)} train + {len(test_set)} test images"):
            trf, try_ = extract_features(backbone, train_set, ecfg.batch_size, ecfg.device, "train features")
            tef, tey = extract_features(backbone, test_set, ecfg.batch_size, ecfg.device, "test features")
    if "linear" in protocols:
        with _progress(f"linear probe ({ecfg.linear_epochs} epochs)"):
            out["linear"], probe = linear_probe(trf, try_, tef, tey, epochs=ecfg.linear_epochs, lr=ecfg.linear_lr,
                                                wd=ecfg.linear_wd, seed=ecfg.seed, return_model=True)
    if "linear-paper" in protocols:
        with _progress(f"linear-paper ({ecfg.linear_paper_epochs} epochs over augmented images)"):
            aug_set, _ = eval_dataset(ckpt, ecfg, "train", augment=True)
            out["linear-paper"] = linear_paper(backbone, _feat_dim(backbone, test_set), aug_set, test_set,
                                               epochs=ecfg.linear_paper_epochs, lr=ecfg.linear_paper_lr,
                                               batch_size=ecfg.linear_paper_batch_size, seed=ecfg.seed,
                                               device=ecfg.device)
    if "linear-fc" in protocols:
        if not isinstance(backbone, _Features) or backbone.model.mlp is None:
            raise ConfigError("protocol linear-fc retrains the backbone FC(C,C)+ReLU: this checkpoint has none "
                              "(use linear-paper)")
        with _progress(f"linear-fc ({ecfg.linear_paper_epochs} epochs, the FC(C,C)+ReLU retrained)"):
            aug_set, _ = eval_dataset(ckpt, ecfg, "train", augment=True)
            out["linear-fc"] = linear_paper(_Pooled(backbone.model), backbone.model.cfg.feature_dim(), aug_set,
                                            test_set, epochs=ecfg.linear_paper_epochs, lr=ecfg.linear_paper_lr,
                                            batch_size=ecfg.linear_paper_batch_size, seed=ecfg.seed,
                                            device=ecfg.device, retrain=backbone.model.mlp)
    if "knn" in protocols:
        with _progress(f"kNN (k={ecfg.knn_k})"):
            out["knn"] = {**knn_classify(trf, try_, tef, tey, k=ecfg.knn_k, t=ecfg.knn_t), "k": ecfg.knn_k}
    if "fewshot-svm" in protocols:
        with _progress(f"few-shot SVM (k = {', '.join(map(str, ecfg.shots))}; {ecfg.fewshot_seeds} draws each)"):
            out["fewshot-svm"] = fewshot_svm(trf, try_, tef, tey, shots=ecfg.shots, seeds=ecfg.fewshot_seeds,
                                             c=ecfg.svm_c)
    if "semi" in protocols:
        aug_set, _ = eval_dataset(ckpt, ecfg, "train", augment=True)
        feat_dim = _feat_dim(backbone, test_set)
        out["semi"] = {}
        for fr in ecfg.semi_fractions:
            with _progress(f"semi-supervised fine-tuning on {fr:.0%} of the labels ({ecfg.semi_epochs} epochs)"):
                out["semi"][f"{fr:.0%}"] = semi_supervised(backbone, feat_dim, aug_set, test_set, fraction=fr,
                                                           epochs=ecfg.semi_epochs, lr=ecfg.semi_lr,
                                                           seed=ecfg.seed, device=ecfg.device)
    return out, backbone, probe, (tef, tey) if need_feats else None


def deployable_classifier(ckpt_path: str, protocols=("linear", "knn"), ecfg: EvalConfig | None = None):
    """Evaluate a ReActNet checkpoint and fold its linear probe into the head: ``(results, model, probe)``.

    ``results`` is :func:`evaluate`'s dict plus ``"classifier": {"test_top1"}``, the folded model's
    top-1 on the test features (equal to the probe's, up to float rounding at ties); ``model(x) ==
    probe(model.forward_features(x))``. Features are extracted once for all protocols. ``protocols``
    must include "linear".
    """
    if "linear" not in protocols:
        raise ConfigError("deployable_classifier needs the 'linear' protocol (its probe becomes the head)")
    out, backbone, probe, (tef, tey) = _evaluate(ckpt_path, protocols, ecfg)
    if not isinstance(backbone, _Features):
        raise CheckpointError(f"{ckpt_path}: only a ReActNet checkpoint becomes a deployable classifier")
    model = fold_linear_probe(backbone.model, probe).eval()
    with torch.no_grad():
        out["classifier"] = {"test_top1": float((model.forward_head(tef).argmax(1) == tey).float().mean())}
    return out, model, probe


def classifier_payload(model, source: dict) -> dict:
    """Checkpoint payload of a folded classifier made from the ``source`` checkpoint (method "<m>+linear-probe",
    the source's stage, and the data set it was trained on, which sets the exported mean/std)."""
    cfg = source.get("config") or {}
    return reactnet_payload(model, method=f"{source.get('method') or 'unknown'}+linear-probe",
                            stage=source.get("stage", 2 if model.cfg.binary_weights else 1),
                            config={"dataset": cfg.get("dataset", "digits")})


@torch.no_grad()
def _feat_dim(backbone, dataset) -> int:
    backbone.eval()
    return int(backbone(dataset[0][0][None]).shape[1])


def format_result(res: dict) -> str:
    """Human-readable one-line-per-protocol summary of :func:`evaluate`'s dict."""
    lines = [f"{'features':12s} {res['features']}"] if res.get("features") else []
    for p in PROTOCOLS + FC_PROTOCOLS:
        r = res.get(p)
        if r is None:
            continue
        if p in ("linear", "linear-paper", "linear-fc", "knn"):
            lines.append(f"{p:12s} top-1 {r['top1']:.2%}" + (f"  top-5 {r['top5']:.2%}" if "top5" in r else ""))
        elif p == "semi":
            lines.append(f"{p:12s} " + "  ".join(f"{k}: top-1 {v['top1']:.2%}" for k, v in r.items()))
        else:
            lines.append(f"{p:12s} " + "  ".join(f"{k}: {v['mean']:.2%} ± {v['std']:.2%}" for k, v in r.items()))
    if "classifier" in res:
        c = res["classifier"]
        lines.append(f"{'classifier':12s} top-1 {c['test_top1']:.2%} (linear probe folded into the head)"
                     + (f" -> {c['checkpoint']}" if c.get("checkpoint") else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_cli(argv)
    protocols = args.protocol or ["linear", "knn"]
    if "all" in protocols:
        protocols = list(PROTOCOLS)
    ecfg = EvalConfig(dataset=args.dataset, data_root=args.data_root, batch_size=args.batch_size, seed=args.seed,
                      linear_epochs=args.linear_epochs, linear_lr=args.linear_lr,
                      linear_paper_epochs=args.linear_paper_epochs, linear_paper_lr=args.linear_paper_lr,
                      knn_k=args.knn_k,
                      knn_t=args.knn_t, semi_fractions=tuple(args.semi_fractions), semi_epochs=args.semi_epochs,
                      semi_lr=args.semi_lr, shots=tuple(args.shots), fewshot_seeds=args.fewshot_seeds,
                      svm_c=args.svm_c, random_init=args.random_init, test_on_train=args.test_on_train,
                      device=args.device)
    if args.classifier and "linear" not in protocols:
        protocols = ["linear", *protocols]
    try:
        # before the long work: never overwrite the checkpoint, never fail only at the end
        for flag, out in (("--json", args.json), ("--classifier", args.classifier)):
            if out:
                refuse_same_path(out, args.checkpoint, what=flag)
                remove_stale_temps(ensure_writable_dir(Path(out).parent))
        if args.classifier:
            res, model, _ = deployable_classifier(args.checkpoint, protocols, ecfg)
            save_checkpoint(args.classifier, classifier_payload(model, read_checkpoint(args.checkpoint)))
            res["classifier"]["checkpoint"] = str(args.classifier)
        else:
            res = evaluate(args.checkpoint, protocols, ecfg)
        res["eval_config"] = asdict(ecfg)
        print(format_result(res))
        if args.json:
            atomic_write_text(args.json, json.dumps(res, indent=1) + "\n")
            print(f"wrote {args.json}")
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
