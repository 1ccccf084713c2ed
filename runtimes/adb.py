"""adb transport to an Android device: ``adb push`` files to /data/local/tmp and ``adb shell`` commands."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from runtimes.errors import RemoteError

ADB_DIR = "/data/local/tmp/burn_edge_bench"


class AdbTransport:
    """``adb [-s serial] ...``; serial None uses the only connected device. ``adb`` is the adb executable."""

    def __init__(self, serial: str | None = None, adb: str = "adb", remote_dir: str = ADB_DIR):
        self.serial, self.adb, self.remote_dir = serial, adb, remote_dir
        self.label = f"adb:{serial}" if serial else "adb"

    def argv(self, *args: str) -> list[str]:
        return [self.adb, *(["-s", self.serial] if self.serial else []), *args]

    def _call(self, argv: list[str], what: str, timeout: float | None) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as e:
            raise RemoteError(f"{self.adb} not found: install Android platform-tools (apt-get install adb)") from e
        except subprocess.TimeoutExpired as e:
            raise RemoteError(f"{self.label}: {what} timed out after {timeout} s") from e
        text = p.stdout + p.stderr
        if p.returncode != 0:
            lines = text.strip().splitlines()
            detail = lines[-1] if lines else f"exit status {p.returncode}"
            if "no devices" in text or "not found" in text or "unauthorized" in text or "offline" in text:
                raise RemoteError(f"cannot reach Android device {self.serial or '(default)'}: {detail}")
            raise RemoteError(f"{self.label}: {what} failed (exit {p.returncode}): {detail}")
        return text

    def run(self, command: str, timeout: float | None = None) -> str:
        # adb shell returns the remote exit status (adb >= 1.0.39); append a marker to detect failures on old adb
        text = self._call(self.argv("shell", command + "; echo __rc=$?"), f"command {command.split()[0]!r}", timeout)
        body, _, rc = text.rpartition("__rc=")
        if rc.strip() not in ("", "0"):
            lines = body.strip().splitlines()
            raise RemoteError(f"{self.label}: command {command.split()[0]!r} failed (exit {rc.strip()}): "
                              f"{lines[-1] if lines else ''}")
        return body

    def push(self, local: Path, remote_path: str) -> None:
        self._call(self.argv("push", str(local), remote_path), f"pushing {Path(local).name}", None)

    def make_temp_dir(self) -> str:
        self.run(f"rm -rf {shlex.quote(self.remote_dir)} && mkdir -p {shlex.quote(self.remote_dir)}", timeout=60)
        return self.remote_dir

    def remove_dir(self, path: str) -> None:
        self.run(f"rm -rf {shlex.quote(path)}", timeout=60)
