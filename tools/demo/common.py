"""What the three demos share: wait for the TODOs a part needs, and run a homework command as a
student would, echoing it in a form that can be pasted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from tools import markers, todos

ROOT = Path(__file__).resolve().parents[2]


def blank_todos(prefixes: tuple[str, ...]) -> list[str]:
    """The TODO ids under `prefixes` whose block in this tree is still the starter's."""
    blank = []
    for todo in todos.TODOS:
        if not todo.id.startswith(prefixes) or not (ROOT / todo.path).is_file():
            continue
        text = (ROOT / todo.path).read_text(encoding="utf-8")
        try:
            block = markers.blocks_by_number(text, todo.path)[todo.number]
        except (KeyError, markers.MarkerError):
            continue
        if markers.is_starter(block, todo.path):
            blank.append(todo.id)
    return blank


def require_done(part: str, prefixes: tuple[str, ...]) -> None:
    """Leave the demo of `part` (exit 0) with one line naming the TODOs it still waits for.
    Called before the demo imports torch or diffusers, which take most of a minute to load."""
    blank = blank_todos(prefixes)
    if blank:
        print(f"{part} demo skipped: it waits for {', '.join(blank)} (not done yet).", flush=True)
        sys.exit(0)


def run(folder: str, args: list[str], env: dict | None = None) -> None:
    """Run `python ARGS` in ROOT/folder; a failing command ends the demo with its exit status."""
    print(f"$ cd {folder} && python {shlex.join(args)}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    code = subprocess.run([sys.executable, *args], cwd=ROOT / folder, env=env).returncode
    if code != 0:
        sys.exit(code)
