import pytest
import torch
import torch.nn.functional as F

from common.errors import CheckpointError, ConfigError
from train.binary import sign_pm1
from train.models import ReActNetConfig, load_official_state_dict, reactnet_a
from train.models.layers import BinaryConv2d
from train.models.reactnet import OFFICIAL_PARAMS


def n_params(m):
    return sum(p.numel() for p in m.parameters())


class TestArchitecture:
    def test_official_parameter_count(self):
        assert n_params(reactnet_a()) == OFFICIAL_PARAMS == 29_343_592

    def test_official_layer_plan(self):
        plan = ReActNetConfig().block_plan()
        assert [o for _, o, _ in plan] == [64, 128, 128, 256, 256] + [512] * 6 + [1024, 1024]
        assert [s for _, _, s in plan] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
        m = reactnet_a()
        n_bconv = sum(isinstance(x, BinaryConv2d) for x in m.modules())
        assert n_bconv == 31  # 13 3x3 + 13 1x1 + 5 extra 1x1 in the doubling blocks

    @torch.no_grad()
    def test_shapes_224(self):
        m = reactnet_a().eval()
        x = torch.randn(1, 3, 224, 224)
        assert m.forward_features(x).shape == (1, 1024)
        assert m(x).shape == (1, 1000)

    @torch.no_grad()
    def test_shapes_32_and_stage_outputs(self):
        m = reactnet_a(width=0.25, input_size=32, num_classes=10).eval()
        x = torch.randn(3, 3, 32, 32)
        assert m(x).shape == (3, 10)
        h = m.stem(x)
        for blk, info in zip(m.blocks, m.feature_info()[1:]):
            h = blk(h)
            assert h.shape == (3, info["num_chs"], 32 // info["reduction"], 32 // info["reduction"])

    def test_mlp_head(self):
        m = reactnet_a(width=0.25, input_size=32, num_classes=64, head_hidden=128)
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 64)

    @pytest.mark.parametrize("kw,msg", [
        (dict(input_size=100), "multiple of 32"), (dict(padding="two"), "padding"),
        (dict(num_blocks=14), "num_blocks"), (dict(act_grad="x"), "act_grad")])
    def test_bad_config(self, kw, msg):
        with pytest.raises(ConfigError, match=msg):
            ReActNetConfig(**kw)


class TestStages:
    def test_stage1_float_weights_stage2_binary(self, tiny_reactnet):
        m1 = tiny_reactnet(binary_weights=False)
        conv = m1.blocks[0].conv3x3
        assert torch.equal(conv.effective_weight(), conv.weight)
        m2 = tiny_reactnet(binary_weights=True)
        m2.load_state_dict(m1.state_dict())  # stage 2 starts from stage-1 weights: same keys
        w = m2.blocks[0].conv3x3.effective_weight()
        alpha = w.abs().amax(dim=(1, 2, 3))
        assert torch.allclose(w.abs(), alpha[:, None, None, None].expand_as(w))  # +-alpha per channel

    def test_set_binary_weights_switches_all(self, tiny_reactnet):
        m = tiny_reactnet(binary_weights=False)
        m.set_binary_weights(True)
        assert all(c.binary_weights for c in m.modules() if isinstance(c, BinaryConv2d))
        assert m.cfg.binary_weights

    def test_export_kernel_reproduces_forward(self):
        torch.manual_seed(0)
        conv = BinaryConv2d(8, 16, 3, stride=2, padding="zero", binary_weights=True)
        conv.weight.data[0, 0, 0, 0] = 0.0  # exact zero must map to +alpha
        x = sign_pm1(torch.randn(2, 8, 8, 8))
        signs, alpha = conv.export_kernel()
        assert set(signs.unique().tolist()) == {-1.0, 1.0}
        ref = F.conv2d(x, signs * alpha[:, None, None, None], stride=2, padding=1)
        assert torch.allclose(conv(x), ref, atol=1e-6)

    def test_activations_in_binary_path_are_pm1(self, tiny_reactnet):
        m = tiny_reactnet()
        seen = []
        m.blocks[0].conv3x3.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        m(torch.randn(2, 3, 32, 32))
        assert set(seen[0].unique().tolist()) <= {-1.0, 1.0}


class TestPadding:
    def test_zero_vs_one_padding(self):
        torch.manual_seed(0)
        x = sign_pm1(torch.randn(1, 4, 6, 6))
        z = BinaryConv2d(4, 4, 3, padding="zero")
        o = BinaryConv2d(4, 4, 3, padding="one")
        o.weight.data.copy_(z.weight.data)
        w = z.effective_weight()
        assert torch.allclose(z(x), F.conv2d(x, w, padding=1), atol=1e-6)
        assert torch.allclose(o(x), F.conv2d(F.pad(x, (1, 1, 1, 1), value=1.0), w), atol=1e-6)
        # Interior pixels agree, border pixels differ.
        assert torch.allclose(z(x)[..., 1:-1, 1:-1], o(x)[..., 1:-1, 1:-1], atol=1e-6)
        assert not torch.allclose(z(x), o(x))

    @pytest.mark.parametrize("padding", ["zero", "one"])
    def test_full_net_both_modes(self, tiny_reactnet, padding):
        m = tiny_reactnet(blocks=4, padding=padding).eval()
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def _official_state_dict(model):
    """Write an official-format ReActNet-A state dict (stage 2 flat weights) from our model."""
    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith("stem."):
            sd["feature.0." + k[5:].replace("conv.", "conv1.").replace("bn.", "bn1.")] = v
        elif k.startswith("head."):
            sd["fc." + k[5:]] = v
        else:
            _, i, rest = k.split(".", 2)
            blk = model.blocks[int(i)]
            two = len(blk.conv1x1) == 2
            for a, b in [("rsign1.bias", "move11.bias"), ("conv3x3.weight", "binary_3x3.weights"),
                         ("rprelu1.bias_in", "move12.bias"), ("rprelu1.prelu.weight", "prelu1.weight"),
                         ("rprelu1.bias_out", "move13.bias"), ("rsign2.bias", "move21.bias"),
                         ("conv1x1.0.weight", "binary_pw_down1.weights" if two else "binary_pw.weights"),
                         ("conv1x1.1.weight", "binary_pw_down2.weights"),
                         ("bn2.0.", "bn2_1." if two else "bn2."), ("bn2.1.", "bn2_2."),
                         ("rprelu2.bias_in", "move22.bias"), ("rprelu2.prelu.weight", "prelu2.weight"),
                         ("rprelu2.bias_out", "move23.bias")]:
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            if rest.endswith(".weights"):
                v = v.reshape(-1, 1)
            sd[f"module.feature.{int(i) + 1}.{rest}"] = v
    return sd


class TestOfficialStateDict:
    def test_roundtrip_official_format(self, tiny_reactnet):
        src = tiny_reactnet(blocks=3, seed=1)
        for p in src.parameters():
            p.data.uniform_(-0.5, 0.5)
        sd = _official_state_dict(src)
        assert "module.feature.1.binary_3x3.weights" in sd and sd["module.feature.1.binary_3x3.weights"].dim() == 2
        assert any("binary_pw_down2" in k for k in sd)
        dst = load_official_state_dict(tiny_reactnet(blocks=3, seed=2), sd)
        x = torch.randn(2, 3, 32, 32)
        assert torch.equal(src.eval()(x), dst.eval()(x))

    def test_wrong_width_is_clear_error(self, tiny_reactnet):
        sd = _official_state_dict(tiny_reactnet(blocks=3, width=0.5))
        with pytest.raises(CheckpointError, match="shape mismatch"):
            load_official_state_dict(tiny_reactnet(blocks=3, width=0.25), sd)

    def test_missing_keys_error(self, tiny_reactnet):
        sd = _official_state_dict(tiny_reactnet(blocks=3))
        sd.pop("fc.weight")
        with pytest.raises(CheckpointError, match="missing"):
            load_official_state_dict(tiny_reactnet(blocks=3), sd)


class TestStageDescription:
    """The model's own description of its forward pass (stages, block data flow, pre-sign points)."""

    @torch.no_grad()
    def test_stages_chain_to_forward_and_features(self, tiny_reactnet):
        m = tiny_reactnet(blocks=3).eval()
        x = torch.randn(2, 3, 32, 32)
        outs = dict(m.forward_stages(x))
        assert list(outs) == ["stem", "blocks.0", "blocks.1", "blocks.2", "pool", "head"]
        assert torch.equal(outs["head"], m(x)) and torch.equal(outs["pool"], m.forward_features(x))
        assert [n for n, _ in m.stages("features")] == list(outs)[:-1]
        with pytest.raises(ConfigError):
            m.stages("logit")

    @torch.no_grad()
    def test_block_dataflow_is_the_reactnet_block(self, tiny_reactnet):
        """Pin Block.dataflow to the ReActNet-A block written out by hand (both block kinds)."""
        m = tiny_reactnet(blocks=3).eval()
        x = m.stem(torch.randn(2, 3, 32, 32))
        for blk in m.blocks:
            y = blk.rprelu1(blk.bn1(blk.conv3x3(blk.rsign1(x))) + blk.shortcut(x))
            b = blk.rsign2(y)
            ref = blk.rprelu2(torch.cat([bn(conv(b)) + y for conv, bn in zip(blk.conv1x1, blk.bn2)], dim=1))
            env = blk.trace(x)
            assert torch.equal(env["out"], ref) and torch.equal(blk(x), ref) and torch.equal(env["y"], y)
            assert blk.presign_points() == (("rsign1", "x"), ("rsign2", "y"))
            x = ref

    @torch.no_grad()
    def test_trace_replays_other_binariser_inputs(self, tiny_reactnet):
        m = tiny_reactnet(blocks=1).eval()
        blk, x = m.blocks[0], m.stem(torch.randn(1, 3, 32, 32))
        env = blk.trace(x)
        flipped = blk.trace(x, {"rsign2": -env["y"] - 2 * blk.rsign2.bias})  # every pre-sign value negated
        nonzero = (env["y"] + blk.rsign2.bias) != 0
        assert torch.equal(flipped["b2"][nonzero], -env["b2"][nonzero])
        assert torch.equal(flipped["y"], env["y"])  # the residual path keeps PyTorch's values
