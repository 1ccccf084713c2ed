"""The converter registries cover the training module tree; unknown modules and bad options fail clearly."""

from __future__ import annotations

import pytest
import torch.nn as nn

from export.common import check_output, check_upto
from export.errors import ExportError, UnsupportedModuleError
from export.onnx_graph import REGISTRY as ONNX_REGISTRY
from export.onnx_graph import build_onnx
from export.registry import CONTAINERS
from train.models import reactnet_a


def _module_types(**kw) -> set[type]:
    return {type(m) for m in reactnet_a(width=0.25, input_size=32, num_classes=10, **kw).modules()}


@pytest.mark.parametrize("head_hidden", [0, 16])
def test_every_reactnet_module_type_has_onnx_and_lce_converters(head_hidden):
    pytest.importorskip("larq_compute_engine")
    from export.lce import REGISTRY as LCE_REGISTRY

    types = _module_types(head_hidden=head_hidden) - set(CONTAINERS)
    for reg in (ONNX_REGISTRY, LCE_REGISTRY):
        missing = [t.__name__ for t in types if t not in reg.registered()]
        assert not missing, f"{reg.target} registry lacks {missing}"


def test_unknown_module_raises_with_path_and_registered_types(tiny_reactnet):
    model = tiny_reactnet(blocks=2).eval()
    model.blocks[1].rprelu1 = nn.GELU()
    with pytest.raises(UnsupportedModuleError) as e:
        build_onnx(model)
    msg = str(e.value)
    assert "'blocks.1.rprelu1'" in msg and "GELU" in msg and "BinaryConv2d" in msg
    assert e.value.path == "blocks.1.rprelu1"


def test_bad_output_and_upto_are_export_errors(tiny_reactnet):
    model = tiny_reactnet(blocks=2)
    with pytest.raises(ExportError, match="choose one of"):
        check_output("probs")
    with pytest.raises(ExportError, match="blocks.1"):
        check_upto(model, "blocks.5")
    assert check_upto(model, "stem") == "stem"


def test_exporters_follow_a_changed_block_dataflow(tiny_reactnet, monkeypatch):
    """The ONNX export walks Block.dataflow(): change the block (drop the second residual) and the export
    changes with PyTorch, so the two cannot drift apart."""
    import numpy as np
    import torch

    from export.onnx_graph import build_onnx
    from train.models.dataflow import Node
    from train.models.reactnet import Block

    original = Block.dataflow

    def no_second_residual(self):  # z_i = bn2.i(conv1x1.i(b2)), without "+ y"
        nodes = [n for n in original(self) if not n.out.startswith("z_")]
        return tuple(Node(n.out, n.op, tuple(i.replace("z_", "n2_") for i in n.inputs)) for n in nodes)

    from tests.export.helpers import randomize_eval_state

    model = randomize_eval_state(tiny_reactnet(blocks=2))  # no exact-zero ties at the binarisers
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        monkeypatch.setattr(Block, "dataflow", no_second_residual)
        after = model(x)
    assert not torch.allclose(before, after)
    from tests.export.helpers import ort_run

    got = ort_run(build_onnx(model), x)
    assert np.abs(got - after.numpy()).max() < 1e-4 * np.abs(after.numpy()).max()
