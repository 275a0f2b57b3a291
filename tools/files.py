"""Writing the tools' output files: checked before any work, written whole or not at all."""

from __future__ import annotations

import os
import tempfile
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


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it to `path`: a reader never
    sees half a file, and a kill leaves the old file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh, unguessable name (O_EXCL): nothing planted beside `path` is ever written through
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
