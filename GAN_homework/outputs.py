"""Write the outputs of the GAN scripts so that nothing is half-written and nothing is lost.

- atomic_write: a file is written under a temporary name, flushed to disk and renamed into place
  at the end (every file the GAN code writes: checkpoints, images, plots, caches).
- ResultsFolder: a folder is filled under a temporary name `.<name>.tmp-<random>` and renamed into
  place at the end. It belongs to the command that made it: a marker file (MARKER) names that
  command. Only a new folder, an empty one, or one with the same command's writable earlier
  results is used; a file, or a folder with anyone else's files, is refused before any work, so a
  mistyped --out never deletes anything. Temporary folders of killed runs are removed by the next
  run; a failed run also removes the parent folders it made.
- atomic_file is a copy of tools/files.py's; _owner_of, _try_lock and ResultsFolder are copies of
  Diffusion_homework/utils/io.py's, so both homeworks refuse the same mistakes in the same words
  (tests/test_copies.py keeps the copies equal).
- append_line: a line is appended whole or not at all (log.txt, stats.jsonl, metrics.jsonl).
- Run folders of train.py: finding, making and naming them, refusing an --outdir that cannot be
  written, and the sentences and commands for a run that stopped (to continue it).
"""

import errno
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, see _try_lock
    fcntl = None

MARKER = ".hw5-results"  # its text names the command that wrote the folder


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


def atomic_write(path, write) -> None:
    """Call write(file) on a new temporary file beside `path` (atomic_file): a reader, or a kill
    at any moment, sees the old file (or none) or the new one whole, never half of it. A failed
    write removes the temporary file."""
    with atomic_file(path) as tmp, open(tmp, "wb") as file:
        write(file)


# Copied from Diffusion_homework/utils/io.py
def _owner_of(folder: Path) -> str | None:
    """The command named by the folder's marker, or None if it has none."""
    try:
        return (folder / MARKER).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


# Copied from Diffusion_homework/utils/io.py
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


# Copied from Diffusion_homework/utils/io.py
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


def append_line(path, line: str) -> None:
    """Append `line` and a newline to `path`, or nothing: a write that fails part way (disk full)
    is cut back off, so the file never ends in half a line."""
    data = memoryview((line + "\n").encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(fd, data) :]
        except BaseException:  # also a second Ctrl-C between two writes
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Run folders of train.py: <outdir>/<NNNNN>-<dataset>-<cfg>-<flags>, holding log.txt and the
# run's checkpoint-<iteration>.pt files (training/checkpoint.py writes and reads those).


def run_dirs(outdir: Path, suffix: str | None) -> list[Path]:
    """Run folders of outdir ending in `-<suffix>` (or all if suffix is None), newest id first."""
    if not outdir.is_dir():
        return []
    pattern = re.compile(r"^(\d{5})-" + (re.escape(suffix) if suffix else ".*") + "$")
    found = [
        (int(m.group(1)), p)
        for p in outdir.iterdir()
        if p.is_dir() and (m := pattern.match(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def new_run_dir(outdir: Path, suffix: str) -> Path:
    existing = run_dirs(outdir, None)
    next_id = int(existing[0].name[:5]) + 1 if existing else 0
    path = outdir / f"{next_id:05d}-{suffix}"
    path.mkdir(parents=True)
    return path


def checkpoint_files(run_dir: Path) -> list[Path]:
    """A run folder's checkpoints by name, oldest first (the names are zero-padded)."""
    return sorted(run_dir.glob("checkpoint-*.pt"))


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be written: the folder itself, or where it
    does not exist yet, the nearest existing folder above it (where it would be made)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise click.ClickException(
            f"{what} {folder} cannot be written ({error.strerror or error}); nothing was started: "
            "choose a folder you can write to."
        ) from None


def remove_if_untrained(run_dir: Path | None, resumed: bool) -> bool:
    """Remove a new run folder (not `resumed`) that holds no checkpoint (nothing to continue)."""
    if run_dir is None or resumed or checkpoint_files(run_dir):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def write_failure(error: OSError, run_dir: Path, removed: bool) -> str:
    """The sentence for a run stopped by a failed write (disk full, quota, permissions)."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    advice = "free some disk space" if full else "make the folder writable"
    reason = f"could not write into {run_dir} ({error.strerror or error})"
    if removed:
        return f"{reason}; the run had no checkpoint yet and was removed: {advice} and run again."
    checkpoints = checkpoint_files(run_dir)
    kept = (
        f"its last complete checkpoint, {checkpoints[-1].name}, is kept"
        if checkpoints
        else "it holds no checkpoint"
    )
    return f"{reason}; {kept}: {advice} and continue with the same command plus --resume auto."


def continue_command(run_dir: Path, outdir: Path, suffix: str) -> str:
    """The command that continues the run in run_dir: this command (sys.argv) with `--resume auto`
    where auto picks that run (the newest of its setting with a checkpoint), else with `--resume`
    and its newest checkpoint; without --dry-run."""
    args, argv = [], iter(sys.argv[1:])
    for arg in argv:
        if arg == "--resume":
            next(argv, None)
        elif not arg.startswith("--resume=") and arg != "--dry-run":
            args.append(arg)
    picked = next((d for d in run_dirs(outdir, suffix) if checkpoint_files(d)), None)
    own = checkpoint_files(run_dir)
    resume = "auto" if picked == run_dir or not own else str(own[-1])
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    launcher = ["torchrun", f"--nproc_per_node={world}"] if world > 1 else ["python"]
    return shlex.join([*launcher, Path(sys.argv[0]).name, *args, "--resume", resume])


def unfinished_run_note(outdir: Path, suffix: str) -> str | None:
    """A note naming the newest run folder of this setting that stopped before its --iters (the
    iteration of its newest checkpoint; its --iters from the last `options:` line of its log.txt)
    and the command that continues it; None if there is none."""
    for run_dir in run_dirs(outdir, suffix):
        files = checkpoint_files(run_dir)
        if not files:
            continue
        try:
            lines = (run_dir / "log.txt").read_text(errors="replace").splitlines()
            options = [line for line in lines if line.startswith("options: ")]
            iters = int(json.loads(options[-1].removeprefix("options: "))["iters"])
            done = int(files[-1].stem.removeprefix("checkpoint-"))
        except (OSError, IndexError, KeyError, TypeError, ValueError):
            continue
        if done < iters:
            return (
                f"note: run {run_dir} of these flags stopped at iteration {done} of {iters}; this "
                f"starts a new run (to continue that one instead: "
                f"{continue_command(run_dir, outdir, suffix)})"
            )
    return None


def interrupted(run_dir: Path | None, resumed: bool, outdir: Path, suffix: str) -> str:
    """The line for a run stopped at once by Ctrl-C; a new run without a checkpoint is removed,
    otherwise the line is also appended to its log.txt."""
    if run_dir is None:
        return "stopped by Ctrl-C before training started; nothing was written."
    if remove_if_untrained(run_dir, resumed):
        return f"stopped by Ctrl-C before its first checkpoint; the new run {run_dir} was removed."
    kept = checkpoint_files(run_dir)[-1].name
    how = continue_command(run_dir, outdir, suffix)
    line = f"stopped at once by Ctrl-C; its last checkpoint, {kept}, is kept; to continue: {how}"
    try:
        append_line(run_dir / "log.txt", line)
    except OSError:
        pass
    return line
