"""Safe file output: atomic writes, hashing, output-vs-input checks, stale-temp cleanup.

Atomic write = write a temp file in the *same folder* as the target, flush + fsync it, then
``os.replace`` it over the target. A crash mid-write leaves any previous file intact, and the temp
file is removed on every failure (exception, KeyboardInterrupt). Temp files are named
``.<name>.tmp-<pid>-<random><suffix>`` (the target's suffix is kept, for libraries that pick a format
from the file name), so :func:`remove_stale_temps` can find the ones a killed process left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from common.errors import ConfigError, OutputError

PathLike = str | os.PathLike
_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)-[^/]*$")


def _temp_for(path: Path) -> Path:
    """A fresh, empty temp file next to ``path`` (created, so two writers never share one)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the renamed file gets the mode a plain open() would give
    return Path(tmp)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


# Below this many free bytes a failed write is reported as a full disk: libraries report ENOSPC in their own
# words (torch.save: "RuntimeError: [enforce fail at inline_container.cc] unexpected pos ...").
FULL_DISK_BYTES = 64 * 1024
MIN_FREE_BYTES = 4096  # ensure_writable_dir refuses a folder with less free space (a full disk)


def free_bytes(folder: PathLike) -> int | None:
    """Bytes an unprivileged writer can still use in ``folder``'s file system (None if unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _output_error(path: Path, tmp: Path, e: BaseException) -> OutputError | None:
    """The one-line OutputError for a write that failed on the file system, or None for any other failure.
    Called before the temp is removed, so a full disk is still full."""
    if isinstance(e, OSError):
        return OutputError(f"cannot write {path}: {e.strerror or e}")
    if isinstance(e, Exception):
        free = free_bytes(tmp.parent)
        if free is not None and free < FULL_DISK_BYTES:
            return OutputError(f"cannot write {path}: no space left on device ({free:,} bytes free)")
    return None


def _fsync_dir(folder: Path) -> None:
    """Persist a rename (best effort: not every platform/file system lets a directory be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temp_then_replace(path: PathLike) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path``; on a clean exit fsync it and rename it over ``path``,
    on any exception (KeyboardInterrupt included) remove it and re-raise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        err = _output_error(path, tmp, e)
        tmp.unlink(missing_ok=True)
        if err is not None:
            raise err from None
        raise
    _fsync_dir(path.parent)


def atomic_save(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` (for libraries that want a path), then rename the temp over ``path``.

    The temp keeps ``path``'s suffix. Creates the parent folder. Returns ``Path(path)``.
    """
    with _temp_then_replace(path) as tmp:
        write(tmp)
    return Path(path)


@contextlib.contextmanager
def atomic_writer(path: PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """``with atomic_writer(p, "w") as f: ...`` — ``f`` is a temp file that replaces ``p`` on a clean exit."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer mode must be 'w' or 'wb', not {mode!r}")
    if mode == "w":
        open_kwargs = {"encoding": "utf-8", "newline": "\n", **open_kwargs}
    with _temp_then_replace(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_writer(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """UTF-8, ``\\n`` line endings on every platform."""
    with atomic_writer(path, "w") as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = 2) -> Path:
    """``json.dumps(obj)`` + newline. The JSON is built before the file is touched, so a value that
    cannot be serialised leaves no file at all. NaN/inf are refused (they are not JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def atomic_copy(src: PathLike, dst: PathLike) -> Path:
    """Copy the bytes of ``src`` to ``dst`` atomically."""
    return atomic_save(dst, lambda tmp: shutil.copyfile(src, tmp))


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def refuse_same_path(output: PathLike, *inputs: PathLike | None, what: str = "output") -> None:
    """Raise :class:`ConfigError` if ``output`` resolves to (or is a hard link of) one of ``inputs``.

    ``None`` inputs are skipped, so optional inputs can be passed as they are.
    """
    out = Path(output).expanduser().resolve()
    for inp in inputs:
        if inp is None:
            continue
        src = Path(inp).expanduser().resolve()
        same = out == src
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise ConfigError(f"{what} {output} is the input file {inp}; writing it would destroy the input, "
                              "choose another path")


def ensure_writable_dir(folder: PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` (and parents) if needed and check that files can be created in it.

    Raises :class:`ConfigError` when it is a file, cannot be created, or is not writable, and
    :class:`OutputError` when its file system is full (under MIN_FREE_BYTES free).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {what} {folder}: {e.strerror or e}") from None
    try:  # os.access is unreliable (root, ACLs, read-only mounts): really create a file
        fd, probe = tempfile.mkstemp(prefix=f".write-probe.tmp-{os.getpid()}-", dir=folder)
    except OSError as e:
        raise ConfigError(f"{what} {folder} is not writable: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    free = free_bytes(folder)
    if free is not None and free < MIN_FREE_BYTES:  # fail before the long work, not at its end
        raise OutputError(f"cannot write to {what} {folder}: no space left on device ({free:,} bytes free)")
    return folder


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but is not ours, or the platform cannot tell: keep the file
    return True


def remove_stale_temps(folder: PathLike) -> list[Path]:
    """Delete the temp files (see module doc) in ``folder`` whose writing process no longer runs.

    Returns the removed paths. Temps of live processes (this one included) are kept.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TMP_RE.match(p.name)
        if m and p.is_file() and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


class ArtefactSet:
    """Write files that belong together (a model and its sidecars; an assets folder) as one set.

    Every file is first written in full to its temp name (see module doc) and fsynced; only when all of them
    are written are they renamed over their targets, in the order they were added (so callers add the file
    that readers open first -- the model -- last). A failure while writing (a full disk, an exception, Ctrl-C)
    removes every temp and leaves every target untouched: the old set stays whole. A ``kill -9`` while
    writing leaves only temps (removed by :func:`remove_stale_temps` on the next run); one during the renames
    (microseconds) can leave new and old files side by side, which is why each set also binds its members by
    content hash (e.g. the model's sha256 in its sidecars) and readers refuse a set whose binding fails.

    ``remove`` lists files that must not survive the commit (stale members of an older set); they are deleted
    after the renames. Use as a context manager: ``with ArtefactSet() as s: s.write_bytes(p, data) ...`` commits
    on a clean exit and discards on an exception.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._remove: list[Path] = []

    def save(self, path: PathLike, write: Callable[[Path], Any]) -> Path:
        """Stage ``path``: ``write(tmp)`` writes the temp (suffix kept); raises OutputError on a full disk."""
        path = Path(path)
        if any(p == path for p, _ in self._staged):
            raise ValueError(f"{path} is already in this set")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        tmp = _temp_for(path)
        self._staged.append((path, tmp))
        try:
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        except BaseException as e:
            err = _output_error(path, tmp, e)
            self.discard()
            if err is not None:
                raise err from None
            raise
        return path

    def write_bytes(self, path: PathLike, data: bytes) -> Path:
        return self.save(path, lambda tmp: Path(tmp).write_bytes(data))

    def write_text(self, path: PathLike, text: str) -> Path:
        """UTF-8, ``\\n`` line endings."""
        return self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: PathLike, obj: Any, indent: int | None = 2) -> Path:
        """``json.dumps(obj)`` + newline; NaN/inf are refused (they are not JSON)."""
        return self.write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")

    def copy(self, src: PathLike, dst: PathLike) -> Path:
        return self.save(dst, lambda tmp: shutil.copyfile(src, tmp))

    def remove(self, path: PathLike) -> None:
        """Delete ``path`` (if it exists) when the set is committed."""
        self._remove.append(Path(path))

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self._staged]

    def staged(self, path: PathLike) -> Path:
        """The temp file holding ``path``'s new content until the commit (to hash or inspect it)."""
        return next(tmp for p, tmp in self._staged if p == Path(path))

    def discard(self) -> None:
        """Remove every temp; no target is touched."""
        for _, tmp in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()
        self._remove.clear()

    def commit(self) -> list[Path]:
        """Rename every temp over its target (in the order staged), then delete the ``remove`` files."""
        done = []
        try:
            for path, tmp in self._staged:
                os.replace(tmp, path)
                done.append(path)
        except OSError as e:  # a rename does not allocate space; this is a vanished folder or a permission change
            self.discard()
            raise OutputError(f"cannot write {path}: {e.strerror or e} ({len(done)} of the set's files were "
                              "replaced; run the command again)") from None
        staged = {p for p in done}
        for p in self._remove:
            if p not in staged:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        for folder in dict.fromkeys(p.parent for p in done):
            _fsync_dir(folder)
        self._staged.clear()
        self._remove.clear()
        return done

    def __enter__(self) -> ArtefactSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
