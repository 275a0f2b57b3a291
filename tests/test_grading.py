"""The autograder on the course tree: the reference solution earns every point, the starter none,
and a correct block keeps its points whatever the other blocks hold."""

import shutil

import pytest

from tools import grade, markers

ROOT = grade.REPO_ROOT
TABLE = grade.load_table(ROOT)

pytestmark = pytest.mark.slow


def copy_homework(dest, blank=()):
    """The homework files of this tree, with the TODOs in `blank` back to the starter's body."""
    for path in sorted({t.path for t in TABLE.TODOS}):
        text = (ROOT / path).read_text(encoding="utf-8")
        blocks = markers.blocks_by_number(text, path)
        stubs = {
            todo.number: markers.starter_body(todo.number, path, blocks[todo.number].indent)
            for todo in blank
            if todo.path == path
        }
        text = markers.replace_bodies(text, stubs, path)
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_text(text, encoding="utf-8")
    return dest


def test_reference_solution_earns_every_point(tmp_path):
    results = grade.grade(copy_homework(tmp_path / "solution"))
    lost = {t: s["failed"] for t, s in results["todos"].items() if s["score"] < s["max_score"]}
    assert not lost, lost
    assert results["score"] == pytest.approx(sum(TABLE.points(t.id) for t in TABLE.TODOS))
    assert len(results["todos"]) == len(TABLE.TODOS)


def test_each_block_is_graded_on_its_own(tmp_path):
    """Every other block filled, or every other block blank: the same points for the one kept."""
    kept = [t for t in TABLE.TODOS if t.number == 1]
    others = [t for t in TABLE.TODOS if t not in kept]
    results = grade.grade(copy_homework(tmp_path / "partial", blank=others))
    for todo in TABLE.TODOS:
        summary = results["todos"][todo.id]
        if todo in kept:
            assert summary["score"] == pytest.approx(summary["max_score"]), (todo.id, summary)
        else:
            assert summary["score"] == 0, (todo.id, summary)
            assert all(r.startswith("not done yet") for r in summary["failed"]), summary
    shutil.rmtree(tmp_path / "partial")
