"""The student's starter of this repository, used as a student meets it: it lints clean, its
README is the students', `make test`'s pieces say what is done, and the demo waits for TODOs."""

import ast
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tools import grade, markers, recorded, release

REPO = Path(__file__).resolve().parents[2]
LOSS = "GAN_homework/training/loss.py"
TABLE = grade.load_table(REPO)
AS_IS = {TABLE.REACH_MODULE, *release.STARTER_CHECKS_AS_IS}  # checks modules shipped unchanged


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
    blank = markers.starter_body(number, path).strip()
    file.write_text(file.read_text().replace(blank, body))


def test_the_starter_passes_ruff(starter):
    assert "raise NotImplementedError" in (starter / LOSS).read_text()
    for command in (["check", "."], ["format", "--check", "."]):
        lint = run(["-m", "ruff", *command], starter)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_students_tools_start_by_their_path_from_a_homework_folder(starter):
    assert (starter / "tools" / "_startup.py").is_file()
    assert not (starter / "tools" / "release.py").exists()
    for tool in ("grade", "submit"):
        result = run([f"../tools/{tool}.py", "--help"], starter / "GAN_homework")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {tool}.py "), result.stdout


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


def normalized(text: str) -> str:
    return " ".join(text.split())


def answer_key() -> dict[str, str]:
    """{what: its text, whitespace normalized}: every TODO's reference body, and the source of
    every function of the checks modules that the starter must not hold (oracles, checks)."""
    key = {}
    for todo in TABLE.TODOS:
        if (REPO / todo.path).is_file():
            key[f"the reference body of {todo.id}"] = normalized(
                recorded.reference_body(REPO, todo)
            )
    for rel in sorted({t.checks for t in TABLE.TODOS} - AS_IS):
        source = (REPO / rel).read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                segment = ast.get_source_segment(source, node)
                body = segment.split(":", 1)[1]  # what follows `def f(...):`, in any function
                key[f"{rel}: {node.name}"] = normalized(body)
    return key


def test_the_starter_holds_no_answer_key(starter):
    key = answer_key()
    assert len(key) > 30 and all(len(text) > 20 for text in key.values()), key
    found = []
    for file in sorted(starter.rglob("*")):
        if not file.is_file() or file.suffix == ".safetensors":
            continue
        try:
            text = normalized(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue
        found += [
            f"{what} in {file.relative_to(starter)}" for what, part in key.items() if part in text
        ]
    assert not found, found
    for rel in sorted({t.checks for t in TABLE.TODOS} - AS_IS):
        assert "Recording(__file__)" in (starter / rel).read_text(), rel


def spot_checks() -> list:
    """Of every TODO whose checks are recorded, the first wrong answer and the last right one of
    tests/mutants: a spot check, the full tables run in tests/test_mutants.py."""
    picks = []
    for path in sorted((REPO / "tests" / "mutants").glob("*.py")):
        for todo, kinds in runpy.run_path(str(path)).get("MUTANTS", {}).items():
            if todo not in TABLE.BY_ID or TABLE.BY_ID[todo].checks in AS_IS:
                continue
            for kind, index in (("wrong", 0), ("right", -1)):
                if kinds.get(kind):
                    description, body = kinds[kind][index]
                    picks.append(pytest.param(todo, kind, body, id=f"{todo}:{kind}:{description}"))
    return picks


@pytest.fixture(scope="module")
def session(starter):
    """A grading session of the starter's own (recorded) checks."""
    table = grade.load_table(starter)
    todos = [t for t in table.TODOS if t.checks not in AS_IS]
    with grade.grading_session(starter, table, todos) as session:
        yield session


@pytest.mark.parametrize("todo, kind, body", spot_checks())
def test_recorded_checks_agree_with_the_autograder_on_mutants(starter, session, todo, kind, body):
    summary = grade.grade_bodies({todo: body}, starter, session)[todo]
    if kind == "wrong":
        assert summary["score"] < summary["max_score"] - 1e-9, "a wrong answer passes"
    else:
        assert summary["score"] >= summary["max_score"] - 1e-9, summary["failed"]


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
    assert any(line.startswith(f"{LOSS}#2  wrong: case 1 of ") for line in lines)
    reason = " ".join(status.stdout.split())  # the reason may wrap
    assert "the mean of `loss_Dgen` over the batch should be " in reason, status.stdout
    assert any(line.startswith(f"{LOSS}#3") and line.endswith("  not done yet") for line in lines)
