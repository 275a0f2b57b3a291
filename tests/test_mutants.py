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

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tools import grade

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "tools" / "fixture_tree"

pytestmark = pytest.mark.slow

# A server that imports the heavy libraries once and runs each grading pytest in a fork of
# itself, so a mutant costs pytest's run, not the imports of torch and diffusers. It never
# runs torch code itself, so the children start clean; each child gets its job's folder,
# environment, sys.path and output file, and is killed at the job's time limit.
FORK_SERVER = r"""
import importlib, json, os, signal, sys, time, traceback
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
base_path = list(sys.path)
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            fd = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            sys.dont_write_bytecode = True
            sys.path[:] = [job["cwd"], *base_path]
            import pytest
            code = int(pytest.main(job["args"]))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + job["timeout"]
    code = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    print(json.dumps({"code": code}), flush=True)
"""
PRELOAD = (
    "numpy",
    "torch",
    "torch.nn.functional",
    "PIL.Image",
    "diffusers",
    "pytest",
    "pytest_timeout",
)


class ForkRunner:
    """`runner` for tools/grade.py: runs pytest in forks of one preloaded server process."""

    def __init__(self, preload=PRELOAD):
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fork server did not start")

    def run(self, args, cwd, env, out_path, timeout):
        job = {"args": args, "cwd": cwd, "env": env, "out": out_path, "timeout": timeout}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["code"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def runner():
    if not hasattr(os, "fork"):
        yield None
        return
    server = ForkRunner()
    yield server
    server.close()


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


def check_mutant(
    tree: Path,
    todo: str,
    kind: str,
    description: str,
    body: str,
    work: Path,
    runner=None,
    per_test: float = 60.0,
):
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
    results = grade.grade(
        submission, tree, only=[todo], per_test=per_test, timeout=600.0, runner=runner
    )
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
def test_mutant(tree, todo, kind, description, body, tmp_path, runner):
    check_mutant(tree, todo, kind, description, body, tmp_path, runner)


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
def test_harness_on_the_fixture_tree(tree, todo, kind, description, body, tmp_path, runner):
    check_mutant(tree, todo, kind, description, body, tmp_path, runner)


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


def test_fork_runner_grades_like_a_subprocess_and_stops_infinite_loops(tmp_path, runner):
    if runner is None:
        pytest.skip("no os.fork here")
    body = "while True:\n    y = 2 * x\n"
    for kind, code in (("right", "y = x + x\n"), ("wrong", "y = x * x\n"), ("wrong", body)):
        work = tmp_path / str(len(list(tmp_path.iterdir())))
        check_mutant(FIXTURE, "hw/calc.py#1", kind, kind, code, work, runner, per_test=2.0)
