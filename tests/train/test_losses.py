import math

import pytest
import torch

from common.errors import ConfigError
from train.losses import burn_loss, feature_similarity, info_nce, kl_loss

LN3 = math.log(3.0)
# Row 0: p = softmax([0, ln 3]) = [1/4, 3/4], q = [1/2, 1/2]: KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120...
# Row 1: equal distributions: KL = 0.
KL_ROW0 = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


class TestKL:
    def test_hand_computed(self):
        t = torch.tensor([[0.0, LN3], [1.0, 2.0]])
        s = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
        assert kl_loss(t, s, 1.0).item() == pytest.approx(KL_ROW0 / 2, abs=1e-6)  # mean over the batch of 2
        assert KL_ROW0 == pytest.approx(0.1308120, abs=1e-6)

    def test_temperature_scales_logits(self):
        t = torch.tensor([[0.0, 2 * LN3]])
        assert kl_loss(t, torch.zeros(1, 2), 2.0).item() == pytest.approx(KL_ROW0, abs=1e-6)

    def test_zero_for_equal_and_direction(self):
        x = torch.randn(4, 7)
        assert kl_loss(x, x + 3.0, 0.2).item() == pytest.approx(0.0, abs=1e-6)  # softmax is shift-invariant
        t, s = torch.tensor([[0.0, LN3]]), torch.zeros(1, 2)
        # KL(p||q) != KL(q||p): the target is the first argument.
        assert kl_loss(s, t).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-6)

    def test_bad_temperature(self):
        with pytest.raises(ConfigError, match="temperature"):
            kl_loss(torch.zeros(1, 2), torch.zeros(1, 2), 0.0)


class TestFeatureSimilarity:
    def test_cosine_closed_forms(self):
        a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
        b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]])
        # orthogonal -> 1, parallel -> 0, 45 degrees -> 1 - 1/sqrt(2); mean over 3 rows
        assert feature_similarity(a, b, "cosine").item() == pytest.approx((1 + 0 + 1 - 2 ** -0.5) / 3, abs=1e-6)

    def test_normalized_l2_is_twice_the_cosine_distance(self):
        a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
        b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]])
        # rows: |(1,0)-(0,1)|^2 = 2; parallel -> 0; |(1,0)-(1,1)/sqrt2|^2 = (1-1/sqrt2)^2 + 1/2 = 2 - sqrt2
        want = (2 + 0 + 2 - 2 ** 0.5) / 3
        assert feature_similarity(a, b, "normalized-l2").item() == pytest.approx(want, abs=1e-6)
        assert want == pytest.approx(2 * feature_similarity(a, b, "cosine").item(), abs=1e-6)

    def test_l1_l2_none(self):
        a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
        assert feature_similarity(a, b, "l1").item() == pytest.approx(1.5)
        assert feature_similarity(a, b, "l2").item() == pytest.approx(2.5)
        assert feature_similarity(a, b, "none").item() == 0.0

    def test_errors(self):
        with pytest.raises(ConfigError, match="unknown feature-similarity"):
            feature_similarity(torch.ones(1, 2), torch.ones(1, 2), "l3")
        with pytest.raises(ConfigError, match="equal shapes"):
            feature_similarity(torch.ones(1, 2), torch.ones(1, 3))


class TestBurnLoss:
    def test_weighting(self):
        t = torch.tensor([[0.0, LN3]])
        s = torch.tensor([[0.0, 0.0]])
        parts = burn_loss(t, s, lam=0.25, temperature=1.0, fs="cosine")
        cos = 1.0  # [0, ln 3] vs the zero vector: cosine similarity 0 (eps-guarded) -> distance 1
        assert parts.kl.item() == pytest.approx(KL_ROW0, abs=1e-6)
        assert parts.fs.item() == pytest.approx(cos, abs=1e-6)
        assert parts.total.item() == pytest.approx(0.75 * KL_ROW0 + 0.25 * cos, abs=1e-6)

    def test_separate_fs_vectors_and_none(self):
        t, s = torch.tensor([[0.0, LN3]]), torch.zeros(1, 2)
        parts = burn_loss(t, s, 0.5, 1.0, "cosine", torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]]))
        assert parts.fs.item() == pytest.approx(1.0) and parts.total.item() == pytest.approx(0.5 * KL_ROW0 + 0.5)
        only_kl = burn_loss(t, s, 0.9, 1.0, "none")
        assert only_kl.total.item() == pytest.approx(KL_ROW0, abs=1e-6)

    def test_both_sides_get_gradients(self):
        # Exact zeros (0.0 and -0.0) in the inputs must not produce NaNs.
        t = torch.tensor([[0.0, -0.0, 1.0], [2.0, 0.5, -1.0]], requires_grad=True)
        s = torch.tensor([[-0.0, 1.0, 0.0], [0.3, 0.0, 2.0]], requires_grad=True)
        burn_loss(t, s, 0.7, 0.2).total.backward()
        for x in (t, s):
            assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    def test_gradient_matches_numeric(self):
        torch.manual_seed(0)
        t = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: burn_loss(a, b, 0.3, 0.5).total, (t, s))

    def test_bad_lambda(self):
        with pytest.raises(ConfigError, match="lambda"):
            burn_loss(torch.zeros(1, 2), torch.zeros(1, 2), 1.5)


def test_info_nce_closed_form():
    q = torch.tensor([[1.0, 0.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # orthogonal negatives: logits 0
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert info_nce(q, q.clone(), queue, t).item() == pytest.approx(expected, abs=1e-6)
