"""Marked copies stay equal to their original (diffusers' discipline).

The homeworks run on their own (`cd GAN_homework && python train.py`): they cannot import the tools
or each other. So the code that writes outputs safely has one original and marked copies: a
top-level definition under the line `# Copied from <path>` must equal, line for line (docstring and
comments included), the definition of the same name in <path>. To change one, change the original
and paste it over every copy.
"""

import ast
import difflib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^# Copied from (\S+)\s*$")
SEARCHED = ("GAN_homework", "Diffusion_homework", "tools", "benchmarks")
# (copy, name) -> original. Listed here too, so that a copy that loses its header is noticed.
COPIES = {
    ("GAN_homework/outputs.py", "atomic_file"): "tools/files.py",
    ("Diffusion_homework/utils/io.py", "atomic_file"): "tools/files.py",
    ("GAN_homework/outputs.py", "_owner_of"): "Diffusion_homework/utils/io.py",
    ("GAN_homework/outputs.py", "_try_lock"): "Diffusion_homework/utils/io.py",
    ("GAN_homework/outputs.py", "ResultsFolder"): "Diffusion_homework/utils/io.py",
}


def definitions(path: Path) -> dict[str, tuple[str, str | None]]:
    """Top-level functions and classes of a file: name -> (their source from the first decorator
    on, the path named by the `# Copied from` line right above them, or None)."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            header = HEADER.match(lines[first - 1]) if first else None
            found[node.name] = ("".join(lines[first : node.end_lineno]), header and header[1])
    return found


def python_files():
    for folder in SEARCHED:
        yield from sorted((REPO / folder).rglob("*.py"))


def marked_copies() -> dict[tuple[str, str], str]:
    return {
        (path.relative_to(REPO).as_posix(), name): origin
        for path in python_files()
        for name, (_, origin) in definitions(path).items()
        if origin
    }


def drift(copy: Path, origin: Path, name: str) -> str:
    """'' when `name` in `copy` equals `name` in `origin`, else a diff that shows how they differ."""
    copied, original = definitions(copy).get(name), definitions(origin).get(name)
    if original is None:
        return f"{origin} defines no {name}"
    if copied is None:
        return f"{copy} defines no {name}"
    diff = difflib.unified_diff(
        original[0].splitlines(keepends=True),
        copied[0].splitlines(keepends=True),
        fromfile=str(origin),
        tofile=str(copy),
    )
    return "".join(diff)


def test_the_marked_copies_are_the_listed_ones():
    assert marked_copies() == COPIES


@pytest.mark.parametrize(("copy", "name"), sorted(COPIES))
def test_a_copy_equals_its_original(copy, name):
    difference = drift(REPO / copy, REPO / COPIES[copy, name], name)
    assert not difference, f"{copy}: {name} differs from its original:\n{difference}"


def test_every_header_sits_right_above_a_definition():
    for path in python_files():
        headers = sum(bool(HEADER.match(line)) for line in path.read_text().splitlines())
        attached = sum(origin is not None for _, origin in definitions(path).values())
        assert headers == attached, f"{path}: a `# Copied from` line is not above a definition"


def test_the_homeworks_mark_their_results_folders_alike():
    def marker(path):
        tree = ast.parse((REPO / path).read_text())
        return next(
            node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "MARKER"
        )

    assert marker("GAN_homework/outputs.py") == marker("Diffusion_homework/utils/io.py")


def test_a_copy_that_drifted_is_caught(tmp_path):
    original = tmp_path / "original.py"
    original.write_text("import os\n\n\ndef f(x):\n    return x + 1\n")
    copy = tmp_path / "copy.py"
    copy.write_text("# Copied from original.py\ndef f(x):\n    return x + 2\n")
    assert definitions(copy)["f"][1] == "original.py"
    assert "+    return x + 2" in drift(copy, original, "f")
    copy.write_text("# Copied from original.py\ndef f(x):\n    return x + 1\n")
    assert drift(copy, original, "f") == ""
