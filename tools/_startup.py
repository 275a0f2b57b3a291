"""How a tool run as a script, `python tools/<name>.py ARGS` from any folder, starts: it runs
again as the module, `python -m tools.<name> ARGS`, so that every module of tools/ has one name.

The repository root goes first on PYTHONPATH (tools/ imports as a package, in this process's
children too), and PYTHONSAFEPATH keeps the current folder off the import path (a student's
folder holding a `tools` or `torch` cannot shadow ours). Each tool starts with

    if __name__ == "__main__" and not __package__:
        import os
        import sys

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tools._startup import run_as_module

        run_as_module(__file__)

(the root goes on sys.path here too: the script's own folder is not there when PYTHONSAFEPATH
is set, as it is for every process a tool starts).

This module imports only the standard library's os and sys.
"""

import os
import sys


def run_as_module(script: str) -> None:
    """Replaces this process by `python -m tools.<name>` with the same arguments (os.execve)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(script)))
    name = os.path.splitext(os.path.basename(script))[0]
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    os.execve(
        sys.executable,
        [sys.executable, "-m", f"tools.{name}", *sys.argv[1:]],
        {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"},
    )
