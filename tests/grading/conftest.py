"""Grading tests: every test carries exactly one `@pytest.mark.todo("<TODO id>")` marker.

Optional `weight=` (default 1) sets the test's share of its TODO's points (tools/todos.py).
"""

from pathlib import Path

import pytest

from tools.todos import BY_ID

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE not in Path(item.path).resolve().parents:
            continue  # a project test collected in the same session
        marks = list(item.iter_markers("todo"))
        if len(marks) != 1:
            raise pytest.UsageError(f"{item.nodeid}: a grading test needs exactly one todo marker")
        todo_id = marks[0].args[0]
        if todo_id not in BY_ID:
            raise pytest.UsageError(f"{item.nodeid}: unknown TODO id {todo_id!r}")
