"""The Diffusion homework's layers only look down: the entry scripts (execute_*.py) import the
library (utils/, scheduler/), the library never imports an entry script, and no module imports
itself through others. Read from the source with ast (imports inside functions count too)."""

import ast

from diffusion_helpers import DIFFUSION_DIR

LIBRARY = ("utils", "scheduler")


def module_name(path) -> str:
    parts = path.relative_to(DIFFUSION_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(DIFFUSION_DIR.rglob("*.py"))}


def is_entry_script(module: str) -> bool:
    return "." not in module and module.startswith("execute_")


def imported_modules(module: str) -> set[str]:
    """The homework modules that `module` imports, anywhere in its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, or level - 1 packages up
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from utils import io` imports the module utils.io; `from utils.io import x`, utils.io
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            # a dotted import runs every package on the way: utils.io runs utils too
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    ancestors = {module.rsplit(".", i)[0] for i in range(module.count(".") + 1)}
    return {name for name in found if name in MODULES and name not in ancestors}


GRAPH = {module: imported_modules(module) for module in MODULES}


def test_the_modules_are_found():
    assert {"execute_DDPM_DDIM", "execute_DPS", "execute_SDS_VSD"} <= set(MODULES)
    assert {
        "utils.sampling",
        "utils.inpainting",
        "utils.device",
        "scheduler.DDIM_scheduler",
    } <= set(MODULES)
    assert "utils.inpainting" in GRAPH["execute_DPS"], "the reader of imports sees the scripts'"


def test_the_library_never_imports_an_entry_script():
    wrong = {
        module: sorted(filter(is_entry_script, imported))
        for module, imported in GRAPH.items()
        if module.split(".")[0] in LIBRARY
    }
    assert not {module: scripts for module, scripts in wrong.items() if scripts}


def test_no_entry_script_imports_another():
    for module, imported in GRAPH.items():
        if is_entry_script(module):
            assert not list(filter(is_entry_script, imported)), module


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as [a, b, ..., a], or [] when it has none."""
    done, path = set(), []

    def visit(module):
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        path.append(module)
        for imported in sorted(graph[module]):
            if cycle := visit(imported):
                return cycle
        path.pop()
        done.add(module)
        return []

    for module in sorted(graph):
        if cycle := visit(module):
            return cycle
    return []


def test_no_import_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    cycle = find_cycle(GRAPH)
    assert not cycle, "import cycle: " + " -> ".join(cycle)
