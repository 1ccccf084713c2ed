import math

import pytest

from common.errors import ConfigError
from train.schedules import burn_lambda, constant_lambda, lambda_at, lr_factor, step_lambda


class TestBurnLambda:
    @pytest.mark.parametrize("step,total,start,end,expected", [
        (0, 100, 0.9, 0.7, 0.9),  # t = 0: lambda_0
        (50, 100, 0.9, 0.7, 0.8),  # t = T/2: midpoint
        (100, 100, 0.9, 0.7, 0.7),  # t = T: lambda_T
        (25, 100, 0.9, 0.7, 0.7 + 0.2 * (math.cos(math.pi / 4) + 1) / 2),  # 0.870711 by hand
        (0, 10, 0.0, 1.0, 0.0),
        (10, 10, 0.0, 1.0, 1.0),
    ])
    def test_values(self, step, total, start, end, expected):
        v = burn_lambda(step, total, start, end)
        assert type(v) is float
        assert v == pytest.approx(expected, abs=1e-12)

    def test_monotone_between_ends(self):
        vals = [burn_lambda(t, 40, 0.9, 0.7) for t in range(41)]
        assert all(a >= b for a, b in zip(vals, vals[1:]))

    @pytest.mark.parametrize("step,total,msg", [(-1, 10, "step must be"), (11, 10, "step must be"),
                                                (0, 0, "total steps")])
    def test_bad_inputs(self, step, total, msg):
        with pytest.raises(ConfigError, match=msg):
            burn_lambda(step, total, 0.9, 0.7)


class TestOtherLambdas:
    def test_step_is_heaviside_at_half(self):
        assert step_lambda(49, 100, 0.9, 0.7) == 0.9
        assert step_lambda(50, 100, 0.9, 0.7) == 0.7
        assert step_lambda(100, 100, 0.9, 0.7) == 0.7

    def test_constant(self):
        assert {constant_lambda(t, 10, 0.7, 0.1) for t in range(11)} == {0.7}

    def test_dispatch(self):
        assert lambda_at("cosine", 50, 100, 0.9, 0.7) == pytest.approx(0.8)
        with pytest.raises(ConfigError, match="unknown lambda schedule"):
            lambda_at("linear", 0, 10, 0.9, 0.7)


class TestLearningRate:
    @pytest.mark.parametrize("step,expected", [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (60, 0.5), (110, 0.0)])
    def test_warmup_then_cosine(self, step, expected):
        assert lr_factor(step, 110, 10) == pytest.approx(expected, abs=1e-12)

    def test_no_warmup_and_floor(self):
        assert lr_factor(0, 100, 0) == 1.0
        assert lr_factor(100, 100, 0, min_factor=0.1) == pytest.approx(0.1)
        with pytest.raises(ConfigError):
            lr_factor(0, 0, 0)
