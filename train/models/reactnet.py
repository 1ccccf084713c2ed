"""ReActNet-A (Liu et al., ECCV 2020): the one definition of the binary network.

Training (``train/``) and export (``export/``) both build the network from :class:`ReActNetConfig`
through :func:`reactnet_a`; no other file restates the layer plan.

Layout (input N x 3 x S x S, S divisible by :meth:`ReActNetConfig.size_divisor`)::

    stem      float Conv 3x3 stride 2 (3 -> c0, no bias) + BN                     S/2
    blocks.i  13 Blocks on the MobileNet-v1 plan (table below)                     S/32 at the end
    pool      global average pool -> (N, C_last)
    mlp       feature_mlp only: Linear(C_last, C_last) + ReLU (official BURN ``use_mlp``)
                                       -> features (N, C_last)     k_phi = forward_features
    head      Linear(C_last, num_classes), or an MLP when head_hidden > 0          l_phi = forward_head

:meth:`ReActNetA.stages` lists these stages in forward order and :meth:`Block.dataflow` writes a block's
data flow as data (:mod:`train.models.dataflow`); ``forward`` runs them, and the ONNX / LCE exporters and
the equivalence harness (``export.verify``) walk the same two descriptions -- change the network there.

A Block (in C -> out C or 2C, stride s)::

    x -> RSign -> BinaryConv 3x3 (C -> C, stride s) -> BN  (+ AvgPool2x2(x) if s == 2, else + x) -> RPReLU = y
    y -> RSign -> BinaryConv 1x1 (C -> C) -> BN (+ y)                        -> RPReLU      (out == C)
    y -> RSign -> [BinaryConv 1x1 -> BN (+ y)] x 2, concatenated on channels -> RPReLU      (out == 2C)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn

from common.errors import CheckpointError, ConfigError
from train.binary import ACTIVATION_GRADS
from train.models.dataflow import Node, presign_points, run_torch
from train.models.layers import PADDING_MODES, BinaryConv2d, GlobalAvgPool, RPReLU, RSign

# Output channels of the stem followed by the 13 blocks at width 1.0 (official ReActNet-A).
STAGE_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
NUM_BLOCKS = len(STAGE_CHANNELS) - 1
OFFICIAL_PARAMS = 29_343_592  # ReActNet-A, 1000 classes, official code


@dataclass
class ReActNetConfig:
    """Architecture of a ReActNet-A; stored as ``"arch"`` in every checkpoint.

    width:          channel multiplier; the stem gets max(8, 8*round(32*width/8)) channels and every
                    later layer keeps the official ratio to it (so doubling blocks stay exact doublings).
    input_size:     square input resolution S; must be divisible by ``size_divisor()``.
    num_classes:    outputs of the head (classes, or the BURN head's output dimension).
    binary_weights: False = stage 1 (binary activations, float weights); True = stage 2 (both binary).
    padding:        "zero" (official; PyTorch zero padding after the sign) or "one" (pad with +1).
    act_grad:       activation binariser gradient, "approx" (ReActNet) or "ste" (clipped STE).
    num_blocks:     use the first N of the 13 blocks (tests and tiny presets); 13 = ReActNet-A.
    head_hidden:    0 = a single Linear head (ReActNet); H > 0 = Linear(C,H)-BN-ReLU-Linear(H,classes)
                    (the BURN / SimCLR-style MLP head).
    feature_mlp:    True = a float Linear(C_last, C_last) + ReLU after the global pool, part of the
                    features k_phi (official BURN backbone, ``use_mlp=True``: trained in pretraining
                    and read by linear evaluation); False = the pooled features themselves (ReActNet).
    """

    width: float = 1.0
    input_size: int = 224
    num_classes: int = 1000
    binary_weights: bool = True
    padding: str = "zero"
    act_grad: str = "approx"
    num_blocks: int = NUM_BLOCKS
    head_hidden: int = 0
    feature_mlp: bool = False

    def __post_init__(self):
        if self.padding not in PADDING_MODES:
            raise ConfigError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        if self.act_grad not in ACTIVATION_GRADS:
            raise ConfigError(f"act_grad must be one of {ACTIVATION_GRADS}, got {self.act_grad!r}")
        if not 1 <= self.num_blocks <= NUM_BLOCKS:
            raise ConfigError(f"num_blocks must be in 1..{NUM_BLOCKS}, got {self.num_blocks}")
        if self.width <= 0 or self.num_classes < 1 or self.head_hidden < 0:
            raise ConfigError("width must be > 0, num_classes >= 1 and head_hidden >= 0")
        d = self.size_divisor()
        if self.input_size < d or self.input_size % d:
            raise ConfigError(
                f"input_size {self.input_size} is not a positive multiple of {d} (stem stride 2 and "
                f"{int(math.log2(d)) - 1} stride-2 blocks need even sizes at every stage); try "
                f"{max(d, round(self.input_size / d) * d)}")

    def stem_channels(self) -> int:
        return max(8, 8 * round(STAGE_CHANNELS[0] * self.width / 8))

    def block_plan(self) -> list[tuple[int, int, int]]:
        """Rows ``(in_channels, out_channels, stride)``, one per block, after width scaling."""
        c0 = self.stem_channels()
        ch = [c0 * c // STAGE_CHANNELS[0] for c in STAGE_CHANNELS]
        rows = []
        for i in range(1, self.num_blocks + 1):
            cin, cout = ch[i - 1], ch[i]
            # Official rule: stride 2 where the width changes, except the first doubling (32 -> 64).
            stride = 2 if (STAGE_CHANNELS[i] != STAGE_CHANNELS[i - 1] and STAGE_CHANNELS[i] != 64) else 1
            rows.append((cin, cout, stride))
        return rows

    def size_divisor(self) -> int:
        """Input sizes must be a multiple of this: 2 (stem) x 2 per stride-2 block used."""
        rows = [(STAGE_CHANNELS[i - 1], STAGE_CHANNELS[i]) for i in range(1, self.num_blocks + 1)]
        n_down = sum(1 for a, b in rows if a != b and b != 64)
        return 2 ** (1 + n_down)

    def feature_dim(self) -> int:
        return self.block_plan()[-1][1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ReActNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"unknown architecture fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


class Stem(nn.Module):
    """Float Conv 3x3 stride 2 (no bias) + BN. (N, 3, S, S) -> (N, c0, S/2, S/2)."""

    def __init__(self, out_channels: int, in_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class Block(nn.Module):
    """One ReActNet-A block: (N, C, H, W) -> (N, out, H/s, W/s), out in {C, 2C} (see module doc)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, cfg: ReActNetConfig):
        super().__init__()
        if out_channels not in (in_channels, 2 * in_channels):
            raise ConfigError(f"block out_channels must be in or 2*in, got {in_channels}->{out_channels}")
        bconv = dict(padding=cfg.padding, binary_weights=cfg.binary_weights)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.rsign1 = RSign(in_channels, cfg.act_grad)
        self.conv3x3 = BinaryConv2d(in_channels, in_channels, 3, stride, **bconv)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.shortcut = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.rprelu1 = RPReLU(in_channels)
        self.rsign2 = RSign(in_channels, cfg.act_grad)
        n = out_channels // in_channels
        self.conv1x1 = nn.ModuleList(BinaryConv2d(in_channels, in_channels, 1, 1, **bconv) for _ in range(n))
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(in_channels) for _ in range(n))
        self.rprelu2 = RPReLU(out_channels)

    def dataflow(self) -> tuple[Node, ...]:
        """The block as data (see :mod:`train.models.dataflow`); input ``x``, output ``out``::

            b1 = rsign1(x); c1 = conv3x3(b1); n1 = bn1(c1); s = shortcut(x); y = rprelu1(n1 + s)
            b2 = rsign2(y); z_i = bn2.i(conv1x1.i(b2)) + y  (i < out/in); out = rprelu2(concat(z_i))
        """
        nodes = [Node("b1", "rsign1", ("x",)), Node("c1", "conv3x3", ("b1",)), Node("n1", "bn1", ("c1",)),
                 Node("s", "shortcut", ("x",)), Node("r1", "add", ("n1", "s")), Node("y", "rprelu1", ("r1",)),
                 Node("b2", "rsign2", ("y",))]
        zs = []
        for i in range(len(self.conv1x1)):
            nodes += [Node(f"c2_{i}", f"conv1x1.{i}", ("b2",)), Node(f"n2_{i}", f"bn2.{i}", (f"c2_{i}",)),
                      Node(f"z_{i}", "add", (f"n2_{i}", "y"))]
            zs.append(f"z_{i}")
        if len(zs) > 1:
            nodes.append(Node("z", "concat", tuple(zs)))
        nodes.append(Node("out", "rprelu2", ("z" if len(zs) > 1 else zs[0],)))
        return tuple(nodes)

    def presign_points(self) -> tuple[tuple[str, str], ...]:
        """``(binariser path, value it reads)``: ``(("rsign1", "x"), ("rsign2", "y"))``."""
        return presign_points(self, self.dataflow(), RSign)

    def trace(self, x: torch.Tensor, sign_inputs: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every named value of :meth:`dataflow` on input x; ``sign_inputs`` replaces binariser inputs."""
        return run_torch(self, self.dataflow(), x, sign_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x)["out"]


def build_head(in_features: int, num_classes: int, hidden: int = 0) -> nn.Module:
    """Linear head (hidden == 0) or Linear-BN-ReLU-Linear MLP head. (N, in) -> (N, num_classes)."""
    if hidden == 0:
        return nn.Linear(in_features, num_classes)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, num_classes))


class ReActNetA(nn.Module):
    """ReActNet-A built from a :class:`ReActNetConfig`. forward: (N, 3, S, S) -> (N, num_classes)."""

    def __init__(self, cfg: ReActNetConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = Stem(cfg.stem_channels())
        self.blocks = nn.ModuleList(Block(i, o, s, cfg) for i, o, s in cfg.block_plan())
        self.pool = GlobalAvgPool()
        c = cfg.feature_dim()
        # official BURN use_mlp: FC(C, C) + ReLU on the pooled features (keys mlp.0.*)
        self.mlp = nn.Sequential(nn.Linear(c, c), nn.ReLU()) if cfg.feature_mlp else None
        self.head = build_head(c, cfg.num_classes, cfg.head_hidden)

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim()

    def stages(self, output: str = "logits") -> list[tuple[str, nn.Module]]:
        """The forward pass as ``(name, module)`` stages in order; each stage reads the previous one's output.

        ``stem`` (N,3,S,S) -> (N,c0,S/2,S/2); ``blocks.i`` (N,C,H,W) -> (N,C',H/s,W/s); ``pool`` -> (N, C_last);
        ``mlp`` (only with ``feature_mlp``) FC(C, C) + ReLU -> (N, C_last); features = the last of these;
        ``head`` -> (N, num_classes), present only for ``output="logits"``. A module added to the forward
        path is added here; exporters and ``export.verify`` walk this list.
        """
        if output not in ("logits", "features"):
            raise ConfigError(f"output must be 'logits' or 'features', got {output!r}")
        st = [("stem", self.stem)] + [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)] + [("pool", self.pool)]
        st += [("mlp", self.mlp)] if self.mlp is not None else []
        return st + [("head", self.head)] if output == "logits" else st

    def forward_stages(self, x: torch.Tensor, output: str = "logits") -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(stage name, stage output)`` for every stage of :meth:`stages`."""
        for name, m in self.stages(output):
            x = m(x)
            yield name, x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """k_phi: (N, 3, S, S) -> (N, feature_dim) pooled features (after the feature MLP if any)."""
        for _, y in self.forward_stages(x, "features"):
            x = y
        return x

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """l_phi: (N, feature_dim) -> (N, num_classes)."""
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_info(self) -> list[dict]:
        """One entry per stage output: module path, channels and total stride (for per-block diffs)."""
        info, red = [{"module": "stem", "num_chs": self.cfg.stem_channels(), "reduction": 2}], 2
        for i, (_, o, s) in enumerate(self.cfg.block_plan()):
            red *= s
            info.append({"module": f"blocks.{i}", "num_chs": o, "reduction": red})
        return info

    def set_binary_weights(self, on: bool) -> None:
        """Switch every binary conv between stage 1 (float weights) and stage 2 (binary weights)."""
        self.cfg.binary_weights = on
        for m in self.modules():
            if isinstance(m, BinaryConv2d):
                m.binary_weights = on


def reactnet_a(width: float = 1.0, input_size: int = 224, num_classes: int = 1000, *,
               binary_weights: bool = True, padding: str = "zero", act_grad: str = "approx",
               num_blocks: int = NUM_BLOCKS, head_hidden: int = 0, feature_mlp: bool = False) -> ReActNetA:
    """Build ReActNet-A. Defaults = the official network (29,343,592 parameters at 1000 classes)."""
    return ReActNetA(ReActNetConfig(width=width, input_size=input_size, num_classes=num_classes,
                                    binary_weights=binary_weights, padding=padding, act_grad=act_grad,
                                    num_blocks=num_blocks, head_hidden=head_hidden, feature_mlp=feature_mlp))


CONV_INITS = ("default", "kaiming")


@torch.no_grad()
def init_convs_(model: ReActNetA, kind: str) -> ReActNetA:
    """Initialise every convolution's weight (stem and binary latent weights) in place.

    ``"default"``: leave PyTorch's nn.Conv2d init; ``"kaiming"``: the official BURN backbone's (mmcv
    ``kaiming_init``: normal, std = sqrt(2 / fan_in), fan_in = C_in kH kW). Returns ``model``.
    """
    if kind not in CONV_INITS:
        raise ConfigError(f"conv init must be one of {CONV_INITS}, got {kind!r}")
    if kind == "kaiming":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, BinaryConv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return model


# ---------------------------------------------------------------------------------------------
# Official ReActNet / BURN state dicts
#
# Official key (github.com/liuzechun/ReActNet, mobilenet/*/reactnet.py)  ->  burn-edge key
#   feature.0.conv1.weight / feature.0.bn1.*              -> stem.conv.weight / stem.bn.*
#   feature.{i}.move11.bias                               -> blocks.{i-1}.rsign1.bias
#   feature.{i}.binary_3x3.weight  (stage 1, OIHW)        -> blocks.{i-1}.conv3x3.weight
#   feature.{i}.binary_3x3.weights (stage 2, (O*I*k*k,1)) -> blocks.{i-1}.conv3x3.weight (reshaped)
#   feature.{i}.bn1.*                                     -> blocks.{i-1}.bn1.*
#   feature.{i}.move12.bias / prelu1.weight / move13.bias -> blocks.{i-1}.rprelu1.bias_in / prelu.weight / bias_out
#   feature.{i}.move21.bias                               -> blocks.{i-1}.rsign2.bias
#   feature.{i}.binary_pw.* / bn2.*                       -> blocks.{i-1}.conv1x1.0.* / bn2.0.*
#   feature.{i}.binary_pw_down{1,2}.* / bn2_{1,2}.*       -> blocks.{i-1}.conv1x1.{0,1}.* / bn2.{0,1}.*
#   feature.{i}.move22.bias / prelu2.weight / move23.bias -> blocks.{i-1}.rprelu2.bias_in / prelu.weight / bias_out
#   fc.weight / fc.bias                                   -> head.weight / head.bias
# Official BURN checkpoints (github.com/naver-ai/burn, OpenSelfSup/mmcv layout, under "state_dict"):
#   backbone.feature.*                                    -> as above
#   backbone.fc.0.weight / bias  (use_mlp FC(1024,1024))  -> mlp.0.weight / bias
#   neck.fc0.* / neck.bn0.* / neck.fc1.*  (l_phi, SimCLR) -> head.0.* / head.1.* / head.3.*
#   online_net.0.* / online_net.1.*                       -> the same as backbone.* / neck.*
#   diff_branch_net.* (teacher h and target head g)       -> not part of the binary network, skipped
# Prefixes "module." (DataParallel/DDP), "backbone." and "model." (BURN / mmcv wrappers) are stripped.
# ---------------------------------------------------------------------------------------------

_BLOCK_RENAMES = {
    "move11.bias": "rsign1.bias", "binary_3x3": "conv3x3", "bn1": "bn1",
    "move12.bias": "rprelu1.bias_in", "prelu1.weight": "rprelu1.prelu.weight", "move13.bias": "rprelu1.bias_out",
    "move21.bias": "rsign2.bias", "binary_pw_down1": "conv1x1.0", "binary_pw_down2": "conv1x1.1",
    "binary_pw": "conv1x1.0", "bn2_1": "bn2.0", "bn2_2": "bn2.1", "bn2": "bn2.0",
    "move22.bias": "rprelu2.bias_in", "prelu2.weight": "rprelu2.prelu.weight", "move23.bias": "rprelu2.bias_out",
}
_STRIP_PREFIXES = ("module.", "backbone.", "model.")
_NECK_RENAMES = {"fc0": "head.0", "bn0": "head.1", "fc1": "head.3"}  # OpenSelfSup NonLinearNeckSimCLR
_TARGET_BRANCH = ("diff_branch_net.", "diff_branch_head.")  # BURN's teacher h and target head g


def _official_key(key: str) -> str:
    key = key.removeprefix("module.")
    if key.startswith("online_net."):  # BURN's online_net = Sequential(backbone, neck)
        key = key.replace("online_net.0.", "backbone.", 1).replace("online_net.1.", "neck.", 1)
    if key.startswith("neck."):
        first, _, rest = key[len("neck."):].partition(".")
        return f"{_NECK_RENAMES.get(first, 'neck.' + first)}.{rest}"
    while key.startswith(_STRIP_PREFIXES):
        key = key.split(".", 1)[1]
    parts = key.split(".")
    if parts[0] == "fc":
        if len(parts) > 2 and parts[1] == "0":  # BURN use_mlp: fc = Sequential(Linear, ReLU)
            return "mlp." + ".".join(parts[1:])
        return "head." + ".".join(parts[1:])
    if parts[0] != "feature" or len(parts) < 3:
        return key
    if not parts[1].isdigit():
        return key
    idx, rest = int(parts[1]), ".".join(parts[2:])
    if idx == 0:
        return "stem." + rest.replace("conv1.", "conv.", 1).replace("bn1.", "bn.", 1)
    for old in sorted(_BLOCK_RENAMES, key=len, reverse=True):  # longest match first (bn2_1 before bn2)
        if rest == old or rest.startswith(old + "."):
            rest = _BLOCK_RENAMES[old] + rest[len(old):]
            break
    if rest.endswith(".weights"):  # stage-2 flat latent weights
        rest = rest[: -len("weights")] + "weight"
    return f"blocks.{idx - 1}.{rest}"


def convert_official_state_dict(state_dict: dict, model: ReActNetA) -> dict:
    """Rename (and reshape) an official ReActNet/BURN ReActNet-A state dict to this model's keys.

    Raises CheckpointError naming missing/unexpected keys or mismatched shapes.
    """
    target = model.state_dict()
    out, unexpected = {}, []
    for k, v in state_dict.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"official state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        if k.removeprefix("module.").startswith(_TARGET_BRANCH):
            continue
        nk = _official_key(k)
        if nk not in target:
            if not k.endswith("num_batches_tracked"):
                unexpected.append(k)
            continue
        want = tuple(target[nk].shape)
        if tuple(v.shape) != want:
            flat = (math.prod(want), 1)  # the one documented exception: stage-2 flat latent ``.weights``
            if k.endswith(".weights") and tuple(v.shape) == flat and nk.startswith("blocks.") and len(want) == 4:
                v = v.reshape(want)
            else:
                raise CheckpointError(
                    f"shape mismatch for {k} (-> {nk}): expected {want}"
                    + (f" (or the flat latent layout {flat})" if k.endswith(".weights") else "")
                    + f", found {tuple(v.shape)}; is the width / num_classes right?")
        out[nk] = v
    missing = [k for k in target if k not in out and not k.endswith("num_batches_tracked")]
    if not any(k.startswith("head.") for k in out):  # a backbone-only checkpoint: the head stays at init
        missing = [k for k in missing if not k.startswith("head.")]
    if missing or unexpected:
        raise CheckpointError(
            f"not an official ReActNet-A state dict for this configuration: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    return out


def is_burn_layout(state_dict: dict) -> bool:
    """True for an official BURN (OpenSelfSup) state dict: it has the use_mlp FC or the neck l_phi."""
    keys = [_official_key(k) for k in state_dict if not k.removeprefix("module.").startswith(_TARGET_BRANCH)]
    return any(k.startswith(("mlp.", "head.0.", "head.3.")) for k in keys)


def infer_official_arch(state_dict: dict, base: ReActNetConfig | None = None) -> ReActNetConfig:
    """The structure an official state dict records (width, num_blocks, feature_mlp, head) over ``base``.

    ``binary_weights``, ``padding``, ``act_grad`` and ``input_size`` are not recorded and come from
    ``base`` (default: ReActNet-A, stage 2, 224).
    """
    base = base or ReActNetConfig()
    sd = {_official_key(k): v for k, v in state_dict.items()
          if not k.removeprefix("module.").startswith(_TARGET_BRANCH) and isinstance(v, torch.Tensor)}
    if "stem.conv.weight" not in sd:
        raise CheckpointError("not an official ReActNet-A state dict: no feature.0.conv1.weight")
    width = sd["stem.conv.weight"].shape[0] / STAGE_CHANNELS[0]
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}
    fields_ = dict(width=width, num_blocks=max(blocks) + 1 if blocks else base.num_blocks,
                   feature_mlp="mlp.0.weight" in sd)
    if "head.3.weight" in sd:  # MLP head (BURN neck)
        fields_.update(head_hidden=sd["head.0.weight"].shape[0], num_classes=sd["head.3.weight"].shape[0])
    elif "head.weight" in sd:
        fields_.update(head_hidden=0, num_classes=sd["head.weight"].shape[0])
    return ReActNetConfig(**{**base.to_dict(), **fields_})


def load_official_state_dict(model: ReActNetA, state_dict: dict) -> ReActNetA:
    """Load an official-format state dict (see the key map above) into ``model`` in place."""
    model.load_state_dict(convert_official_state_dict(state_dict, model), strict=False)
    return model
