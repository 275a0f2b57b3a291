"""Stopping and continuing: SIGTERM/SIGUSR1 -> checkpoint + status 3, --resume auto continues
bitwise-exactly, and a kill at any moment (SIGKILL included) leaves a loadable checkpoint."""

import os
import random
import signal
import time

import pytest
import torch
from gan_helpers import (
    CUTOUT,
    R1,
    TRAINING,
    only_run_dir,
    run_train,
    start_train,
    tiny_args,
    wait_for,
)

from training import checkpoint as ckpt


def log_has(outdir, text):
    def check():
        logs = list(outdir.glob("*/log.txt"))
        return bool(logs) and text in logs[0].read_text()

    return check


def differences(a, b, path=""):
    """Paths at which two checkpoint states differ (tensors compared bitwise)."""
    if isinstance(a, torch.Tensor):
        return [] if torch.equal(a, b) else [path]
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        return [d for k in a for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


@pytest.mark.slow
@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_sigterm_then_resume_auto_equals_an_uninterrupted_run(tmp_path, tiny_data):
    stop_signal = signal.SIGTERM
    iters = 16
    args = tiny_args(tmp_path / "b", tiny_data, True, True, iters, 8, "--mirror", "True")

    proc = start_train(args)
    wait_for(log_has(tmp_path / "b", f"iter 5/{iters}"), proc)  # first tick
    proc.send_signal(stop_signal)
    assert proc.wait(timeout=120) == 3, proc.stderr.read()
    run = only_run_dir(tmp_path / "b")
    log = (run / "log.txt").read_text()
    assert f"received {stop_signal.name}" in log
    stopped_at = ckpt.find_latest(run)[1]["iteration"]
    assert 5 <= stopped_at < iters, "stopped after the iteration it was in, checkpoint written"
    assert (run / f"fakes{stopped_at:06d}iter_trained.png").is_file()

    resumed = run_train(args + ["--resume", "auto"])
    assert resumed.returncode == 0, resumed.stderr
    assert only_run_dir(tmp_path / "b") == run, "continued in the same run folder"
    log = (run / "log.txt").read_text()
    assert log.splitlines()[0] == "use_r1_regularization=True use_diffaug=True"
    assert (
        f"resumed from {run / f'checkpoint-{stopped_at:06d}.pt'} at iteration {stopped_at}" in log
    )
    stats = (run / "stats.jsonl").read_text().splitlines()
    assert len(stats) >= 2, "stats.jsonl appended, not restarted"

    straight = run_train(
        tiny_args(tmp_path / "a", tiny_data, True, True, iters, 8, "--mirror", "True")
    )
    assert straight.returncode == 0, straight.stderr
    a = ckpt.load_checkpoint(only_run_dir(tmp_path / "a") / f"checkpoint-{iters:06d}.pt")
    b = ckpt.load_checkpoint(run / f"checkpoint-{iters:06d}.pt")
    for state in (
        a,
        b,
    ):  # the options record each command's own --iters/--snap, the rest must match
        state.pop("options")
    assert differences(a, b) == [], "resumed run differs from the uninterrupted one"


@pytest.mark.slow
@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, tiny_data):
    # a checkpoint every iteration, killed at a random moment after a few of them
    args = tiny_args(tmp_path / "runs", tiny_data, True, True, 500, 1)
    proc = start_train(args)
    wait_for(lambda: len(list((tmp_path / "runs").glob("*/checkpoint-*.pt"))) >= 2, proc)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    run = only_run_dir(tmp_path / "runs")
    path, state = ckpt.find_latest(run)
    assert state["iteration"] >= 1
    resumed = run_train(
        tiny_args(
            tmp_path / "runs", tiny_data, True, True, state["iteration"] + 1, 1, "--resume", "auto"
        )
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {path}" in (run / "log.txt").read_text()


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_stop_signals_set_the_stop_flag_and_handlers_are_restored(name):
    from training.training_loop import StopFlag

    sig = getattr(signal, name)
    before = signal.getsignal(sig)
    with StopFlag() as stop:
        assert stop.reason is None
        os.kill(os.getpid(), sig)
        time.sleep(0.01)
        assert stop.reason == name
    assert signal.getsignal(sig) == before


def _state(iteration):
    return {"iteration": iteration, "G": {"w": torch.full([3], float(iteration))}}


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, _state(8))

    def crash(obj, f):  # half a file, then the process "dies"
        f.write(b"PK\x03\x04 half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, _state(9))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-000008.pt", "latest"]
    path, state = ckpt.find_latest(tmp_path)
    assert path.name == "checkpoint-000008.pt" and state["iteration"] == 8


def test_leftovers_of_a_killed_writer_are_skipped(tmp_path):
    for i in (4, 8):
        ckpt.save_checkpoint(tmp_path, _state(i))
    # what SIGKILL can leave: a temporary file, and (from a copy or a full disk) a damaged newest file
    (tmp_path / ".checkpoint-000012.pt.tmp999").write_bytes(b"partial")
    (tmp_path / "checkpoint-000012.pt").write_bytes(
        (tmp_path / "checkpoint-000008.pt").read_bytes()[:50]
    )
    path, state = ckpt.find_latest(tmp_path)
    assert path.name == "checkpoint-000008.pt" and state["iteration"] == 8
    ckpt.save_checkpoint(tmp_path, _state(16))
    assert not list(tmp_path.glob(".*")), "the next save removes the killed writer's temporary file"


def test_only_the_newest_two_checkpoints_are_kept(tmp_path):
    for i in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, _state(i))
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.pt")) == [
        "checkpoint-000002.pt",
        "checkpoint-000003.pt",
    ]
    assert (tmp_path / "latest").read_text().strip() == "checkpoint-000003.pt"
