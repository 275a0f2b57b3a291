"""Train StyleGAN2 on a few-shot dataset (HW5 Part A).

    python train.py --outdir training-runs --data many_shot_dog \\
        --use_r1_regularization True --use_diffaug True --checkpoint_path checkpoint/part3-10K.pkl

Each run writes a new folder <outdir>/<NNNNN>-<dataset>-<cfg>-<flags> holding log.txt (first line:
the two flags), stats.jsonl and its plot training_curves.png (redrawn every tick), reals.png, sample
grids fakes<iter>iter_trained.png and checkpoints; with `--metrics kid`, also metrics.jsonl (G_ema's
KID at every snapshot).
After SIGTERM/SIGUSR1 (e.g. the cluster's time limit) it saves and exits with status 3; run the same
command with `--resume auto` to continue where it stopped. Several GPUs: `torchrun --nproc_per_node N
train.py ...` (the batch is split over the processes).
"""

import errno
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import click

from training.config import CONFIGS, get_config


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


def flags_tag(use_r1: bool, use_diffaug: bool) -> str:
    return f"{'r1' if use_r1 else 'nor1'}-{'diffaug' if use_diffaug else 'noaug'}"


def run_dirs(outdir: Path, suffix: str) -> list[Path]:
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


def remove_if_untrained(run_dir: Path | None, resumed) -> bool:
    """Remove a new run folder that holds no checkpoint (nothing to continue from)."""
    if run_dir is None or resumed or list(run_dir.glob("checkpoint-*.pt")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def find_resume(resume: str, outdir: Path, suffix: str):
    """(run folder, path, state) to continue, or None for a new run."""
    from training.checkpoint import CheckpointError, find_latest, load_checkpoint

    if resume == "auto":
        for run_dir in run_dirs(outdir, suffix):
            found = find_latest(run_dir)
            if found:
                return (run_dir, *found)
        click.echo(f"note: no checkpoint of a *-{suffix} run under {outdir}; starting a new run.")
        return None
    path = Path(resume)
    state = load_checkpoint(path)
    if "opt_G" not in state:
        raise CheckpointError(
            f"{path} holds weights only, not a run's full state; start a new run from it with "
            "--checkpoint_path instead of --resume."
        )
    return path.parent, path, state


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
@click.option("--cfg", type=click.Choice(sorted(CONFIGS)), default="low_shot", show_default=True)
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
def main(
    outdir,
    data,
    use_r1_regularization,
    use_diffaug,
    checkpoint_path,
    cfg,
    iters,
    snap,
    batch,
    seed,
    mirror,
    workers,
    precision,
    resume,
    metrics,
    detector,
    dry_run,
):
    # heavy imports after argument parsing, so that --help and bad flags answer at once
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.dataset import DatasetError
    from training.distributed import Dist
    from training.metrics import DetectorError, fetch_default_detector
    from training.training_loop import Logger, Trainer, run_training

    outdir = Path(outdir)
    data_path = resolve_data(data)
    config = get_config(cfg)
    dataset_name = data_path.stem if data_path.suffix.lower() == ".zip" else data_path.name
    suffix = f"{dataset_name}-{cfg}-{flags_tag(use_r1_regularization, use_diffaug)}"
    options = {
        "data": str(data_path),
        "cfg": cfg,
        "config": config.to_dict(),
        "use_r1_regularization": use_r1_regularization,
        "use_diffaug": use_diffaug,
        "checkpoint_path": checkpoint_path,
        "iters": iters,
        "snap": snap or config.snap_iters,
        "batch": batch or config.batch,
        "seed": seed,
        "mirror": mirror,
        "workers": workers,
        "precision": precision,
        "metrics": metrics,
    }
    try:
        resumed = find_resume(resume, outdir, suffix) if resume else None
        if resumed:
            saved = resumed[2]["options"]
            for key, value in (
                ("use_r1_regularization", use_r1_regularization),
                ("use_diffaug", use_diffaug),
                ("cfg", cfg),
            ):
                if saved[key] != value:
                    raise CheckpointError(
                        f"checkpoint {resumed[1]} was trained with {key}={saved[key]}, not {value}; "
                        "resume with the flags it was trained with."
                    )
            # the run's identity comes from the checkpoint, so that it continues exactly
            for key in ("batch", "seed", "mirror", "checkpoint_path"):
                if key != "checkpoint_path" and options[key] != saved[key]:
                    click.echo(f"note: continuing with the checkpoint's {key}={saved[key]}.")
                options[key] = saved[key]
        check_writable(*((resumed[0], "run folder") if resumed else (outdir, "--outdir")))
        detector_path = None
        if metrics == "kid":  # a missing detector stops the run here, before any training
            detector_path = Path(detector) if detector else fetch_default_detector()
        elif detector:
            click.echo("note: --detector is used only with --metrics kid; no KID is measured.")
        dist = Dist()
        if options["batch"] % dist.world:
            raise click.BadParameter(
                f"{options['batch']} is not divisible by the {dist.world} processes.",
                param_hint="--batch",
            )
        log = Logger(enabled=dist.is_main)
        trainer = Trainer(options, config, dist, run_dir=None, log=log)
        if resumed:
            trainer.load_state_dict(resumed[2], resumed[1])
        elif checkpoint_path:
            init = load_checkpoint(checkpoint_path)
            trainer.init_from(init, checkpoint_path)
        if detector_path and dist.is_main and not dry_run:
            from training.snapshot_kid import SnapshotKID

            trainer.snapshot_kid = SnapshotKID(
                detector_path, data_path, dist.device, options["seed"]
            )
    except (DatasetError, CheckpointError, DetectorError) as error:
        raise click.ClickException(str(error)) from None

    if dry_run:
        if not dist.is_main:
            return
        click.echo(f"use_r1_regularization={use_r1_regularization} use_diffaug={use_diffaug}")
        click.echo("options: " + json.dumps(options))
        click.echo(trainer.parameter_line())
        click.echo(
            f"data: {len(trainer.dataset)} images from {data_path}; dry run, nothing written."
        )
        return

    run_dir = None
    try:
        if dist.is_main:
            run_dir = resumed[0] if resumed else new_run_dir(outdir, suffix)
            if not resumed:
                (run_dir / "log.txt").write_text(
                    f"use_r1_regularization={use_r1_regularization} use_diffaug={use_diffaug}\n"
                )
            trainer.run_dir = run_dir
            log.set_run_dir(run_dir)
            if resumed:
                log(
                    f"resumed from {resumed[1]} at iteration {trainer.iteration}; "
                    f"continuing to {iters}"
                )
            log("options: " + json.dumps(options))
            log(trainer.parameter_line())
            log(
                f"data: {len(trainer.dataset)} images from {data_path}; "
                f"{dist.world} process(es) on {dist.device}"
            )
            if checkpoint_path and not resumed:
                log(f"initialized G, D and G_ema from {checkpoint_path}")
            log(f"run folder: {run_dir}")
        status = run_training(trainer, iters, options["snap"], fresh=not resumed)
    except NotImplementedError as error:  # the starter's TODO blocks raise this
        remove_if_untrained(run_dir, resumed)  # nothing trained: leave no empty run folder behind
        raise click.ClickException(
            f"{error or 'a TODO block'} is not implemented yet: fill it in (see the handout) and "
            "run again."
        ) from None
    except OSError as error:  # disk full, quota, permissions changed during the run
        removed = remove_if_untrained(run_dir, resumed)
        raise click.ClickException(write_failure(error, run_dir or outdir, removed)) from None
    dist.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
