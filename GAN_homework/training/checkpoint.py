"""Checkpoints that survive a kill at any moment, and are loaded without running pickled code.

A checkpoint is one `torch.save` file of tensors and plain Python values (never pickled classes):
G, D, G_ema, both optimizer states, the loss state (pl_mean), the iteration count, the RNG states,
the sampler position and the options of the run. Files are written to a temporary name, flushed to
disk (fsync) and renamed (os.replace), then the `latest` file (the newest checkpoint's name, for
people and scripts) is updated the same way, and only then are older checkpoints pruned: at any
moment the run folder holds at least one complete one.

How a run of train.py starts (decide_start): continuing a stopped run from its newest complete
checkpoint (--resume), from a checkpoint's weights (--checkpoint_path), or from scratch.
calc_metrics.py measures a checkpoint's G_ema (load_generator).

The handout's course checkpoints (`checkpoint/partN-10K.pkl`) were written by the original course
code (NVIDIA's StyleGAN2-ADA); `load_checkpoint` reads them, and NVIDIA's own snapshots, with the
restricted reader of training/legacy.py, into the same form as a weights-only checkpoint of this
code. Write one as this code's weights-only file (or keep only the weights of a run's checkpoint):
    python -m training.checkpoint checkpoint/part1-10K.pkl checkpoint/part1-10K.pt
    python -m training.checkpoint training-runs/<run>/checkpoint-010000.pt checkpoint/part1-10K.pkl
"""

import pickle
import re
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import click
import torch
from outputs import atomic_write, run_dirs

from training import legacy
from training.config import CONFIGS, RunConfig, TrainConfig
from training.networks import Generator

FORMAT = "hw5-gan-checkpoint"
POINTER = "latest"
NAME_RE = re.compile(r"^checkpoint-(\d+)\.pt$")
WEIGHT_KEYS = ("G", "D", "G_ema")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one sentence for the user."""


def checkpoint_name(iteration: int) -> str:
    return f"checkpoint-{iteration:06d}.pt"


def _torch_save(obj, file) -> None:
    """torch.save, except that a failed write (disk full) is raised as the OSError it is: torch's
    zip writer replaces it with a RuntimeError of its own while closing the archive."""
    try:
        torch.save(obj, file)
    except RuntimeError as error:
        if isinstance(error.__context__, OSError):
            raise error.__context__ from None
        raise


def save_checkpoint(run_dir: Path, state: dict, keep: int = 2) -> Path:
    """Write checkpoint-<iteration>.pt, point `latest` at it, prune all but the newest `keep`."""
    run_dir = Path(run_dir)
    path = run_dir / checkpoint_name(state["iteration"])
    atomic_write(path, lambda f: _torch_save({"format": FORMAT, **state}, f))
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
    """A checkpoint written by this code, loaded with torch.load(weights_only=True), or else a
    course/NVIDIA StyleGAN2-ADA pickle in the form of this code's weights-only checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path (see README).")
    if not zipfile.is_zipfile(path):  # torch.save writes zip files; NVIDIA's snapshots are not
        return _load_stylegan2_ada(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        return _load_stylegan2_ada(path)  # torch's reason (a global it refused) says nothing here
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is neither a checkpoint written by this code's train.py nor a course/NVIDIA "
            f"StyleGAN2-ADA pickle: it holds plain torch data without networks G, D and G_ema; "
            f"{USE_INSTEAD}."
        )
    return state


USE_INSTEAD = "use the handout's checkpoint/partN-10K.pkl or a checkpoint made by this code"


def _load_stylegan2_ada(path: Path) -> dict:
    try:
        config, weights = legacy.load(path)
    except legacy.NotStyleGAN2ADA as reason:
        raise CheckpointError(
            f"{path} is neither a complete checkpoint written by this code's train.py nor a "
            f"course/NVIDIA StyleGAN2-ADA pickle: {reason}; {USE_INSTEAD}."
        ) from None
    except legacy.UnsupportedNetworks as reason:
        raise CheckpointError(
            f"{path} is a StyleGAN2-ADA pickle, but {reason}, so this code cannot load it; "
            f"{USE_INSTEAD}."
        ) from None
    options = {"cfg": config.name, "config": config.to_dict(), "source": "StyleGAN2-ADA pickle"}
    return {"format": FORMAT, **weights, "options": options, "iteration": None}


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
        fitting = [
            n for n, c in CONFIGS.items() if c.architecture() == {k: theirs.get(k) for k in arch}
        ]
        advice = f"--cfg {fitting[0]}" if fitting else "the matching --cfg"
        raise CheckpointError(
            f"checkpoint {path} was trained with config '{theirs.get('name')}' at "
            f"{theirs.get('resolution')}x{theirs.get('resolution')} and does not fit --cfg "
            f"{cfg_name} ({diffs}); use {advice} or another checkpoint."
        )


def load_generator(path, device) -> tuple[Generator, int | None]:
    """(G_ema, iteration) of a checkpoint of this code or a course/NVIDIA pickle."""
    state = load_checkpoint(path)
    config = TrainConfig(**state["options"]["config"])
    G = Generator(**config.network_kwargs()[0])
    try:
        G.load_state_dict(state["G_ema"])
    except (KeyError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or ["G_ema missing"])[0][:160]
        raise CheckpointError(
            f"G_ema of checkpoint {path} does not fit its own config ({first}); use a checkpoint "
            "written by this version of the code."
        ) from None
    return G.to(device).eval().requires_grad_(False), state.get("iteration")


@dataclass(frozen=True)
class Start:
    """Where a run starts: `state` read from `path` (a stopped run's checkpoint to continue in
    `run_dir`, or the weights of --checkpoint_path for a new run), or nothing (a new run)."""

    path: Path | None = None
    state: dict | None = None
    run_dir: Path | None = None  # the folder of the run continued; None for a new run

    @property
    def resumed(self) -> bool:
        return self.run_dir is not None


def decide_start(run: RunConfig, resume: str | None, outdir: Path) -> tuple[RunConfig, Start]:
    """How the run starts, all in one place: with --resume (auto: the newest complete checkpoint
    of a run of the same data, cfg and flags under outdir; or a file) the stopped run continues
    with its own batch, seed, mirror, EMA ramp-up and initial weights, so that it goes on exactly
    as it would have; else a new run, from --checkpoint_path's weights if given. Returns the run's
    configuration (the checkpoint's identity applied) and its Start."""
    found = None
    if resume == "auto":
        found = next(filter(None, map(find_latest, run_dirs(outdir, run.folder_suffix()))), None)
        if found is None:
            click.echo(
                f"note: no checkpoint of a *-{run.folder_suffix()} run under {outdir}; "
                "starting a new run."
            )
    elif resume:
        path = Path(resume)
        found = path, load_checkpoint(path)
        if "opt_G" not in found[1]:
            raise CheckpointError(
                f"{path} holds weights only, not a run's full state; start a new run from it "
                "with --checkpoint_path instead of --resume."
            )
    if found is None:
        if not run.checkpoint_path:
            return run, Start()
        path = Path(run.checkpoint_path)
        state = load_checkpoint(path)
        check_architecture(state, run.train.architecture(), run.train.name, path)
        # trained weights come with a G_ema worth keeping: the handout's half-life from the start
        return replace(run, train=replace(run.train, ema_rampup=None)), Start(path, state)

    path, state = found
    check_architecture(state, run.train.architecture(), run.train.name, path)
    saved = state["options"]
    for key in ("use_r1_regularization", "use_diffaug", "cfg"):
        ours = run.train.name if key == "cfg" else getattr(run, key)
        if saved[key] != ours:
            raise CheckpointError(
                f"checkpoint {path} was trained with {key}={saved[key]}, not {ours}; "
                "resume with the flags it was trained with."
            )
    kept = {
        "batch": saved["config"]["batch"],
        "seed": saved["seed"],
        "mirror": saved["mirror"],
        # G_ema's ramp-up as trained (None: a checkpoint from before ramp-ups, fixed half-life)
        "ema_rampup": saved["config"].get("ema_rampup"),
    }
    ours = {
        "batch": run.train.batch,
        "seed": run.seed,
        "mirror": run.mirror,
        "ema_rampup": run.train.ema_rampup,
    }
    for key, value in kept.items():
        if ours[key] != value:
            click.echo(f"note: continuing with the checkpoint's {key}={value}.")
    run = replace(
        run,
        train=replace(run.train, batch=kept["batch"], ema_rampup=kept["ema_rampup"]),
        seed=kept["seed"],
        mirror=kept["mirror"],
        checkpoint_path=saved["checkpoint_path"],
    )
    return run, Start(path, state, run_dir=path.parent)


def export_weights(source, target) -> Path:
    """Write the weights-only part of a checkpoint (G, D, G_ema, options, iteration) to `target`.
    A course/NVIDIA StyleGAN2-ADA pickle as `source` is written in this code's format."""
    state = load_checkpoint(source)
    slim = {k: state[k] for k in (*WEIGHT_KEYS, "options", "iteration")}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda f: _torch_save({"format": FORMAT, **slim}, f))
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(
            "usage: python -m training.checkpoint SOURCE TARGET (SOURCE: a run's checkpoint-NNNNNN.pt "
            "or a course/NVIDIA StyleGAN2-ADA .pkl; TARGET: this code's weights-only file)"
        )
    try:
        print(f"wrote {export_weights(sys.argv[1], sys.argv[2])}")
    except CheckpointError as error:
        sys.exit(f"error: {error}")
