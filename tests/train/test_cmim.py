"""CMIM: the pure pieces pinned to hand-computed values, the memory variant's positive/negative construction,
the activation tap, the embedding heads and memories in the engine."""

import math

import pytest
import torch
import torch.nn.functional as F

from common.errors import ConfigError
from tests.train.helpers import tiny_config, write_teacher_checkpoint
from train import pretrain
from train.binary import sign_pm1
from train.checkpoint import read_checkpoint
from train.losses import cmim_loss, info_nce
from train.methods import build_method
from train.methods.cmim import (
    ActivationTap,
    NegativeSampler,
    WithCMIM,
    binariser_sites,
    momentum_write,
    nce_loss,
    negatives_from_uniform,
    parse_blocks,
    same_image_mask,
)
from train.metrics import read_jsonl


class TestLoss:
    def test_in_batch_closed_form(self):
        """Two images, aligned embeddings, orthogonal across images, tau = 1: each anchor has logit 1 for
        its positive and 0 for the one negative, so every direction costs log(1 + e^-1)."""
        e = torch.eye(2)
        mask = torch.eye(2, dtype=torch.bool)  # the candidate list holds the positive itself: drop it
        assert cmim_loss(e, e.clone(), e, e.clone(), 1.0, mask).item() == pytest.approx(math.log(1 + math.exp(-1)),
                                                                                        abs=1e-6)

    def test_bank_closed_form_is_symmetric_mean(self):
        e_b, e_f = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]])
        neg_b, neg_f = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
        t = 0.5
        # binary anchor: positive 0.6/t = 1.2, negative (1,0).(1,0)/t = 2.0
        b_to_f = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(2.0)))
        # float anchor: positive 1.2, negative (0.6,0.8).(0,1)/t = 1.6
        f_to_b = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6)))
        got = cmim_loss(e_b, e_f, neg_b, neg_f, t).item()
        assert got == pytest.approx((b_to_f + f_to_b) / 2, abs=1e-6)
        # the arguments are not interchangeable: swapping the banks changes both directions
        assert cmim_loss(e_b, e_f, neg_f, neg_b, t).item() != pytest.approx(got, abs=1e-3)

    def test_mask_drops_negatives_and_mi_bound(self):
        q = F.normalize(torch.randn(4, 8), dim=1)
        assert info_nce(q, q, q, 0.1, torch.ones(4, 4, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-6)
        # K equal negatives at the positive's similarity: loss = log(K + 1), the InfoNCE bound's ceiling
        k = 7
        loss = cmim_loss(q[:1], q[:1], q[:1].expand(k, 8), q[:1].expand(k, 8), 0.3)
        assert loss.item() == pytest.approx(math.log(k + 1), abs=1e-5)

    def test_bad_temperature(self):
        e = torch.eye(2)
        with pytest.raises(ConfigError):
            cmim_loss(e, e, e, e, 0.0)


class TestMemoryVariant:
    """The public CMIM's construction: per-sample memories, sampled negatives, NCE, momentum writes."""

    def test_negatives_class_aware_by_hand(self):
        # labels 0 1 0 2 1 -> samples sorted by class: order = [0, 2 | 1, 4 | 3]
        s = NegativeSampler(5, [0, 1, 0, 2, 1])
        assert s.order.tolist() == [0, 2, 1, 4, 3]
        assert s.lo.tolist() == [0, 2, 0, 4, 2] and s.count.tolist() == [2, 2, 2, 1, 2]
        # sample 0 (class 0) may draw positions 2, 3, 4 = samples 1, 4, 3, one third each
        got = negatives_from_uniform(torch.tensor([[0.0, 0.34, 0.99]]), torch.tensor([0]), s.order, s.lo, s.count)
        assert got.tolist() == [[1, 4, 3]]
        # sample 1 (class 1) skips positions 2, 3: draws samples 0, 2, 3
        got = negatives_from_uniform(torch.tensor([[0.0, 0.5, 0.7]]), torch.tensor([1]), s.order, s.lo, s.count)
        assert got.tolist() == [[0, 2, 3]]
        # sample 3 (class 2, alone) draws from the four others
        got = negatives_from_uniform(torch.tensor([[0.0, 0.25, 0.5, 0.99]]), torch.tensor([3]), s.order, s.lo,
                                     s.count)
        assert got.tolist() == [[0, 2, 1, 4]]

    def test_negatives_label_free_skip_only_the_sample_itself(self):
        s = NegativeSampler(4, None)
        got = negatives_from_uniform(torch.tensor([[0.0, 0.34, 0.67, 0.99]]), torch.tensor([2]), s.order, s.lo,
                                     s.count)
        assert got.tolist() == [[0, 1, 3, 3]]
        draws = s(torch.tensor([2, 0]), 3000)
        assert not (draws[0] == 2).any() and not (draws[1] == 0).any()
        assert int(s.draws) == 1 and "draws" in s.state_dict() and "order" not in s.state_dict()
        torch.manual_seed(0)  # the draws do not depend on the global RNG: (seed, call count) fix them
        again = NegativeSampler(4, None)(torch.tensor([2, 0]), 3000)
        torch.manual_seed(1)
        assert torch.equal(again, draws) and not torch.equal(s(torch.tensor([2, 0]), 3000), draws)
        assert set(draws[0].tolist()) == {0, 1, 3} and abs(float((draws[0] == 1).float().mean()) - 1 / 3) < 0.05

    def test_sampler_refuses_a_single_class(self):
        with pytest.raises(ConfigError, match="two classes"):
            NegativeSampler(3, [4, 4, 4])

    def test_momentum_write_by_hand(self):
        mem = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        # sample 0 seen twice (two views): its rows are averaged to (0.5, 0.5), then
        # 0.5 (1, 0) + 0.5 (0.5, 0.5) = (0.75, 0.25) -> normalised; sample 1: (0.5, 0.5) -> (0.7071, 0.7071)
        momentum_write(mem, torch.tensor([0, 1, 0]), torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), 0.5)
        r = 1 / math.sqrt(0.75 ** 2 + 0.25 ** 2)
        assert torch.allclose(mem, torch.tensor([[0.75 * r, 0.25 * r], [2 ** -0.5, 2 ** -0.5], [0.6, 0.8]]))

    def test_nce_closed_form(self):
        # one anchor, K = 1 negative, M = 4 -> c = 1/4; -(log(1 / 1.25) + log(0.25 / 0.5))
        got = nce_loss(torch.tensor([[1.0, 0.25]]), 4).item()
        assert got == pytest.approx(-(math.log(0.8) + math.log(0.5)), abs=1e-6)

    def test_positive_and_negatives_come_from_the_other_branch_memory(self, tmp_path):
        """Sample 3 with negatives 5 and 6, tau 0.5, M = 8: hand-computed scores, Z, NCE, accuracy and
        the momentum-0.5 write that happens after the loss read the previous entries."""
        cfg = tiny_config(tmp_path, method="supervised", cmim_weight=1.0, cmim_dim=2, cmim_bank=2, cmim_blocks="-1",
                          cmim_temperature=0.5, limit_train=8)
        m = build_method(cfg).train()
        assert m.n_data == 8 and m.class_aware and m.momentum == 0.5
        assert not any(p.requires_grad for p in m.cmim.parameters())  # the public code's fixed random heads
        key = "blocks_1_rsign1"
        mem_b, mem_f = m.cmim.memory_b[key], m.cmim.memory_f[key]
        with torch.no_grad():
            mem_f.entries[[3, 5, 6]] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
            mem_b.entries[[3, 5, 6]] = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.8, 0.6]])
        before = {k: v.clone() for k, v in m.cmim.state_dict().items()}
        e_b, e_f = torch.tensor([[0.6, 0.8]]), torch.tensor([[1.0, 0.0]])
        loss, acc = m.memory_site(key, e_b, e_f, torch.tensor([3]), torch.tensor([[3, 5, 6]]))

        def nce(p):  # p: scores of (positive, negative 5, negative 6); Z = mean(p) * M
            z = sum(p) / 3 * 8
            c = 2 / 8
            return -(math.log(p[0] / z / (p[0] / z + c)) + sum(math.log(c / (q / z + c)) for q in p[1:])), z

        # binary anchor (0.6, 0.8) . float memory rows 3, 5, 6 = 0.6, 0.8, 1.0; float anchor (1, 0) . binary
        # memory rows 3, 5, 6 = 0, 1, 0.8
        nb, zf = nce([math.exp(0.6 / 0.5), math.exp(0.8 / 0.5), math.exp(1.0 / 0.5)])
        nf, zb = nce([math.exp(0.0), math.exp(1.0 / 0.5), math.exp(0.8 / 0.5)])
        assert loss.item() == pytest.approx(nb + nf, rel=1e-5)
        assert mem_f.z.item() == pytest.approx(zf, rel=1e-5) and mem_b.z.item() == pytest.approx(zb, rel=1e-5)
        assert acc.item() == 0.0  # the positive (0.6) scores below negative 6 (1.0)
        # written after the loss: binary 0.5 (0, 1) + 0.5 (0.6, 0.8) = (0.3, 0.9) -> normalised; float unchanged
        assert torch.allclose(mem_b.entries[3], torch.tensor([0.3, 0.9]) / math.sqrt(0.9))
        assert torch.allclose(mem_f.entries[3], torch.tensor([1.0, 0.0]))
        after = m.cmim.state_dict()
        changed = {k for k in after if not torch.allclose(after[k], before[k], rtol=0, atol=0, equal_nan=True)}
        assert changed == {f"memory_b.{key}.entries", f"memory_b.{key}.z", f"memory_f.{key}.z"}  # no draw here
        assert torch.equal(after[f"memory_b.{key}.entries"][[0, 1, 2, 4, 5, 6, 7]],
                           before[f"memory_b.{key}.entries"][[0, 1, 2, 4, 5, 6, 7]])
        # a second step reads the written entry (the previous visit) and keeps Z
        loss2, _ = m.memory_site(key, e_b, e_f, torch.tensor([3]), torch.tensor([[3, 5, 6]]))
        assert mem_f.z.item() == pytest.approx(zf, rel=1e-5) and loss2.item() != pytest.approx(loss.item())

    def test_memory_step_needs_sample_indices_and_trains_the_student(self, tmp_path):
        m = build_method(tiny_config(tmp_path, method="supervised", cmim_weight=1.0, cmim_bank=8)).train()
        x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4, 5])
        with pytest.raises(ConfigError, match="sample index"):
            m((x, y), 0, 10)
        res = m((x, y, torch.tensor([10, 11, 12, 13, 14, 15])), 0, 10)
        res["loss"].backward()
        assert m.student.stem.conv.weight.grad.abs().sum() > 0 and 0 <= res["cmim_acc"] <= 1
        assert all(p.grad is None for p in m.cmim.parameters())
        mem = m.cmim.memory_f["blocks_1_rsign1"].entries
        assert torch.allclose(mem[10:16].norm(dim=1), torch.ones(6))  # visited: written (unit norm)
        assert not torch.allclose(mem[:10].norm(dim=1), torch.ones(10))  # not visited: the random init


def test_parse_blocks():
    assert parse_blocks("-1", 13) == [12]
    assert parse_blocks("0,-2,0", 13) == [0, 11]
    assert parse_blocks("all", 3) == [0, 1, 2]
    for bad in ("13", "x", "-14"):
        with pytest.raises(ConfigError):
            parse_blocks(bad, 13)


def test_same_image_mask_by_hand():
    # 2 images seen as 2 views (rows: img0 v1, img1 v1, img0 v2, img1 v2) on each of 2 processes; rank 1
    m = same_image_mask(rows=4, images=2, rank=1, world=2)
    assert m.shape == (4, 8)
    # gathered rows 0..3 are rank 0's images 0,1,0,1; rows 4..7 are rank 1's images 2,3,2,3
    expected = torch.zeros(4, 8, dtype=torch.bool)
    for i, cols in enumerate([(4, 6), (5, 7), (4, 6), (5, 7)]):
        expected[i, list(cols)] = True
    assert torch.equal(m, expected)


def test_tap_reads_pre_sign_and_binarised_and_leaves_no_hook(tiny_reactnet):
    net = tiny_reactnet(blocks=2)
    with torch.no_grad():
        for b in net.blocks:
            b.rsign1.bias.fill_(0.25)
    sites = binariser_sites(net, [1])
    assert list(sites) == ["blocks.1.rsign1", "blocks.1.rsign2"]
    seen = {}
    probe = sites["blocks.1.rsign1"].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    tap = ActivationTap(sites)
    with tap.record() as rec:
        net(torch.randn(3, 3, 32, 32))
    probe.remove()
    a_f, a_b = rec["blocks.1.rsign1"][0]
    assert torch.equal(a_f, seen["x"] + 0.25)  # a_F = x + b, the value the sign reads
    assert torch.equal(a_b, sign_pm1(a_f)) and set(a_b.unique().tolist()) <= {-1.0, 1.0}
    assert all(len(rec[s]) == 1 for s in sites)
    assert not any(m._forward_hooks for m in net.modules())  # hooks exist only inside record()
    net(torch.randn(1, 3, 32, 32))
    assert all(len(rec[s]) == 1 for s in sites)


def test_inbatch_wrapper_trains_student_and_heads(tmp_path):
    cfg = tiny_config(tmp_path, method="supervised", cmim_weight=2.0, cmim_variant="inbatch", cmim_dim=8,
                      cmim_blocks="0,1", cmim_pool=2)
    m = build_method(cfg)
    assert isinstance(m, WithCMIM) and set(m.heads()) == {"cmim"}
    assert m.network is m.student is m.method.student and m.data == "supervised"
    assert m.cmim.memory_b is None and all(p.requires_grad for p in m.cmim.parameters())
    res = m((torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))), 0, 10)
    assert set(res) >= {"loss", "acc", "cmim", "cmim_acc"}
    res["loss"].backward()  # cross entropy never reaches the CMIM heads: their gradient is the term's
    assert m.cmim.embed_b["blocks_1_rsign2"][2].weight.grad.abs().sum() > 0
    assert m.cmim.embed_f["blocks_0_rsign1"][2].weight.grad.abs().sum() > 0
    assert m.cmim.embed_b["blocks_0_rsign1"][2].in_features == m.student.blocks[0].in_channels * 4  # 2x2 grid


def test_the_term_alone_trains_the_network_below_the_tap(tmp_path):
    cfg = tiny_config(tmp_path, method="supervised", cmim_weight=1.0, cmim_variant="inbatch", cmim_blocks="-1")
    m = build_method(cfg)
    with m.tap.record() as rec:
        m.student(torch.randn(6, 3, 32, 32))
    term, acc = m.inbatch_term(rec, 6)
    assert term.item() > 0 and 0 <= acc.item() <= 1
    term.backward()
    assert m.student.stem.conv.weight.grad.abs().sum() > 0  # through the binarisers' surrogate gradients
    assert all(p.grad is None for p in m.student.head.parameters())  # the head lies after the tapped binarisers


def test_cmim_refuses_the_float_teacher(tmp_path):
    with pytest.raises(ConfigError, match="binary student"):
        tiny_config(tmp_path, method="teacher", cmim_weight=1.0)
    with pytest.raises(ConfigError):
        tiny_config(tmp_path, method="supervised", cmim_weight=1.0, cmim_variant="queue")
    with pytest.raises(ConfigError, match="needs labels"):  # label-free BURN cannot draw class-aware negatives
        tiny_config(tmp_path, method="burn", cmim_weight=1.0, cmim_class_aware="on")


# ------------------------------------------------------------------------------------ in the engine


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    return write_teacher_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt")


@pytest.mark.parametrize("method", ["supervised", "supervised-kl", "s2bnn"])
def test_binary_methods_train_with_cmim(method, teacher_ckpt, tmp_path):
    pretrain.run(tiny_config(tmp_path, teacher_ckpt, method=method, stage=2, cmim_weight=1.0, cmim_bank=8,
                             limit_train=32))
    ck = read_checkpoint(tmp_path / "checkpoint.pt")
    keys = set(ck["heads"]["cmim"])
    assert {"embed_b.blocks_1_rsign1.2.weight", "embed_f.blocks_1_rsign2.2.weight"} <= keys
    n = 32  # the default: the public memory variant, one entry per training image, fixed random heads
    assert ck["heads"]["cmim"]["memory_f.blocks_1_rsign1.entries"].shape == (n, 128)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert rows and all(math.isfinite(r["cmim"]) and 0 <= r["cmim_acc"] <= 1 for r in rows)


def test_burn_stages_carry_cmim_heads_and_onnx_has_none(teacher_ckpt, tmp_path):
    """BURN stage 1 -> 2 with CMIM: stage 2 starts from stage 1's CMIM heads (like g); the exported
    ONNX graph holds the student only (no CMIM embedding or bank tensor)."""
    kw = dict(method="burn", cmim_weight=0.5, cmim_dim=24, cmim_bank=8, cmim_blocks="all", limit_train=40)
    pretrain.run(tiny_config(tmp_path / "s1", teacher_ckpt, stage=1, **kw))
    s1 = read_checkpoint(tmp_path / "s1" / "checkpoint.pt")
    cfg2 = tiny_config(tmp_path / "s2", teacher_ckpt, stage=2, init=str(tmp_path / "s1" / "checkpoint.pt"), **kw)
    m = build_method(cfg2)
    assert all(torch.equal(v, s1["heads"]["cmim"][k]) for k, v in m.cmim.state_dict().items())
    pretrain.run(cfg2)
    s2 = read_checkpoint(tmp_path / "s2" / "checkpoint.pt")
    assert {"classifier", "cmim"} <= set(s2["heads"])  # next to BURN's own heads

    import onnx

    from export import to_onnx

    out = tmp_path / "s2.onnx"
    assert to_onnx.main([str(tmp_path / "s2" / "checkpoint.pt"), "-o", str(out)]) == 0
    inits = onnx.load(str(out)).graph.initializer
    assert inits and not any("cmim" in i.name or "embed" in i.name or "bank" in i.name for i in inits)
    assert not any(24 in i.dims or 40 in i.dims for i in inits)  # the CMIM width / memory size appear nowhere
    assert sum(math.prod(i.dims) for i in inits) <= sum(v.numel() for v in s2["model"].values())


def test_resume_of_a_run_with_the_removed_bank_option_is_a_one_line_error(tmp_path, capsys):
    from train.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "old.pt", {"config": {"method": "supervised", "cmim_negatives": "bank"}})
    assert pretrain.main(["--resume", str(path)]) == 2
    assert "['cmim_negatives'] no longer exist" in capsys.readouterr().err
