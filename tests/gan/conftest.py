"""Fixtures of the GAN project tests (helpers live in gan_helpers.py)."""

from pathlib import Path

import pytest
from gan_helpers import write_images


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """8 generated 32x32 "dog" images in tmp_path/dogs."""
    return write_images(tmp_path / "dogs")
