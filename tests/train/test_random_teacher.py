"""The random-teacher controls: a teacher of the MoCo teacher's shape, random weights, BN re-estimated."""

import torch

from pipeline.results import ALL_ROWS, RANDOM_TEACHER, _teacher_for
from tests.train.helpers import tiny_config, write_teacher_checkpoint
from train.checkpoint import read_checkpoint
from train.methods import build_method
from train.teacher_check import write_random_teacher


def test_control_rows_are_their_base_rows_with_the_random_teacher():
    for name, base in (("burn-random-teacher", "burn"), ("s2bnn-random-teacher", "s2bnn")):
        stages = ALL_ROWS[name][1]
        assert all(_teacher_for(s) == RANDOM_TEACHER for s in stages)
        assert [{k: v for k, v in s.items() if k != "teacher"} for s in stages] == ALL_ROWS[base][1]
        assert "random-init teacher" in ALL_ROWS[name][0]
    assert _teacher_for(ALL_ROWS["burn"][1][0]) == "teacher-moco"


def test_write_random_teacher(tmp_path):
    src = write_teacher_checkpoint(tmp_path / "moco.pt", dim=16)
    out = write_random_teacher(str(src), tmp_path / "random.pt", seed=3)
    a, b = read_checkpoint(src), read_checkpoint(out)
    assert b["kind"] == "teacher" and b["random_init"] and b["teacher_arch"] == a["teacher_arch"]
    assert b["model"].keys() == a["model"].keys()
    assert not torch.equal(a["model"]["net.conv1.weight"], b["model"]["net.conv1.weight"])
    # BN statistics re-estimated on the digits images: not the fresh-init 0 / 1
    assert b["model"]["net.bn1.running_mean"].abs().sum() > 0
    assert not torch.allclose(b["model"]["net.layer4.1.bn2.running_var"], torch.ones(512))
    pa, pb = a["heads"]["projector"], b["heads"]["projector"]
    assert {k: v.shape for k, v in pa.items()} == {k: v.shape for k, v in pb.items()}
    assert not torch.equal(pa["2.weight"], pb["2.weight"])
    m = build_method(tiny_config(tmp_path, out, method="s2bnn"))  # every method reads it like a trained one
    assert sum(p.numel() for p in m.teacher.parameters()) > 0
