"""An artefact is a set: ``to_lce``'s model, ``.meta.json`` and ``.audit.json`` are written so that a reader
sees the old set or the new set, never a mix (common.files.ArtefactSet; the sidecars carry the model's
sha256 and runtimes.format.read_sidecar refuses a model they do not describe). ``kill -9`` lands before each
rename of the save in turn. Before: a kill during the model save kept the old model under the new sidecars,
whose source_sha256 named the other checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from common.errors import BurnEdgeError, ModelFileError, OutputError
from common.files import ArtefactSet, remove_stale_temps, sha256_file
from runtimes.format import AUDIT_SUFFIX, META_MODEL_SHA256, META_SOURCE, read_sidecar, sidecar_path
from tests.robust.util import REPO, assert_one_error, clean_env, leftovers, run_main, tiny_checkpoint

# The child runs to_lce's real save (export.to_lce.write_model_set) and is frozen before rename number N.
CHILD = r"""
import json, os, sys, time
from pathlib import Path
n, marker, out, new = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), json.loads(Path(sys.argv[4]).read_text())
real, count = os.replace, [0]
def frozen_before_rename(a, b):
    if count[0] == n:
        marker.write_text("renames done: %d" % n)
        time.sleep(600)
    count[0] += 1
    real(a, b)
os.replace = frozen_before_rename
from export.to_lce import write_model_set
write_model_set(out, bytes.fromhex(new["data"]), new["meta"], new["audit"])
marker.write_text("finished")
"""


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory):
    """LCE exports of two different checkpoints: (model bytes, meta, audit) each."""
    from export import to_lce

    d = tmp_path_factory.mktemp("sets")
    sets = []
    for seed in (0, 1):
        ck = tiny_checkpoint(d / f"c{seed}.pt", seed=seed)
        out = d / f"m{seed}.tflite"
        assert to_lce.main([str(ck), "-o", str(out)]) == 0
        meta = json.loads(sidecar_path(out).read_text())
        audit = json.loads(sidecar_path(out, AUDIT_SUFFIX).read_text())
        for m in (meta, audit):
            m.pop(META_MODEL_SHA256, None)
            m.pop("model_sha256", None)
        sets.append((out.read_bytes(), meta, audit))
    return sets


def _kill_during_save(tmp_path, out, new, n) -> str:
    spec = tmp_path / "new.json"
    spec.write_text(json.dumps({"data": new[0].hex(), "meta": new[1], "audit": new[2]}))
    marker = tmp_path / f"marker{n}"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(n), str(marker), str(out), str(spec)], cwd=REPO,
                         env=clean_env(), stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not marker.exists() and p.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.05)
    state = marker.read_text() if marker.exists() else f"child ended rc={p.poll()}: {p.stderr.read()[-2000:]}"
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return state


@pytest.mark.lce
@pytest.mark.parametrize("renames_done", [pytest.param(0, marks=pytest.mark.slow), 1,
                                          pytest.param(2, marks=pytest.mark.slow), 3])
def test_kill_9_during_the_save_never_yields_a_mixed_set(two_exports, tmp_path, renames_done):
    from export import audit
    from export.to_lce import write_model_set

    (old_data, old_meta, old_audit), new = two_exports
    out = tmp_path / "model.tflite"
    write_model_set(out, old_data, old_meta, old_audit)
    state = _kill_during_save(tmp_path, out, new, renames_done)
    assert state in (f"renames done: {renames_done}", "finished"), state
    data = out.read_bytes()
    try:
        meta = read_sidecar(out)
    except ModelFileError as e:  # a mix is refused, by name
        assert "different exports" in str(e)
        assert 0 < renames_done < 3 and data == old_data
        rc, _, err = run_main(audit.main, [str(out), "--allow-float-fallback"])
        assert rc == 2
        assert_one_error(err, "different exports")
    else:  # a whole set: the model is the one its sidecars describe
        want = old_meta if data == old_data else new[1]
        assert data in (old_data, new[0]) and meta[META_SOURCE] == want[META_SOURCE]
        assert meta[META_MODEL_SHA256] == sha256_file(out)
        assert json.loads(sidecar_path(out, AUDIT_SUFFIX).read_text())["model_sha256"] == sha256_file(out)
    # the next export cleans the killed run's temps and writes a whole set
    remove_stale_temps(tmp_path)
    assert leftovers(tmp_path) == []
    write_model_set(out, *new)
    assert read_sidecar(out)[META_SOURCE] == new[1][META_SOURCE]


def test_an_error_while_staging_leaves_every_target_untouched(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.bin"
    a.write_text("old a")
    with pytest.raises(ValueError, match="boom"), ArtefactSet() as s:
        s.write_text(a, "new a")
        s.save(b, lambda tmp: (_ for _ in ()).throw(ValueError("boom")))
    assert a.read_text() == "old a" and not b.exists() and leftovers(tmp_path) == []


def test_commit_renames_in_order_then_removes_stale_members(tmp_path, monkeypatch):
    stale = tmp_path / "stale.png"
    stale.write_bytes(b"x")
    order, real = [], os.replace

    def spy(src, dst):
        order.append(os.path.basename(dst))
        real(src, dst)

    with ArtefactSet() as s:
        s.write_text(tmp_path / "side.json", "{}")
        s.write_bytes(tmp_path / "model.bin", b"m")
        s.remove(stale)
        assert order == [] and not (tmp_path / "model.bin").exists()  # nothing is renamed before the commit
        monkeypatch.setattr(os, "replace", spy)
    assert order == ["side.json", "model.bin"]
    assert not stale.exists() and (tmp_path / "model.bin").read_bytes() == b"m"
    assert issubclass(OutputError, BurnEdgeError)
