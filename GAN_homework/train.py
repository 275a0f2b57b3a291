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

The file reads top to bottom: the handout's options, then one configuration (RunConfig, with a
stopped run's own values when it continues), the trainer, then the run (training/training_loop.py).
"""

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import click
from outputs import (
    check_writable,
    continue_command,
    interrupted,
    new_run_dir,
    remove_if_untrained,
    unfinished_run_note,
    write_failure,
)

from training.config import CONFIGS, RunConfig
from training.todo import unfilled_todo


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
    # torch's modules after argument parsing, so that --help and bad flags answer at once
    from training.checkpoint import CheckpointError, Start, decide_start
    from training.dataset import DatasetError, ImageDataset, resolve_data
    from training.distributed import Dist
    from training.metrics import DetectorError, fetch_default_detector
    from training.training_loop import EXIT_INTERRUPTED, Logger, Trainer, run_training

    # 1. the configuration: the named setting, the command line's values, then the checkpoint's
    outdir = Path(outdir)
    named = CONFIGS[cfg_name]
    train = replace(named, batch=batch or named.batch, snap_iters=snap or named.snap_iters)
    run = RunConfig(data=str(resolve_data(data)), train=train, **flags)
    suffix = run.folder_suffix()
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
        if not start.resumed and dist.is_main and (note := unfinished_run_note(outdir, suffix)):
            click.echo(note)  # a stopped run of these flags, and how to continue it instead
        if dist.is_main and not dry_run:  # the run folder: everything is checked by now
            run_dir = start.run_dir or new_run_dir(outdir, suffix)
            if not start.resumed:
                (run_dir / "log.txt").write_text(run.flags() + "\n")

        # 2. the trainer: networks, optimizers, loss and data, from the checkpoint if any
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

        # 3. the run (training/training_loop.py; one iteration: Trainer.train_one_iteration)
        log(f"run folder: {run_dir}")
        status = run_training(
            trainer,
            fresh=not start.resumed,
            continue_with=lambda: continue_command(run_dir, outdir, suffix),
        )
    except KeyboardInterrupt:  # a second Ctrl-C (or one before training started): stop at once
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a third one cannot cut this message
        if os.environ.get("RANK", "0") == "0":  # the process that prints (torchrun: rank 0)
            click.echo(interrupted(run_dir, start.resumed, outdir, suffix), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (DatasetError, CheckpointError, DetectorError) as error:
        remove_if_untrained(run_dir, start.resumed)
        raise click.ClickException(str(error)) from None
    except NotImplementedError as error:
        if not unfilled_todo(error):
            raise
        remove_if_untrained(run_dir, start.resumed)  # nothing trained: no empty run folder left
        raise click.ClickException(
            f"{error} is not implemented yet: fill it in (see the handout) and run again."
        ) from None
    except OSError as error:  # disk full, quota, permissions changed during the run
        removed = remove_if_untrained(run_dir, start.resumed)
        raise click.ClickException(write_failure(error, run_dir or outdir, removed)) from None
    dist.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
