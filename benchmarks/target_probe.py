"""How much do S2-BNN's and BURN's targets say about the image? A linear probe on each target itself.

    python benchmarks/target_probe.py TEACHER.pt [--burn-checkpoint BURN_STAGE1.pt] [--json OUT.json]

A binary student distilled towards a target can hold at most what that target tells apart, so a linear probe
on the target (labels never reach training) bounds what the method can teach on this teacher.

For a MoCo teacher checkpoint with its projector (``python -m train.pretrain --method teacher``), on the
checkpoint's data set (eval transform, no augmentation): the linear probe of :mod:`train.evaluate`
(standardised features, Adam) on

* ``h(x)``                      the teacher's pooled features,
* ``z = projector(h(x))``       the MoCo projector output,
* ``softmax(z / T)``            the S2-BNN target as burn-edge computed it before (raw outputs / T),
* ``softmax(z/|z| / T)``        the published S2-BNN target (L2-normalised before / T),

and BURN's (recipe ``official``) on the same teacher:

* ``g(h(x))``                   the fixed random classifier's output (the one stored in ``--burn-checkpoint``, a
                                BURN run on this teacher; without it a g drawn as ``Burn.from_config`` draws it,
                                seeded by ``--seed``), its BN on batch statistics of the preset's batch size,
                                as in training,
* ``softmax(g(h(x)) / T_burn)`` BURN's KL target (T_burn: the recipe's temperature),

plus, for each target, the mean largest probability and the share of images whose most likely bucket is
the most common one (1.0 = the same bucket for every image: a constant target). Prints numbers; asserts
nothing. Cost: two forward passes of the data set through the teacher.
"""

from __future__ import annotations

import json
import sys

import _bench  # benchmarks/_bench.py: the checkout on sys.path
import torch
import torch.nn.functional as F


def get_args_parser(add_help: bool = True):
    p = _bench.args_parser(__doc__, add_help)
    p.add_argument("teacher", help="teacher checkpoint with a MoCo projector head")
    p.add_argument("--temperature", type=float, default=0.2, help="S2-BNN temperature T (default 0.2, official)")
    p.add_argument("--burn-checkpoint", default=None,
                   help="a BURN run's checkpoint on this teacher: probe its stored random classifier g")
    p.add_argument("--seed", type=int, default=0, help="probe seed (default 0)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    return p


def target_stats(p: torch.Tensor) -> dict:
    """p: (N, D) probabilities -> mean max probability and the share of rows whose argmax is the commonest."""
    top = p.argmax(1)
    return {"mean_max_prob": float(p.max(1).values.mean()),
            "same_bucket_share": float(torch.bincount(top).max() / len(top))}


@torch.no_grad()
def burn_classifier(teacher_path: str, burn_checkpoint: str | None, seed: int):
    """(g, T_burn, batch size): BURN's random classifier on this teacher, as the official recipe builds it (its
    stored weights when ``burn_checkpoint`` is given) and the recipe's temperature and per-view batch size."""
    from train.checkpoint import read_checkpoint
    from train.config import resolve_config
    from train.methods.burn import Burn

    cfg = resolve_config("digits-tiny", method="burn", recipe="official", stage=1, teacher_checkpoint=teacher_path,
                         seed=seed)
    torch.manual_seed(seed)
    g = Burn.from_config(cfg).classifier
    if burn_checkpoint:
        sd = (read_checkpoint(burn_checkpoint).get("heads") or {}).get("classifier")
        if sd is None:
            from common.errors import CheckpointError

            raise CheckpointError(f"{burn_checkpoint} has no BURN classifier head")
        g.load_state_dict(sd)
    return g, cfg.temperature, cfg.batch_size


def _batched_train_mode(g, h: torch.Tensor, batch: int) -> torch.Tensor:
    """g(h) with g's BN on batch statistics, ``batch`` rows at a time (as in training, where g sees 2N)."""
    g.train()
    return torch.cat([g(h[i:i + batch]) for i in range(0, len(h), batch)])


def probe_targets(teacher_path: str, temperature: float = 0.2, seed: int = 0,
                  burn_checkpoint: str | None = None) -> dict:
    from train.evaluate import EvalConfig, eval_dataset, extract_features, linear_probe, load_backbone
    from train.methods.common import load_teacher_head

    backbone, ckpt = load_backbone(teacher_path)
    head = load_teacher_head(teacher_path, "projector")
    ecfg = EvalConfig(seed=seed)
    sets = [eval_dataset(ckpt, ecfg, split)[0] for split in ("train", "test")]
    (htr, ytr), (hte, yte) = (extract_features(backbone, s, desc=f"{i} features") for i, s in
                              zip(("train", "test"), sets))
    ztr, zte = head(htr), head(hte)
    views = {
        "h(x)": (htr, hte),
        "z = projector(h(x))": (ztr, zte),
        "softmax(z/T) (raw, before)": (F.softmax(ztr / temperature, 1), F.softmax(zte / temperature, 1)),
        "softmax(normalize(z)/T) (published)": (F.softmax(F.normalize(ztr, dim=1) / temperature, 1),
                                                F.softmax(F.normalize(zte, dim=1) / temperature, 1)),
    }
    g, t_burn, batch = burn_classifier(teacher_path, burn_checkpoint, seed)
    gtr, gte = _batched_train_mode(g, htr, 2 * batch), _batched_train_mode(g, hte, 2 * batch)
    views.update({"g(h(x)) (BURN's random classifier)": (gtr, gte),
                  f"softmax(g(h(x))/{t_burn:g}) (BURN target)": (F.softmax(gtr / t_burn, 1),
                                                                   F.softmax(gte / t_burn, 1))})
    out = {"teacher": teacher_path, "temperature": temperature, "burn_temperature": t_burn,
           "burn_classifier": burn_checkpoint or f"drawn, seed {seed}", "z_norm_mean": float(zte.norm(dim=1).mean()),
           "z_cos_to_mean": float(F.cosine_similarity(zte, zte.mean(0, keepdim=True)).mean()), "probes": {}}
    for name, (tr, te) in views.items():
        with torch.enable_grad():
            r = {"linear_top1": linear_probe(tr, ytr, te, yte, seed=seed)["top1"]}
        if name.startswith("softmax"):
            r.update(target_stats(te))
        out["probes"][name] = r
    return out


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from common.errors import BurnEdgeError

    if not args.temperature > 0:
        print("error: --temperature must be > 0", file=sys.stderr)
        return 2
    try:
        res = probe_targets(args.teacher, args.temperature, args.seed, args.burn_checkpoint)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"teacher {res['teacher']}: |z| mean {res['z_norm_mean']:.2f}, cos(z, mean z) {res['z_cos_to_mean']:.3f}, "
          f"T = {res['temperature']}")
    for name, r in res["probes"].items():
        extra = (f"  max prob {r['mean_max_prob']:.3f}, same bucket {r['same_bucket_share']:.1%}"
                 if "mean_max_prob" in r else "")
        print(f"  {name:42s} linear {r['linear_top1']:.1%}{extra}")
    if args.json:
        from common.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
