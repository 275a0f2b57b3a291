"""The release tool (tools/release.py): starter, autograder bundle, check."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from tool_helpers import run_tool, submission_from

from tools import markers

INSTRUCTOR_ONLY = [
    "tools/release.py",
    "tools/snippets.py",
    "tests/tools/test_release.py",
    "tests/test_mutants.py",
    "tests/mutants/hw.py",
    ".ci/run",
    "notes/answer_key.md",
    "notes/.instructor-only",
]


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_starter_has_no_instructor_material_and_blank_blocks(tree, tmp_path):
    out = tmp_path / "starter"
    result = run_tool("release", "--tree", tree, "--out", out)
    assert result.returncode == 0, result.stderr
    files = files_under(out)
    for rel in INSTRUCTOR_ONLY:
        assert (tree / rel).exists() and rel not in files, rel
    for rel in (
        "hw/calc.py",
        "hw/geom/area.py",
        "hw/main.py",
        "tests/grading/calc.py",
        "tools/todos.py",
    ):
        assert rel in files
    calc = (out / "hw/calc.py").read_text()
    assert markers.starter_body(1, "hw/calc.py", "    ") in calc
    assert "y = 2 * x" not in calc and "min(max(" not in calc
    assert "BEGIN TODO #2" in calc and "END TODO #2" in calc
    assert (out / "hw/main.py").read_text() == (tree / "hw/main.py").read_text()
    for rel in files:
        if rel.endswith(".py"):
            compile((out / rel).read_text(), rel, "exec")


def test_instructor_sections_of_readmes_in_sub_folders_stay_out_of_the_starter(tree, tmp_path):
    kept = "# hw\n\nFor students.\n\n| file | what |\n| --- | --- |\n| `calc.py` | sums |\n"
    section = (
        "<!-- instructor-only: left out of the starter -->\n## For instructors\n\nThe key.\n"
        "<!-- end instructor-only -->\n\n"
    )
    (tree / "hw" / "README.md").write_text(kept.replace("| file", section + "| file"))
    out = tmp_path / "starter"
    assert run_tool("release", "--tree", tree, "--out", out).returncode == 0
    assert (out / "hw" / "README.md").read_text() == kept


def test_starter_from_a_git_checkout_uses_tracked_and_unignored_files(tree, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tree / ".gitignore").write_text("scratch/\n")
    (tree / "scratch").mkdir()
    (tree / "scratch" / "big.bin").write_bytes(b"0" * 100)
    (tree / "hw" / "untracked_helper.py").write_text("X = 1\n")
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(
        [*git, "add", "hw", "tools", "tests", "notes", ".ci", "pyproject.toml"], check=True
    )
    subprocess.run([*git, "commit", "-q", "-m", "fixture"], check=True)
    out = tmp_path / "starter"
    assert run_tool("release", "--tree", tree, "--out", out).returncode == 0
    files = files_under(out)
    assert "hw/untracked_helper.py" in files and "scratch/big.bin" not in files
    assert not any(rel in files for rel in INSTRUCTOR_ONLY)


def test_release_refuses_a_non_empty_target_and_damaged_markers(tree, tmp_path):
    out = tmp_path / "starter"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_tool("release", "--tree", tree, "--out", out)
    assert result.returncode != 0 and "not empty" in result.stderr
    assert files_under(out) == ["keep.txt"]
    text = (tree / "hw/calc.py").read_text().replace("# ---- END TODO #2 ----", "# end")
    (tree / "hw/calc.py").write_text(text)
    result = run_tool("release", "--tree", tree, "--out", tmp_path / "other")
    assert result.returncode != 0 and "BEGIN TODO #2 has no END" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "other").exists()


def test_autograder_bundle_grades_a_submission(tree, tmp_path):
    bundle = tmp_path / "autograder"
    result = run_tool("release", "--tree", tree, "--autograder", bundle, "--zip")
    assert result.returncode == 0, result.stderr
    files = files_under(bundle)
    for rel in ("setup.sh", "run_autograder", "tools/grade.py", "tools/judge.py", "tools/worker.py",
                "tools/sandbox.py", "tools/markers.py", "tools/todos.py", "tools/files.py",
                "tools/_startup.py", "tests/grading/calc.py", "hw/calc.py"):  # fmt: skip
        assert rel in files, rel
    assert not any(rel in files for rel in INSTRUCTOR_ONLY)
    assert "y = 2 * x" not in (bundle / "hw/calc.py").read_text()  # no solution ships
    assert os.access(bundle / "run_autograder", os.X_OK)
    setup = (bundle / "setup.sh").read_text()
    assert "download.pytorch.org/whl/cpu" in setup and "requirements.lock" in setup
    assert "requirements-dev.txt" not in setup  # grading installs no dev tools
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        assert {"setup.sh", "run_autograder", "tools/grade.py"} <= set(archive.namelist())
        mode = archive.getinfo("run_autograder").external_attr >> 16
        assert mode & 0o111

    # what Gradescope does: source = the bundle, submission = the student's upload
    home = tmp_path / "gradescope"
    shutil.copytree(bundle, home / "source")
    wrong = {"hw/calc.py": [("c = min(max(value, low), high)", "c = value")]}
    submission_from(tree, home / "submission", wrong)
    env = dict(os.environ, AUTOGRADER_ROOT=str(home), AUTOGRADER_PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(home / "source" / "run_autograder")], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((home / "results" / "results.json").read_text())
    assert results["score"] == 10.0  # clamp: right for the value inside [0, 1] only


def test_check_passes_on_the_fixture(tree):
    result = run_tool("release", "--tree", tree, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("hw/calc.py#1") and "solution 3.0/3.0" in line and "starter 0.0/3.0" in line
        and "recorded 3.0/3.0 0.0/3.0" in line and line.endswith("ok")
        for line in lines
    )  # fmt: skip
    assert "hw/not_written_yet.py#1" in result.stdout  # listed as not checked


def test_check_fails_when_a_check_passes_on_the_starter(tree):
    checks = tree / "tests/grading/calc.py"
    checks.write_text(
        checks.read_text() + "\n\n@check(CLAMP)\ndef clamp_exists(block):\n    pass\n"
    )
    result = run_tool("release", "--tree", tree, "--check")
    assert result.returncode != 0
    line = next(x for x in result.stdout.splitlines() if x.startswith("hw/calc.py#2"))
    assert "FAIL" in line and "starter passes" in line and "clamp_exists" in line


def test_check_fails_on_a_marker_without_a_table_entry(tree):
    text = (tree / "hw/main.py").read_text()
    text += "\n\ndef extra():\n    # BEGIN TODO #7\n    return 1\n    # END TODO #7\n"
    (tree / "hw/main.py").write_text(text)
    result = run_tool("release", "--tree", tree, "--check")
    assert result.returncode != 0
    assert "hw/main.py#7" in result.stdout and "no entry in tools/todos.py" in result.stdout


def remove_checks(tree):
    checks = tree / "tests/grading/area.py"
    text = checks.read_text()
    checks.write_text(
        text[: text.index("@check(AREA)")].replace("from tools.judge import check\n", "")
    )


def remove_markers(tree):
    edit(tree, "hw/calc.py", "# ---- BEGIN TODO #2 ----", "# (begin)")
    edit(tree, "hw/calc.py", "# ---- END TODO #2 ----", "# (end)")


def remove_registry_entry(tree):
    with open(tree / "tools/todos.py", "a") as registry:
        registry.write(
            '\nTODOS = [t for t in TODOS if t.id != "hw/geom/area.py#1"]\n'
            "BY_ID = {t.id: t for t in TODOS}\n"
        )


def edit(tree, rel, old, new):
    text = (tree / rel).read_text()
    assert old in text, (rel, old)
    (tree / rel).write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "remove, sentence",
    [
        (
            remove_checks,
            "hw/geom/area.py#1 has no checks in tests/grading/area.py",
        ),
        (
            lambda tree: edit(
                tree, "tests/grading/reach.py", ', "hw/geom/area.py": {1: reach_area}', ""
            ),
            "hw/geom/area.py#1 has no reach entry in tests/grading/reach.py "
            "(REACH['hw/geom/area.py'][1])",
        ),
        (
            lambda tree: edit(
                tree, "tests/mutants/hw.py", '"hw/geom/area.py#1"', '"hw/geom/gone.py#1"'
            ),
            "hw/geom/area.py#1 has no mutants in tests/mutants/ (wrong bodies in MUTANTS)",
        ),
        (
            remove_markers,
            "hw/calc.py#2 is in tools/todos.py, but hw/calc.py has no BEGIN/END TODO #2 lines",
        ),
        (
            remove_registry_entry,
            "hw/geom/area.py#1 (lines 9-11) has no entry in tools/todos.py",
        ),
    ],
    ids=["checks", "reach", "mutants", "marker lines", "registry entry"],
)
def test_check_names_each_missing_piece_of_a_todo(tree, remove, sentence):
    remove(tree)
    result = run_tool("release", "--tree", tree, "--check")
    assert result.returncode != 0
    assert sentence in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
