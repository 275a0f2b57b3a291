"""Fixtures of the tools' tests.

`fixture_tree/` is a miniature course repository (its own TODO table, homework module and
grading tests); each test gets a fresh copy, and it is never collected here.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tool_helpers import copy_fixture  # noqa: E402

collect_ignore = ["fixture_tree"]


@pytest.fixture
def tree(tmp_path) -> Path:
    """A fresh copy of the fixture course tree (the instructor's tree, with solutions)."""
    return copy_fixture(tmp_path / "course")
