"""Write images and result folders so that nothing is half-written and nothing is lost.

A file is written under a temporary name beside it, synced to disk and renamed into place
(atomic_file, a copy of tools/files.py's; GAN_homework/outputs.py copies _owner_of, _try_lock
and ResultsFolder from here; tests/test_copies.py keeps the copies equal).
A results folder belongs to the command that made it: it holds a marker file (MARKER) naming that
command. A run writes into a hidden sibling `.<name>.tmp-<random>` and renames it into place at the
end, replacing only a folder that carries the same marker (or an empty one). A folder with anyone
else's files is refused before any work is done, so a mistyped --outdir never deletes anything.
"""

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, see _try_lock
    fcntl = None

MARKER = ".hw5-results"  # its text names the command whose results the folder holds


def to_pil(img) -> Image.Image:
    """PIL image from a PIL image, a uint8 array [H,W(,C)], or a tensor [C,H,W] or [H,W,C] (H > 4)
    in [-1, 1]."""
    if isinstance(img, Image.Image):
        return img
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu()
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim == 3 and img.shape[0] in (1, 3, 4):  # [C,H,W] (torch's layout) -> [H,W,C]
            img = img.permute(1, 2, 0)
        img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"save_image needs uint8 arrays or float tensors, got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return Image.fromarray(img)


# Copied from tools/files.py
@contextmanager
def atomic_file(path):
    """`with atomic_file(path) as tmp:` write the file `tmp`, a fresh hidden name beside `path`
    (`.<name>.tmp-<random><suffix>`: same suffix, so writers that go by it see the same type). On
    success `tmp` is synced to disk, made readable by all (0o644) and renamed to `path`, and the
    rename is synced too: a reader, or a crash at any moment, sees the old file (or none) or the
    new one whole, never half of it. On an error `path` keeps its old content (or stays absent)
    and `tmp` is removed. Missing parent folders are made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh, unguessable name (O_EXCL): nothing planted beside `path` is ever written through
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "r+b") as file:
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if os.name == "posix":  # the rename itself reaches the disk
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def save_image(img, path) -> None:
    """Save `img` (see to_pil) to `path`, atomically (atomic_file)."""
    with atomic_file(path) as tmp:
        to_pil(img).save(tmp)


def _owner_of(folder: Path) -> str | None:
    """The command named by the folder's marker, or None if it has none."""
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


class ResultsFolder:
    """`with ResultsFolder(path, owner) as tmp:` write the results into `tmp`; on success `tmp`
    becomes `path`.

    On entering, before any work: `path` must be new, empty, or hold earlier results of the same
    `owner` (its marker); otherwise click.BadParameter for `option` says which folder and why, and
    nothing is touched. Hidden temporary folders of killed runs next to `path` are removed (only
    ones carrying the marker and no longer locked by a running process). A failed run removes its
    temporary folder and keeps the earlier results.
    """

    def __init__(self, path, owner: str, option: str = "--outdir"):
        self.shown = str(path)  # as the user typed it
        self.path = Path(path).expanduser().resolve()
        self.owner = owner
        self.option = option
        self.tmp = None
        self._lock = None
        self._made_parents = []

    def _refuse(self, why: str):
        raise click.BadParameter(
            f"{self.shown} {why}; nothing was changed: choose a new folder name.",
            param_hint=self.option,
        )

    def _check(self) -> None:
        path = self.path
        if path == path.parent or Path.cwd().is_relative_to(path):
            self._refuse("is the folder you run from (or holds it), not a folder of results")
        if path.exists() and not path.is_dir():
            self._refuse("is a file")
        if not path.is_dir() or not any(path.iterdir()):
            return
        owner = _owner_of(path)
        if owner is None:
            names = sorted(p.name for p in path.iterdir())
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            self._refuse(f"holds files that this command did not write ({shown})")
        if owner != self.owner:
            self._refuse(f"holds the results of `{owner}`, which this run would replace")
        if not os.access(path, os.W_OK):
            self._refuse("holds earlier results that are read-only")
        click.echo(f"{self.shown} holds earlier results: they are replaced at the end.", err=True)

    def _remove_stale(self) -> None:
        for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            if not (stale / MARKER).is_file():
                continue  # not made by us: leave it
            lock = _try_lock(stale / MARKER)
            if lock is not None:  # its run is gone
                shutil.rmtree(stale, ignore_errors=True)
                lock.close()

    def _make_parents(self) -> None:
        missing = [p for p in reversed(self.path.parents) if not p.exists()]
        for parent in missing:
            parent.mkdir()
            self._made_parents.append(parent)

    def __enter__(self) -> Path:
        self._check()
        try:
            self._make_parents()
            self._remove_stale()
            self.tmp = Path(
                tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp-")
            )
            os.chmod(self.tmp, 0o755)  # mkdtemp makes an owner-only folder
            (self.tmp / MARKER).write_text(self.owner + "\n")
            self._lock = _try_lock(self.tmp / MARKER)  # held while this run lives
        except OSError as err:
            self._discard()
            reason = err.strerror or type(err).__name__
            self._refuse(f"cannot be written ({reason}: {err.filename or self.path.parent})")
        return self.tmp

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self._discard()
            if isinstance(error, OSError) and (
                str(error.filename or "").startswith(str(self.tmp))
                or error.errno in (errno.ENOSPC, errno.EDQUOT)
            ):
                raise click.ClickException(
                    f"Could not write the results into {self.shown} ({error.strerror}); "
                    f"nothing was changed: free some space or choose another {self.option}."
                ) from None
            return
        self._commit()

    def _commit(self) -> None:
        path = self.path
        if path.is_dir() and any(path.iterdir()) and _owner_of(path) != self.owner:
            (self.tmp / MARKER).unlink()  # keep the new results out of the next run's cleanup
            self._unlock()
            raise click.ClickException(
                f"{self.shown} received other files during the run, so it was left alone; "
                f"the new results are in {self.tmp}."
            )
        old = None
        if path.exists():
            old = path.parent / f"{self.tmp.name}-old"
            os.replace(path, old)  # an empty folder or our own earlier results
        os.replace(self.tmp, path)
        self._unlock()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._unlock()
        for parent in reversed(self._made_parents):
            try:
                parent.rmdir()
            except OSError:
                pass

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
