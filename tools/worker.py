"""The worker: runs one student TODO block as a function, inside the program, in its own process.

The judge (tools/judge.py) starts one worker per TODO block. The worker confines itself
(tools/sandbox.py), then builds the block's module from the solution-free tree:
- the graded block's body is the student's, re-indented to the block's place; its first lines
  set the names in scope that the judge sent (the TODO's `scope` in tools/todos.py), and its
  last line captures the names the block must set and stops the function there;
- every other TODO block of the file becomes stand-ins for the names it sets, so the program
  reaches the graded block whether or not the student filled the others. A stand-in's value is
  data the judge sent with the case: one of its inputs, a tensor, or a small form read here
  against the program's names (`("mean", "gen_logits")`, see `STAND_IN_FORMS`), never code.
For each case the judge sends, the reach module's (tools/todos.py `REACH_MODULE`)
`REACH[path][N](module, case)` calls the program the way it runs (e.g.
`StyleGAN2Loss.accumulate_gradients("Gmain", ...)`) and returns the captured names. The worker
loads no other grading module: the judge's checks and oracles stay where it cannot read them.
The worker answers with data only: one JSON header and a safetensors blob of the results, the
gradients the case asked for, and the inputs as they were after the block.
Nothing the worker says decides a score: the judge compares the numbers with its own oracles.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import struct
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_tensors

from tools import markers, sandbox

NAMESPACE = "__grading__"
MAX_MESSAGE_CHARS = 600


class Captured(BaseException):  # noqa: N818  (a control-flow signal, not an error)
    """Raised at the end of the graded block: the program stops there."""

    def __init__(self, scope: dict):
        super().__init__("captured")
        self.scope = scope


class NotReached(Exception):
    """The program returned without running the graded block to its end."""


# The forms of a stand-in that the judge may send: (form, name of the program's value).
STAND_IN_FORMS = {
    "name": lambda value: value,
    "mean": lambda value: value.mean(),
    "zeros_like": torch.zeros_like,
}


class Grading:
    """The object the instrumented module sees as `__grading__`."""

    def __init__(self):
        self.inputs: dict = {}
        self.stand_ins: dict = {}  # name -> a tensor, a number or a form; data from the case

    def stand_in(self, name: str, scope: dict):
        """The value of `name`, set by a TODO block that is not graded now."""
        if name in self.inputs:
            return self.inputs[name]
        if name not in self.stand_ins:
            raise LookupError(f"the judge sent no value for `{name}` (set by another TODO block)")
        value = self.stand_ins[name]
        if isinstance(value, torch.Tensor):
            return value.clone()
        if isinstance(value, bool | int | float):
            return value
        form, source = value
        return STAND_IN_FORMS[form](scope[source])

    def capture(self, scope: dict):
        raise Captured(dict(scope))


def capture(function, *args, **kwargs) -> dict:
    """Call the program; return the graded block's local names as they were at its last line."""
    try:
        function(*args, **kwargs)
    except Captured as done:
        return done.scope
    raise NotReached("the program returned before the end of the TODO block (a `return` in it?)")


@dataclass(frozen=True)
class Job:
    """What a worker needs, sent by the judge when it starts the worker."""

    tree: str  # the solution-free tree
    import_roots: tuple[str, ...]  # folders put on sys.path, from the tree's root
    path: str  # the TODO's file, from the tree's root
    number: int
    scope: tuple[str, ...]
    results: tuple[str, ...]
    others: dict  # number -> result names of the file's other TODO blocks
    body: str | None  # the student's block body; None: the student's whole file is in `source`
    source: str | None  # the student's whole file (damaged markers), else None
    reach: str  # the module that reaches the blocks (tools/todos.py REACH_MODULE), from the root
    scratch: str
    limits: sandbox.Limits
    user: tuple[int, int] | None
    hidden: tuple[str, ...] = ()  # folders of the course tree covered in the worker (solutions)


def module_name(job: Job) -> str:
    """The name the program imports the file by (e.g. training.loss from GAN_homework/)."""
    path = Path(job.path)
    for root in job.import_roots:
        if root and path.is_relative_to(root):
            return ".".join(path.relative_to(root).with_suffix("").parts)
    return ".".join(path.with_suffix("").parts)


def _inject(scope: tuple[str, ...], indent: str) -> str:
    lines = [
        f'{indent}if "{name}" in {NAMESPACE}.inputs: {name} = {NAMESPACE}.inputs["{name}"]\n'
        for name in scope
        if name.isidentifier()
    ]
    return "".join(lines)


def instrumented_source(job: Job, pristine: str) -> tuple[str, tuple[int, int]]:
    """The module's source with the graded block wrapped, and the 1-based line range of the
    student's code in it (for messages)."""
    if job.source is not None:
        return _instrument_whole_file(job)
    blocks = markers.blocks_by_number(pristine, job.path)
    bodies = {}
    for number, block in blocks.items():
        if number == job.number:
            continue
        names = job.others.get(number, ())
        code = "".join(
            f'{block.indent}{name} = {NAMESPACE}.stand_in("{name}", locals())\n' for name in names
        )
        bodies[number] = code or f"{block.indent}pass\n"
    block = blocks[job.number]
    head = _inject(job.scope, block.indent)
    student = markers.reindent(job.body or "", block.indent)
    tail = f"{block.indent}{NAMESPACE}.capture(locals())\n"
    bodies[job.number] = head + student + tail
    text = markers.replace_bodies(pristine, bodies, job.path)
    begin = markers.blocks_by_number(text, job.path)[job.number].begin  # after the stand-ins
    first = begin + 2 + head.count("\n")
    return text, (first, first + student.count("\n") - 1)


def _instrument_whole_file(job: Job) -> tuple[str, tuple[int, int]]:
    """A file with damaged markers is graded whole: the block runs from its BEGIN line to its END
    line, or, without one, to the next marker line or the first line indented less than it."""
    lines = markers.normalize(job.source).splitlines(keepends=True)
    begin = next(
        (
            i
            for i, line in enumerate(lines)
            if (m := markers.BEGIN_RE.match(line)) and int(m.group(1)) == job.number
        ),
        None,
    )
    if begin is None:
        raise markers.MarkerError(f"{job.path} has no BEGIN TODO #{job.number} line")
    code = [i for i in range(begin + 1, len(lines)) if lines[i].strip()]
    indent = lines[code[0]][: len(lines[code[0]]) - len(lines[code[0]].lstrip())] if code else ""
    end = len(lines)
    for i in range(begin + 1, len(lines)):
        line = lines[i]
        if markers.BEGIN_RE.match(line) or markers.END_RE.match(line):
            end = i
            break
        if line.strip() and not line.startswith(indent):
            end = i
            break
    out = lines[: begin + 1]
    out.append(_inject(job.scope, indent))
    out += lines[begin + 1 : end]
    out.append(f"{indent}{NAMESPACE}.capture(locals())\n")
    out += lines[end:]
    first = begin + 2 + sum(1 for name in job.scope if name.isidentifier())
    return "".join(out), (first, first + end - begin - 2)


def _load_module(name: str, path: Path, source: str, grading: Grading) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__dict__[NAMESPACE] = grading
    if "." in name:
        module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def load_reach(tree: Path, rel: str) -> types.ModuleType:
    """The reach module of a tree (tools/todos.py REACH_MODULE), loaded from its file."""
    spec = importlib.util.spec_from_file_location("grading_reach", tree / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe_error(error: BaseException, path: str, lines: tuple[int, int]) -> str:
    """One or two lines: the exception and where it happened in the student's block."""
    text = f"{type(error).__name__}: {error}".strip()
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith(path) and lines[0] <= (frame.lineno or 0) <= lines[1]:
            where = f" (line {frame.lineno - lines[0] + 1} of the block)"
            break
    if isinstance(error, SyntaxError):
        where = ""
    return (text + where)[:MAX_MESSAGE_CHARS]


# ----------------------------------------------------------------------------- replies


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().contiguous(), "tensor"
    if isinstance(value, bool | int | float):
        return torch.tensor(float(value), dtype=torch.float64), "number"
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "size", 0):
        try:
            return torch.as_tensor(value).clone().contiguous(), "number"
        except (TypeError, RuntimeError):
            pass
    return None, "other"


def encode(header: dict, tensors: dict) -> bytes:
    """4-byte length, the JSON header, then a safetensors blob (data only, no code)."""
    head = json.dumps(header).encode()
    blob = save_tensors(tensors) if tensors else b""
    return struct.pack("<I", len(head)) + head + blob


def reply_for(case: dict, scope: dict, inputs: dict, results: tuple[str, ...]) -> bytes:
    header: dict = {"ok": True, "values": {}, "grads": {}, "after": []}
    tensors: dict = {}
    for name in (*results, *case.get("extras", ())):
        if name not in scope:
            header["values"][name] = {"kind": "missing"}
            continue
        value = scope[name]
        tensor, kind = _as_tensor(value)
        header["values"][name] = {
            "kind": kind,
            "type": type(value).__name__,
            "requires_grad": bool(getattr(value, "requires_grad", False)),
        }
        if tensor is not None:
            tensors[f"value/{name}"] = tensor
    for result, wrt, reduction in case.get("grads", ()):
        key = f"{result}|{wrt}"
        value, source = scope.get(result), inputs.get(wrt, scope.get(wrt))
        if not (isinstance(value, torch.Tensor) and value.requires_grad):
            header["grads"][key] = "no graph"
            continue
        reduced = value.sum() if reduction == "sum" else value.mean()
        (grad,) = torch.autograd.grad(reduced, source, allow_unused=True, retain_graph=True)
        header["grads"][key] = "none" if grad is None else "ok"
        if grad is not None:
            tensors[f"grad/{key}"] = grad.detach().clone().contiguous()
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor):
            header["after"].append(name)
            tensors[f"after/{name}"] = value.detach().clone().contiguous()
    return encode(header, tensors)


def _is_stand_in(value) -> bool:
    """Data only: a tensor, a number, or (form, name) with a form of STAND_IN_FORMS."""
    if isinstance(value, torch.Tensor | bool | int | float):
        return True
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and value[0] in STAND_IN_FORMS
        and isinstance(value[1], str)
    )


def error_reply(kind: str, message: str) -> bytes:
    return encode({"ok": False, "kind": kind, "error": message}, {})


# ----------------------------------------------------------------------------- the process


def serve(conn, job: Job) -> None:
    """Worker main: confine, build the module, then answer the judge's cases until it hangs up."""
    scratch = Path(job.scratch)
    sandbox.confine(job.limits, scratch, job.user, job.hidden)
    os.chdir(scratch)
    tree = Path(job.tree)
    sys.path[:0] = [str(tree / root) for root in job.import_roots]
    sys.dont_write_bytecode = True
    torch.set_num_threads(1)
    grading = Grading()
    module, setup_error, lines = None, None, (0, 0)
    try:
        reach = load_reach(tree, job.reach).REACH[job.path][job.number]
        pristine = markers.normalize((tree / job.path).read_text(encoding="utf-8"))
        source, lines = instrumented_source(job, pristine)
    except Exception as error:  # our side: the judge's canary reports it as a broken setup
        setup_error = ("setup", f"{type(error).__name__}: {error}")
    if setup_error is None:
        try:
            compile(source, job.path, "exec")
        except SyntaxError as error:
            inside = lines[0] <= (error.lineno or 0) <= lines[1]
            setup_error = (
                "block" if inside else "setup",
                f"SyntaxError: {error.msg}"
                + (f" (line {error.lineno - lines[0] + 1} of the block)" if inside else ""),
            )
    sandbox.close_inherited(conn.fileno())  # before any code of the submission runs
    if setup_error is None:
        try:
            module = _load_module(module_name(job), tree / job.path, source, grading)
        except Exception as error:
            setup_error = ("setup", describe_error(error, job.path, (0, 0)))
    while True:
        try:
            case = pickle.loads(conn.recv_bytes())  # from the judge, which alone sends here
        except (EOFError, OSError):
            break
        if setup_error is not None:
            conn.send_bytes(error_reply(*setup_error))
            continue
        grading.inputs = dict(case.get("inputs", {}))
        # only for the other blocks: the graded block must not call for its own results
        grading.stand_ins = {
            name: value
            for name, value in case.get("stand_ins", {}).items()
            if name not in job.results and _is_stand_in(value)
        }
        for name in case.get("requires_grad", ()):
            grading.inputs[name] = grading.inputs[name].detach().clone().requires_grad_(True)
        torch.manual_seed(case.get("seed", 0))
        try:
            scope = reach(module, case)
            answer = reply_for(case, scope, grading.inputs, job.results)
        except Exception as error:
            answer = error_reply("block", describe_error(error, job.path, lines))
        conn.send_bytes(answer)
