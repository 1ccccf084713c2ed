"""The fast training step (``--fast-step``, :mod:`train.fast_step`) computes today's step: same losses,
same gradients, same Adam update, within float tolerance (measured: bit-identical on this build)."""

import pytest
import torch
import torch.nn as nn

from tests.train.helpers import tiny_config, write_teacher_checkpoint
from train.binary import (
    binarize_activation,
    binarize_weight,
    fast_binarize_weight,
    fast_sign_pm1,
    shift_binarize_activation,
    sign_pm1,
)
from train.config import resolve_config
from train.dist import init_from_env
from train.engine import Trainer
from train.fast_step import apply_fast_step, build_optimizer, set_malloc_reuse
from train.methods import Burn, build_method
from train.models import build_teacher
from train.models.layers import FastMaxPool2d, RPReLU, RSign, set_fast

ONE_UP, ONE_DOWN = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item(), \
    torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)).item()
EDGES = torch.tensor([-2.0, -ONE_UP, -1.0, -ONE_DOWN, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, ONE_DOWN, 1.0, ONE_UP,
                      2.0, float("inf"), -float("inf")])


def _grads(fn, *xs):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    out = fn(*xs)
    torch.manual_seed(3)
    g = torch.randn_like(out)
    out.backward(g)
    return out.detach(), [x.grad for x in xs]


def test_fast_sign_matches_sign_pm1_on_edges():
    assert torch.equal(fast_sign_pm1(EDGES.clone()), sign_pm1(EDGES))


@pytest.mark.parametrize("grad", ["ste", "approx"])
def test_shift_sign_matches_reference(grad):
    torch.manual_seed(0)
    x = torch.cat([torch.randn(128 - len(EDGES)), EDGES]).reshape(2, 4, 16)  # the edge values included
    b = torch.zeros(1, 4, 1)
    b[0, 1, 0] = 0.25
    ref_out, ref_g = _grads(lambda x, b: binarize_activation(x + b, grad), x, b)
    out, g = _grads(lambda x, b: shift_binarize_activation(x, b, grad), x, b)
    assert torch.equal(out, ref_out)
    assert torch.equal(g[0], ref_g[0])  # elementwise: the same numbers
    torch.testing.assert_close(g[1], ref_g[1], rtol=1e-6, atol=1e-6)  # a sum: order may differ


def test_fast_weight_binariser_matches_reference():
    torch.manual_seed(0)
    w = torch.cat([torch.randn(6 * 3 * 9 - len(EDGES[:-2])) * 0.8, EDGES[:-2]]).reshape(6, 3, 3, 3)
    assert torch.equal(*(_grads(f, w)[0] for f in (fast_binarize_weight, binarize_weight)))
    assert torch.equal(*(_grads(f, w)[1][0] for f in (fast_binarize_weight, binarize_weight)))


def test_rprelu_matches_plain_composition():
    torch.manual_seed(0)
    m = RPReLU(5)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.5, 0.5)
    x = torch.randn(3, 5, 4, 4)
    x[0, 0, 0, :2] = -m.bias_in[0, 0, 0, 0].item()  # t = 0 exactly: the slope side, as PReLU's backward
    res = {}
    for fast in (False, True):
        m.fast = fast
        xx = x.clone().requires_grad_(True)
        out = m(xx)
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
        res[fast] = [out.detach(), xx.grad] + [p.grad.clone() for p in m.parameters()]
        m.zero_grad()
    for a, b in zip(res[False], res[True]):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
    assert torch.equal(res[True][0], res[False][0]) and torch.equal(res[True][1], res[False][1])


def test_fast_max_pool_matches_max_pool():
    """The teacher's stem pool: the same values without a graph (channels_last path, ReLU's ties and
    -inf included), the plain kernel and its gradient with one."""
    torch.manual_seed(0)
    x = torch.randn(4, 8, 17, 16).relu_()  # ~half zeros: ties in most windows
    x[0, 0, :3, :3] = -float("inf")
    ref, fast = nn.MaxPool2d(3, 2, 1), FastMaxPool2d(3, 2, 1)
    with torch.no_grad():
        assert torch.equal(fast(x), ref(x)) and fast(x).is_contiguous()
    xr, xf = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ref(xr).sum().backward()
    fast(xf).sum().backward()
    assert torch.equal(xf.grad, xr.grad)
    fast.fast = False
    with torch.no_grad():
        assert torch.equal(fast(x), ref(x))


def _official_burn(tmp_path, stage: int, **kw) -> Burn:
    cfg = tiny_config(tmp_path, stage=stage, num_blocks=3, **kw)  # recipe official (the default)
    torch.manual_seed(0)
    return Burn.from_config(cfg, teacher=build_teacher(cfg.teacher_arch, small_input=cfg.teacher_small_input))


@pytest.mark.parametrize("stage, act_grad", [(2, "ste"), (1, "ste"), (2, "approx")])
def test_fast_step_pins_losses_gradients_and_update(tmp_path, stage, act_grad):
    """The engine step of the official recipe (both views in one 2N batch), fast vs plain, same batch:
    the losses and every gradient agree, and so does the parameter update of fused vs plain Adam."""
    method = _official_burn(tmp_path, stage, act_grad=act_grad).train()
    assert isinstance(method.student.blocks[0].rsign1, RSign)
    torch.manual_seed(1)
    batch = [[torch.randn(6, 3, 32, 32) for _ in range(2)], None]
    params = dict((n, p) for n, p in method.named_parameters() if p.requires_grad)
    start = {n: p.detach().clone() for n, p in params.items()}
    res = {}
    for fast in (False, True):
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(start[n])
        set_fast(method, fast)
        opt = build_optimizer(params.values(), lr=1e-3, fast=fast)
        assert bool(opt.defaults.get("fused")) == fast
        out = method(batch, 5, 100)
        out["loss"].backward()
        grads = {n: p.grad.clone() for n, p in params.items()}
        opt.step()
        opt.zero_grad(set_to_none=True)
        res[fast] = out, grads, {n: p.detach().clone() for n, p in params.items()}
    (o0, g0, p0), (o1, g1, p1) = res[False], res[True]
    for k in ("loss", "kl", "fs"):
        torch.testing.assert_close(o1[k], o0[k], rtol=1e-6, atol=1e-7)
    assert g0.keys() == g1.keys() and len(g0) > 20
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-5, atol=1e-7, msg=lambda m, n=n: f"{n}: {m}")
    for n in p0:
        torch.testing.assert_close(p1[n], p0[n], rtol=1e-6, atol=1e-7, msg=lambda m, n=n: f"{n}: {m}")
    assert any(not torch.equal(p0[n], start[n]) for n in p0)  # the step did move the weights


@pytest.mark.parametrize("fast", [True, False])
def test_trainer_turns_the_fast_step_on_by_default(tmp_path, fast):
    cfg = tiny_config(tmp_path, limit_train=32, fast_step=fast)
    torch.manual_seed(0)
    method = Burn.from_config(cfg, teacher=build_teacher(cfg.teacher_arch))
    try:
        trainer = Trainer(cfg, method, init_from_env("cpu"))
    finally:
        set_malloc_reuse(False)
    layers = [m for m in method.modules() if hasattr(m, "fast") and isinstance(m, nn.Module)]
    assert layers and all(m.fast == fast for m in layers)
    assert bool(trainer.optimizer.defaults.get("fused")) == fast
    assert ("layers" in trainer.fast) == fast


def test_trainer_leaves_a_cmim_run_uncompiled_and_says_so(tmp_path):
    cfg = tiny_config(tmp_path, write_teacher_checkpoint(tmp_path / "teacher.pt"), compile=True, cmim_weight=0.5)
    torch.manual_seed(0)
    method = build_method(cfg)
    try:
        trainer = Trainer(cfg, method, init_from_env("cpu"))
    finally:
        set_malloc_reuse(False)
    assert "compile (" not in trainer.fast and "--compile not applied: CMIM" in trainer.fast
    assert "forward_features" not in vars(method.student)


def _step_results(method: Burn, batch, dtype: torch.dtype) -> tuple[dict, dict]:
    """One engine step of ``method`` in ``dtype``: (loss parts, gradients by parameter name)."""
    method.to(dtype)
    out = method([[v.to(dtype) for v in batch[0]], None], 5, 100)
    out["loss"].backward()
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    return {k: out[k].detach() for k in ("loss", "kl", "fs")}, grads


def _assert_compiled_step_is_the_plain_step(build, batch) -> None:
    """In float64 (where rounding cannot flip a sign) the compiled step's loss parts and every gradient
    equal the plain eager step's, and compiling leaves the state dict's keys alone."""
    plain, compiled = build(), build()
    set_fast(plain, False)
    keys = list(compiled.state_dict())
    assert apply_fast_step(compiled, True, torch.device("cpu"), compile=True)[0] == "compile (student, teacher)"
    assert list(compiled.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
    try:
        (o0, g0), (o1, g1) = (_step_results(m, batch, torch.float64) for m in (plain, compiled))
    finally:
        set_malloc_reuse(False)
    for k in o0:
        torch.testing.assert_close(o1[k], o0[k], rtol=1e-12, atol=1e-14)
    assert g0.keys() == g1.keys() and len(g0) > 20
    for n in g0:  # atol: a Linear bias before BatchNorm has a true gradient of 0 (float noise ~1e-15)
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-9, atol=1e-12, msg=lambda m, n=n: f"{n}: {m}")


def test_compiled_step_computes_the_plain_step(tmp_path):
    """``--compile`` on the official recipe's engine step (tiny ReActNet, stage 2): ~45 s cold, most of it
    Inductor compiling the student (forward and backward) and the teacher."""
    torch.manual_seed(1)
    batch = [[torch.randn(6, 3, 32, 32) for _ in range(2)], None]
    _assert_compiled_step_is_the_plain_step(lambda: _official_burn(tmp_path, 2).train(), batch)


@pytest.mark.slow
def test_compiled_step_computes_the_plain_step_at_224():
    """The same on what ``--preset imagenet-reactnet-a`` trains: full ReActNet-A at 224², ResNet-50 teacher
    (BatchNorm on batch statistics), 2 images per view; ~2 min."""
    def build() -> Burn:
        cfg = resolve_config("imagenet-reactnet-a", method="burn", stage=2)
        assert cfg.compile and cfg.teacher_bn == "batch"  # what the preset trains
        torch.manual_seed(0)
        return Burn.from_config(cfg, teacher=build_teacher(cfg.teacher_arch)).train()

    torch.manual_seed(1)
    batch = [[torch.randn(2, 3, 224, 224) for _ in range(2)], None]
    _assert_compiled_step_is_the_plain_step(build, batch)
