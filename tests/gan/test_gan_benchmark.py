"""benchmarks/gan_throughput.py --cpu-tiny runs and prints its table and the KID snapshot line
(no timing is asserted)."""

import subprocess
import sys

import pytest
from gan_helpers import CUTOUT, R1, REPO, TRAINING, env


@pytest.mark.slow
@pytest.mark.needs(*TRAINING, R1, CUTOUT)
def test_throughput_benchmark_cpu_tiny_prints_a_row_per_setting():
    result = subprocess.run(
        [sys.executable, "benchmarks/gan_throughput.py", "--cpu-tiny"],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    settings = [" ".join(r[:-6]) for r in rows if len(r) >= 7 and r[-1] in ("108", "174")]
    assert settings == ["no regularization", "R1", "R1 + DiffAugment"]
    assert "108 s/kimg without regularization, 174 with R1 or DiffAug" in result.stdout
    kid = [line for line in result.stdout.splitlines() if line.startswith("KID snapshot")]
    assert len(kid) == 1 and "generation only: stand-in detector" in kid[0], result.stdout
    assert float(kid[0].rsplit(": ", 1)[1].removesuffix(" s")) > 0
