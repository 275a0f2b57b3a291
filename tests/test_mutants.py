"""Mutant harness: the grading checks must catch every plausible wrong answer and accept every
alternative right one.

Each `tests/mutants/<part>.py` holds
    MUTANTS = {"<TODO id>": {"wrong": [(description, body), ...], "right": [(description, body), ...],
                             "nothing": [(description, body), ...]}}
with bodies written at indentation 0. Each body is graded alone, as grade.py grades a block
(tools/grade.py `grade_bodies`: the judge's checks against a worker running that body), in one
grading session per tree; a wrong body must score less than full marks, a right body full
marks, and a "nothing" body (one that does no work: it returns one of its inputs, or the
identity) no point at all; every TODO of tools/todos.py has "nothing" bodies. One test per body. The harness is also tested on the tools' fixture tree
(tests/tools/fixture_tree/), which carries its own small mutant table.
"""

from __future__ import annotations

import gc
import re
import runpy
from pathlib import Path

import pytest

from tools import grade

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "tools" / "fixture_tree"

pytestmark = pytest.mark.slow

_SESSIONS: dict = {}
KINDS = ("wrong", "right", "nothing")


@pytest.fixture(scope="module", autouse=True)
def _close_sessions():
    yield
    for context, _ in _SESSIONS.values():
        context.__exit__(None, None, None)
    _SESSIONS.clear()
    gc.unfreeze()  # the sessions' objects may be collected now; what lives on is frozen again
    gc.collect()
    gc.freeze()


def session_for(tree: Path):
    """One grading session (solution-free tree, checks, judge) per tree, for all its mutants.
    Its objects are left out of the garbage collector's passes until the module ends (gc.freeze,
    as tests/conftest.py does after collection): the full collection after each TODO
    (sandbox.release_memory) then looks only at what grading that body made."""
    if tree not in _SESSIONS:
        table = grade.load_table(tree)
        todos = [t for t in table.TODOS if t.id in grade.present_todos(tree, table)]
        context = grade.grading_session(tree, table, todos)
        _SESSIONS[tree] = (context, context.__enter__())
        gc.freeze()
    return _SESSIONS[tree][1]


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
            for kind in KINDS:
                for description, body in kinds.get(kind, []):
                    slug = re.sub(r"[^A-Za-z0-9.+*/=<>-]+", "_", description).strip("_")[:60]
                    cases.append(
                        pytest.param(
                            tree, todo, kind, description, body, id=f"{todo}:{kind}:{slug}"
                        )
                    )
    return cases


def check_mutant(tree: Path, todo: str, kind: str, description: str, body: str, session=None):
    """Grades `body` as the student's block of `todo`; asserts the expected verdict."""
    summary = grade.grade_bodies({todo: body}, tree, session or session_for(tree))[todo]
    reasons = "\n".join(f"  - {line}" for line in summary["failed"]) or "  (every check passed)"
    shown = "\n".join("    " + line for line in body.splitlines())
    assert summary["tests"] > 0, f"{todo} has no grading check"
    if kind == "nothing":
        assert summary["score"] == 0, (
            f"'{description}' for {todo} does no work but gets {summary['score']:g} of "
            f"{summary['max_score']:g} points:\n{shown}"
        )
    elif kind == "wrong":
        assert summary["score"] < summary["max_score"] - 1e-9, (
            f"wrong answer '{description}' for {todo} gets full marks; no grading check catches:\n"
            f"{shown}"
        )
    else:
        assert summary["score"] >= summary["max_score"] - 1e-9, (
            f"correct answer '{description}' for {todo} loses points:\n{shown}\n{reasons}"
        )


@pytest.mark.parametrize("tree, todo, kind, description, body", mutant_cases(ROOT))
def test_mutant(tree, todo, kind, description, body):
    check_mutant(tree, todo, kind, description, body)


def test_mutant_tables_name_known_todos_with_bodies():
    known = {t.id for t in grade.load_table(ROOT).TODOS}
    for path, table in mutant_tables(ROOT).items():
        assert isinstance(table, dict), f"{path}: MUTANTS must be a dict"
        for todo, kinds in table.items():
            assert todo in known, f"{path}: {todo!r} is not a TODO id of tools/todos.py"
            assert set(kinds) <= set(KINDS), f"{path}: {todo}: keys must be {'/'.join(KINDS)}"
            for kind, bodies in kinds.items():
                for entry in bodies:
                    assert len(entry) == 2 and all(isinstance(x, str) for x in entry), (
                        f"{path}: {todo} {kind}: entries are (description, body) string pairs"
                    )


def test_every_todo_has_bodies_that_do_nothing():
    nothing = {
        todo
        for table in mutant_tables(ROOT).values()
        for todo, kinds in table.items()
        if kinds.get("nothing")
    }
    missing = [t.id for t in grade.load_table(ROOT).TODOS if t.id not in nothing]
    assert not missing, f"no 'nothing' body (the block returns its input) for {missing}"


# ----------------------------------------------------------------------------- the harness itself


@pytest.mark.parametrize("tree, todo, kind, description, body", mutant_cases(FIXTURE))
def test_harness_on_the_fixture_tree(tree, todo, kind, description, body):
    check_mutant(tree, todo, kind, description, body)


def test_harness_flags_checks_that_miss_a_wrong_answer():
    with pytest.raises(AssertionError, match="gets full marks; no grading check catches"):
        check_mutant(FIXTURE, "hw/calc.py#1", "wrong", "actually right", "y = x + x\n")


def test_harness_flags_checks_that_give_points_for_doing_nothing():
    with pytest.raises(AssertionError, match="does no work but gets 3 of 3 points"):
        check_mutant(FIXTURE, "hw/calc.py#1", "nothing", "actually right", "y = x + x\n")


def test_harness_flags_checks_that_reject_a_right_answer():
    with pytest.raises(AssertionError, match="loses points"):
        check_mutant(FIXTURE, "hw/calc.py#1", "right", "actually wrong", "y = x - x\n")


def test_fixture_cases_skip_todos_whose_file_does_not_exist():
    ids = [case.id for case in mutant_cases(FIXTURE)]
    assert ids and not any("not_written_yet" in i for i in ids)
    assert "hw/calc.py#1:right:with_a_comment" in ids
