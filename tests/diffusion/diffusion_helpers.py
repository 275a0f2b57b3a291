"""Helpers of the Diffusion project tests: running the homework scripts like a student does."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DIFFUSION_DIR = REPO / "Diffusion_homework"


def env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}


def run_script(script, *args, cwd=DIFFUSION_DIR, timeout=240, **env_extra):
    """Runs a homework script like a student does (from Diffusion_homework/)."""
    return subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=cwd,
        env=env(**env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
