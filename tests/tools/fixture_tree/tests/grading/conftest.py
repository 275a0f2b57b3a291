import pytest

from tools.todos import BY_ID


def pytest_collection_modifyitems(items):
    for item in items:
        marks = list(item.iter_markers("todo"))
        if len(marks) != 1:
            raise pytest.UsageError(f"{item.nodeid}: a grading test needs exactly one todo marker")
        if marks[0].args[0] not in BY_ID:
            raise pytest.UsageError(f"{item.nodeid}: unknown TODO id {marks[0].args[0]!r}")
