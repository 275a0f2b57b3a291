"""Checkpoints that survive a kill at any moment, and are loaded without running pickled code.

A checkpoint is one `torch.save` file of tensors and plain Python values (never pickled classes):
G, D, G_ema, both optimizer states, the loss state (pl_mean), the iteration count, the RNG states,
the sampler position and the options of the run. Files are written to a temporary name, flushed to
disk (fsync) and renamed (os.replace), then the `latest` file (the newest checkpoint's name, for people and scripts) is
updated the same way, and only then are older checkpoints pruned: at any moment the run folder holds at least one complete one.

Course checkpoints (`checkpoint/partN-10K.pkl`) are the same format with weights only; make one with
    python -m training.checkpoint training-runs/<run>/checkpoint-010000.pt checkpoint/part1-10K.pkl
"""

import os
import pickle
import re
import sys
from pathlib import Path

import torch

FORMAT = "hw5-gan-checkpoint"
POINTER = "latest"
NAME_RE = re.compile(r"^checkpoint-(\d+)\.pt$")
WEIGHT_KEYS = ("G", "D", "G_ema")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one sentence for the user."""


def checkpoint_name(iteration: int) -> str:
    return f"checkpoint-{iteration:06d}.pt"


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it to `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def save_checkpoint(run_dir: Path, state: dict, keep: int = 2) -> Path:
    """Write checkpoint-<iteration>.pt, point `latest` at it, prune all but the newest `keep`."""
    run_dir = Path(run_dir)
    path = run_dir / checkpoint_name(state["iteration"])
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))
    atomic_write(run_dir / POINTER, lambda f: f.write(path.name.encode() + b"\n"))
    for old in _checkpoints_newest_first(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    for stale in run_dir.glob(".checkpoint-*.pt.tmp*"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    return path


def _checkpoints_newest_first(run_dir: Path) -> list[Path]:
    found = [
        (int(m.group(1)), p)
        for p in run_dir.glob("checkpoint-*.pt")
        if (m := NAME_RE.match(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def load_checkpoint(path) -> dict:
    """Load a checkpoint written by this code with torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path (see README).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a complete checkpoint written by this code's train.py (torch.load with "
            f"weights_only=True refused it: {first[:160]}); use a checkpoint made by this code."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a checkpoint written by this code's train.py; use one made by this code."
        )
    return state


def find_latest(run_dir) -> tuple[Path, dict] | None:
    """(path, state) of the newest checkpoint of a run folder that loads completely, or None.

    Files only ever get their final name once complete, so the newest that loads is the one to
    continue from; a damaged file (copied half, disk trouble) is skipped for the one before."""
    for path in _checkpoints_newest_first(Path(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError:
            continue
    return None


def check_architecture(state: dict, arch: dict, cfg_name: str, path) -> None:
    """Refuse a checkpoint whose networks were built with another resolution or config."""
    theirs = state["options"]["config"]
    mismatched = [k for k, v in arch.items() if theirs.get(k) != v]
    if mismatched:
        diffs = ", ".join(f"{k} {theirs.get(k)} vs {arch[k]}" for k in mismatched)
        raise CheckpointError(
            f"checkpoint {path} was trained with config '{theirs.get('name')}' at "
            f"{theirs.get('resolution')}x{theirs.get('resolution')} and does not fit --cfg "
            f"{cfg_name} ({diffs}); use the matching --cfg or another checkpoint."
        )


def export_weights(source, target) -> Path:
    """Write the weights-only part of a checkpoint (G, D, G_ema, options, iteration) to `target`:
    this is how the course checkpoints checkpoint/partN-10K.pkl are made."""
    state = load_checkpoint(source)
    slim = {k: state[k] for k in (*WEIGHT_KEYS, "options", "iteration")}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda f: torch.save({"format": FORMAT, **slim}, f))
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(
            "usage: python -m training.checkpoint RUN/checkpoint-NNNNNN.pt checkpoint/partN-10K.pkl"
        )
    try:
        print(f"wrote {export_weights(sys.argv[1], sys.argv[2])}")
    except CheckpointError as error:
        sys.exit(f"error: {error}")
