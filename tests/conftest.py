"""Puts both homework trees and the repository root on the import path, and skips a test that
needs a TODO block which is still the starter's, naming the block.

Each homework runs from its own folder (`cd GAN_homework && python train.py`), so its modules
import each other by their top-level names (`training.loss`, `scheduler.DDPM_scheduler`).
The two trees use distinct top-level names, so both can be imported in one test session.

A project test that runs code through a TODO block declares it:

    @pytest.mark.needs("GAN_homework/training/loss.py#1", "GAN_homework/DiffAugment_pytorch.py#1")

In the student's starter such a test is skipped, "needs <TODO id> (not done yet)", while one of
those blocks is still blank (tools/markers.py, is_starter), and runs once they are all filled: a
failure then is the filled code's. A failure of an undeclared test that names a blank block (the
block's `NotImplementedError("TODO #N in <file>")`, markers.STARTER_MESSAGE_RE) is reported the
same way. At the end, the skips are counted in one line per TODO rather than listed per test.
"""

import functools
import gc
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "GAN_homework", ROOT / "Diffusion_homework"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tools import markers, todos  # noqa: E402

NOT_DONE = re.compile(r"^needs (.+) \(not done yet\)$")


@functools.cache
def block_state(todo: str) -> str | None:
    """Whether the block `<path>#<N>` of this tree is "blank" (the starter's) or "filled"; None
    when this tree has no such block."""
    path, _, number = todo.partition("#")
    try:
        text = (ROOT / path).read_text(encoding="utf-8")
        block = markers.blocks_by_number(text, path)[int(number)]
    except (OSError, ValueError, KeyError):  # MarkerError is a ValueError
        return None
    return "blank" if markers.is_starter(block, path) else "filled"


def blank_todo(text: str) -> str | None:
    """The id of a TODO named in `text` whose block in this tree is still the starter's."""
    for number, path in markers.STARTER_MESSAGE_RE.findall(text):
        if path and block_state(f"{path}#{number}") == "blank":
            return f"{path}#{number}"
    return None


def not_done(ids) -> str:
    return f"needs {', '.join(ids)} (not done yet)"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs(*todo_ids): the TODO blocks the test runs ('<path>#<N>'); it is skipped while "
        "one of them is still the starter's",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        needed = [todo for mark in item.iter_markers("needs") for todo in mark.args]
        unknown = [todo for todo in needed if block_state(todo) is None]
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.needs names {', '.join(unknown)}, which this tree "
                "has no TODO block for."
            )
        blank = [todo for todo in dict.fromkeys(needed) if block_state(todo) == "blank"]
        if blank:
            item.add_marker(pytest.mark.skip(reason=not_done(blank)))


def pytest_collection_finish(session):
    """What collection loaded (torch, diffusers, the test modules and items) lives to the end:
    it is left out of the garbage collector's full passes from here on (gc.freeze). Grading makes
    one after every TODO (tools/sandbox.py release_memory), which took 0.3 s each without this."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        todo = blank_todo(str(call.excinfo.value)) or blank_todo(str(report.longrepr))
        if todo:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, not_done([todo]))


def _waiting(report) -> list[str]:
    """The TODOs a skipped test waits for, from its reason; [] for any other skip."""
    longrepr = getattr(report, "longrepr", None)
    if not (isinstance(longrepr, tuple) and len(longrepr) == 3):
        return []
    match = NOT_DONE.match(str(longrepr[2]).removeprefix("Skipped: "))
    return match.group(1).split(", ") if match else []


def _order(todo: str) -> tuple[int, str]:
    """The registry's order (tools/todos.py), as in `grade.py --status`."""
    ids = [t.id for t in todos.TODOS]
    return (ids.index(todo), "") if todo in ids else (len(ids), todo)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """The skips for TODOs not done yet: one line per TODO with its count of tests, after
    pytest's short summary, which lists the other skips."""
    stats = terminalreporter.stats
    skipped = stats.get("skipped", [])
    waiting = [report for report in skipped if _waiting(report)]
    if waiting:
        stats["skipped"] = [report for report in skipped if not _waiting(report)]
    try:
        return (yield)
    finally:
        if waiting:
            stats["skipped"] = skipped  # counted in the last line, "N passed, M skipped"
            counts = Counter(todo for report in waiting for todo in _waiting(report))
            terminalreporter.write_sep("-", "tests that wait for a TODO")
            for todo, count in sorted(counts.items(), key=lambda item: _order(item[0])):
                tests = "test" if count == 1 else "tests"
                terminalreporter.write_line(f"{not_done([todo])}: {count} {tests}")
