"""The autograder (tools/grade.py) on the fixture course tree: scores, intake, messages."""

import json
import zipfile

import pytest
from tool_helpers import run_tool, submission_from

from tools import grade, markers, sandbox

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
    assert "hw/calc.py#1 double_of_a_negative_float" in names
    assert "hw/calc.py#2 clamp_limits_both_ends[3-1]" in names
    assert len(names) == 7
    weights = {t["name"]: t["max_score"] for t in results["tests"]}
    assert weights["hw/calc.py#1 double_of_an_integer"] == 1.0
    assert weights["hw/calc.py#1 double_of_a_negative_float"] == 2.0
    assert all(
        t["visibility"] == "visible" and t["score"] == t["max_score"] for t in results["tests"]
    )
    assert "hw/geom/area.py#1" in result.stdout and "6.0/6.0" in result.stdout
    assert "hw/not_written_yet.py" not in result.stdout  # its file does not exist


def test_starter_scores_zero_and_says_not_done_yet(tree, tmp_path):
    assert run_tool("release", "--tree", tree, "--out", tmp_path / "starter").returncode == 0
    results = grade.grade(tmp_path / "starter", tree)
    assert scores(results) == zero_except()
    assert all(
        t["output"].startswith("not done yet: NotImplementedError: TODO #")
        for t in results["tests"]
    )


def test_zip_and_wrapped_zip_submissions(tree, tmp_path):
    for name, prefix in (("flat.zip", ""), ("wrapped.zip", "hw5_student/")):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for file in (tree / "hw").rglob("*.py"):
                archive.write(file, prefix + file.relative_to(tree).as_posix())
            archive.writestr("__MACOSX/hw/._calc.py", b"\x00\x05junk")
        results = grade.grade(path, tree)
        assert scores(results) == FULL, name


def test_a_correct_block_keeps_its_marks_beside_a_blank_one(tree, tmp_path):
    blank = markers.starter_body(2, "hw/calc.py", " " * 8)
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {"hw/calc.py": [("        c = min(max(value, low), high)\n", blank)]},
    )
    assert scores(grade.grade(sub, tree)) == zero_except(
        **{"hw/calc.py#1": 3.0, "hw/geom/area.py#1": 6.0}
    )


def test_syntax_error_loses_only_its_block(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 2 * x +")]})
    results = grade.grade(sub, tree)
    assert scores(results) == zero_except(**{"hw/calc.py#2": 3.0, "hw/geom/area.py#1": 6.0})
    double = next(t for t in results["tests"] if t["name"].startswith("hw/calc.py#1 "))
    assert (
        double["output"].startswith("SyntaxError: ") and "line 1 of the block" in double["output"]
    )


def test_markers_at_any_indentation_and_a_body_indented_its_own_way(tree, tmp_path):
    text = (tree / "hw/calc.py").read_text()
    text = text.replace("    # TODO #1: set y to 2 * x.\n", "")
    text = text.replace(
        "    # ------------------------------- BEGIN TODO #1 -------------------------------\n"
        "    y = 2 * x\n",
        "# ------------------------------- BEGIN TODO #1 -------------------------------\n"
        "    y = 2 * x\n",
    )
    text = text.replace(
        "        c = min(max(value, low), high)\n", "  c = min(max(value, low), high)\n"
    )
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": text})
    assert scores(grade.grade(sub, tree)) == FULL


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


def test_a_whole_file_without_the_programs_function_loses_only_that_block(tree, tmp_path):
    text = (tree / "hw/calc.py").read_text().replace("def clamp(", "def not_clamp(")
    text = text.replace("# ---- BEGIN TODO #2 ----", "# (marker deleted)")
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": text})
    results = grade.grade(sub, tree)
    assert scores(results) == zero_except(**{"hw/calc.py#1": 3.0, "hw/geom/area.py#1": 6.0})
    clamp = next(t for t in results["tests"] if t["name"].startswith("hw/calc.py#2 "))
    assert "BEGIN TODO #2" in clamp["output"]


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
    assert results["score"] == 0 and len(results["tests"]) == 7
    assert "No homework files were found" in results["output"]


def test_bad_submission_path_is_one_clear_sentence(tree, tmp_path):
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", tmp_path / "nope", "--tree", tree, "--out", out)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    failed = json.loads(out.read_text())  # Gradescope shows this, not a failed autograder
    assert failed["score"] == 0 and failed["tests"] == [] and "does not exist" in failed["output"]
    assert failed["output_format"] == "text"


def corrupt(path, member):
    """Flip bytes inside one member's compressed data."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_broken_zips_end_in_results_with_a_note(tree, tmp_path, compression):
    path = tmp_path / "hw.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        for file in (tree / "hw").rglob("*.py"):
            archive.write(file, file.relative_to(tree).as_posix())
    corrupt(path, "hw/calc.py")
    results = grade.grade(path, tree)  # bad CRC or zlib error: that file is lost, not the run
    assert scores(results) == zero_except(**{"hw/geom/area.py#1": 6.0})
    assert "hw/calc.py could not be read from the zip" in results["output"]

    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "hw.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)  # a zip in name only
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", folder, "--tree", tree, "--out", out)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert json.loads(out.read_text())["score"] == 0


def test_two_copies_grade_the_filled_one_with_a_note(tree, tmp_path):
    sub = tmp_path / "sub"
    assert run_tool("release", "--tree", tree, "--out", sub).returncode == 0  # starter at the top
    submission_from(tree, sub / "my_solution")
    results = grade.grade(sub, tree)
    assert scores(results) == FULL
    assert "more than one copy of the homework" in results["output"]
    assert "my_solution/" in results["output"]


def test_a_link_out_of_the_submission_is_not_read(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": None})
    (sub / "hw" / "calc.py").symlink_to(tree / "hw" / "calc.py")
    results = grade.grade(sub, tree)
    assert scores(results) == zero_except(**{"hw/geom/area.py#1": 6.0})
    assert "link out of the submission" in results["output"]


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


def test_reasons_are_on_screen_and_in_results(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("y = 2 * x", "y = 2 * x + 1")]})
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", sub, "--tree", tree, "--out", out)
    assert "    - double(3) should be 6, got 7" in result.stdout
    test = next(
        t
        for t in json.loads(out.read_text())["tests"]
        if t["name"].endswith("double_of_an_integer")
    )
    assert test["output"] == "double(3) should be 6, got 7"


def test_windows_zip_with_crlf_and_backslashes(tree, tmp_path):
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in (tree / "hw").rglob("*.py"):
            name = "HW5\\" + file.relative_to(tree).as_posix().replace("/", "\\")
            archive.writestr(name, "\ufeff" + file.read_text().replace("\n", "\r\n"))
    assert scores(grade.grade(path, tree)) == FULL


def test_bad_out_is_one_sentence(tree, tmp_path):
    cases = [(tmp_path, "is a folder"), (tmp_path / "dangling", "link to nothing")]
    (tmp_path / "dangling").symlink_to(tmp_path / "missing" / "r.json")
    for out, words in cases:
        result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", out)
        assert result.returncode != 0 and words in result.stderr, result.stderr


def test_grading_needs_no_pytest_and_a_missing_library_is_one_sentence(tree, tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pytest.py").write_text("raise ImportError('pytest is not installed here')\n")
    env = {"PYTHONPATH": str(shadow)}
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", out, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["score"] == 12.0

    (shadow / "safetensors.py").write_text("raise ModuleNotFoundError(name='safetensors')\n")
    out.unlink()
    result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", out, env=env)
    assert result.returncode != 0 and not out.exists()
    assert "lacks the Python module safetensors" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_set_up_stops_grading_instead_of_scoring_zeros(tree, tmp_path):
    reach = tree / "tests/grading/reach.py"
    reach.write_text(reach.read_text().replace("module.rect_area,", "module.no_such_function,"))
    out = tmp_path / "r.json"
    result = run_tool("grade", "--submission", tree, "--tree", tree, "--out", out)
    assert result.returncode == 2
    assert "the grading set-up is broken" in result.stderr and "hw/geom/area.py#1" in result.stderr
    failed = json.loads(out.read_text())  # no zeros as if earned: no score, and why
    assert failed["score"] == 0 and failed["tests"] == []
    assert "grading set-up is broken" in failed["output"] and "not a verdict" in failed["output"]


def test_not_root_in_the_instructor_tree_says_what_a_submission_could_read(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "running_as_root", lambda: False)
    assert "can read what this user can read" in grade.trust_note(grade.REPO_ROOT)
    assert grade.trust_note(tmp_path) is None  # no tools/release.py: a starter or a bundle
    monkeypatch.setattr(sandbox, "running_as_root", lambda: True)
    assert grade.trust_note(grade.REPO_ROOT) is None


def test_status_says_done_not_done_yet_or_wrong(tree, tmp_path):
    blank = markers.starter_body(2, "hw/calc.py", " " * 8)
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {
            "hw/calc.py": [("        c = min(max(value, low), high)\n", blank)],
            "hw/geom/area.py": [("area = width * height", "area = width + height")],
        },
    )
    result = run_tool("grade", "--submission", sub, "--tree", tree, "--status")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("hw/calc.py#1") and line.endswith("  done") for line in lines)
    assert any(
        line.startswith("hw/calc.py#2") and line.endswith("  not done yet") for line in lines
    )
    assert any(line.startswith("hw/geom/area.py#1") and "  wrong: " in line for line in lines)
    assert lines[-1] == "3 TODOs: 1 done, 1 wrong, 1 not done yet."
    assert not (sub / "results.json").exists()


def test_tables_give_each_whole_reason_once_then_the_counts():
    sign = (
        "loss_Dgen is wrong: expected the batch mean of softplus(D(G(z))) = log(1 + exp(D(G(z)))) "
        "= {:.6f}, got {:.6f}. It looks like the sign is flipped: softplus(-D(G(z))) is G's loss."
    )
    gradient = "The gradient of loss_Dgen with respect to gen_logits is wrong: expected sigmoid."
    blank = "not done yet: NotImplementedError: TODO #3 in a.py"
    tests = [{"name": "a.py#1 value", "status": "passed", "output": ""}]
    tests += [
        {"name": f"a.py#2 value[{b}]", "status": "failed", "output": sign.format(b, -b)}
        for b in (1, 3, 5)
    ]
    tests += [
        {"name": "a.py#2 gradient[1]", "status": "failed", "output": gradient},
        {"name": "a.py#2 shape", "status": "passed", "output": ""},
        {"name": "a.py#3 value", "status": "failed", "output": blank},
    ]
    todos = {
        "a.py#1": {"score": 4.0, "max_score": 4.0, "passed": 1, "tests": 1, "failed": []},
        "a.py#2": {"score": 0.8, "max_score": 4.0, "passed": 1, "tests": 5,
                   "failed": [sign.format(b, -b)[:40] for b in (1, 3, 5)] + [gradient]},
        "a.py#3": {"score": 0.0, "max_score": 4.0, "passed": 0, "tests": 1, "failed": [blank]},
    }  # fmt: skip
    results = {"tests": tests, "todos": todos, "output": "Score 4.8 / 12.0 over 3 TODO blocks."}

    table, wrong = grade.status_table(results)
    words = " ".join(table.split())
    assert wrong and words.count("loss_Dgen is wrong") == 1
    assert f"a.py#2 wrong: {sign.format(1, -1)}" in words, "every sentence of the first reason"
    assert gradient not in words, "a wrong TODO's first failing check only"
    assert table.splitlines()[-1] == "3 TODOs: 1 done, 1 wrong, 1 not done yet."
    assert all(len(line) <= 120 for line in table.splitlines())

    summary = " ".join(grade.summary_table(results).split())
    assert summary.count("loss_Dgen is wrong") == 1 and summary.count(gradient) == 1
    assert f"- {sign.format(1, -1)} - {gradient}" in summary
    assert summary.count(blank) == 1 and "a.py#1 4.0/4.0 1/1 a.py#2" in summary


def test_a_grader_that_fails_anywhere_still_writes_results(tree, tmp_path, monkeypatch):
    """An error of the grader itself (here a check module that raises outside any check) ends in
    a results.json that scores nothing and says so, with the details for instructors."""
    out = tmp_path / "r.json"

    def broken(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(grade, "grade", broken)
    with pytest.raises(MemoryError):
        grade.main(["--submission", str(tree), "--tree", str(tree), "--out", str(out)])
    failed = json.loads(out.read_text())
    assert failed["score"] == 0 and "the grader itself failed (MemoryError)" in failed["output"]


def test_a_deadline_ends_grading_in_time_with_the_reasons(tree, tmp_path):
    """Every block hangs; the deadline, not the per-TODO limits, decides when grading ends, and
    the TODOs not reached score 0 with the reason."""
    sub = submission_from(
        tree,
        tmp_path / "sub",
        {
            "hw/calc.py": [
                ("    y = 2 * x\n", "    while True:\n        pass\n"),
                (
                    "        c = min(max(value, low), high)\n",
                    "        while True:\n            pass\n",
                ),
            ]
        },
    )
    out = tmp_path / "r.json"
    result = run_tool(
        "grade", "--submission", sub, "--tree", tree, "--out", out,
        "--timeout-per-todo", "20", "--deadline", "12",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    reasons = " ".join(t["output"] for t in results["tests"])
    assert "overall time limit of 12 s" in reasons
    assert results["score"] == 0
