"""Helpers of the tools' tests: run a tool, make a submission from the fixture tree, put student
blocks into a file."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools import markers

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fixture_tree"
TOOLS = REPO / "tools"


def copy_fixture(dest: Path) -> Path:
    """A fresh copy of the fixture course tree (the instructor's tree, with solutions)."""
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


def run_tool(tool: str, *args, cwd=None, timeout=120, env=None) -> subprocess.CompletedProcess:
    """Runs tools/<tool>.py of this repository as a student or instructor would; `env` adds to
    the environment."""
    return subprocess.run(
        [sys.executable, str(TOOLS / f"{tool}.py"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def submission_from(tree: Path, dest: Path, edits: dict | None = None) -> Path:
    """A folder submission holding the tree's homework files, with text replacements applied.

    `edits` maps a repo-relative path to (old, new) pairs or to a whole new text (str), or to
    None to leave the file out.
    """
    shutil.copytree(tree / "hw", dest / "hw", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, change in (edits or {}).items():
        path = dest / rel
        if change is None:
            path.unlink()
        elif isinstance(change, str):
            path.write_text(change)
        else:
            text = path.read_text()
            for old, new in change:
                assert old in text, f"{old!r} not in {rel}"
                text = text.replace(old, new)
            path.write_text(text)
    return dest


def splice(pristine_text: str, student_blocks: dict, path: str = "<text>") -> str:
    """The pristine file with the given blocks' bodies taken from a student's file, each moved to
    the pristine BEGIN line's indentation (markers.reindent); blocks the student lacks keep their
    pristine body."""
    pristine = markers.blocks_by_number(pristine_text, path)
    bodies = {
        number: markers.reindent(block.body, pristine[number].indent)
        for number, block in student_blocks.items()
        if number in pristine
    }
    return markers.replace_bodies(pristine_text, bodies, path)


def splice_body(text: str, number: int, body: str, path: str = "<text>") -> str:
    """`text` with block `number`'s body replaced by `body` (code at any indentation)."""
    blocks = markers.blocks_by_number(text, path)
    if number not in blocks:
        raise markers.MarkerError(f"{path}: no TODO block numbered {number}")
    return markers.replace_bodies(
        text, {number: markers.reindent(body, blocks[number].indent)}, path
    )
