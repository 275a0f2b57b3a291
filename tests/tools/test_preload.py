"""tools/preload.py: once the worker server has loaded it, a worker needs no module from the
Python installation, which it may not be able to read (grading as root, with Python or the
environment under a folder only root may enter, and no sandbox)."""

import subprocess
import sys

from tools import grade

# Runs in a fresh interpreter: the preload, then every import that would read the installation
# fails; the graded files (from the tree, which the worker can read) must still load, and a case
# must still travel both ways.
SCRIPT = r"""
import importlib.abc, importlib.machinery, importlib.util, pickle, sys
from pathlib import Path

root = Path(sys.argv[1])
import tools.preload  # what the worker server imports before it forks a worker
import torch
from tools import todos, worker


class OnlyTheTree(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.origin is None or not Path(spec.origin).is_relative_to(root):
            raise ImportError(f"{name} is not preloaded (a worker would read it from the installation)")
        return None


sys.meta_path.insert(0, OnlyTheTree())
sys.path[:0] = [str(root / folder) for folder in todos.IMPORT_ROOTS]
case = pickle.loads(pickle.dumps({"x": torch.ones(3, requires_grad=True)}))  # the judge's case
worker.encode({"ok": True}, {"y": case["x"].detach() * 2})  # the worker's reply
for number, path in enumerate(sorted({t.path for t in todos.TODOS} | {todos.REACH_MODULE})):
    spec = importlib.util.spec_from_file_location(f"graded_{number}", root / path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
print("every import was preloaded")
"""


def test_a_worker_imports_nothing_from_the_installation_after_the_preload():
    root = grade.REPO_ROOT
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "every import was preloaded" in done.stdout
