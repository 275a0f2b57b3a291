"""The student's starter of this repository, used as a student meets it: it lints clean, its
README is the students', `make test`'s pieces say what is done, and the demo waits for TODOs."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOSS = "GAN_homework/training/loss.py"


def run(args, cwd, **kwargs):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    out = tmp_path_factory.mktemp("starter") / "hw5"
    release = run([str(REPO / "tools" / "release.py"), "--out", str(out)], REPO)
    assert release.returncode == 0, release.stderr
    return out


def fill(starter, path, number, body):
    """Put `body` (one line) into a TODO block of the starter, as a student would."""
    file = starter / path
    blank = f'raise NotImplementedError("TODO #{number} in {path}")'
    file.write_text(file.read_text().replace(blank, body))


def test_the_starter_passes_ruff(starter):
    assert "raise NotImplementedError" in (starter / LOSS).read_text()
    for command in (["check", "."], ["format", "--check", "."]):
        lint = run(["-m", "ruff", *command], starter)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_readme_is_the_students(starter):
    readme = (starter / "README.md").read_text()
    assert "## Quickstart" in readme and "make test" in readme and "## For students" in readme
    for absent in (
        "release.py",
        "snippets.py",
        "test_mutants",
        "For instructors",
        "instructor-only",
    ):
        assert absent not in readme, absent
    assert not (starter / "tests" / "test_grading.py").exists()


def test_a_project_test_that_needs_a_blank_todo_is_skipped_naming_it(starter):
    result = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/gan/test_loss_phases.py"],
        starter,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (
        "needs GAN_homework/training/loss.py#" in result.stdout
        and "(not done yet)" in result.stdout
    )
    assert "Traceback" not in result.stdout and " failed" not in result.stdout


def test_the_demo_waits_for_the_todos_of_its_part(starter):
    result = run(["-m", "tools.demo.diffusion"], starter)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Diffusion (DDPM, DDIM, DPS) demo skipped: it waits for ")
    assert "Diffusion_homework/scheduler/DDPM_scheduler.py#1" in result.stdout
    assert "Traceback" not in result.stderr


def test_status_names_each_todo_done_not_done_yet_or_wrong(starter):  # last: it fills TODOs
    blank = run(["tools/grade.py", "--submission", ".", "--status"], starter)
    assert blank.returncode == 0, blank.stdout + blank.stderr
    assert blank.stdout.count("  not done yet") == 16 and "Traceback" not in blank.stderr

    fill(starter, LOSS, 1, "loss_Gmain = F.softplus(-gen_logits)")
    fill(starter, LOSS, 2, "loss_Dgen = F.softplus(-gen_logits)")  # the sign of #1: wrong
    status = run(["tools/grade.py", "--submission", ".", "--status", "--only", LOSS], starter)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    assert any(line.startswith(f"{LOSS}#1") and line.endswith("  done") for line in lines)
    assert any(
        line.startswith(f"{LOSS}#2") and "  wrong: loss_Dgen is wrong" in line for line in lines
    )
    assert any(line.startswith(f"{LOSS}#3") and line.endswith("  not done yet") for line in lines)
