"""A throwaway OpenSSH server on 127.0.0.1 for the ssh tests (host key, user key and config in a temp dir)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # Debian's openssh-server; sshd must be started by absolute path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalSshd:
    proc: subprocess.Popen
    port: int
    user: str
    key: Path
    known_hosts: Path
    log: Path

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1"

    @property
    def options(self) -> list[str]:
        """ssh -o values that trust exactly this server's throwaway host key."""
        return [f"UserKnownHostsFile={self.known_hosts}", "StrictHostKeyChecking=yes"]

    def cli_args(self) -> list[str]:
        out = ["--ssh", self.destination, "--ssh-port", str(self.port), "--ssh-key", str(self.key)]
        for o in self.options:
            out += ["--ssh-option", o]
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_sshd(root: Path) -> LocalSshd:
    """Generate keys + sshd_config under ``root`` and start ``sshd -D`` on a free port; wait until it accepts."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
    os.chmod(root / "id_ed25519", 0o600)
    port = free_port()
    # we run as root in CI: allow root login, skip the ownership checks (StrictModes) and PAM
    (root / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PermitRootLogin yes
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
    os.makedirs("/run/sshd", exist_ok=True)  # privilege-separation directory sshd insists on
    log = root / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    server = LocalSshd(proc, port, getpass.getuser(), root / "id_ed25519", root / "known_hosts", log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"sshd did not listen on port {port}: {log.read_text()}")
