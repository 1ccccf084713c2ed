"""Shared helpers of the robustness tests: tiny checkpoints, the one-error-line contract, a clean environment,
a tiny full file system."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from train.checkpoint import reactnet_payload, save_checkpoint
from train.models import reactnet_a

REPO = Path(__file__).parents[2]
TF_VARS = ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")


def tiny_checkpoint(path: Path, seed: int = 0, blocks: int = 1, edit=None, **extra) -> Path:
    """A width-0.25, 32 px, 10-class stage-2 ReActNet checkpoint; ``edit(state_dict)`` may tamper with it."""
    torch.manual_seed(seed)
    m = reactnet_a(width=0.25, input_size=32, num_classes=10, num_blocks=blocks).eval()
    payload = reactnet_payload(m, **extra)
    if edit is not None:
        edit(payload["model"])
    return save_checkpoint(path, payload)


def error_lines(text: str) -> list[str]:
    """Non-empty stderr lines other than ``warning:`` lines."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]


def assert_one_error(text: str, *needles: str) -> str:
    lines = error_lines(text)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines[-20:]
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]


def run_main(main, argv) -> tuple[int, str, str]:
    """``main(argv)`` in-process -> (exit code, stdout, stderr); argparse's SystemExit becomes its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    assert "Traceback" not in err.getvalue(), err.getvalue()[-3000:]
    return rc, out.getvalue(), err.getvalue()


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: none of the TensorFlow variables tests/conftest.py sets."""
    env = {k: v for k, v in os.environ.items() if k not in TF_VARS}
    env["PYTHONPATH"] = str(REPO)
    return env


def run_module(module: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m module args`` in a clean environment from the repository root."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, errors="replace", timeout=timeout)


def leftovers(folder: Path) -> list[str]:
    """Temp files (``.<name>.tmp-*``) anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp-" in p.name)


@contextlib.contextmanager
def tiny_filesystem(parent: Path, size: str = "2m"):
    """A fresh tmpfs of ``size`` mounted under ``parent`` (skips the test where mounting is not permitted)."""
    mnt = parent / f"tiny-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a {size} tmpfs here ({r.stderr.strip() or 'mount failed'}): the full-disk "
                    "promise is tested where the test runs as root with mount permitted")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        with contextlib.suppress(OSError):
            mnt.rmdir()


def fill(folder: Path, leave: int = 4096) -> Path:
    """Fill ``folder``'s file system until at most ``leave`` bytes are free; returns the filler file."""
    filler = folder / "filler.bin"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * max(0, free - leave))
    return filler
