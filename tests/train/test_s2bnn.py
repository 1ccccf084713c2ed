"""S2-BNN as its public code (szq0214/S2-BNN, Distillation_only): L2-normalised outputs before /T, one view."""

import math

import pytest
import torch

from tests.train.helpers import tiny_config, write_teacher_checkpoint
from train.losses import kl_loss
from train.methods import S2BNN, build_method
from train.methods.s2bnn import s2bnn_loss


def test_loss_normalises_before_the_temperature():
    # t = (3, 4) -> t/|t| = (0.6, 0.8); s = (1, 0) -> (1, 0); T = 0.5: t/T = (1.2, 1.6), s/T = (2, 0).
    # p = softmax(1.2, 1.6) = (1, e^0.4) / (1 + e^0.4); log q = (2, 0) - log(e^2 + 1).
    # KL = sum_i p_i (log p_i - log q_i).
    p1 = 1 / (1 + math.exp(0.4))
    p = (p1, 1 - p1)
    log_q = (2 - math.log(math.exp(2) + 1), -math.log(math.exp(2) + 1))
    expected = sum(pi * (math.log(pi) - lq) for pi, lq in zip(p, log_q))
    assert expected == pytest.approx(0.650763, abs=1e-6)
    t, s = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])
    assert float(s2bnn_loss(t, s, 0.5)) == pytest.approx(expected, abs=1e-6)
    # scale-free: the raw division (the former implementation) would change with the norms
    assert float(s2bnn_loss(10 * t, 0.1 * s, 0.5)) == pytest.approx(expected, abs=1e-6)
    assert float(kl_loss(10 * t, 0.1 * s, 0.5)) != pytest.approx(expected, abs=1e-3)
    # batch mean of per-row KLs
    two = s2bnn_loss(torch.cat([t, t]), torch.cat([s, t]), 0.5)
    assert float(two) == pytest.approx(expected / 2, abs=1e-6)


def test_teacher_and_student_see_the_same_single_view(tmp_path):
    ckpt = write_teacher_checkpoint(tmp_path / "teacher.pt")
    torch.manual_seed(0)
    m = build_method(tiny_config(tmp_path, ckpt, method="s2bnn"))
    assert isinstance(m, S2BNN)
    m.eval()
    g = torch.Generator().manual_seed(0)
    v1, v2, other = (torch.randn(4, 3, 32, 32, generator=g) for _ in range(3))
    with torch.no_grad():
        loss = float(m(((v1, v2), None), 0, 1)["loss"])
        assert float(m(((v1, other), None), 0, 1)["loss"]) == loss  # the second view is unused
        assert loss == pytest.approx(float(s2bnn_loss(m.teacher_head(m.teacher(v1)), m.student(v1), m.temperature)))
