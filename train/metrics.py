"""Run logs: one JSON line and one CSV row per logged step, an optional TensorBoard mirror, and the
single-line progress report. Only the main process writes (``enabled=False`` elsewhere)."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

from common.files import atomic_write_text, atomic_writer

log = logging.getLogger(__name__)


class MetricsLogger:
    """Appends to ``<out>/metrics.jsonl`` and ``<out>/metrics.csv`` (columns fixed by the first row)."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = False):
        self.enabled = enabled
        self.out = Path(out_dir)
        self._columns: list[str] | None = None
        self._tb = None
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        csv_path = self.out / "metrics.csv"
        if csv_path.is_file() and csv_path.stat().st_size:
            with open(csv_path, newline="") as f:
                self._columns = next(csv.reader(f), None)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional dependency
                log.warning("tensorboard is not installed; writing JSONL/CSV only")
            else:
                self._tb = SummaryWriter(str(self.out / "tb"))

    def truncate_after(self, step: int) -> None:
        """Drop the rows logged after ``step`` (and a torn last line of a killed run): a run resumed from the
        checkpoint of step ``step`` logs those steps again, and each step must appear once."""
        if not self.enabled:
            return
        jsonl, csv_path = self.out / "metrics.jsonl", self.out / "metrics.csv"
        if jsonl.is_file():
            keep = []
            for line in jsonl.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                    keep.append(line + "\n")
            atomic_write_text(jsonl, "".join(keep))
        if csv_path.is_file() and self._columns:
            with open(csv_path, newline="") as f:
                rows = list(csv.DictReader(f))
            with atomic_writer(csv_path, "w") as f:
                w = csv.DictWriter(f, fieldnames=self._columns, extrasaction="ignore")
                w.writeheader()
                for r in rows:
                    if (r.get("step") or "").isdigit() and int(r["step"]) <= step:
                        w.writerow(r)

    def log(self, row: dict) -> None:
        """row: flat dict of numbers (must contain ``step``)."""
        if not self.enabled:
            return
        row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        new = self._columns is None
        if new:
            self._columns = list(row)
        with open(self.out / "metrics.csv", "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Throughput:
    """Images/s and step time over the interval since the last call."""

    def __init__(self):
        self.t, self.images = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.images += n

    def read(self, steps: int) -> tuple[float, float]:
        now = time.perf_counter()
        dt = max(now - self.t, 1e-9)
        ips, step_s = self.images / dt, dt / max(steps, 1)
        self.t, self.images = now, 0
        return ips, step_s


def progress_line(step: int, total: int, row: dict, ips: float, eta_s: float) -> str:
    """``step 120/900 | loss 1.234 (kl 0.90 fs 0.33) | lam 0.81 | lr 3.0e-04 | 310 img/s | eta 2:10``."""
    parts = [f"step {step}/{total}", f"loss {row['loss']:.4f}"]
    shown = ("kl", "fs", "acc", "cmim", "cmim_acc", "loss_vs_chance", "view_gap")
    extra = [f"{k} {row[k]:.3f}" for k in shown if k in row]
    if extra:
        parts[-1] += f" ({' '.join(extra)})"
    if "lam" in row:
        parts.append(f"lam {row['lam']:.3f}")
    parts += [f"lr {row['lr']:.1e}", f"{ips:.0f} img/s", f"eta {int(eta_s // 60)}:{int(eta_s % 60):02d}"]
    return " | ".join(parts)
