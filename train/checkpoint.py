"""Self-describing checkpoints: atomic writes, ``weights_only=True`` reads, rebuild from ``"arch"``.

A burn-edge ReActNet checkpoint is a dict::

    {"format": "burn-edge/1", "kind": "reactnet", "arch": asdict(ReActNetConfig), "model": state_dict,
     ...training extras (optimizer, step, config, rng) written by the engine...}

Official ReActNet / BURN state dicts (see :mod:`train.models.reactnet`) are accepted wherever a
checkpoint is read, given an architecture.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from common.errors import CheckpointError
from common.files import atomic_writer
from train.models.reactnet import ReActNetA, ReActNetConfig, convert_official_state_dict

FORMAT = "burn-edge/1"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` with torch.save to a temp file in the same folder, then rename over ``path``.

    A crash mid-write leaves any previous file at ``path`` intact.
    """
    payload = {"format": FORMAT, **payload}
    with atomic_writer(path, "wb") as f:
        torch.save(payload, f)
    return Path(path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load(path, weights_only=True) with one clear CheckpointError for every way it can fail."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a plain-tensor checkpoint (refused by weights_only=True): "
                              f"{first}") from None
    except Exception as e:  # corrupt bytes surface as many types (IndexError, RuntimeError, EOFError, ...)
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): "
                              f"{type(e).__name__}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def reactnet_payload(model: ReActNetA, **extra) -> dict:
    """The model part of a checkpoint: kind, arch and the (unwrapped) state dict."""
    return {"kind": "reactnet", "arch": model.cfg.to_dict(), "model": model.state_dict(), **extra}


def model_from_checkpoint(ckpt: dict | str | os.PathLike, arch: ReActNetConfig | None = None) -> ReActNetA:
    """Rebuild a ReActNetA from a burn-edge checkpoint (arch read from it) or an official state dict.

    ``arch`` is required for official state dicts (they do not record their configuration) and, when
    given for a burn-edge checkpoint, must equal the stored one.
    """
    if not isinstance(ckpt, dict):
        ckpt = read_checkpoint(ckpt)
    if ckpt.get("kind") == "reactnet":
        stored = ReActNetConfig.from_dict(ckpt["arch"])
        if arch is not None and arch != stored:
            raise CheckpointError(f"checkpoint architecture {stored} differs from requested {arch}")
        model = ReActNetA(stored)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint weights do not match its own architecture: {str(e)[:300]}") from None
        return model
    if ckpt.get("kind") is not None:
        raise CheckpointError(f"this is a {ckpt['kind']!r} checkpoint, not a ReActNet one")
    sd = ckpt.get("state_dict", ckpt.get("model", ckpt))
    if not isinstance(sd, dict) or not any(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError("not a checkpoint: no state dict with tensors found")
    if arch is None:
        raise CheckpointError("an official-format state dict records no architecture; pass one "
                              "(e.g. ReActNetConfig(binary_weights=True))")
    model = ReActNetA(arch)
    model.load_state_dict(convert_official_state_dict(sd, model), strict=False)
    return model
