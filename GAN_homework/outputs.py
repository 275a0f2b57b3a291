"""Write the outputs of the GAN scripts so that nothing is half-written and nothing is lost.

- atomic_write: a file is written under a temporary name, flushed to disk and renamed into place
  at the end (every file the GAN code writes: checkpoints, images, plots, caches).
- OwnedFolder: a folder is filled under a temporary name `.<name>.tmp-<random>` and renamed into
  place at the end. It belongs to the command that made it: a marker file (MARKER) names that
  command. Only a new folder, an empty one, or one with the same command's marker is used; a folder
  with anyone else's files is refused before any work, so a mistyped --out never deletes anything.
  Temporary folders of killed runs are removed by the next run.
"""

import os
import shutil
import tempfile
from pathlib import Path

import click

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, see _try_lock
    fcntl = None

MARKER = ".hw5-results"  # its text names the command that wrote the folder


def atomic_write(path, write) -> None:
    """Call write(file) on a new temporary file beside `path` (`.<name>.tmp-<random>`), flush it
    to disk, then rename it to `path`: a reader, or a kill at any moment, sees the old file (or
    none) or the new one whole, never half of it. A failed write removes the temporary file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if os.name == "posix":  # the rename itself reaches the disk
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _owner_of(folder: Path) -> str | None:
    try:
        return (folder / MARKER).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _try_lock(marker: Path):
    """`marker` opened with an exclusive lock, held until the file is closed; None if a running
    process holds the lock (and always on Windows, which has no such locks)."""
    if fcntl is None:
        return None
    file = open(marker)  # noqa: SIM115 - closed by the caller, which releases the lock
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file


class OwnedFolder:
    """`with OwnedFolder(path, owner, option) as tmp:` fill `tmp`; on success it becomes `path`.

    On entering, before any work: `path` must be new, empty, or carry the marker of `owner`;
    otherwise click.BadParameter for `option` says which folder and why, and nothing is touched.
    A failed run removes its temporary folder and leaves `path` as it was.
    """

    def __init__(self, path, owner: str, option: str):
        self.shown = str(path)
        self.path = Path(path).expanduser().resolve()
        self.owner = owner
        self.option = option
        self.tmp = None
        self._lock = None

    def _refuse(self, why: str):
        raise click.BadParameter(
            f"{self.shown} {why}; nothing was changed: choose another folder.",
            param_hint=self.option,
        )

    def __enter__(self) -> Path:
        path = self.path
        if path == path.parent or Path.cwd().is_relative_to(path):
            self._refuse("is the folder you run from (or holds it)")
        if path.is_dir() and any(path.iterdir()) and _owner_of(path) != self.owner:
            names = sorted(p.name for p in path.iterdir())
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            self._refuse(f"holds files that {self.owner} did not write ({shown})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            self.tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
            os.chmod(self.tmp, 0o755)  # mkdtemp makes an owner-only folder
            (self.tmp / MARKER).write_text(self.owner + "\n")
            self._lock = _try_lock(self.tmp / MARKER)  # held while this run lives
        except OSError as err:
            self._discard()
            self._refuse(f"cannot be written ({err.strerror or type(err).__name__})")
        return self.tmp

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self._discard()
            return
        old = None
        if self.path.exists():  # empty, or our own earlier output (checked on entering)
            old = self.path.parent / f"{self.tmp.name}-old"
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        self._unlock()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _remove_stale(self) -> None:
        for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            if not (stale / MARKER).is_file():
                continue  # not made by us: leave it
            lock = _try_lock(stale / MARKER)
            if lock is not None:  # its run is gone
                shutil.rmtree(stale, ignore_errors=True)
                lock.close()

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
