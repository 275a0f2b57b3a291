"""Helpers of the Diffusion project tests: running the homework scripts like a student does."""

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DIFFUSION_DIR = REPO / "Diffusion_homework"

# The TODO blocks the samplers go through, for `@pytest.mark.needs` (tests/conftest.py).
SCHEDULERS = "Diffusion_homework/scheduler"
DDPM = tuple(f"{SCHEDULERS}/DDPM_scheduler.py#{n}" for n in (1, 2, 3))  # every DDPM step
DDIM = tuple(f"{SCHEDULERS}/DDIM_scheduler.py#{n}" for n in (1, 2))  # every DDIM step
DPS_UPDATE = f"{SCHEDULERS}/DDIM_scheduler.py#3"  # a DPS step, after DDIM's
SDS_SCRIPT = "Diffusion_homework/execute_SDS_VSD.py#1"  # the gradient weighted by w(t)
SDS_GRADIENT, SDS_WEIGHTS, VSD_GRADIENT = (
    f"Diffusion_homework/utils/sds_vsd_utils.py#{n}" for n in (1, 2, 3)
)
SDS = (SDS_SCRIPT, SDS_GRADIENT, SDS_WEIGHTS)  # an SDS run
VSD = (SDS_SCRIPT, SDS_WEIGHTS, VSD_GRADIENT)  # a VSD run


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


def invoke(command, *args):
    """Runs a click command in process (much faster than a subprocess)."""
    return CliRunner().invoke(command, [str(arg) for arg in args])


def assert_clean_failure(output, exit_code, *phrases):
    """Exit status non-zero, a message, no traceback."""
    assert exit_code not in (0, None), output
    assert "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, output


def tree(folder):
    """Every path under folder with the content of its files: to show that nothing changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(Path(folder).rglob("*"))
    }
