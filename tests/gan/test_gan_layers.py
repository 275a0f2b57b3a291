"""GAN_homework's layers only look down: entry scripts import library modules, never the reverse.

The entry scripts are the commands a student runs (train.py, calc_metrics.py, dataset_download.py).
Everything else (outputs.py, DiffAugment_pytorch.py, training/*) is library: no module imports an
entry script, and the imports have no cycle. Imports inside functions count as much as those at
the top of a file: a cycle through a function-level import breaks as soon as either side changes.
"""

import ast
from pathlib import Path

import pytest
from gan_helpers import GAN_DIR

ENTRY_SCRIPTS = {"train", "calc_metrics", "dataset_download"}
# Library modules that also run as a small command of their own (`python DiffAugment_pytorch.py`
# previews the cutout; `python -m training.checkpoint` exports weights): imported by the library.
LIBRARY_WITH_A_COMMAND = {"DiffAugment_pytorch", "training.checkpoint"}


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of GAN_homework (top level and training/)."""
    files = [*GAN_DIR.glob("*.py"), *(GAN_DIR / "training").glob("*.py")]
    names = {}
    for path in files:
        parts = path.relative_to(GAN_DIR).with_suffix("").parts
        names[".".join(parts).removesuffix(".__init__")] = path
    return names


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that the file imports, anywhere in it (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from training import metrics` imports training.metrics
            candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {name for name in candidates if name in known}
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state, stack = {}, []  # state: 1 on the current path, 2 done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_imports_at_the_top_and_inside_functions():
    graph = import_graph()
    assert ENTRY_SCRIPTS <= set(graph), "every entry script is a module of GAN_homework"
    assert "DiffAugment_pytorch" in graph["training.loss"], "a top-level import"
    assert "training.metrics" in graph["training.snapshot_kid"], "`from training import metrics`"
    assert "training.checkpoint" in graph["train"], "an import inside main()"


def test_no_module_imports_an_entry_script():
    wrong = {
        f"{name} imports {', '.join(sorted(targets & ENTRY_SCRIPTS))}"
        for name, targets in import_graph().items()
        if targets & ENTRY_SCRIPTS
    }
    assert not wrong, "move what they share into training/ or outputs.py: " + "; ".join(wrong)


def test_the_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_command_is_a_known_entry_script_or_a_library_module_with_a_command():
    """A new script must be placed on one side: its name in ENTRY_SCRIPTS (nothing may import it)
    or in LIBRARY_WITH_A_COMMAND (it is library code that also runs on its own)."""
    with_main = {
        name
        for name, path in module_files().items()
        if '__name__ == "__main__"' in path.read_text()
    }
    assert with_main == ENTRY_SCRIPTS | LIBRARY_WITH_A_COMMAND


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle
