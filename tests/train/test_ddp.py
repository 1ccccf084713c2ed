"""Two CPU processes on the gloo backend, launched by torchrun exactly as a user would."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.helpers import write_teacher_checkpoint
from train.checkpoint import read_checkpoint
from train.metrics import read_jsonl

ROOT = Path(__file__).resolve().parents[2]


def test_two_process_gloo_burn_run(tmp_path):
    teacher = write_teacher_checkpoint(tmp_path / "teacher.pt")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "train.pretrain", "--method", "burn", "--dataset", "digits", "--width", "0.25",
           "--num-blocks", "2", "--head-hidden", "32", "--head-dim", "16", "--teacher-arch", "resnet18",
           "--teacher-checkpoint", str(teacher), "--batch-size", "8", "--limit-train", "48", "--epochs", "1",
           "--log-every", "1", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "trained parameters identical on all 2 processes" in proc.stdout
    assert "2 process(es) on cpu" in proc.stdout
    ck = read_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 3  # 48 images / 2 processes / 8 per batch
    assert not any(k.startswith("module.") for k in ck["model"])  # unwrapped state dict
    rows = read_jsonl(out / "metrics.jsonl")  # only rank 0 logs
    assert [r["step"] for r in rows] == [1, 2, 3]


@pytest.mark.parametrize("variant", ["inbatch", "memory"])
def test_two_process_gloo_cmim(tmp_path, variant):
    """CMIM under DDP. inbatch: negatives are gathered from both processes (16 candidates, not 8); tau = 100
    makes every logit ~0, so the loss is ~log 16. memory: every process writes both processes' embeddings,
    so the per-sample memories stay identical (compared at the end with the parameters); at tau = 100 every
    score is ~1, Z ~ M = 48, and each NCE direction costs -(log(p / (p + c)) + K log(c / (p + c))) with
    p = 1/48, K = 64, c = K/M."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "train.pretrain", "--method", "supervised", "--stage", "2", "--dataset", "digits", "--width", "0.25",
           "--num-blocks", "2", "--batch-size", "8", "--limit-train", "48", "--epochs", "1", "--log-every", "1",
           "--cmim-weight", "1", "--cmim-variant", variant, "--cmim-bank", "64", "--cmim-temperature", "100",
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "trained parameters identical on all 2 processes" in proc.stdout
    rows = read_jsonl(out / "metrics.jsonl")
    heads = read_checkpoint(out / "checkpoint.pt")["heads"]["cmim"]
    if variant == "inbatch":
        assert rows[0]["cmim"] == pytest.approx(math.log(16), abs=0.05)
        assert not any(k.startswith("memory") for k in heads)
    else:
        p, c = 1 / 48, 64 / 48
        assert rows[0]["cmim"] == pytest.approx(-2 * (math.log(p / (p + c)) + 64 * math.log(c / (p + c))), abs=0.1)
        entries = heads["memory_b.blocks_1_rsign1.entries"]
        assert entries.shape == (48, 128) and torch.allclose(entries.norm(dim=1), torch.ones(48))  # all visited
