"""torchrun: two CPU processes (gloo) train together and write one single-process-format checkpoint."""

import socket
import subprocess
import sys

import pytest
from gan_helpers import CUTOUT, GAN_DIR, R1, TRAINING, env, only_run_dir, tiny_args

from training.checkpoint import load_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_two_processes_train_in_step(tmp_path, tiny_data):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(free_port()), "train.py",
               *tiny_args(tmp_path / "runs", tiny_data, True, True, 3, 3)]  # fmt: skip
    result = subprocess.run(
        command, cwd=GAN_DIR, env=env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run_dir(tmp_path / "runs")  # only rank 0 made a run folder
    log = (run / "log.txt").read_text()
    assert "2 process(es) on cpu" in log
    assert "networks identical on all 2 processes: True" in log
    assert log.count("iter 3/3") == 1, "only rank 0 logs"
    state = load_checkpoint(run / "checkpoint-000003.pt")
    assert state["iteration"] == 3
    assert len(state["rng"]) == 2, "each rank's RNG streams are saved"
    assert state["options"]["config"]["batch"] == 4
