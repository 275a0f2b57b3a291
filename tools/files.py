"""Writing the tools' output files and folders: checked before any work, written whole or not at
all. Everything is written under a fresh temporary name beside its target and renamed into place
at the end (atomic_file, atomic_folder).

atomic_file is also how both homeworks write a file: GAN_homework/outputs.py and
Diffusion_homework/utils/io.py carry copies of it marked `# Copied from tools/files.py` (they run
on their own, without the tools), and tests/test_copies.py fails when a copy differs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_output_file(path: Path, flag: str) -> None:
    """Raise ValueError (one sentence) unless `path` can be written as a new or replaced file."""
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{flag} {path} is a link to nothing; pass a plain file name.")
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; pass a file name such as {path / 'out'}.")
    parent = path.parent if str(path.parent) else Path(".")
    existing = next((p for p in [parent, *parent.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"{flag} {path} is inside {existing}, which is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    ):
        raise ValueError(f"{flag} {path} cannot be written (no permission); choose another place.")


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through atomic_file."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """`with atomic_folder(path) as tmp:` fill the new folder `tmp` beside `path`; on success it is
    renamed to `path` (which must then be absent or an empty folder), readable by all (0o755). On
    an error `tmp` is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes an owner-only folder
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
