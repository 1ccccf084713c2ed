"""Training configuration: one dataclass with working defaults, and named presets.

``PretrainConfig()`` is the embedded default's shape; a preset (``PRESETS``) overrides fields, per
method; command-line flags override the preset. Flags are the field names in kebab case
(``--lam-start`` <-> ``lam_start``) and are generated from the fields below, so ``--help`` lists
every option with its help text and default.

A *recipe* (``RECIPES``, ``--recipe``) names BURN's objective -- which parts train, where the
feature-similarity term sits, the augmentations -- independently of the scale a preset sets (data,
width, epochs, batch). It applies to ``--method burn`` (and its ablations) only.

Resolution order: dataclass default < preset["*"] < preset[method] < RECIPES[recipe] (burn only)
< explicit flags.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields

from common.cli import Range, check_options
from common.errors import ConfigError
from train.schedules import LAMBDA_SCHEDULES

METHOD_NAMES = ("burn", "s2bnn", "supervised-kl", "supervised", "teacher")
AMP_MODES = ("none", "bf16", "fp16")
AUGMENTS = ("official", "byol")
TEACHER_BN_MODES = ("batch", "eval")
TEACHER_OBJECTIVES = ("moco", "supervised")
# Feature-similarity losses (train.losses.feature_similarity); here so that --help needs no torch.
FS_KINDS = ("cosine", "normalized-l2", "l1", "l2", "none")
CMIM_VARIANTS = ("memory", "inbatch")
FS_PLACES = ("heads", "features")
KL_DIRECTIONS = ("target-student", "student-target")
LABELLED_METHODS = ("supervised",)  # methods whose training loss reads the labels


NUM_BLOCKS = 13  # ReActNet-A's blocks (train.models.reactnet.NUM_BLOCKS, without torch; a test keeps them equal)
_COUNT = 1 << 30  # a sanity bound for counts (images, widths, steps): past it the value is a typo, not a plan

# Every numeric field's allowed values (common.cli.Range: finite, in range), checked for every config --
# command-line flags, presets and resumed runs alike -- so NaN, inf or a negative size never reaches training.
RANGES = {
    "num_workers": Range(0, 1024, integer=True), "limit_train": Range(0, _COUNT, integer=True),
    "crop_min_scale": Range(0, 1), "width": Range(0, 64, lo_open=True),
    "num_blocks": Range(1, NUM_BLOCKS, integer=True),
    "head_hidden": Range(0, 1 << 20, integer=True), "head_dim": Range(1, 1 << 20, integer=True),
    "temperature": Range(0, lo_open=True), "lam_start": Range(0, 1), "lam_end": Range(0, 1),
    "cmim_weight": Range(0), "cmim_dim": Range(1, 1 << 20, integer=True), "cmim_temperature": Range(0, lo_open=True),
    "cmim_bank": Range(1, _COUNT, integer=True), "cmim_momentum": Range(0, 1, hi_open=True),
    "cmim_pool": Range(1, 1 << 10, integer=True), "moco_dim": Range(1, 1 << 20, integer=True),
    "moco_k": Range(1, _COUNT, integer=True), "moco_m": Range(0, 1),
    "epochs": Range(1, _COUNT, integer=True), "batch_size": Range(1, _COUNT, integer=True),
    "accum_steps": Range(1, _COUNT, integer=True), "lr": Range(0, lo_open=True), "weight_decay": Range(0),
    "warmup_epochs": Range(0), "seed": Range(0, 2**32 - 1, integer=True), "log_every": Range(1, _COUNT, integer=True),
    "save_every": Range(0, _COUNT, integer=True),
}


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class PretrainConfig:
    # ---- method
    method: str = _f("burn", "training method", choices=METHOD_NAMES)
    recipe: str = _f("official", "BURN objective: official (frozen random g, the official code) or paper "
                                 "(g trained jointly, Alg. 1); see RECIPES / docs/training.md",
                     choices=("official", "paper"))
    stage: int = _f(1, "1 = binary activations, float weights; 2 = binary weights too", choices=(1, 2))
    init: str | None = _f(None, "checkpoint to initialise from (stage 2: the stage-1 checkpoint; "
                                "BURN loads the binary network phi and the classifier g)")
    # ---- data
    dataset: str = _f("digits", "digits (embedded), cifar10, cifar100 or imagefolder")
    data_root: str | None = _f(None, "data folder for cifar*/imagefolder (never downloaded)")
    num_workers: int = _f(0, "DataLoader worker processes")
    limit_train: int = _f(0, "use only the first N training images (0 = all; smoke tests)")
    augment: str = _f("official", "two-view augmentation: official (BURN config: jitter p=0.6, blur p=0.2 on both "
                                  "views) or byol (jitter p=0.8, blur p=1.0 / 0.1)", choices=AUGMENTS)
    crop_min_scale: float = _f(0.0, "smallest RandomResizedCrop area fraction of the two views (0 = automatic: 0.2 for "
                                    "inputs <= 64 px, else 0.08)")
    hflip: bool = _f(True, "random horizontal flip in the two-view augmentation")
    # ---- binary network k_phi + head l_phi (ReActNet-A)
    width: float = _f(1.0, "ReActNet-A channel multiplier")
    num_blocks: int = _f(13, "number of ReActNet-A blocks used (13 = full network)")
    padding: str = _f("zero", "binary conv padding: zero (official) or one (LCE fast path)")
    act_grad: str = _f("approx", "sign gradient: approx (ReActNet) or ste (clipped STE, official BURN)")
    conv_init: str = _f("default", "convolution init: default (PyTorch) or kaiming (normal, fan_in; official BURN)",
                        choices=("default", "kaiming"))
    weight_grad: str = _f("clipped", "stage-2 weight binariser gradient: clipped (STE of clamp(W,-1,1), ReActNet) or "
                                     "identity (plain STE, official BURN)", choices=("clipped", "identity"))
    feature_mlp: bool = _f(False, "FC(C,C)+ReLU after the pool, part of the features (official BURN use_mlp)")
    head_hidden: int = _f(2000, "hidden width of the MLP heads g and l (official 2000)")
    head_dim: int = _f(2000, "output dimension of the heads g and l (official 2000)")
    # ---- teacher h_zeta
    teacher_arch: str = _f("resnet50", "float teacher: resnet18, resnet34 or resnet50")
    teacher_small_input: bool = _f(False, "teacher stem = 3x3 stride-1 conv, no max-pool (CIFAR variant)")
    teacher_checkpoint: str | None = _f(None, "teacher checkpoint: burn-edge (--method teacher), MoCo v1/v2 or "
                                              "torchvision ResNet")
    teacher_bn: str = _f("eval", "teacher BatchNorm: eval (running statistics) or batch (batch statistics, as the "
                                 "official code's frozen teacher in train mode)", choices=TEACHER_BN_MODES)
    teacher_objective: str = _f("moco", "--method teacher only: moco (MoCo-v2 self-supervised) or supervised",
                                choices=TEACHER_OBJECTIVES)
    # ---- losses
    temperature: float = _f(0.2, "softmax temperature T of the KL / InfoNCE losses")
    lam_schedule: str = _f("cosine", "lambda(t): cosine (Eq. 3), step or constant", choices=LAMBDA_SCHEDULES)
    lam_start: float = _f(0.9, "lambda at t=0 (weight of the feature-similarity term; KL gets 1-lambda)")
    lam_end: float = _f(0.7, "lambda at the last step")
    fs: str = _f("normalized-l2", "feature-similarity loss: cosine (1-cos, paper), normalized-l2 (|a/|a|-b/|b||^2 = "
                           "2(1-cos), official code), l1, l2, none (= ablation 1)", choices=FS_KINDS)
    fs_on: str = _f("heads", "where FS is computed: heads = g(h(x)) vs l(k(x)) (official code); features = h(x) vs "
                             "k(x), through a linear map where the widths differ (paper Eq. 4)", choices=FS_PLACES)
    kl_direction: str = _f("target-student", "KL(softmax(g/T) || softmax(l/T)) (target-student, official code) or "
                                             "KL(student || target) (student-target, the paper's Alg. 1)",
                           choices=KL_DIRECTIONS)
    freeze_classifier: bool = _f(True, "keep the random classifier g fixed (official code, recipe official) "
                                       "instead of training it jointly (paper, recipe paper)")
    # ---- CMIM pile-up term (Shang et al., ECCV 2022), any binary method
    cmim_weight: float = _f(0.0, "alpha: weight of the CMIM contrastive term added to the method's loss (0 = off; "
                                 "the public CIFAR-100 code uses 3.2 on top of cross entropy)")
    cmim_variant: str = _f("memory", "memory (the public code: positives and negatives from a per-sample memory of "
                                     "the other branch, fixed random embedding heads, NCE loss) or inbatch (the "
                                     "live counterpart of the same pass as positive, in-batch negatives, trainable "
                                     "heads, InfoNCE); see docs/training.md", choices=CMIM_VARIANTS)
    cmim_blocks: str = _f("-1", "blocks whose two binarisers (a_F -> a_B) CMIM reads: comma-separated indices "
                                "(negative = from the end) or all")
    cmim_dim: int = _f(128, "CMIM embedding width (public 128)")
    cmim_temperature: float = _f(0.1, "CMIM temperature tau (public 0.1)")
    cmim_bank: int = _f(4096, "memory variant: negatives per positive drawn from the per-sample memory (public 4096)")
    cmim_momentum: float = _f(0.5, "memory variant: momentum of the per-sample memory update (public 0.5)")
    cmim_class_aware: str = _f("auto", "memory variant: negatives from other classes only (the public code; needs "
                                       "labels): auto = when the method trains with labels (supervised), on, off",
                               choices=("auto", "on", "off"))
    cmim_pool: int = _f(1, "CMIM embeds an activation after average pooling to a P x P grid (1 = global pool)")
    teacher_check: bool = _f(True, "--method teacher (moco): after training, check that the teacher learned (InfoNCE "
                                   "vs chance, view invariance, kNN vs its random-init twin) -> teacher_check.json")
    moco_dim: int = _f(128, "MoCo projection dimension")
    moco_k: int = _f(65536, "MoCo queue length (negatives)")
    moco_m: float = _f(0.999, "MoCo key-encoder momentum")
    # ---- optimisation
    epochs: int = _f(200, "training epochs")
    batch_size: int = _f(256, "images per process per micro-batch (global = batch x processes x accum-steps)")
    accum_steps: int = _f(1, "gradient accumulation: micro-batches per optimizer step")
    lr: float = _f(3e-4, "Adam base learning rate")
    weight_decay: float = _f(0.0, "Adam weight decay")
    warmup_epochs: float = _f(10.0, "linear learning-rate warm-up, in epochs (then cosine to 0)")
    amp: str = _f("none", "mixed precision on GPU: none, bf16 or fp16 (ignored on CPU)", choices=AMP_MODES)
    channels_last: bool = _f(True, "channels_last memory format on GPU")
    fast_step: bool = _f(True, "optimised step: fused binariser / RPReLU autograd functions, fused Adam, CPU "
                               "allocator reuse (off = plain PyTorch ops; same losses and gradients)")
    compile: bool = _f(False, "torch.compile the binary network and the teacher (fuses each block's elementwise "
                              "and BatchNorm passes; ~1.5 min once per process at 224² on 2 cores, ~15 s with "
                              "Inductor's cache warm; so on for the long ImageNet preset; off with CMIM, which "
                              "reads activations through hooks)")
    sync_bn: bool = _f(True, "SyncBatchNorm in the trained network and heads under multi-GPU DDP")
    # ---- run
    out: str = _f("runs/burn", "output folder (checkpoint.pt, metrics.jsonl, metrics.csv, config.json)")
    seed: int = _f(0, "random seed (data order, augmentations, initialisation)")
    device: str = _f("auto", "auto, cpu or cuda")
    log_every: int = _f(10, "print a progress line every N optimizer steps")
    save_every: int = _f(0, "also checkpoint every N optimizer steps (0 = only at epoch ends)")
    resume: str | None = _f(None, "checkpoint.pt of an interrupted run to continue (bit-for-bit on CPU)")
    tensorboard: bool = _f(False, "also write TensorBoard scalars to <out>/tb")

    def __post_init__(self):
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name} must be one of {list(choices)}, got {getattr(self, f.name)!r}")
        check_options({f.name: getattr(self, f.name) for f in fields(self)}, RANGES)
        if self.cmim_class_aware == "on" and self.method not in LABELLED_METHODS:
            raise ConfigError(f"--cmim-class-aware on needs labels, but --method {self.method} trains without them "
                              f"(label-free negatives are any other sample: --cmim-class-aware auto or off)")
        if self.cmim_weight > 0 and self.method == "teacher":
            raise ConfigError("--cmim-weight needs a binary student; --method teacher trains the float teacher")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# Recipes: BURN's objective as named, documented choices (docs/training.md has them side by side).
# lam weighs FS (loss = (1 - lam) KL + lam FS), so lam 0.9 -> 0.7 is the official lambda_kl 0.1 -> 0.3.
# The dataclass defaults of the BURN-only fields equal RECIPES["official"] (tests/train/test_recipes.py).
RECIPES: dict[str, dict] = {
    # The official code (github.com/naver-ai/burn), computed with gradients: g (incl. its 2000-d MLP neck)
    # is a fixed random classifier, FS on the two head outputs as |a/|a| - b/|b||^2, KL(target || student),
    # official augmentations, FC(C,C)+ReLU in the backbone, clipped-STE activations, teacher BN in
    # batch-statistics mode, kaiming-normal convolutions, unclipped (identity) weight STE in stage 2.
    "official": dict(freeze_classifier=True, fs_on="heads", fs="normalized-l2", kl_direction="target-student",
                     lam_schedule="cosine", lam_start=0.9, lam_end=0.7, temperature=0.2, augment="official",
                     feature_mlp=True, act_grad="ste", teacher_bn="batch", conv_init="kaiming",
                     weight_grad="identity"),
    # The paper's Eq. 4 and Alg. 1: g trained jointly with the binary network, FS = cosine distance between
    # the feature extractors' outputs h(x) and k(x) (through a linear map where the widths differ), and
    # KL(student || target). What the paper does not specify is taken from the official code.
    "paper": dict(freeze_classifier=False, fs_on="features", fs="cosine", kl_direction="student-target",
                  lam_schedule="cosine", lam_start=0.9, lam_end=0.7, temperature=0.2, augment="official",
                  feature_mlp=True, act_grad="ste", teacher_bn="batch", conv_init="kaiming", weight_grad="identity"),
}

# Presets: {"*": overrides for every method, "<method>": overrides for that method}.
PRESETS: dict[str, dict[str, dict]] = {
    # The embedded default: the whole chain (teacher -> BURN stage 1 -> stage 2) in minutes on 2 CPU cores.
    "digits-tiny": {
        "*": dict(dataset="digits", width=0.25, num_blocks=13, padding="one", head_hidden=256, head_dim=128,
                  teacher_arch="resnet18", teacher_small_input=False, batch_size=64, lr=2e-3,
                  warmup_epochs=1.0, log_every=10, moco_k=1024, moco_m=0.99, moco_dim=64, num_workers=1,
                  cmim_bank=1024),
        # MoCo teacher that learns (teacher_check.json; docs/training.md, "A teacher that learned"): 3 epochs at
        # T 0.2 ended at 0.97 x chance with kNN below its random-init twin. Instance discrimination among
        # near-identical 8x8 digits needs the sharper T 0.1, crops that keep most of the digit (area >= 0.4,
        # not 0.2) and more steps; a queue of 256 (4 steps of keys) rather than 1024, whose near-duplicate
        # negatives hold the loss at ~0.64 x chance; no horizontal flip (digits are not mirror-symmetric: at 5
        # epochs the flip cost 3.4 kNN points and left the loss at 0.79 x chance instead of 0.63).
        "teacher": dict(epochs=15, lr=2e-3, temperature=0.1, crop_min_scale=0.4, moco_k=256, hflip=False),
        # 10 epochs per stage (210 steps): at 5, BURN stage 1 reads 29 % linear and is still climbing (48 % at
        # 20); supervised reaches 93 % at 10 + 10 (docs/training.md, "Epochs of the embedded default").
        "burn": dict(epochs=10),
        "s2bnn": dict(epochs=10),
        "supervised-kl": dict(epochs=10, temperature=1.0),
        "supervised": dict(epochs=10),
    },
    # The paper / official code: ReActNet-A on ImageNet, MoCo-v2 ResNet-50 teacher (800 epochs),
    # 256 x 8 GPUs x 2 accumulation = 4096 per update, Adam 3e-4, 10 warm-up epochs, fp16.
    "imagenet-reactnet-a": {
        "*": dict(dataset="imagefolder", width=1.0, num_blocks=13, head_hidden=2000, head_dim=2000,
                  teacher_arch="resnet50", teacher_small_input=False, batch_size=256, accum_steps=2,
                  lr=3e-4, weight_decay=0.0, warmup_epochs=10.0, epochs=200, amp="fp16", num_workers=8,
                  log_every=50, save_every=1000, compile=True),
        # burn: the objective is the recipe (RECIPES["official"] by default), not set here.
        # The paper uses the official MoCo-v2 800-epoch checkpoint (--teacher-checkpoint); this engine's own
        # teacher run optimises with Adam, not MoCo's SGD 0.03, so it is a fallback, not a reproduction.
        "teacher": dict(epochs=200, moco_k=65536, moco_m=0.999, moco_dim=128, temperature=0.2),
        "supervised-kl": dict(temperature=1.0, head_hidden=0, head_dim=1000),
        "supervised": dict(head_hidden=0, head_dim=1000),
    },
}


def cmim_class_aware(cfg: PretrainConfig) -> bool:
    """Whether CMIM's memory variant draws negatives from other classes only (needs a labelled method)."""
    return cfg.cmim_class_aware == "on" or (cfg.cmim_class_aware == "auto" and cfg.method in LABELLED_METHODS)


def config_fields() -> list:
    return list(fields(PretrainConfig))


def resolve_config(preset: str | None = None, **overrides) -> PretrainConfig:
    """Default < PRESETS[preset]["*"] < PRESETS[preset][method] < RECIPES[recipe] (burn) < overrides.

    None values in ``overrides`` are ignored.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in config_fields()}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown config fields {sorted(unknown)}")
    values: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        method = overrides.get("method", PretrainConfig.method)
        values.update(PRESETS[preset].get("*", {}))
        values.update(PRESETS[preset].get(method, {}))
    if overrides.get("method", values.get("method", PretrainConfig.method)) == "burn":
        recipe = overrides.get("recipe", values.get("recipe", PretrainConfig.recipe))
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
        values.update(RECIPES[recipe])
    values.update(overrides)
    return PretrainConfig(**values)


def add_config_arguments(parser: argparse.ArgumentParser, defaults: dict[str, str] | None = None) -> None:
    """One ``--kebab-name`` flag per PretrainConfig field; unset flags parse to None (preset wins).

    ``defaults`` maps a field name to the text its help shows as the default (e.g. the value a preset
    resolves to); fields it lacks show the dataclass default."""
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_ = f"{f.metadata['help']} ({(defaults or {}).get(f.name, f'default {default}')})"
        kw = dict(default=None, help=help_, dest=f.name)
        if f.metadata.get("choices"):
            kw["choices"] = f.metadata["choices"]
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        typ = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
        parser.add_argument(flag, type=typ, metavar=f.name.upper().split("_")[-1] if typ is str else None, **kw)
