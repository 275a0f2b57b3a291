"""TODO blocks: find them by their marker lines; write the starter's stub and recognize it.

Every TODO of the instructor's tree holds its reference solution between two marker lines, which
stay in both the solution and the starter: a comment line with `BEGIN TODO #N` in it, then the
solution, then a comment line with `END TODO #N` (README.md, "The TODOs", shows a block).

A marker line is a comment line that matches BEGIN_RE or END_RE: the block's body is everything
strictly between a BEGIN line and the END line of the same number. Numbers are unique within a
file and blocks do not nest. A file that breaks these rules has damaged markers: `find_blocks`
raises `MarkerError` saying where.

This module is the one definition of the starter's stub. The starter (starterize) replaces each
body by `starter_body`, `raise NotImplementedError("TODO #N in <file>")` at the block's
indentation; `is_starter` tells a block that still holds it, and STARTER_MESSAGE_RE
(`is_starter_error` for a worker's "NotImplementedError: ..." text) tells its error when it
runs. The homeworks recognize the same message on their own (they cannot import tools/), and
tests/tools/test_markers.py checks that they agree with STARTER_MESSAGE_RE.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

BEGIN_RE = re.compile(r"^\s*#.*\bBEGIN TODO #([0-9]{1,6})\b")
END_RE = re.compile(r"^\s*#.*\bEND TODO #([0-9]{1,6})\b")

# The starter's stub raises STARTER_RAISE with the message "TODO #N in <file>" (starter_message).
STARTER_RAISE = "raise NotImplementedError"
# That message, anywhere in a text: group 1 the number, group 2 the file where the text names it.
STARTER_MESSAGE_RE = re.compile(r"\bTODO #([0-9]+)(?: in ([\w./-]+\.py))?")
STARTER_ERROR_RE = re.compile("NotImplementedError: " + STARTER_MESSAGE_RE.pattern)


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


def starter_message(number: int, relpath: str) -> str:
    """The message of the starter's error: it names the block."""
    return f"TODO #{number} in {relpath}"


def starter_body(number: int, relpath: str, indent: str = "") -> str:
    """The body of a starter's block: one statement that raises when it runs."""
    return f'{indent}{STARTER_RAISE}("{starter_message(number, relpath)}")\n'


def is_starter(block: Block, relpath: str) -> bool:
    """Whether a block is still the starter's: its body still raises the starter's error."""
    return starter_body(block.number, relpath).strip() in block.body


def is_starter_error(error: str) -> bool:
    """Whether a worker's error text, "<exception type>: <message>", is the starter's error."""
    return STARTER_ERROR_RE.match(error) is not None


def starterize(text: str, relpath: str) -> str:
    """The starter version of a file: every block's body becomes the starter's stub."""
    blocks = find_blocks(text, relpath)
    return replace_bodies(
        text, {b.number: starter_body(b.number, relpath, b.indent) for b in blocks}, relpath
    )
