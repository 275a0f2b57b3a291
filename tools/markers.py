"""TODO blocks: find them by their marker lines, blank them for the starter, splice students' code.

Every TODO of the instructor's tree holds its reference solution between two marker lines, which
stay in both the solution and the starter: a comment line with `BEGIN TODO #N` in it, then the
solution, then a comment line with `END TODO #N` (README.md, "The TODOs", shows a block).

A marker line is a comment line that matches BEGIN_RE or END_RE: the block's body is everything
strictly between a BEGIN line and the END line of the same number. Numbers are unique within a
file and blocks do not nest. A file that breaks these rules has damaged markers: `find_blocks`
raises `MarkerError` saying where. The starter replaces each body by
`raise NotImplementedError("TODO #N in <file>")` at the block's indentation (starterize);
grading splices each student's body into a pristine copy of the tree (splice).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

BEGIN_RE = re.compile(r"^\s*#.*\bBEGIN TODO #([0-9]{1,6})\b")
END_RE = re.compile(r"^\s*#.*\bEND TODO #([0-9]{1,6})\b")


class MarkerError(ValueError):
    """The BEGIN/END marker lines of a file are damaged (unclosed, unmatched, nested, repeated)."""


@dataclass(frozen=True)
class Block:
    number: int
    begin: int  # 0-based index of the BEGIN line
    end: int  # 0-based index of the END line
    indent: str  # leading whitespace of the BEGIN line
    body: str  # the lines strictly between the markers, each ending in a newline

    @property
    def lines(self) -> tuple[int, int]:
        """1-based line numbers of the BEGIN and END lines, for messages."""
        return self.begin + 1, self.end + 1


def normalize(text: str) -> str:
    """Unix newlines, so that files written on Windows parse the same."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split(text: str) -> list[str]:
    return normalize(text).splitlines(keepends=True)


def has_markers(text: str) -> bool:
    return any(BEGIN_RE.match(line) or END_RE.match(line) for line in _split(text))


def find_blocks(text: str, path: str = "<text>") -> list[Block]:
    """The TODO blocks of a file, in order. Raises MarkerError if the markers are damaged."""
    lines = _split(text)
    blocks: list[Block] = []
    seen: dict[int, int] = {}
    open_number, open_line = None, None
    for index, line in enumerate(lines):
        begin, end = BEGIN_RE.match(line), END_RE.match(line)
        where = f"{path}, line {index + 1}"
        if begin and end:
            raise MarkerError(f"{where}: one line holds both a BEGIN and an END marker")
        if begin:
            number = int(begin.group(1))
            if open_number is not None:
                raise MarkerError(
                    f"{where}: BEGIN TODO #{number} inside TODO #{open_number} "
                    f"(opened on line {open_line + 1}); blocks cannot nest"
                )
            if number in seen:
                raise MarkerError(
                    f"{where}: TODO #{number} appears twice (first on line {seen[number] + 1})"
                )
            open_number, open_line = number, index
            seen[number] = index
        elif end:
            number = int(end.group(1))
            if open_number is None:
                raise MarkerError(f"{where}: END TODO #{number} without a BEGIN line before it")
            if number != open_number:
                raise MarkerError(
                    f"{where}: END TODO #{number} closes BEGIN TODO #{open_number} "
                    f"(line {open_line + 1})"
                )
            indent = lines[open_line][: len(lines[open_line]) - len(lines[open_line].lstrip())]
            body = "".join(_with_newline(x) for x in lines[open_line + 1 : index])
            blocks.append(Block(number, open_line, index, indent, body))
            open_number, open_line = None, None
    if open_number is not None:
        raise MarkerError(
            f"{path}, line {open_line + 1}: BEGIN TODO #{open_number} has no END line"
        )
    return blocks


def blocks_by_number(text: str, path: str = "<text>") -> dict[int, Block]:
    return {block.number: block for block in find_blocks(text, path)}


def _with_newline(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def has_code(body: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in body.splitlines())


def reindent(body: str, indent: str) -> str:
    """Moves a body (at any common indentation, e.g. 0 for mutants) to `indent`.

    A body without a statement becomes `pass`, so the surrounding suite stays valid Python.
    """
    body = textwrap.dedent(normalize(body).expandtabs(4))
    if not has_code(body):
        body += "pass\n"
    out = [indent + line if line.strip() else "\n" for line in body.splitlines(keepends=True)]
    return "".join(_with_newline(line) for line in out)


def replace_bodies(text: str, bodies: dict[int, str], path: str = "<text>") -> str:
    """`text` with the bodies of the given blocks replaced by ready-indented code."""
    lines = _split(text)
    blocks = blocks_by_number(text, path)
    unknown = sorted(set(bodies) - set(blocks))
    if unknown:
        raise MarkerError(f"{path}: no TODO block numbered {unknown}")
    for block in sorted(blocks.values(), key=lambda b: b.begin, reverse=True):
        if block.number in bodies:
            new = bodies[block.number].splitlines(keepends=True)
            lines[block.begin + 1 : block.end] = [_with_newline(x) for x in new]
    return "".join(lines)


def starter_line(number: int, relpath: str) -> str:
    """The one statement of a starter's block: it names the block when it runs."""
    return f'raise NotImplementedError("TODO #{number} in {relpath}")'


def is_blank(block: Block, relpath: str) -> bool:
    """Whether a block is still the starter's: its body still raises the starter's error."""
    return starter_line(block.number, relpath) in block.body


def starterize(text: str, relpath: str) -> str:
    """The starter version of a file: every block's body becomes one `raise NotImplementedError`."""
    blocks = find_blocks(text, relpath)
    return replace_bodies(
        text, {b.number: f"{b.indent}{starter_line(b.number, relpath)}\n" for b in blocks}, relpath
    )


def splice(pristine_text: str, student_blocks: dict[int, Block], path: str = "<text>") -> str:
    """The pristine file with the given blocks' bodies taken from a student's file.

    Each student body is dedented, then indented to the pristine BEGIN line's indentation,
    whatever the indentation of the student's marker lines; blocks the student lacks keep their
    pristine body.
    """
    pristine = blocks_by_number(pristine_text, path)
    bodies = {
        number: reindent(block.body, pristine[number].indent)
        for number, block in student_blocks.items()
        if number in pristine
    }
    return replace_bodies(pristine_text, bodies, path)


def splice_body(text: str, number: int, body: str, path: str = "<text>") -> str:
    """`text` with block `number`'s body replaced by `body` (code at any indentation)."""
    blocks = blocks_by_number(text, path)
    if number not in blocks:
        raise MarkerError(f"{path}: no TODO block numbered {number}")
    return replace_bodies(text, {number: reindent(body, blocks[number].indent)}, path)
