"""A printed stage checklist for export CLIs: ``✓ load  0.4 s`` / ``✗ convert`` (torch.onnx-style)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Checklist:
    """``with cl.stage("convert", "LCE converter"): ...`` prints one line per stage when it ends."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.done: list[tuple[str, bool, float]] = []

    @contextmanager
    def stage(self, name: str, detail: str = ""):
        print(f"… {name}{': ' + detail if detail else ''}", file=self.stream, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            self.done.append((name, False, time.perf_counter() - t0))
            print(f"✗ {name}", file=self.stream, flush=True)
            raise
        dt = time.perf_counter() - t0
        self.done.append((name, True, dt))
        print(f"✓ {name:<8} {dt:6.1f} s", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", file=self.stream, flush=True)
