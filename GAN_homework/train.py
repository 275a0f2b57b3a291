"""Train StyleGAN2 on a few-shot dataset (HW5 Part A).

    python train.py --outdir training-runs --data many_shot_dog \\
        --use_r1_regularization True --use_diffaug True --checkpoint_path checkpoint/part3-10K.pkl

Each run writes a new folder <outdir>/<NNNNN>-<dataset>-<cfg>-<flags> holding log.txt (first line:
the two flags), stats.jsonl and its plot training_curves.png (redrawn every tick), reals.png, sample
grids fakes<iter>iter_trained.png and checkpoints; with `--metrics kid`, also metrics.jsonl (G_ema's
KID at every snapshot).
After SIGTERM/SIGUSR1 (e.g. the cluster's time limit) or a first Ctrl-C it saves at the end of the
iteration and exits with status 3, printing the command that continues it (the same command with
`--resume auto`); a second Ctrl-C stops at once (status 130), keeping the last whole checkpoint.
Several GPUs: `torchrun --nproc_per_node N train.py ...` (the batch is split over the processes;
Ctrl-C reaches torchrun, which passes it on to each process once).
"""

import errno
import json
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import click

from training.config import CONFIGS, RunConfig


class TrueFalse(click.ParamType):
    """True or False, in any letter case (the handout's spelling is True/False)."""

    name = "True|False"

    def get_metavar(self, param, ctx=None):
        return "True|False"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        self.fail(f"{value!r} is not True or False.", param, ctx)


def resolve_data(data: str) -> Path:
    """--data as given, or with '-' and '_' swapped in its name when only that spelling exists
    (the handout writes both many-shot-dog and many_shot_dog)."""
    path = Path(data)
    if not path.exists():
        for a, b in (("-", "_"), ("_", "-")):
            other = path.with_name(path.name.replace(a, b))
            if other != path and other.exists():
                click.echo(f"note: --data {data} does not exist; using {other} instead.")
                return other
    return path


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


def write_failure(error: OSError, run_dir: Path, removed: bool) -> str:
    """The sentence for a run stopped by a failed write (disk full, quota, permissions)."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    advice = "free some disk space" if full else "make the folder writable"
    reason = f"could not write into {run_dir} ({error.strerror or error})"
    if removed:
        return f"{reason}; the run had no checkpoint yet and was removed: {advice} and run again."
    checkpoints = sorted(run_dir.glob("checkpoint-*.pt"))  # zero-padded: the last is the newest
    kept = (
        f"its last complete checkpoint, {checkpoints[-1].name}, is kept"
        if checkpoints
        else "it holds no checkpoint"
    )
    return f"{reason}; {kept}: {advice} and continue with the same command plus --resume auto."


EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a program stopped by Ctrl-C


def interrupted(run_dir: Path | None, start: "Start", outdir: Path, run: RunConfig) -> str:
    """The line for a run stopped at once by Ctrl-C; a new run without a checkpoint is removed,
    otherwise the line is also appended to its log.txt."""
    from training.training_loop import append_line

    if run_dir is None:
        return "stopped by Ctrl-C before training started; nothing was written."
    if remove_if_untrained(run_dir, start):
        return f"stopped by Ctrl-C before its first checkpoint; the new run {run_dir} was removed."
    kept = checkpoint_files(run_dir)[-1].name
    how = continue_command(run_dir, outdir, run.folder_suffix())
    line = f"stopped at once by Ctrl-C; its last checkpoint, {kept}, is kept; to continue: {how}"
    try:
        append_line(run_dir / "log.txt", line)
    except OSError:
        pass
    return line


def remove_if_untrained(run_dir: Path | None, start: "Start") -> bool:
    """Remove a new run folder that holds no checkpoint (nothing to continue from)."""
    if run_dir is None or start.resumed or list(run_dir.glob("checkpoint-*.pt")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def checkpoint_files(run_dir: Path) -> list[Path]:
    """A run folder's checkpoints by name, oldest first (the names are zero-padded)."""
    return sorted(run_dir.glob("checkpoint-*.pt"))


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


def unfinished_run(outdir: Path, suffix: str) -> tuple[Path, int, int] | None:
    """The newest run folder of this setting that stopped before its --iters: (folder, iteration
    of its newest checkpoint, its --iters, from the last `options:` line of its log.txt)."""
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
            return run_dir, done, iters
    return None


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
    from training.checkpoint import (
        CheckpointError,
        check_architecture,
        find_latest,
        load_checkpoint,
    )

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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--outdir", required=True, type=click.Path(file_okay=False), help="Where run folders go."
)
@click.option("--data", required=True, help="Folder or zip of square png/jpg images.")
@click.option(
    "--use_r1_regularization", required=True, type=TrueFalse(), help="R1 penalty, Eq. (3)."
)
@click.option("--use_diffaug", required=True, type=TrueFalse(), help="DiffAugment in run_D.")
@click.option("--checkpoint_path", default=None, help="Start from these weights (a new run).")
@click.option(
    "--cfg",
    "cfg_name",
    type=click.Choice(sorted(CONFIGS)),
    default="low_shot",
    show_default=True,
    help="The setting: low_shot (the course's) or tiny (tests and demos).",
)
@click.option(
    "--iters",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Iterations of the run, counted from its start (a resumed run goes on to this).",
)
@click.option(
    "--snap",
    type=click.IntRange(min=1),
    default=None,
    help="Iterations between sample grids and checkpoints [default: the config's].",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=None, help="Total batch [default: the config's]."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--mirror", type=TrueFalse(), default="False", show_default=True, help="Random x-flips."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Threads decoding the images at start.",
)
@click.option(
    "--precision",
    type=click.Choice(["mixed", "fp32"]),
    default="mixed",
    show_default=True,
    help="mixed: fp16 high-resolution layers and TF32 on GPU; fp32: neither.",
)
@click.option(
    "--resume",
    default=None,
    help="'auto' (newest checkpoint of this setting under --outdir) or a file.",
)
@click.option(
    "--metrics",
    type=click.Choice(["none", "kid"]),
    default="none",
    show_default=True,
    help="kid: G_ema's KID of 1000 images at every snapshot, into metrics.jsonl.",
)
@click.option(
    "--detector",
    default=None,
    help="TorchScript feature network for --metrics [default: calc_metrics.py's].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the inputs, print options and parameter counts, train nothing.",
)
def main(outdir, data, cfg_name, batch, snap, resume, detector, dry_run, **flags):
    # heavy imports after argument parsing, so that --help and bad flags answer at once
    from training.checkpoint import CheckpointError
    from training.dataset import DatasetError, ImageDataset
    from training.distributed import Dist
    from training.metrics import DetectorError, fetch_default_detector
    from training.training_loop import Logger, Trainer, run_training

    outdir = Path(outdir)
    named = CONFIGS[cfg_name]
    train = replace(named, batch=batch or named.batch, snap_iters=snap or named.snap_iters)
    run = RunConfig(data=str(resolve_data(data)), train=train, **flags)
    run_dir, start = None, Start()
    try:
        run, start = decide_start(run, resume, outdir)
        check_writable(*((start.run_dir, "run folder") if start.resumed else (outdir, "--outdir")))
        detector_path = None
        if run.metrics == "kid":  # a missing detector stops the run here, before any training
            detector_path = Path(detector) if detector else fetch_default_detector()
        elif detector:
            click.echo("note: --detector is used only with --metrics kid; no KID is measured.")
        dist = Dist()
        if run.train.batch % dist.world:
            raise click.BadParameter(
                f"{run.train.batch} is not divisible by the {dist.world} processes.",
                param_hint="--batch",
            )
        dataset = ImageDataset(run.data, run.train.resolution, run.workers)
        kid = None
        if detector_path and dist.is_main and not dry_run:
            from training.snapshot_kid import SnapshotKID

            kid = SnapshotKID(detector_path, Path(run.data), dist.device, run.seed)
        suffix = run.folder_suffix()
        stopped = None if start.resumed or not dist.is_main else unfinished_run(outdir, suffix)
        if stopped:
            click.echo(
                f"note: run {stopped[0]} of these flags stopped at iteration {stopped[1]} of "
                f"{stopped[2]}; this starts a new run (to continue that one instead: "
                f"{continue_command(stopped[0], outdir, suffix)})"
            )
        if dist.is_main and not dry_run:  # the run folder: everything is checked by now
            run_dir = start.run_dir or new_run_dir(outdir, suffix)
            if not start.resumed:
                (run_dir / "log.txt").write_text(run.flags() + "\n")
        log = Logger(run_dir, dist.is_main)  # without a run folder (dry run): the console only
        trainer = Trainer(run, dist, dataset, run_dir, log, kid)
        if start.resumed:
            trainer.load_state_dict(start.state, start.path)
            log(
                f"resumed from {start.path} at iteration {trainer.iteration}; continuing to {run.iters}"
            )
        elif start.state:
            trainer.init_from(start.state, start.path)
        if dry_run:
            log(run.flags())
        log("options: " + json.dumps(run.to_dict()))
        log(trainer.parameter_line())
        if dataset.warning:
            log(dataset.warning)
        log(
            f"data: {len(dataset)} images from {run.data}; {dist.world} process(es) on {dist.device}"
        )
        if start.state and not start.resumed:
            log(f"initialized G, D and G_ema from {start.path}")
        if dry_run:
            log("dry run: nothing written.")
            return
        log(f"run folder: {run_dir}")
        status = run_training(
            trainer,
            fresh=not start.resumed,
            continue_with=lambda: continue_command(run_dir, outdir, suffix),
        )
    except KeyboardInterrupt:  # a second Ctrl-C (or one before training started): stop at once
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a third one cannot cut this message
        if os.environ.get("RANK", "0") == "0":  # the process that prints (torchrun: rank 0)
            click.echo(interrupted(run_dir, start, outdir, run), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (DatasetError, CheckpointError, DetectorError) as error:
        remove_if_untrained(run_dir, start)
        raise click.ClickException(str(error)) from None
    except NotImplementedError as error:  # the starter's TODO blocks raise this
        remove_if_untrained(run_dir, start)  # nothing trained: leave no empty run folder behind
        raise click.ClickException(
            f"{error or 'a TODO block'} is not implemented yet: fill it in (see the handout) and "
            "run again."
        ) from None
    except OSError as error:  # disk full, quota, permissions changed during the run
        removed = remove_if_untrained(run_dir, start)
        raise click.ClickException(write_failure(error, run_dir or outdir, removed)) from None
    dist.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
