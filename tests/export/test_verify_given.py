"""The gate judges the files users ship: the given ONNX / LCE file's *own* stages, cut at its stage marks.

Every wrong file here is made by editing the bytes a real export wrote (never by breaking the converter)
and written back as a well-formed file, so only the numbers can tell it apart.
"""

import json

import pytest
import torch

from export import lce as lce_export
from export.onnx_graph import build_onnx
from export.samples import load_inputs
from export.stage_cut import MARK_PREFIX, CutError, cut_onnx, cut_tflite, mark_keys
from export.verify import EXACT, FLIPS, NOT_JUDGED, STAGE_EXACT, STATISTICAL, STRUCTURAL, main, render, verify
from tests.export.helpers import (
    corrupt_onnx_initializer,
    corrupt_tflite_constant,
    randomize_eval_state,
    strip_marks,
)
from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import dataset_info
from train.models import reactnet_a

INFO = dataset_info("digits")
BLOCKS = 3


def _model(seed: int = 0):
    torch.manual_seed(seed)
    m = reactnet_a(width=0.25, input_size=32, num_classes=10, num_blocks=BLOCKS, binary_weights=True)
    return randomize_eval_state(m, seed=seed)


def bugs(rep, runtime):
    return [v.stage for v in rep.stages if v.runtime == runtime and v.verdict not in (EXACT, FLIPS)]


@pytest.fixture(scope="module")
def digits8():
    return load_inputs("digits", 32, INFO.mean, INFO.std, limit=8)[0]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A checkpoint and the ONNX file its exporter CLI wrote."""
    from export import to_onnx

    d = tmp_path_factory.mktemp("shipped")
    ck = save_checkpoint(d / "m.pt", reactnet_payload(_model(0), config={"dataset": "digits"}))
    assert to_onnx.main([str(ck), "-o", str(d / "m.onnx")]) == 0
    return ck, d / "m.onnx"


@pytest.fixture(scope="module")
def lce_file():
    pytest.importorskip("larq_compute_engine")
    model = _model(0)
    return model, lce_export.convert(lce_export.build_keras(model))


# ------------------------------------------------------------------------------------ marks

def test_marks_name_every_stage_and_cut_covers_the_file(shipped):
    model = _model(0)
    data = shipped[1].read_bytes()
    cut, ins, keys = cut_onnx(data, model)
    stages = [s for s, _ in model.stages()]
    assert ins[1:] == [f"{s}:in" for s in stages[1:]]
    assert keys == [k for s, inner in mark_keys(model) for k in inner + [s]]
    assert f"{MARK_PREFIX}blocks.0:y" in {v for nd in __import__("onnx").load_from_string(data).graph.node
                                          for v in nd.output}
    with pytest.raises(CutError, match="no stage mark"):
        cut_onnx(strip_marks("onnx", data), model)


def test_onnx_marks_change_no_operator(shipped):
    """The marks are names only: the file differs from an unmarked build in no operator and no constant."""
    from export.verify import structural_difference

    model = _model(0)
    unmarked = build_onnx(model, marks=False).SerializeToString()
    assert structural_difference("onnx", shipped[1].read_bytes(), unmarked) is None


@pytest.mark.lce
def test_lce_marks_change_no_operator(lce_file):
    import larq_compute_engine as lce

    from export.verify import structural_difference

    model, marked = lce_file
    unmarked = lce.convert_keras_model(lce_export.build_keras(model, marks=False))
    assert structural_difference("lce", marked, unmarked) is None
    cut, ins, keys = cut_tflite(marked, model)
    assert len(ins) == len(list(model.stages())) and keys[-1] == "head"


# ------------------------------------------------------------------------------------ verdicts

def test_shipped_onnx_is_judged_stage_exact(shipped, digits8):
    ck, onnx_path = shipped
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=onnx_path)
    assert rep.passed, render(rep)
    assert [(f.kind, f.guarantee) for f in rep.files] == [("onnx", STAGE_EXACT)]
    assert "stage-exact" in render(rep)


def test_corrupted_onnx_initializer_fails_at_its_stage(shipped, digits8, tmp_path):
    bad, name = corrupt_onnx_initializer(shipped[1].read_bytes(), "blocks/2/bn1/")
    (tmp_path / "bad.onnx").write_bytes(bad)
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "bad.onnx")
    assert not rep.passed and bugs(rep, "onnxruntime") == ["blocks.2"], render(rep)
    assert not rep.files[0].passed and "blocks.2" in rep.files[0].detail
    assert "first difference from a fresh export: op" in rep.files[0].detail, rep.files[0].detail
    assert "BatchNormalization" in rep.files[0].detail and "values differ" in rep.files[0].detail
    assert "FAIL" in render(rep) and "PASS" not in render(rep)


@pytest.mark.lce
def test_corrupted_lce_constant_fails_at_its_stage(lce_file, digits8, tmp_path):
    model, data = lce_file
    good = tmp_path / "good.tflite"
    good.write_bytes(data)
    rts = ("lce-default", "lce-reference")
    rep = verify(model, digits8[:4], runtimes=rts, lce_path=good)
    assert rep.passed and rep.files[0].guarantee == STAGE_EXACT, render(rep)
    # one channel of blocks.1's first LceBconv2d's fused multiplier (its BN scale), times -3
    bad, out = corrupt_tflite_constant(data, "LceBconv2d", "blocks_1_bn1", input_index=2, channel=1)
    (tmp_path / "bad.tflite").write_bytes(bad)
    rep = verify(model, digits8[:4], runtimes=rts, lce_path=tmp_path / "bad.tflite")
    assert not rep.passed, render(rep)
    assert bugs(rep, "lce-default") == bugs(rep, "lce-reference") == ["blocks.1"], render(rep)
    detail = rep.files[0].detail  # the fresh export names the constant: 1 value of the multiplier
    assert "first difference from a fresh export: op" in detail and "LceBconv2d" in detail, detail
    assert "input 2: 1 of" in detail, detail


def test_file_from_another_checkpoint_is_named(shipped, digits8, tmp_path, capsys):
    from export import to_onnx

    other = save_checkpoint(tmp_path / "other.pt", reactnet_payload(_model(1), config={"dataset": "digits"}))
    assert to_onnx.main([str(other), "-o", str(tmp_path / "other.onnx")]) == 0
    capsys.readouterr()
    rc = main([str(shipped[0]), "--onnx", str(tmp_path / "other.onnx"), "--runtimes", "onnxruntime",
               "--limit", "4", "--report", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 1 and "another checkpoint" in out and "FAIL" in out, out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["files"][0]["other_checkpoint"] and not rep["files"][0]["passed"]
    assert "stem" in [s["stage"] for s in rep["stages"] if s["verdict"] not in (EXACT, FLIPS)]


# ------------------------------------------------------------------------------------ files without marks

def test_unmarked_identical_file_gets_the_structural_guarantee(shipped, digits8, tmp_path):
    (tmp_path / "old.onnx").write_bytes(strip_marks("onnx", shipped[1].read_bytes()))
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "old.onnx")
    assert rep.passed and rep.files[0].guarantee == STRUCTURAL, render(rep)
    assert "structurally identical to a fresh export" in render(rep)


def test_unmarked_different_file_is_not_passed_and_names_the_op(shipped, digits8, tmp_path):
    bad, name = corrupt_onnx_initializer(strip_marks("onnx", shipped[1].read_bytes()), "blocks/1/bn2/")
    (tmp_path / "old_bad.onnx").write_bytes(bad)
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "old_bad.onnx")
    f = rep.files[0]
    assert not rep.passed and f.guarantee == NOT_JUDGED, render(rep)
    assert "BatchNormalization" in f.detail and "values differ" in f.detail, f.detail
    assert "PASS" not in render(rep)


def test_unmarked_different_but_consistent_file_is_statistical_only(shipped, digits8, tmp_path):
    """A file that computes the same function by other operators (here: one extra Identity, as another
    tool might write) cannot be judged stage by stage: 'statistically consistent only', which fails the
    gate unless the user accepts that weaker guarantee."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(strip_marks("onnx", shipped[1].read_bytes()))
    g = proto.graph
    first = g.node[0]
    first.output[0], old = first.output[0] + "_pre", first.output[0]
    g.node.insert(1, helper.make_node("Identity", [first.output[0]], [old], name="extra"))
    (tmp_path / "other_tool.onnx").write_bytes(proto.SerializeToString())
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "other_tool.onnx")
    assert not rep.passed and rep.files[0].guarantee == STATISTICAL, render(rep)
    assert "statistically consistent only" in render(rep)
    ok = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "other_tool.onnx",
                accept_statistical=True)
    assert ok.passed and ok.files[0].guarantee == STATISTICAL, render(ok)
    bad, _ = corrupt_onnx_initializer(proto.SerializeToString(), "blocks/2/bn1/")
    (tmp_path / "other_tool_bad.onnx").write_bytes(bad)
    rep = verify(_model(0), digits8, runtimes=("onnxruntime",), onnx_path=tmp_path / "other_tool_bad.onnx",
                 accept_statistical=True)
    assert not rep.passed and rep.files[0].guarantee == NOT_JUDGED, render(rep)


@pytest.mark.lce
def test_trained_classifier_with_feature_mlp_is_stage_exact(tmp_path):
    """The structure of the pipeline's deployable classifier (feature MLP, MLP head), with trained BN
    statistics: its shipped files pass with every stage, ``mlp`` included, judged on the files."""
    import torch.nn.functional as F

    from export import to_lce, to_onnx
    from train.data import build_dataset, eval_transform

    ds = build_dataset("digits", "train", transform=eval_transform(INFO.input_size, INFO.mean, INFO.std))
    xs, ys = zip(*(ds[i] for i in range(512)))
    xtr, ytr = torch.stack(xs), torch.tensor(ys)
    torch.manual_seed(0)
    model = reactnet_a(width=0.25, input_size=32, num_classes=10, num_blocks=3, binary_weights=True,
                       feature_mlp=True, head_hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for i in range(30):
        idx = torch.arange(i * 16, i * 16 + 64) % len(xtr)
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ck = save_checkpoint(tmp_path / "cls.pt", reactnet_payload(model, config={"dataset": "digits"}))
    assert to_onnx.main([str(ck), "-o", str(tmp_path / "cls.onnx")]) == 0
    assert to_lce.main([str(ck), "-o", str(tmp_path / "cls.tflite")]) == 0
    rc = main([str(ck), "--onnx", str(tmp_path / "cls.onnx"), "--lce", str(tmp_path / "cls.tflite"),
               "--runtimes", "onnxruntime", "lce-indirect", "--limit", "8", "--report", str(tmp_path / "r.json")])
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rc == 0 and rep["passed"], rep["failures"]
    assert [f["guarantee"] for f in rep["files"]] == [STAGE_EXACT, STAGE_EXACT]
    assert "mlp" in {s["stage"] for s in rep["stages"]}


@pytest.mark.lce
def test_a_file_that_crashes_the_runtime_is_one_error_line(lce_file, tmp_path, capsys):
    """A semantically corrupt file (conv stride 0: LCE aborts in Prepare) is test-loaded in a child process
    first, so verify ends with one error line, not a dead process."""
    from tests.robust.models import zero_conv_stride

    model, data = lce_file
    ck = save_checkpoint(tmp_path / "m.pt", reactnet_payload(model, config={"dataset": "digits"}))
    (tmp_path / "stride0.tflite").write_bytes(zero_conv_stride(data))
    rc = main([str(ck), "--lce", str(tmp_path / "stride0.tflite"), "--runtimes", "lce-default", "--limit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "stride0.tflite" in err[0], err
    assert "crashed" in err[0] or "cannot" in err[0], err


def test_a_features_file_checked_as_logits_is_one_error_line(shipped, tmp_path, capsys):
    from export import to_onnx

    assert to_onnx.main([str(shipped[0]), "-o", str(tmp_path / "f.onnx"), "--model-output", "features"]) == 0
    capsys.readouterr()
    assert main([str(shipped[0]), "--onnx", str(tmp_path / "f.onnx"), "--runtimes", "onnxruntime",
                 "--limit", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--model-output" in err[0], err
    assert main([str(shipped[0]), "--onnx", str(tmp_path / "f.onnx"), "--runtimes", "onnxruntime",
                 "--limit", "2", "--model-output", "features"]) == 0


@pytest.mark.lce
def test_lce_stages_down_to_1x1_maps(tmp_path):
    """The embedded default's last blocks run on 1x1 maps (32x32 input, 13 blocks): flipping a 1x1 map must
    still give PyTorch a normal array (numpy keeps negative strides on size-1 axes)."""
    torch.manual_seed(0)
    model = randomize_eval_state(reactnet_a(width=0.25, input_size=16, num_classes=10, num_blocks=6,
                                            binary_weights=True, padding="one"))
    (tmp_path / "m.tflite").write_bytes(lce_export.convert(lce_export.build_keras(model)))
    x = load_inputs("digits", 16, INFO.mean, INFO.std, limit=2)[0]
    rep = verify(model, x, runtimes=("lce-reference",), lce_path=tmp_path / "m.tflite")
    assert rep.passed and rep.files[0].guarantee == STAGE_EXACT, render(rep)
    from export.verify import torch_stages

    assert torch_stages(model, x)[1]["blocks.5"].shape[-2:] == (1, 1)  # the last block runs on 1x1 maps
