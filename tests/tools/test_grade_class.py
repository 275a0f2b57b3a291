"""Grading a class as a job array (tools/grade_class.py), its steps run here one after another as
slurm/grade_class.sbatch runs them on the cluster (tests/field/test_slurm.py runs them there)."""

import json
import zipfile

from tool_helpers import run_tool, submission_from


def _class(tree, tmp_path):
    folder = tmp_path / "all zips"
    submission_from(tree, folder / "alice")
    submission_from(tree, tmp_path / "bob_files", {"hw/geom/area.py": None})
    with zipfile.ZipFile(folder / "bob.zip", "w") as archive:
        for file in (tmp_path / "bob_files").rglob("*.py"):
            archive.write(file, "bob/" + file.relative_to(tmp_path / "bob_files").as_posix())
    # Two names that are the same once made safe for a page: both get a page of their own.
    submission_from(tree, folder / "carol smith")
    submission_from(tree, folder / "carol_smith", {"hw/calc.py": [("y = 2 * x", "y = 3 * x")]})
    return folder


def test_plan_grade_and_index_give_the_pages_of_one_machine_batch(tree, tmp_path):
    folder, report = _class(tree, tmp_path), tmp_path / "report"
    plan = run_tool("grade_class", "plan", folder, report)
    assert plan.returncode == 0 and plan.stdout.strip() == "4", plan.stderr
    names = [e["name"] for e in json.loads((report / "submissions.json").read_text())["entries"]]
    assert names == ["alice", "bob", "carol_smith", "carol_smith-2"]
    for task in range(4):  # the array's tasks, in any order
        graded = run_tool("grade_class", "grade", report, 3 - task, "--tree", tree)
        assert graded.returncode == 0, graded.stderr
    scores = {n: json.loads((report / "results" / f"{n}.json").read_text())["score"] for n in names}
    assert scores == {"alice": 12.0, "bob": 6.0, "carol_smith": 12.0, "carol_smith-2": 9.0}
    index = run_tool("grade_class", "index", report, "--tree", tree)
    assert index.returncode == 0, index.stderr
    page = (report / "index.html").read_text()
    assert all(f"href='{n}.html'" in page for n in names)
    assert "12 / 12" in page and "6 / 12" in page and "9 / 12" in page
    assert "0.0 / 3.0" in (report / "carol_smith-2.html").read_text()  # its own verdicts


def test_a_task_that_did_not_finish_is_listed_as_not_graded(tree, tmp_path):
    folder, report = _class(tree, tmp_path), tmp_path / "report"
    assert run_tool("grade_class", "plan", folder, report).returncode == 0
    assert run_tool("grade_class", "grade", report, 0, "--tree", tree).returncode == 0
    (report / "results" / "bob.json").write_text("{not json")
    index = run_tool("grade_class", "index", report, "--tree", tree)
    assert index.returncode == 0, index.stderr
    page = (report / "index.html").read_text()
    assert "href='alice.html'" in page and "Not graded (3)" in page
    assert "its grading did not finish" in page and "Cannot read" in page


def test_bad_input_is_one_sentence_and_changes_nothing(tree, tmp_path):
    folder = _class(tree, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    cases = [
        (("plan", tmp_path / "missing", tmp_path / "r1"), "is not a folder"),
        (("plan", empty, tmp_path / "r2"), "holds no submissions"),
        (("plan", folder, other), "already holds other files"),
        (("grade", tmp_path / "r3", "0"), "run the plan step first"),
    ]
    for args, message in cases:
        result = run_tool("grade_class", *args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    report = tmp_path / "report"
    assert run_tool("grade_class", "plan", folder, report).returncode == 0
    result = run_tool("grade_class", "grade", report, "7")
    assert result.returncode != 0 and "out of range: the plan lists 4" in result.stderr
    # The same REPORT again, for the same submissions: allowed (results are replaced).
    assert run_tool("grade_class", "plan", folder, report).returncode == 0
    result = run_tool("snippets", "--submissions", folder, "--results", report / "submissions.json",
                      "--out", tmp_path / "pages")  # fmt: skip
    assert result.returncode != 0 and "is not a folder" in result.stderr
