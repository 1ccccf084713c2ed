"""What every benchmark script needs first. Import it before anything from the checkout::

    import _bench  # scripts run as ``python benchmarks/<name>.py``, so benchmarks/ is on sys.path

* the checkout's root goes on ``sys.path``, so ``train``, ``export`` ... import from any working directory,
  whether or not the project is installed;
* TensorFlow runs on legacy Keras (LCE 0.16 needs tf-keras) and quietly, unless the caller set otherwise.

:func:`args_parser` is the one argument-parser style of the scripts (their module docstring as ``--help``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def args_parser(doc: str | None, add_help: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser whose description is ``doc`` with its line breaks kept."""
    return argparse.ArgumentParser(description=doc, add_help=add_help,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
