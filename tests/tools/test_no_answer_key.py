"""No answer key where a worker reaches: a block that looks for one, in the real course.

The judge's checks modules hold the reference formulas (its oracles); a worker must reach
none of them. The attacking block below stands in DDPM #1-#3 and DDIM #1-#2 (the blocks whose
answers the stand-ins of other blocks would spell out) and looks through everything its worker
can reach: `__grading__` and its attributes, every module in sys.modules, every function that
gc knows, and every file of the solution-free tree and of the sys.path folders in the grading
work folder. It collects whatever holds a reference formula (a checks module, a function of
one, a callable stand-in, a file of tests/grading/ other than the reach module) and computes its
results with the formulas it finds there. It must score nothing where the reference scores
every point. The same block, shown one planted formula, wins that block's marks: the search is
real.
"""

import os

import pytest

from tools import grade, markers

ROOT = grade.REPO_ROOT
TABLE = grade.load_table(ROOT)
DDPM = "Diffusion_homework/scheduler/DDPM_scheduler.py"
DDIM = "Diffusion_homework/scheduler/DDIM_scheduler.py"
ATTACKED = [f"{DDPM}#1", f"{DDPM}#2", f"{DDPM}#3", f"{DDIM}#1", f"{DDIM}#2"]
NOTHING = "no answer key within reach"
FOUND = "found an answer key"

pytestmark = pytest.mark.slow

# Runs once per worker (the findings are kept in builtins), inside the graded function.
SEARCH = """
import builtins as _builtins
_search = getattr(_builtins, "_answer_key_search", None)
if _search is None:
    import gc as _gc
    import importlib.util as _util
    import os as _os
    import sys as _sys
    import types as _types

    _reach = _os.path.basename(__grading_reach__)
    _found, _formulas, _seen = [], [], {"modules": 0, "functions": 0, "files": 0}

    def _answer_file(path):
        path = path.replace(_os.sep, "/")
        return (
            ("/tests/grading/" in path and not path.endswith("/" + _reach))
            or "/tests/mutants/" in path
        )

    def _marked(value):  # a function marked by the judge's @check
        return isinstance(value, _types.FunctionType) and "grading_check" in value.__dict__

    def _keep(where, namespace):
        table = namespace.get("STAND_INS") if isinstance(namespace, dict) else None
        if isinstance(table, dict) and any(callable(v) for v in table.values()):
            _formulas.append(table)
        _found.append(where)

    def _module(where, module):
        names = getattr(module, "__dict__", None) or {}
        path = getattr(module, "__file__", None) or ""
        if (
            _answer_file(str(path))
            or "STAND_INS" in names
            or any(_marked(v) for v in list(names.values()))
        ):
            _keep(f"{where} {getattr(module, '__name__', '?')}", names)

    # __grading__ and its attributes
    for _name in dir(__grading__):
        _value = getattr(__grading__, _name, None)
        if isinstance(_value, _types.ModuleType):
            _module("module in __grading__", _value)
    for _name, _value in dict(getattr(__grading__, "stand_ins", {})).items():
        if callable(_value):
            _found.append(f"callable stand-in {_name}")
            _keep(f"module of the stand-in {_name}", getattr(_value, "__globals__", {}))
    # every module
    for _name, _value in list(_sys.modules.items()):
        if isinstance(_value, _types.ModuleType):
            _seen["modules"] += 1
            _module("module", _value)
    # every function
    for _value in _gc.get_objects():
        if isinstance(_value, _types.FunctionType):
            _seen["functions"] += 1
            _file = _value.__code__.co_filename
            if _answer_file(_file) or _marked(_value):
                _keep(f"function {_value.__qualname__} of {_file}", _value.__globals__)
    # every file of the tree, and of the sys.path folders in the grading work folder
    _tree = _os.path.dirname(_os.path.abspath(__file__))
    while _tree != _os.path.dirname(_tree) and not _os.path.isdir(_os.path.join(_tree, "tools")):
        _tree = _os.path.dirname(_tree)
    _work = _os.path.dirname(_tree)
    _tops = [_tree] + [p for p in _sys.path if p and _os.path.abspath(p).startswith(_work + _os.sep)]
    for _top in dict.fromkeys(_tops):
        for _folder, _dirs, _files in _os.walk(_top):
            for _file in _files:
                _path = _os.path.join(_folder, _file)
                _seen["files"] += 1
                if _file == _reach:
                    _seen["reach"] = _path
                if _answer_file(_path):
                    _namespace = {}
                    try:
                        _spec = _util.spec_from_file_location("planted_answer_key", _path)
                        _loaded = _util.module_from_spec(_spec)
                        _spec.loader.exec_module(_loaded)
                        _namespace = vars(_loaded)
                    except Exception:
                        pass
                    _keep(f"file {_path}", _namespace)
    _search = (_found, _formulas, _seen)
    _builtins._answer_key_search = _search

_found, _formulas, _seen = _search
_answers = {}
for _table in _formulas:
    _scope = {_k: _v for _k, _v in locals().items() if _v is not None}
    for _name, _formula in _table.items():
        if _name in _RESULTS or _name not in _scope:
            try:
                _scope[_name] = _formula(_scope)
            except Exception:
                pass
    if all(_name in _scope for _name in _RESULTS):
        _answers = {_name: _scope[_name] for _name in _RESULTS}
        break
if not _answers:
    if _found:
        raise RuntimeError("__FOUND__: " + "; ".join(_found)[:400])
    raise RuntimeError(f"__NOTHING__ ({_seen})")
"""


def attack(todo) -> str:
    """The attacking body for `todo`: the search, then its results from what it found."""
    head = f"_RESULTS = {tuple(todo.results)!r}\n__grading_reach__ = {TABLE.REACH_MODULE!r}\n"
    search = SEARCH.replace("__FOUND__", FOUND).replace("__NOTHING__", NOTHING)
    tail = "".join(f"{name} = _answers[{name!r}]\n" for name in todo.results)
    return head + search + tail


def reference(todo) -> str:
    text = (ROOT / todo.path).read_text(encoding="utf-8")
    return markers.blocks_by_number(text, todo.path)[todo.number].body


# A formula planted where a worker can read it: the search must find it and win with it.
PLANTED = """
STAND_INS = {
    "pred_original_sample": lambda s: (
        (s["sample"] - s["beta_prod_t"] ** 0.5 * s["model_output"]) / s["alpha_prod_t"] ** 0.5
    ),
}
"""


@pytest.fixture(scope="module")
def session():
    todos = [TABLE.BY_ID[t] for t in ATTACKED]
    with grade.grading_session(ROOT, TABLE, todos) as session:
        yield session


def test_the_worker_tree_holds_the_reach_module_and_no_checks_module(session):
    files = {
        os.path.relpath(os.path.join(folder, name), session.tree).replace(os.sep, "/")
        for folder, _, names in os.walk(session.tree)
        for name in names
    }
    assert TABLE.REACH_MODULE in files
    assert not [f for f in files if f.startswith("tests/") and f != TABLE.REACH_MODULE]
    assert not {t.checks for t in TABLE.TODOS} & files


@pytest.mark.parametrize("todo_id", ATTACKED)
def test_the_search_finds_no_answer_key_and_scores_nothing(session, todo_id):
    todo = TABLE.BY_ID[todo_id]
    right = grade.grade_bodies({todo_id: reference(todo)}, ROOT, session)[todo_id]
    assert right["score"] == right["max_score"] > 0, right["failed"]

    found = grade.grade_bodies({todo_id: attack(todo)}, ROOT, session)[todo_id]
    assert found["score"] == 0, found["failed"]
    assert found["tests"] == right["tests"] and found["failed"]
    reasons = "\n".join(found["failed"])
    assert FOUND not in reasons, reasons
    assert NOTHING in reasons, reasons
    assert "'reach': " in reasons, reasons  # the walk reached the tree's files


def test_a_planted_formula_is_found_and_wins(session):
    todo = TABLE.BY_ID[f"{DDPM}#2"]
    planted = session.tree / "tests" / "grading" / "ddpm.py"
    planted.write_text(PLANTED, encoding="utf-8")
    try:
        won = grade.grade_bodies({todo.id: attack(todo)}, ROOT, session)[todo.id]
    finally:
        planted.unlink()
    assert won["score"] == won["max_score"] > 0, won["failed"]
