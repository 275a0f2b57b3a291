"""pytest plugin that records grading results, one JSON line per event, as they happen.

Loaded by tools/grade.py with `-p tools.grading_plugin --grading-log FILE`. Lines are appended
and flushed one at a time, so the results of finished tests survive if the run is killed.
Events:
  {"event": "collected", "nodeid", "todo", "weight"}       one per selected test
  {"event": "collect_error", "nodeid", "message"}          a test file that could not be imported
  {"event": "result", "nodeid", "todo", "weight", "outcome", "message", "duration"}
`--grading-only PREFIX` (repeatable) keeps only the tests whose TODO id starts with a prefix.
"""

from __future__ import annotations

import json
import os

import pytest

MAX_LINES = 20
MAX_CHARS = 2000


def pytest_addoption(parser):
    group = parser.getgroup("grading")
    group.addoption("--grading-log", default=None, help="file that receives the JSON lines")
    group.addoption(
        "--grading-only",
        action="append",
        default=[],
        metavar="PREFIX",
        help="keep only tests whose TODO id starts with PREFIX (repeatable)",
    )


def _todo_of(item) -> tuple[str | None, float]:
    mark = item.get_closest_marker("todo")
    if mark is None or not mark.args:
        return None, 1.0
    return str(mark.args[0]), float(mark.kwargs.get("weight", 1))


class _Recorder:
    def __init__(self, path: str, prefixes: list[str]):
        self.path = path
        self.prefixes = prefixes
        self.todos: dict[str, tuple[str | None, float]] = {}
        self.phases: dict[str, list] = {}

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if self.prefixes:
            keep = [
                i for i in items if any((_todo_of(i)[0] or "").startswith(p) for p in self.prefixes)
            ]
            dropped = [i for i in items if i not in keep]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        for item in items:
            todo, weight = _todo_of(item)
            self.todos[item.nodeid] = (todo, weight)
            self.write(
                {"event": "collected", "nodeid": item.nodeid, "todo": todo, "weight": weight}
            )

    def pytest_collectreport(self, report):
        if report.failed:
            self.write(
                {
                    "event": "collect_error",
                    "nodeid": report.nodeid,
                    "message": short_message(report),
                }
            )

    def pytest_runtest_logreport(self, report):
        self.phases.setdefault(report.nodeid, []).append(report)
        if report.when != "teardown":
            return
        reports = self.phases.pop(report.nodeid)
        todo, weight = self.todos.get(report.nodeid, (None, 1.0))
        failed = [r for r in reports if r.failed]
        skipped = [r for r in reports if r.skipped]
        if failed:
            outcome = "failed" if failed[0].when == "call" else "error"
            message = short_message(failed[0])
            if failed[0].when != "call":
                message = f"error in test {failed[0].when}: {message}"
        elif skipped:
            outcome, message = "skipped", short_message(skipped[0])
        else:
            outcome, message = "passed", ""
        self.write(
            {
                "event": "result",
                "nodeid": report.nodeid,
                "todo": todo,
                "weight": weight,
                "outcome": outcome,
                "message": message,
                "duration": round(sum(r.duration for r in reports), 3),
            }
        )


def short_message(report) -> str:
    """The assertion or exception of a failed report, without the traceback."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2])
    text = str(longrepr) if longrepr is not None else ""
    e_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    crash = getattr(longrepr, "reprcrash", None)
    if e_lines:
        lines = e_lines[-MAX_LINES:]
    elif crash is not None:
        lines = crash.message.splitlines()[:MAX_LINES]
    else:
        lines = text.strip().splitlines()[-MAX_LINES:]
    if crash is not None and crash.lineno:
        lines.append(f"(at {os.path.basename(str(crash.path))}:{crash.lineno})")
    message = "\n".join(line[:300] for line in lines)
    return message[:MAX_CHARS]


def pytest_configure(config):
    path = config.getoption("grading_log")
    if path:
        config.pluginmanager.register(
            _Recorder(path, config.getoption("grading_only")), "grading-recorder"
        )
