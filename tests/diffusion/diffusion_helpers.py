"""Helpers of the Diffusion project tests: running the homework scripts like a student does."""

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

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
