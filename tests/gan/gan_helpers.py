"""Helpers of the GAN project tests: tiny generated datasets and train.py runs on CPU.

(A plain module, not conftest.py: several test folders have a conftest, and `from conftest import`
would pick whichever was imported first.)
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
GAN_DIR = REPO / "GAN_homework"

# The TODO blocks a training run goes through, for `@pytest.mark.needs` (tests/conftest.py).
LOSS = "GAN_homework/training/loss.py"
TRAINING = tuple(f"{LOSS}#{n}" for n in (1, 2, 3, 4))  # Gmain and Dmain, every iteration
R1 = f"{LOSS}#5"  # Dreg, with --use_r1_regularization True
CUTOUT = "GAN_homework/DiffAugment_pytorch.py#1"  # with --use_diffaug True


def write_images(folder: Path, count: int = 8, size=32, mode: str = "RGB", suffix=".png", seed=0):
    """`count` images of soft colored blobs ("dogs"), `size` an int or (width, height)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    for i in range(count):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))[..., None]
        color, background = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        pixels = (blob * color + (1 - blob) * background).astype(np.uint8)
        Image.fromarray(pixels).convert(mode).save(folder / f"{i}{suffix}")
    return folder


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def tiny_args(outdir, data, r1=True, aug=True, iters=3, snap=2, *extra) -> list[str]:
    return [
        "--outdir", str(outdir), "--data", str(data), "--cfg", "tiny",
        "--use_r1_regularization", str(r1), "--use_diffaug", str(aug),
        "--iters", str(iters), "--snap", str(snap), *map(str, extra),
    ]  # fmt: skip


def run_train(args, timeout=180) -> subprocess.CompletedProcess:
    """python train.py ARGS from GAN_homework, as a student runs it."""
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=GAN_DIR, env=env(), capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


def start_train(args, log_path=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=GAN_DIR, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def only_run_dir(outdir: Path) -> Path:
    runs = [p for p in Path(outdir).iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected one run folder in {outdir}, found {runs}"
    return runs[0]


def wait_for(condition, proc, timeout=120.0):
    """Wait until condition() holds while the train.py process `proc` runs; fail if it ends first
    (with its error output, where it was piped) or after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        if proc.poll() is not None:
            said = proc.stderr.read() if proc.stderr is not None else ""
            pytest.fail(f"train.py ended early (status {proc.returncode}) {said}")
        time.sleep(0.05)
    pytest.fail("timed out waiting for train.py")
