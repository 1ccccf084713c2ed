"""The native stderr filter: TFLite's per-interpreter XNNPACK notice is dropped, every other line survives."""

import subprocess
import sys

SCRIPT = r"""
import os, sys
import common
from common.tfenv import native_stderr_filtered
from runtimes.session import open_session
with native_stderr_filtered():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"native warning that must stay\n")
open_session(sys.argv[1], "lce")
open_session(sys.argv[2], "tflite")
print("opened")
"""


def test_xnnpack_notice_dropped_other_lines_kept(lce_model, float_tflite_model):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(lce_model), str(float_tflite_model)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "opened" in r.stdout
    assert "XNNPACK delegate" not in r.stderr
    assert "native warning that must stay" in r.stderr
