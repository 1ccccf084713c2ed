"""ssh/scp transport to a Linux device (e.g. a Raspberry Pi running a 64-bit OS), using the system OpenSSH
client in batch mode (key-based login; no password prompts)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from runtimes.errors import RemoteError
from runtimes.format import LCE_KERNELS, sidecar_path


class SshTransport:
    """``ssh [-p port] [-i key] [-o opt ...] user@host``.

    destination: ``user@host`` or ``host``; options: extra ``-o`` values (``StrictHostKeyChecking=no``, ...);
    connect_timeout: seconds for the TCP/ssh handshake; multiplex: reuse one connection for all commands and copies
    (OpenSSH ControlMaster, socket in a private temp dir); call close() (or use ``with``) to end it.
    """

    def __init__(self, destination: str, port: int = 22, key: str | Path | None = None,
                 options: Sequence[str] = (), connect_timeout: int = 10, multiplex: bool = True):
        if not destination or destination.startswith("-"):
            raise RemoteError(f"bad ssh destination {destination!r}; expected user@host")
        self.destination, self.port, self.key = destination, int(port), key
        self.label = f"ssh:{destination}" + (f":{port}" if int(port) != 22 else "")
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR"]
        if key:
            opts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        for o in options:
            opts += ["-o", o]
        self._control_dir = None
        if multiplex:
            self._control_dir = tempfile.mkdtemp(prefix="be_ssh_")
            opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C",
                     "-o", "ControlPersist=60"]
        self.opts = opts

    def close(self) -> None:
        """End the shared connection (if multiplexing) and remove its socket directory."""
        if self._control_dir:
            subprocess.run(["ssh", "-p", str(self.port), *self.opts, "-O", "exit", self.destination],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = None

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", "-p", str(self.port), *self.opts, self.destination, command]

    def scp_argv(self, local: Path, remote_path: str) -> list[str]:
        return ["scp", "-q", "-P", str(self.port), *self.opts, str(local), f"{self.destination}:{remote_path}"]

    def _call(self, argv: list[str], what: str, timeout: float | None) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as e:
            raise RemoteError(f"{argv[0]} not found: install the OpenSSH client (apt-get install openssh-client)") \
                from e
        except subprocess.TimeoutExpired as e:
            raise RemoteError(f"{self.label}: {what} timed out after {timeout} s") from e
        if p.returncode != 0:
            err = (p.stderr.strip() or p.stdout.strip()).splitlines()
            detail = err[-1] if err else f"exit status {p.returncode}"
            if p.returncode == 255:
                raise RemoteError(f"cannot reach {self.destination} on port {self.port}: {detail}")
            raise RemoteError(f"{self.label}: {what} failed (exit {p.returncode}): {detail}")
        return p.stdout + p.stderr

    def run(self, command: str, timeout: float | None = None) -> str:
        return self._call(self.ssh_argv(command), f"command {command.split()[0]!r}", timeout)

    def push(self, local: Path, remote_path: str) -> None:
        self._call(self.scp_argv(Path(local), remote_path), f"copying {Path(local).name}", None)

    def make_temp_dir(self) -> str:
        return self.run("mktemp -d /tmp/burn_edge_bench.XXXXXX", timeout=60).strip().splitlines()[-1]

    def remove_dir(self, path: str) -> None:
        self.run(f"rm -rf {shlex.quote(path)}", timeout=60)


def bench_with_remote_python(transport: SshTransport, models: Sequence[str | Path], *, python: str = "python3",
                             threads: Sequence[int] = (1,), runs: int = 50, warmup: int = 5,
                             kernels: Sequence[str] = LCE_KERNELS, keep: bool = False,
                             log=print) -> tuple[list[dict], dict]:
    """Copy the models, run ``<python> -m runtimes.bench`` on the remote (it must have burn-edge installed),
    fetch its JSON and return (rows, remote host facts) with every row's ``device`` set to the transport label.

    python: the remote command that starts Python, e.g. ``python3`` or ``env PYTHONPATH=~/burn-edge python3``.
    """
    models = [Path(m) for m in models]
    rdir = transport.make_temp_dir()
    try:
        remote = []
        for i, m in enumerate(models):
            remote.append(f"{rdir}/{i}_{m.name}")
            transport.push(m, remote[-1])
            side = sidecar_path(m)
            if side.is_file():
                transport.push(side, str(sidecar_path(remote[-1])))
        out = f"{rdir}/bench.json"
        cmd = (f"cd {shlex.quote(rdir)} && {python} -m runtimes.bench {' '.join(map(shlex.quote, remote))} "
               f"--threads {' '.join(map(str, threads))} --runs {runs} --warmup {warmup} "
               f"--kernels {' '.join(kernels)} --json {shlex.quote(out)} --no-progress")
        transport.run(cmd)
        data = json.loads(transport.run(f"cat {shlex.quote(out)}"))
    except json.JSONDecodeError as e:
        raise RemoteError(f"{transport.label}: remote runtimes.bench wrote invalid JSON: {e}") from e
    finally:
        if not keep:
            transport.remove_dir(rdir)
    names = {r: m for r, m in zip(remote, models)}
    rows = []
    for row in data["rows"]:
        local = names.get(row.get("path"))
        row.update(device=transport.label, runner=f"remote python ({row.get('runner', 'python')})")
        if local is not None:
            row.update(model=local.name, path=str(local))
        rows.append(row)
    facts = next((h for h in data.get("hosts", []) if h.get("device") == "host"), {})
    facts = dict(facts, device=transport.label)
    for w in facts.get("warnings", []):
        log(f"{transport.label}: {w}")
    return rows, facts
