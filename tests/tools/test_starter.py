"""The real starter lints clean, so `make test` in a student's unfinished tree reaches the tests."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_starter_of_this_repository_passes_ruff(tmp_path):
    out = tmp_path / "starter"
    release = subprocess.run(
        [sys.executable, str(REPO / "tools" / "release.py"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert release.returncode == 0, release.stderr
    assert "raise NotImplementedError" in (out / "GAN_homework/training/loss.py").read_text()
    for command in (["check", "."], ["format", "--check", "."]):
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=out, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
