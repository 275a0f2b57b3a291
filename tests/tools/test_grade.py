"""The autograder (tools/grade.py) on the fixture course tree."""

import json
import time
import zipfile

from tool_helpers import run_tool, submission_from

from tools import grade

FULL = {"hw/calc.py#1": 3.0, "hw/calc.py#2": 3.0, "hw/geom/area.py#1": 6.0}


def scores(results):
    return {todo: s["score"] for todo, s in results["todos"].items()}


def zero_except(**kept):
    return {todo: kept.get(todo, 0.0) for todo in FULL}


def test_solution_gets_full_marks_and_gradescope_format(tree, tmp_path):
    out = tmp_path / "results" / "results.json"
    result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", out)
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 12.0
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    assert "todos" not in results
    names = [t["name"] for t in results["tests"]]
    assert "hw/calc.py#1 test_calc.py::test_double_of_a_negative_float" in names
    assert len(names) == 5
    weights = {t["name"]: t["max_score"] for t in results["tests"]}
    assert weights["hw/calc.py#1 test_calc.py::test_double_of_an_integer"] == 1.0
    assert weights["hw/calc.py#1 test_calc.py::test_double_of_a_negative_float"] == 2.0
    assert all(
        t["visibility"] == "visible" and t["score"] == t["max_score"] for t in results["tests"]
    )
    assert "hw/geom/area.py#1" in result.stdout and "6.0/6.0" in result.stdout
    assert "hw/not_written_yet.py" not in result.stdout  # its file does not exist


def test_starter_scores_zero_with_the_not_implemented_message(tree, tmp_path):
    assert run_tool("release", "--tree", tree, "--out", tmp_path / "starter").returncode == 0
    results = grade.grade(tmp_path / "starter", tree)
    assert scores(results) == zero_except()
    assert all("NotImplementedError: TODO #" in t["output"] for t in results["tests"])


def test_zip_and_wrapped_zip_submissions(tree, tmp_path):
    for name, prefix in (("flat.zip", ""), ("wrapped.zip", "hw5_student/")):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for file in (tree / "hw").rglob("*.py"):
                archive.write(file, prefix + file.relative_to(tree).as_posix())
            archive.writestr("__MACOSX/hw/._calc.py", b"\x00\x05junk")
        results = grade.grade(path, tree)
        assert scores(results) == FULL, name


def test_infinite_loop_costs_only_its_tests(tree, tmp_path):
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {"hw/calc.py": [("    y = 2 * x\n", "    while True:\n        y = 2 * x\n")]},
    )
    started = time.time()
    results = grade.grade(sub, tree, per_test=1.0)
    assert time.time() - started < 20
    assert scores(results) == zero_except(**{"hw/calc.py#2": 3.0, "hw/geom/area.py#1": 6.0})
    loop_tests = [t for t in results["tests"] if t["name"].startswith("hw/calc.py#1 ")]
    assert all("Timeout" in t["output"] for t in loop_tests)


def test_overall_time_limit_scores_unreported_tests_zero(tree, tmp_path):
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {"hw/calc.py": [("    y = 2 * x\n", "    while True:\n        y = 2 * x\n")]},
    )
    results = grade.grade(sub, tree, per_test=60.0, timeout=3.0)
    # test_area.py runs before the loop; the test after the loop never reports
    assert scores(results) == zero_except(**{"hw/geom/area.py#1": 6.0})
    assert "overall time limit" in results["output"]
    clamp = next(t for t in results["tests"] if t["name"].startswith("hw/calc.py#2 "))
    assert clamp["output"].startswith("not run: grading hit the overall time limit")


def test_syntax_error_loses_only_that_files_todos(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 2 * x +")]})
    results = grade.grade(sub, tree)
    # area.py imports calc: it gets calc's starter, so its own TODO still scores
    assert scores(results) == zero_except(**{"hw/geom/area.py#1": 6.0})
    assert "hw/calc.py does not compile (SyntaxError at line 8" in results["output"]


def test_damaged_markers_take_the_file_whole_and_say_so(tree, tmp_path):
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {"hw/calc.py": [("# ---- END TODO #2 ----", "# (end marker deleted)")]},
    )
    sub_text = (sub / "hw/calc.py").read_text()
    (sub / "hw/calc.py").write_text(sub_text.replace('"""Two', 'OFFSET = 1\n"""Two'))
    results = grade.grade(sub, tree)
    assert scores(results) == FULL
    assert "Damaged TODO markers" in results["output"]
    assert "hw/calc.py was graded as a whole file" in results["output"]


def test_missing_file_scores_zero_with_a_note(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/geom/area.py": None})
    results = grade.grade(sub, tree)
    assert scores(results) == zero_except(**{"hw/calc.py#1": 3.0, "hw/calc.py#2": 3.0})
    assert "hw/geom/area.py is not in the submission" in results["output"]


def test_no_homework_files_is_graded_zero_with_a_note(tree, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", tmp_path / "empty", "--tree", tree, "--out", out)
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 0 and len(results["tests"]) == 5
    assert "No homework files were found" in results["output"]


def test_bad_submission_path_is_one_clear_sentence(tree, tmp_path):
    not_zip = tmp_path / "hw.rar"
    not_zip.write_bytes(b"Rar!\x1a\x07")
    for path, words in (
        (not_zip, "neither a folder nor a zip"),
        (tmp_path / "nope", "does not exist"),
    ):
        out = tmp_path / "r.json"
        result = run_tool("grade", "--submission", path, "--tree", tree, "--out", out)
        assert result.returncode != 0
        assert words in result.stderr and "Traceback" not in result.stderr
        assert not out.exists()


def test_only_grades_the_selected_todos(tree, tmp_path):
    out = tmp_path / "r.json"
    result = run_tool(
        "grade", "--submission", tree, "--tree", tree, "--out", out, "--only", "hw/geom/"
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 6.0
    assert {t["name"].split()[0] for t in results["tests"]} == {"hw/geom/area.py#1"}
    bad = run_tool(
        "grade", "--submission", tree, "--tree", tree, "--out", out, "--only", "nothing/"
    )
    assert bad.returncode != 0 and "matches no TODO id" in bad.stderr


def test_failure_message_is_the_assertion_not_a_traceback(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 2 * x + 1")]})
    results = grade.grade(sub, tree)
    test = next(t for t in results["tests"] if t["name"].endswith("test_double_of_an_integer"))
    assert "double(3) should be 6" in test["output"]
    assert len(test["output"].splitlines()) <= 21 and "Traceback" not in test["output"]


def test_broken_grading_test_file_scores_its_tests_zero(tree, tmp_path):
    # a whole-file submission (damaged markers) without a function a test file imports
    text = (tree / "hw/calc.py").read_text().replace("def clamp(", "def not_clamp(")
    text = text.replace("# ---- BEGIN TODO #2 ----", "# (marker deleted)")
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": text})
    results = grade.grade(sub, tree)
    assert scores(results) == zero_except(**{"hw/geom/area.py#1": 6.0})
    assert "could not be loaded" in results["output"]
    assert len(results["tests"]) == 5


def test_windows_zip_with_crlf_and_backslashes(tree, tmp_path):
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in (tree / "hw").rglob("*.py"):
            name = "HW5\\" + file.relative_to(tree).as_posix().replace("/", "\\")
            archive.writestr(name, "\ufeff" + file.read_text().replace("\n", "\r\n"))
    assert scores(grade.grade(path, tree)) == FULL


def test_out_that_is_a_folder_is_refused(tree, tmp_path):
    result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", tmp_path)
    assert result.returncode != 0 and "is a folder" in result.stderr
