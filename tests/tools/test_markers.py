"""TODO marker parsing, damage detection, the starter's stub and its message, and putting
student blocks into a file (tools/markers.py; splice is the tests' own, in tool_helpers.py)."""

from pathlib import Path

import pytest
from tool_helpers import splice, splice_body

from tools import markers, todos

REPO = Path(__file__).resolve().parents[2]


def begin(n, indent=""):
    return f"{indent}# ------------- BEGIN TODO #{n} -------------\n"


def end(n, indent=""):
    return f"{indent}# -------------- END TODO #{n} --------------\n"


def source(body1="    y = 2 * x\n", body2="        c = v + 1\n"):
    return (
        "def f(x):\n"
        "    # TODO #1: the comment above BEGIN stays.\n"
        + begin(1, "    ")
        + body1
        + end(1, "    ")
        + "    return y\n"
        "\n"
        "\n"
        "def g(values):\n"
        "    out = []\n"
        "    for v in values:\n"
        + begin(2, "        ")
        + body2
        + end(2, "        ")
        + "        out.append(c)\n"
        "    return out\n"
    )


def run(text, name, *args):
    scope = {}
    exec(compile(text, "<test>", "exec"), scope)
    return scope[name](*args)


def test_finds_blocks_with_numbers_lines_indentation_and_body():
    blocks = markers.find_blocks(source())
    assert [b.number for b in blocks] == [1, 2]
    assert blocks[0].lines == (3, 5)
    assert blocks[0].indent == "    " and blocks[1].indent == "        "
    assert blocks[0].body == "    y = 2 * x\n"


def test_marker_needs_the_words_and_a_comment():
    text = 'x = "BEGIN TODO #1"\n# BEGIN TODO #12a\n# see TODO #1 below\n'
    assert markers.find_blocks(text) == []
    assert not markers.has_markers(text)


def test_windows_newlines_parse_the_same():
    assert markers.find_blocks(source().replace("\n", "\r\n")) == markers.find_blocks(source())


@pytest.mark.parametrize(
    "text, words",
    [
        (begin(1) + "x = 1\n", "has no END"),
        ("x = 1\n" + end(1), "without a BEGIN"),
        (begin(1) + begin(2) + end(2) + end(1), "cannot nest"),
        (begin(1) + end(1) + begin(1) + end(1), "appears twice"),
        (begin(1) + end(2), "closes BEGIN TODO #1"),
    ],
    ids=["unclosed", "unopened", "nested", "repeated", "mismatched"],
)
def test_damaged_markers_raise_a_clear_error(text, words):
    with pytest.raises(markers.MarkerError, match=words) as info:
        markers.find_blocks(text, "hw/x.py")
    assert "hw/x.py, line" in str(info.value)


def test_starterize_raises_at_the_begin_lines_indentation_and_keeps_markers():
    starter = markers.starterize(source(), "hw/calc.py")
    assert '    raise NotImplementedError("TODO #1 in hw/calc.py")\n' in starter
    assert '        raise NotImplementedError("TODO #2 in hw/calc.py")\n' in starter
    assert "y = 2 * x" not in starter and "c = v + 1" not in starter
    assert begin(1, "    ") in starter and end(2, "        ") in starter
    assert "# TODO #1: the comment above BEGIN stays." in starter
    with pytest.raises(NotImplementedError, match="TODO #1 in hw/calc.py"):
        run(starter, "f", 3)


def test_the_stub_is_one_statement_that_is_starter_recognizes():
    assert markers.starter_body(2, "hw/calc.py", "  ") == (
        '  raise NotImplementedError("TODO #2 in hw/calc.py")\n'
    )
    starter = markers.starterize(source(), "hw/calc.py")
    blocks = markers.blocks_by_number(starter)
    assert all(markers.is_starter(block, "hw/calc.py") for block in blocks.values())
    assert not markers.is_starter(blocks[1], "hw/other.py")
    assert not any(markers.is_starter(b, "hw/calc.py") for b in markers.find_blocks(source()))


def test_the_stubs_error_is_recognized_by_its_message():
    with pytest.raises(NotImplementedError) as info:
        run(markers.starterize(source(), "hw/calc.py"), "g", [1])
    message = str(info.value)
    assert message == markers.starter_message(2, "hw/calc.py")
    match = markers.STARTER_MESSAGE_RE.search(f"Error: {message} is not implemented yet")
    assert match and match.groups() == ("2", "hw/calc.py")
    assert markers.is_starter_error(f"NotImplementedError: {message}")
    assert markers.is_starter_error("NotImplementedError: TODO #3")  # the file may be left out
    assert not markers.is_starter_error(f"ValueError: {message}")
    assert not markers.is_starter_error("NotImplementedError: float64 on MPS")
    assert not markers.STARTER_MESSAGE_RE.search("the TODO list, #3")


def test_splice_puts_student_blocks_into_the_pristine_file():
    student = source(body1="    y = x + x  # mine\n", body2="        c = v - 1\n")
    student = "import os  # code outside the blocks is not taken\n" + student
    spliced = splice(markers.starterize(source(), "a.py"), markers.blocks_by_number(student))
    assert "import os" not in spliced
    assert run(spliced, "f", 4) == 8 and run(spliced, "g", [1, 2]) == [0, 1]


def test_splice_moves_a_block_to_the_pristine_indentation():
    student = begin(1, "  ") + "  y = x * 3\n" + "  if y:\n" + "      y += 1\n" + end(1, "  ")
    spliced = splice(source(), markers.blocks_by_number(student))
    assert run(spliced, "f", 2) == 7


def test_splice_of_an_empty_or_comment_only_block_stays_valid_python():
    student = source(body1="    # I did not finish this\n", body2="")
    spliced = splice(source(), markers.blocks_by_number(student))
    compile(spliced, "<test>", "exec")
    with pytest.raises(NameError):
        run(spliced, "f", 1)


def test_splice_body_reindents_a_mutant_written_at_indentation_zero():
    text = splice_body(source(), 2, "if v > 1:\n    c = 10\nelse:\n    c = v\n")
    assert run(text, "g", [0, 1, 2]) == [0, 1, 10]
    with pytest.raises(markers.MarkerError, match="no TODO block numbered 3"):
        splice_body(source(), 3, "x = 1\n")


def test_reindent_dedents_then_indents():
    assert markers.reindent("    a = 1\n    b = 2\n", "  ") == "  a = 1\n  b = 2\n"
    assert markers.reindent("", "    ") == "    pass\n"


def test_blocks_are_found_by_number_whatever_their_order():
    text = begin(2) + "b = 2\n" + end(2) + "\n" + begin(1) + "a = 1\n" + end(1)  # #2 before #1
    blocks = markers.blocks_by_number(text)
    assert blocks[1].body == "a = 1\n" and blocks[2].body == "b = 2\n"
    student = begin(1) + "a = 10\n" + end(1) + begin(2) + "b = 20\n" + end(2)
    spliced = splice(text, markers.blocks_by_number(student))
    scope = {}
    exec(spliced, scope)
    assert (scope["a"], scope["b"]) == (10, 20)


@pytest.mark.parametrize("path", sorted({todo.path for todo in todos.TODOS}))
def test_registered_todos_appear_in_increasing_file_order(path):
    numbers = [block.number for block in markers.find_blocks((REPO / path).read_text(), path)]
    assert numbers == sorted(numbers), f"{path} lists its TODOs as {numbers}"
    assert numbers == sorted(todo.number for todo in todos.TODOS if todo.path == path)


# ----------------------------------------------------------------------------- the homeworks
# Students run the homeworks from their folders, which cannot import tools/: each homework
# recognizes the stub's error on its own, and must agree with STARTER_MESSAGE_RE.

MESSAGES = [
    *(markers.starter_message(todo.number, todo.path) for todo in todos.TODOS),
    "TODO #3",
    "float64 on MPS",
    "the TODO list, #3",
    "",
]


def gan_recognizes(message: str) -> bool:
    from training.todo import unfilled_todo

    assert unfilled_todo(ValueError(message)) is None  # only a NotImplementedError is the stub's
    found = unfilled_todo(NotImplementedError(message))
    assert found in (None, message)
    return found is not None


def diffusion_recognizes(message: str) -> bool:
    import click

    from utils.cli import todo_errors

    try:
        with todo_errors():
            raise NotImplementedError(message)
    except click.ClickException as error:
        assert error.message.startswith(f"{message} is not implemented yet"), error.message
        return True
    except NotImplementedError:
        return False


@pytest.mark.parametrize(
    "recognizes", [gan_recognizes, diffusion_recognizes], ids=["GAN", "Diffusion"]
)
def test_each_homework_recognizes_the_stubs_error_as_markers_does(recognizes):
    for message in MESSAGES:
        expected = bool(markers.STARTER_MESSAGE_RE.search(message))
        assert recognizes(message) == expected, message
