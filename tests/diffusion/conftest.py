"""Fixtures of the Diffusion project tests: a tiny random UNet saved like a real model."""

import pytest

from tools.demo.diffusion import build_tiny_ddpm


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A UNet2DModel (16x16, random weights) in the pipeline layout: unet/ and scheduler/."""
    return build_tiny_ddpm(tmp_path_factory.mktemp("models") / "tiny-ddpm", sample_size=16)
