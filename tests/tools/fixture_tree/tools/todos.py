"""TODO registry of the fixture tree (same interface as the course's tools/todos.py)."""

from dataclasses import dataclass

POINTS_PER_TASK = 6
SKIP_DIRS = frozenset({"__pycache__", ".git", ".venv", "__MACOSX"})
SKIP_SUFFIXES = frozenset({".pyc", ".zip"})
IMPORT_ROOTS = ("hw",)
PRELOAD = ()
REACH_MODULE = "tests/grading/reach.py"


@dataclass(frozen=True)
class Todo:
    id: str
    task: str
    summary: str
    scope: tuple
    results: tuple
    checks: str

    @property
    def path(self) -> str:
        return self.id.split("#")[0]

    @property
    def number(self) -> int:
        return int(self.id.split("#")[1])


TODOS = [
    Todo("hw/calc.py#1", "T1", "double", ("x",), ("y",), "tests/grading/calc.py"),
    Todo("hw/calc.py#2", "T1", "clamp", ("value", "low", "high"), ("c",), "tests/grading/calc.py"),
    Todo("hw/geom/area.py#1", "T2", "rectangle area", ("width", "height"), ("area",),
         "tests/grading/area.py"),
    Todo("hw/not_written_yet.py#1", "T3", "a TODO whose file does not exist yet", (), ("z",),
         "tests/grading/calc.py"),
]  # fmt: skip
BY_ID = {todo.id: todo for todo in TODOS}


def points(todo_id: str) -> float:
    task = BY_ID[todo_id].task
    return POINTS_PER_TASK / sum(1 for todo in TODOS if todo.task == task)
