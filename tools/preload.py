"""Imported once by the server that forks the grading workers, before any worker exists.

A worker may run as a user that cannot read the Python installation (when grading runs as
root and Python lives in root's home), so every module a graded file needs must already be
loaded when the worker is forked. This module imports them: the external modules that the
homework's graded files, the modules they import from the homework, and the reach module
(tools/todos.py REACH_MODULE, the one grading module a worker loads) import at their top level
(found by reading the files, never by running them), plus `STUDENT_MODULES`, the modules a TODO
block may reasonably import. The checks modules are the judge's: it imports them itself.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import os
from pathlib import Path

from tools import todos

# HW5_PRELOAD_TREE: the solution-free tree, where the server runs in a sandbox without the course.
ROOT = Path(os.environ.get("HW5_PRELOAD_TREE") or Path(__file__).resolve().parent.parent)
STUDENT_MODULES = (
    "math",
    "random",
    "itertools",
    "functools",
    "operator",
    "collections",
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.distributions",
)
# What the worker itself imports on first use: unpickling a case's tensors (torch.load), and
# writing the reply's (safetensors reads a tensor's bytes through numpy.ctypeslib).
WORKER_MODULES = ("torch.utils.serialization", "numpy.ctypeslib")


def _local(name: str, roots: list[Path]) -> Path | None:
    """The file of a module of the homework (e.g. `training.loss` in GAN_homework/), if it is one."""
    parts = name.split(".")
    for root in roots:
        for candidate in (
            root.joinpath(*parts).with_suffix(".py"),
            root.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate
    return None


def external_imports(files: list[Path], roots: list[Path]) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for every top-level import of `files` and of the
    homework modules they import, in order, without the homework's own modules."""
    seen, queue, found = set(), list(files), []
    while queue:
        file = queue.pop(0)
        if file in seen or not file.is_file():
            continue
        seen.add(file)
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                entries = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                entries = [(node.module, tuple(alias.name for alias in node.names))]
            else:
                continue
            for module, names in entries:
                local = _local(module, roots)
                if local is not None:
                    queue.append(local)
                    queue += [p for n in names if (p := _local(f"{module}.{n}", roots))]
                elif not module.startswith("tools"):
                    found.append((module, names))
    return found


def preload() -> None:
    roots = [ROOT / root for root in todos.IMPORT_ROOTS]
    files = sorted({ROOT / t.path for t in todos.TODOS} | {ROOT / todos.REACH_MODULE})
    wanted = [(name, ()) for name in (*todos.PRELOAD, *STUDENT_MODULES, *WORKER_MODULES)]
    for module, names in wanted + external_imports(files, roots):
        with contextlib.suppress(Exception):  # what is missing fails in the worker, loudly
            loaded = importlib.import_module(module)
            for name in names:
                # lazily exported attributes load now; a submodule (`from PIL import
                # ImageDraw`) is no attribute until it is imported
                if getattr(loaded, name, None) is None:
                    with contextlib.suppress(Exception):
                        importlib.import_module(f"{module}.{name}")
    # Workers are forked from this process: with everything loaded so far out of the garbage
    # collector's reach, a collection in a worker does not copy these objects' memory pages.
    gc.collect()
    gc.freeze()


preload()
