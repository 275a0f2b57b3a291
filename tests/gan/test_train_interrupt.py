"""Ctrl-C during training: the first SIGINT stops like SIGTERM (checkpoint, status 3, the command
that continues the run), a second one stops at once (status 130) with the last complete checkpoint
kept; a new run whose flags match a stopped, unfinished one says how to continue that one."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from gan_helpers import GAN_DIR, TRAINING, env, only_run_dir, tiny_args, wait_for
from PIL import Image

from training import checkpoint as ckpt


def logs(outdir):
    return "".join(path.read_text() for path in outdir.glob("*/log.txt"))


def command(args, resume="auto"):
    """The continue command train.py prints for `python train.py ARGS`."""
    return shlex.join(["python", "train.py", *args, "--resume", resume])


# Runs train.py as a student does, except that once the file GATE exists a checkpoint write stops
# half way and waits there (READY says so): a Ctrl-C then finds a half-written temporary file.
GATED = """
import sys, time
from pathlib import Path
gate, ready, *args = sys.argv[1:]
sys.argv = ["train.py", *args]
import train
from training import checkpoint
real_save = checkpoint._torch_save
def save(obj, file):
    if Path(gate).exists():
        file.write(b"PK\\x03\\x04 half a checkpoint")
        file.flush()
        Path(ready).touch()
        while True:
            time.sleep(0.01)
    real_save(obj, file)
checkpoint._torch_save = save
train.main()
"""


@pytest.mark.slow
@pytest.mark.needs(*TRAINING)
def test_one_ctrl_c_saves_and_prints_the_command_that_continues(tmp_path, tiny_data, monkeypatch):
    args = tiny_args(tmp_path / "runs", tiny_data, False, False, 500, 50)
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "train.py", *args], cwd=GAN_DIR, env=env(),
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        wait_for(lambda: "iter 5/500" in logs(tmp_path / "runs"), proc)  # the first tick
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 3
    said = stderr.read_text()
    assert "Aborted!" not in said and "Traceback" not in said, said
    assert "Ctrl-C: stopping after this iteration and writing a checkpoint" in said
    run = only_run_dir(tmp_path / "runs")
    path, state = ckpt.find_latest(run)
    stopped_at = state["iteration"]
    assert 5 <= stopped_at < 50, "stopped after the iteration it was in, not at a snapshot"
    assert path.name == f"checkpoint-{stopped_at:06d}.pt"
    assert (run / f"fakes{stopped_at:06d}iter_trained.png").is_file()
    last = (run / "log.txt").read_text().splitlines()[-1]
    assert last == (
        f"stopped at iteration {stopped_at}: received SIGINT; to continue: {command(args)}"
    )
    grid = Image.open(run / f"fakes{stopped_at:06d}iter_trained.png")
    assert grid.size == (512, 512), "the 4x4 grid of 32x32 images is enlarged 4 times"
    assert Image.open(run / "reals.png").size == (512, 256), "the 8 training images, 4 a row"

    # the same command again, without --resume: one line says the stopped run can be continued
    assert dry_run(args, monkeypatch) == [
        f"note: run {run} of these flags stopped at iteration {stopped_at} of 500; this starts a "
        f"new run (to continue that one instead: {command(args)})"
    ]

    # the printed command picks that run (a dry run: it loads the checkpoint, trains nothing)
    printed = shlex.split(last.split("; to continue: ")[1])
    assert printed[:2] == ["python", "train.py"]
    resumed = invoke(printed[2:] + ["--dry-run"])
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed from {path} at iteration {stopped_at}; continuing to 500" in resumed.output
    assert only_run_dir(tmp_path / "runs") == run


@pytest.mark.slow
@pytest.mark.needs(*TRAINING)
def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_complete_checkpoint(tmp_path, tiny_data):
    args = tiny_args(tmp_path / "runs", tiny_data, False, False, 500, 1)  # a checkpoint every iter
    gate, ready, stderr = tmp_path / "gate", tmp_path / "ready", tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", GATED, str(gate), str(ready), *args], cwd=GAN_DIR, env=env(),
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        wait_for(lambda: len(list((tmp_path / "runs").glob("*/checkpoint-*.pt"))) >= 2, proc)
        gate.touch()
        wait_for(ready.exists, proc)  # a checkpoint is half written under its temporary name
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: "Ctrl-C: stopping" in stderr.read_text(), proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    said = stderr.read_text()
    assert "Aborted!" not in said and "Traceback" not in said, said
    run = only_run_dir(tmp_path / "runs")
    path, state = ckpt.find_latest(run)
    line = (
        f"stopped at once by Ctrl-C; its last checkpoint, {path.name}, is kept; to continue: "
        f"{command(args)}"
    )
    assert said.strip().splitlines()[-1] == line
    assert (run / "log.txt").read_text().endswith(line + "\n")
    assert "received SIGINT" not in (run / "log.txt").read_text(), "it did not wait for the end"
    assert not list(run.glob(".*")), "the half-written temporary file is removed"
    assert (run / "latest").read_text().strip() == path.name
    for name in sorted(p.name for p in run.glob("checkpoint-*.pt")):  # each one whole
        assert ckpt.load_checkpoint(run / name)["iteration"] == int(name[11:17])
    assert state["iteration"] >= 2 and "opt_G" in state


def test_stop_flag_ctrl_c_once_stops_after_the_iteration_twice_at_once():
    from training.training_loop import StopFlag

    before = signal.getsignal(signal.SIGINT)
    with StopFlag(announce=False) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert stop.reason == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) == before
    with StopFlag(announce=False) as stop:  # a SIGTERM first: the first Ctrl-C only agrees
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert stop.reason == "SIGTERM"


# ------------------------------------------------------------------ a new run beside a stopped one
def fake_run(outdir, number, checkpoints, iters, suffix="dogs-tiny-nor1-noaug"):
    """A run folder as train.py leaves it: log.txt with its options line, checkpoint names."""
    run = outdir / f"{number:05d}-{suffix}"
    run.mkdir(parents=True)
    options = {"cfg": "tiny", "iters": iters}
    (run / "log.txt").write_text(
        f"use_r1_regularization=False use_diffaug=False\noptions: {json.dumps(options)}\n"
    )
    for i in checkpoints:
        (run / f"checkpoint-{i:06d}.pt").write_bytes(b"")
    return run


def invoke(args):
    """train.py in this process (fast: torch is already imported)."""
    from click.testing import CliRunner
    from train import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


def dry_run(args, monkeypatch):
    """The `note: run ...` lines of a dry run of `python train.py ARGS`."""
    monkeypatch.setattr(sys, "argv", ["train.py", *args])  # the command the note repeats
    result = invoke(args + ["--dry-run"])
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line.startswith("note: run ")]


def test_a_new_run_beside_a_stopped_one_says_how_to_continue_it(tmp_path, tiny_data, monkeypatch):
    outdir = tmp_path / "runs"
    args = tiny_args(outdir, tiny_data, False, False, 30, 10)
    fake_run(outdir, 0, [20, 30], 30)  # finished
    stopped = fake_run(outdir, 1, [10, 20], 40)  # stopped at 20 of 40
    fake_run(outdir, 2, [], 30)  # killed before its first checkpoint: nothing to continue
    fake_run(outdir, 3, [5], 40, suffix="dogs-tiny-r1-noaug")  # other flags
    assert dry_run(args, monkeypatch) == [
        f"note: run {stopped} of these flags stopped at iteration 20 of 40; this starts a new run "
        f"(to continue that one instead: {command(args)})"
    ]

    newer = fake_run(outdir, 4, [40], 40)  # finished, and what --resume auto would pick
    assert dry_run(args, monkeypatch) == [
        f"note: run {stopped} of these flags stopped at iteration 20 of 40; this starts a new run "
        f"(to continue that one instead: {command(args, str(stopped / 'checkpoint-000020.pt'))})"
    ]

    (stopped / "checkpoint-000040.pt").write_bytes(b"")  # it was continued to its end
    assert dry_run(args, monkeypatch) == []
    assert newer.is_dir()


def test_ctrl_c_before_the_first_checkpoint_removes_the_new_run(tmp_path, tiny_data, monkeypatch):
    from training import training_loop

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(training_loop.Trainer, "save_reals", interrupted)
    before = signal.getsignal(signal.SIGINT)
    try:
        result = invoke(tiny_args(tmp_path / "runs", tiny_data))
    finally:
        signal.signal(signal.SIGINT, before)  # train.py ignores a third Ctrl-C while it exits
    assert result.exit_code == 130, result.output
    assert "Aborted!" not in result.output and "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("stopped by Ctrl-C before its first checkpoint; the new run ")
    assert line.endswith(" was removed.")
    assert list((tmp_path / "runs").iterdir()) == []
