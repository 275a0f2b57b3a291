"""Mutant harness: the grading tests must catch every plausible wrong answer and accept every
alternative right one.

Each `tests/mutants/<part>.py` holds
    MUTANTS = {"<TODO id>": {"wrong": [(description, body), ...], "right": [(description, body), ...]}}
with bodies written at indentation 0. For each body whose TODO file exists, the harness makes a
submission from this tree's solution files with that one block replaced (re-indented), grades
it with `tools/grade.py --only <TODO id>`, and asserts: a wrong body scores less than full
marks, a right body full marks. One test per body. The harness is also tested on the tools'
fixture tree (tests/tools/fixture_tree/), which carries its own small mutant table.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from tools import grade

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "tools" / "fixture_tree"

pytestmark = pytest.mark.slow


def mutant_tables(tree: Path) -> dict[str, dict]:
    tables = {}
    for path in sorted((tree / "tests" / "mutants").glob("*.py")):
        if path.name != "__init__.py":
            tables[path.relative_to(tree).as_posix()] = runpy.run_path(str(path)).get("MUTANTS", {})
    return tables


def mutant_cases(tree: Path) -> list:
    present = set(grade.present_todos(tree, grade.load_table(tree)))
    cases = []
    for table in mutant_tables(tree).values():
        for todo, kinds in table.items():
            if todo not in present:
                continue
            for kind in ("wrong", "right"):
                for description, body in kinds.get(kind, []):
                    slug = re.sub(r"[^A-Za-z0-9.+*/=<>-]+", "_", description).strip("_")[:60]
                    cases.append(
                        pytest.param(
                            tree, todo, kind, description, body, id=f"{todo}:{kind}:{slug}"
                        )
                    )
    return cases


def check_mutant(tree: Path, todo: str, kind: str, description: str, body: str, work: Path):
    """Grades the solution with one block replaced by `body`; asserts the expected verdict."""
    table = grade.load_table(tree)
    files = sorted({t.split("#")[0] for t in grade.present_todos(tree, table)})
    rel, number = todo.split("#")[0], int(todo.split("#")[1])
    submission = work / "submission"
    for name in files:
        text = (tree / name).read_text(encoding="utf-8")
        if name == rel:
            text = grade.markers.splice_body(text, number, body, rel)
        (submission / name).parent.mkdir(parents=True, exist_ok=True)
        (submission / name).write_text(text, encoding="utf-8")
    results = grade.grade(submission, tree, only=[todo], per_test=60.0, timeout=600.0)
    summary = results["todos"][todo]
    verdicts = "\n".join(
        f"  {t['score']}/{t['max_score']} {t['name']}: {t['output']}"
        for t in results["tests"]
        if t["name"].startswith(todo + " ")
    )
    shown = "\n".join("    " + line for line in body.splitlines())
    assert summary["tests"] > 0, f"{todo} has no grading test\n{results['output']}"
    if kind == "wrong":
        assert summary["score"] < summary["max_score"] - 1e-9, (
            f"wrong answer '{description}' for {todo} gets full marks; no grading test catches:\n"
            f"{shown}\n{verdicts}"
        )
    else:
        assert summary["score"] >= summary["max_score"] - 1e-9, (
            f"correct answer '{description}' for {todo} loses points:\n{shown}\n{verdicts}\n"
            f"{results['output']}"
        )


@pytest.mark.parametrize("tree, todo, kind, description, body", mutant_cases(ROOT))
def test_mutant(tree, todo, kind, description, body, tmp_path):
    check_mutant(tree, todo, kind, description, body, tmp_path)


def test_mutant_tables_name_known_todos_with_bodies():
    known = {t.id for t in grade.load_table(ROOT).TODOS}
    for path, table in mutant_tables(ROOT).items():
        assert isinstance(table, dict), f"{path}: MUTANTS must be a dict"
        for todo, kinds in table.items():
            assert todo in known, f"{path}: {todo!r} is not a TODO id of tools/todos.py"
            assert set(kinds) <= {"wrong", "right"}, f"{path}: {todo}: keys must be wrong/right"
            for kind, bodies in kinds.items():
                for entry in bodies:
                    assert len(entry) == 2 and all(isinstance(x, str) for x in entry), (
                        f"{path}: {todo} {kind}: entries are (description, body) string pairs"
                    )


# ----------------------------------------------------------------------------- the harness itself


@pytest.mark.parametrize("tree, todo, kind, description, body", mutant_cases(FIXTURE))
def test_harness_on_the_fixture_tree(tree, todo, kind, description, body, tmp_path):
    check_mutant(tree, todo, kind, description, body, tmp_path)


def test_harness_flags_tests_that_miss_a_wrong_answer(tmp_path):
    with pytest.raises(AssertionError, match="gets full marks; no grading test catches"):
        check_mutant(FIXTURE, "hw/calc.py#1", "wrong", "actually right", "y = x + x\n", tmp_path)


def test_harness_flags_tests_that_reject_a_right_answer(tmp_path):
    with pytest.raises(AssertionError, match="loses points"):
        check_mutant(FIXTURE, "hw/calc.py#1", "right", "actually wrong", "y = x - x\n", tmp_path)


def test_fixture_cases_skip_todos_whose_file_does_not_exist():
    ids = [case.id for case in mutant_cases(FIXTURE)]
    assert ids and not any("not_written_yet" in i for i in ids)
    assert "hw/calc.py#1:right:with_a_comment" in ids
