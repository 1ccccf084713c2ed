"""The pieces of the teacher check (train.teacher_check) and the teacher's per-step view gap, on hand-made
inputs; the digits preset's teacher settings."""

import json
import math

import pytest
import torch

from train.config import resolve_config
from train.methods.teacher_ssl import view_gap
from train.teacher_check import final_loss, view_cosines


def test_final_loss_is_the_last_epochs_mean_and_view_gap_of_a_batch(tmp_path):
    rows = [{"step": 2, "epoch": 0, "loss": 9.0}, {"step": 4, "epoch": 0, "loss": 9.0},
            {"step": 6, "epoch": 1, "loss": 3.0}, {"step": 8, "epoch": 1, "loss": 5.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert final_loss(tmp_path, steps_per_epoch=4) == pytest.approx(4.0)  # steps 5..8
    assert final_loss(tmp_path / "missing", 4) is None
    # two views of 2 images: view 2 = view 1 -> same 1; images orthogonal -> other 0; gap 1
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    g = view_gap(f, 2)
    assert float(g["view_cos"]) == pytest.approx(1.0) and float(g["other_cos"]) == pytest.approx(0.0)
    assert float(g["view_gap"]) == pytest.approx(1.0)
    assert math.log(1024 + 1) == pytest.approx(6.9324, abs=1e-4)  # the chance level the check compares to


class _Const(torch.nn.Module):
    def forward(self, x):
        return torch.ones(len(x), 4)


class _Pairs(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return (torch.randn(3, 8, 8), torch.randn(3, 8, 8)), 0


def test_view_cosines_of_a_constant_network_have_no_gap():
    v = view_cosines(_Const(), _Pairs(), batch_size=4)
    assert v["same"] == pytest.approx(1.0) and v["other"] == pytest.approx(1.0) and abs(v["gap"]) < 1e-6


def test_the_digits_preset_teacher_settings():
    cfg = resolve_config("digits-tiny", method="teacher")
    assert cfg.teacher_check and cfg.crop_min_scale > 0 and cfg.temperature < 0.2 and not cfg.hflip


@pytest.mark.slow
def test_the_digits_preset_teacher_learns(tmp_path):
    """The real thing: the embedded default's MoCo teacher, trained as python -m pipeline trains it (about 2.5 min
    on 2 idle cores), passes all three parts of its check (InfoNCE <= 0.6 log(K+1), view gap >= 0.3, kNN >= its
    random-init twin + 2 points) and says so in teacher_check.json."""
    from train.pretrain import run

    run(resolve_config("digits-tiny", method="teacher", seed=0, out=str(tmp_path)))
    check = json.loads((tmp_path / "teacher_check.json").read_text())
    assert check["infonce"]["ratio"] <= 0.6 and check["infonce"]["passed"]
    assert check["view_cosine"]["gap"] >= 0.3 and check["view_cosine"]["passed"]
    assert check["knn"]["teacher"] >= check["knn"]["random_init"] + 0.02 and check["knn"]["passed"]
