"""benchmarks/diffusion_sampling.py --cpu-tiny: the GPU benchmark's code path, in seconds on CPU."""

import importlib.util
import re

import pytest
from diffusion_helpers import DDIM, DDPM, DPS_UPDATE, REPO


@pytest.mark.needs(*DDPM, *DDIM, DPS_UPDATE)
def test_benchmark_cpu_tiny_prints_a_ratio_per_sampler(capsys):
    spec = importlib.util.spec_from_file_location(
        "diffusion_sampling_benchmark", REPO / "benchmarks" / "diffusion_sampling.py"
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--cpu-tiny"])
    output = capsys.readouterr().out
    for name in ("DDPM", "DDIM", "DPS"):
        assert re.search(rf"{name} +\d+ steps \| original: .* \| ours: .* \| +[\d.]+x", output), (
            output
        )
    assert "largest difference" in output
