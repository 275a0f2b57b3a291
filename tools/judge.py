"""The judge: runs the checks of every TODO block against workers, and alone decides the verdicts.

A checks module (named per TODO in tools/todos.py) holds, for the judge, functions marked with
`@check(todo_id, weight=..., params=[...])`; each gets a `Block` and calls it like the function
the TODO table describes: `out = block(inputs={...}, ...)` sends one case to the block's worker
and returns the worker's numbers (`Outputs`); the check compares them with its own oracle and
raises `Fail` (or AssertionError) with a message for the student. The judge loads the checks
modules from the course tree; a worker loads only the reach module (tools/todos.py
`REACH_MODULE`: how the program reaches each block, see tools/worker.py) and gets every value
it needs, stand-ins for the other blocks included, as data in the case.

Student code never runs in this process: each block runs in a worker forked from a clean,
preloaded server, confined by tools/sandbox.py, with one time budget per TODO enforced from
here (SIGKILL), and every process it started is killed before the next TODO runs. Before a
block's first case, the same case runs once on the starter's body (a canary): unless the canary
ends in the starter's NotImplementedError, the grading set-up itself is broken (HarnessError).
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import struct
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors

from tools import markers, sandbox, worker

MAX_REPLY_BYTES = 256 * 1024**2  # the most one reply may carry, whatever the case
# A reply is bounded before it is parsed, by what its case can legitimately return: one entry
# per result and extra (value/), per gradient asked (grad/) and per tensor sent (after/).
MAX_REPLY_HEADER_BYTES = 1_000_000  # the reply's JSON header, error messages included
REPLY_HEADER_BYTES_PER_ENTRY = 1024  # of the tensors' (safetensors) header, per entry
REPLY_FLOOR_BYTES = 16 * 1024**2  # tensor data any case may return, whatever it sent
REPLY_BYTES_PER_INPUT_BYTE = 8  # and per entry, this many times the bytes of the tensors sent
NOT_DONE = "not done yet"


class Fail(AssertionError):
    """A check's verdict: the block's numbers disagree with the oracle (message for the student)."""


class BlockError(Fail):
    """The block raised, did not finish, ran out of time or ended its worker."""


class HarnessError(RuntimeError):
    """The grading set-up is broken (not the student's fault): grading must stop, loudly."""


@dataclass(frozen=True)
class Check:
    todo: str
    name: str
    weight: float
    function: object
    param: object = None
    has_param: bool = False


def check(todo: str, weight: float = 1.0, params=None, ids=None):
    """Mark a judge-side check of one TODO block; with params, one check per parameter."""

    def mark(function):
        function.grading_check = (todo, float(weight), params, ids)
        return function

    return mark


def collect(module) -> list[Check]:
    found = []
    for name, function in vars(module).items():
        spec = getattr(function, "grading_check", None)
        if spec is None or not callable(function):
            continue
        todo, weight, params, ids = spec
        if params is None:
            found.append(Check(todo, name, weight, function))
            continue
        for i, param in enumerate(params):
            label = (
                ids[i]
                if ids
                else "-".join(map(str, param if isinstance(param, tuple) else (param,)))
            )
            found.append(Check(todo, f"{name}[{label}]", weight, function, param, True))
    return found


def load_checks(root: Path, rel: str):
    path = root / rel
    spec = importlib.util.spec_from_file_location(f"grading_checks_{abs(hash(str(path)))}", path)
    if spec is None or not path.is_file():
        raise HarnessError(f"the checks module {rel} is missing from {root}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise HarnessError(
            f"the checks module {rel} cannot be loaded ({type(error).__name__}: {error})"
        ) from None
    return module


# ----------------------------------------------------------------------------- worker replies


class Outputs:
    """What the block left, as the judge reads it: values, gradients, inputs after the block."""

    def __init__(self, header: dict, tensors: dict, results: tuple[str, ...]):
        self.header, self.tensors, self.results = header, tensors, results

    def __contains__(self, name):
        return self.header["values"].get(name, {}).get("kind") in ("tensor", "number")

    def __getitem__(self, name) -> torch.Tensor:
        meta = self.header["values"].get(name, {"kind": "missing"})
        if meta["kind"] == "missing":
            raise Fail(f"The block did not set `{name}`.")
        if meta["kind"] == "other":
            raise Fail(
                f"`{name}` is a {printable(meta.get('type', 'value'))}, not a tensor or a number."
            )
        return self.tensors[f"value/{name}"]

    def kind(self, name) -> str:
        return self.header["values"].get(name, {}).get("kind", "missing")

    def requires_grad(self, name) -> bool:
        return bool(self.header["values"].get(name, {}).get("requires_grad"))

    def grad(self, result, wrt) -> torch.Tensor | None:
        """The gradient of the result's mean (or sum, as the case asked) w.r.t. an input; None
        when no gradient reaches it (a detached result)."""
        return self.tensors.get(f"grad/{result}|{wrt}")

    def after(self, name) -> torch.Tensor:
        return self.tensors[f"after/{name}"]

    def number(self, name) -> float:
        """A result that must be one number (a Python number or a 1-element tensor)."""
        value = self[name]
        if value.numel() != 1:
            raise Fail(
                f"`{name}` should be a number or a 0-dim tensor, got a tensor of shape "
                f"{tuple(value.shape)}."
            )
        return float(value.reshape(()))

    def tensor(self, name, shape) -> torch.Tensor:
        """A result that must have `shape` (that of `sample`), in float64 for the comparison."""
        value = self[name]
        if tuple(value.shape) != tuple(shape):
            raise Fail(
                f"`{name}` should have the shape {tuple(shape)} of `sample`, got "
                f"{tuple(value.shape)}."
            )
        return value.double()

    def assert_unchanged(self, sent: dict) -> None:
        """The tensors the judge sent must be as they were: a block computes new tensors."""
        for name, value in sent.items():
            if isinstance(value, torch.Tensor) and not torch.equal(self.after(name), value):
                raise Fail(
                    f"The block changed `{name}` in place (the caller's tensor); compute new "
                    "tensors instead."
                )


def assert_close(actual, expected, message, rtol=1e-4):
    """Fail with `message` and the largest error unless the tensors agree to rtol and an atol
    scaled by the expected values' magnitude."""
    atol = 1e-5 * (1 + float(expected.abs().max()))
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        err = (actual - expected).abs().nan_to_num(float("inf")).max().item()
        raise Fail(f"{message} (largest error {err:.3g})")


class ReplyTooLarge(ValueError):
    """A reply larger than what its case can return: refused before it is parsed."""


def _json(data: bytes):
    try:
        return json.loads(data.decode())
    except RecursionError:  # nesting deeper than any reply has
        raise ValueError("nesting too deep") from None


def _tensor_bytes(value, depth=0) -> int:
    """Bytes of the tensors (and arrays) in a case's inputs or arguments."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(getattr(value, "nbytes", None), int):
        return value.nbytes
    if depth < 8 and isinstance(value, dict | list | tuple):
        items = value.values() if isinstance(value, dict) else value
        return sum(_tensor_bytes(item, depth + 1) for item in items)
    return 0


def reply_bounds(case: dict, results: tuple[str, ...]) -> dict:
    """What a reply to `case` may hold: its entries (safetensors keys), the bytes of its
    tensors' header and of their data."""
    inputs = case.get("inputs") or {}
    names = [*results, *case.get("extras", ())]
    grads = [f"{g[0]}|{g[1]}" for g in case.get("grads", ())]
    entries = {
        *(f"value/{name}" for name in names),
        *(f"grad/{key}" for key in grads),
        *(f"after/{name}" for name in inputs),
    }
    sent = _tensor_bytes(inputs) + _tensor_bytes(case.get("args") or {})
    return {
        "entries": entries,
        "values": len(set(names)),
        "grads": len(set(grads)),
        "after": len(inputs),
        "header_bytes": REPLY_HEADER_BYTES_PER_ENTRY * (len(entries) + 1),
        "data_bytes": REPLY_FLOOR_BYTES + REPLY_BYTES_PER_INPUT_BYTE * len(entries) * sent,
    }


def decode(data: bytes, results: tuple[str, ...], case: dict | None = None):
    """(header, tensors) of a reply; raises ValueError on anything malformed, ReplyTooLarge
    (before parsing the tensors) on anything more than `case` can return."""
    if len(data) < 4:
        raise ValueError("short reply")
    (size,) = struct.unpack("<I", data[:4])
    if size > len(data) - 4:
        raise ValueError("bad header length")
    if size > MAX_REPLY_HEADER_BYTES:
        raise ReplyTooLarge(f"a header of {size} bytes")
    header = _json(data[4 : 4 + size])
    if not isinstance(header, dict) or not isinstance(header.get("ok"), bool):
        raise ValueError("bad header")
    blob = memoryview(data)[4 + size :]  # no copy before it is known to be within bounds
    bounds = reply_bounds(case or {}, results)
    for part in ("values", "grads", "after"):
        entries = header.get(part)
        if isinstance(entries, dict | list) and len(entries) > bounds[part]:
            raise ReplyTooLarge(f"{len(entries)} {part} where the case has {bounds[part]}")
    if blob:
        _check_tensors_header(blob, bounds)
        tensors = load_tensors(bytes(blob))
    else:
        tensors = {}
    if header["ok"]:
        values = header.get("values")
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            raise ValueError("bad values")
        for name, meta in values.items():
            if meta.get("kind") in ("tensor", "number") and f"value/{name}" not in tensors:
                raise ValueError("missing tensor")
        header.setdefault("grads", {})
        header.setdefault("after", [])
    return header, tensors


def _check_tensors_header(blob: memoryview, bounds: dict) -> None:
    """The safetensors blob's header (8 bytes of length, little-endian, then JSON) and data
    within `bounds`, read without parsing the tensors."""
    if len(blob) < 8:
        raise ValueError("short tensors")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > bounds["header_bytes"]:
        raise ReplyTooLarge(
            f"a tensor header of {size} bytes where at most {bounds['header_bytes']} can be"
        )
    if size > len(blob) - 8:
        raise ValueError("bad tensor header length")
    entries = _json(bytes(blob[8 : 8 + size]))
    if not isinstance(entries, dict):
        raise ValueError("bad tensor header")
    names = [name for name in entries if name != "__metadata__"]
    if len(names) > len(bounds["entries"]):
        raise ReplyTooLarge(f"{len(names)} tensors where at most {len(bounds['entries'])} can be")
    unknown = [name for name in names if name not in bounds["entries"]]
    if unknown:
        raise ReplyTooLarge(f"a tensor {printable(unknown[0])[:80]!r} the case did not ask for")
    data = len(blob) - 8 - size
    if data > bounds["data_bytes"]:
        raise ReplyTooLarge(f"{data} bytes of tensors where at most {bounds['data_bytes']} can be")


# ----------------------------------------------------------------------------- workers


@dataclass
class Budget:
    """The seconds of one TODO: its worker calls and the judge's work on its replies (decoding
    them, comparing them) together; a TODO that has used them up is not checked further."""

    seconds: float
    used: float = 0.0

    @property
    def left(self) -> float:
        return self.seconds - self.used

    def charge(self, seconds: float) -> None:
        self.used += max(0.0, seconds)

    def used_up(self) -> str:
        return f"not run: the block used up its time limit of {self.seconds:g} s"


class Worker:
    """One worker process for one block; restarted after a crash, killed at the end."""

    def __init__(self, judge: Judge, job: worker.Job, budget: Budget):
        self.judge, self.job, self.budget = judge, job, budget
        self.process = self.conn = None
        self.timed_out = False

    def start(self):
        scratch = Path(self.job.scratch)
        sandbox.remove_tree(scratch)
        scratch.mkdir(mode=0o700, parents=True)
        self.judge.ensure_server()
        mine, theirs = self.judge.context.Pipe(duplex=True)
        process = self.judge.context.Process(target=worker.serve, args=(theirs, self.job))
        try:
            self.judge.start(process)
        except (OSError, ChildProcessError, EOFError) as error:
            mine.close()
            raise HarnessError(f"a worker process could not be started ({error})") from None
        finally:
            theirs.close()
        self.process, self.conn = process, mine

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.process.close()
        self.process = self.conn = None
        self.judge.sweep()

    def call(self, case: dict):
        """(header, tensors) for one case, or raises BlockError."""
        if self.budget.left <= 0:
            raise BlockError(self.budget.used_up())
        if self.process is None:
            self.start()
        started = time.monotonic()
        # Every read and write below may block (a worker that stops reading, or sends half a
        # message): at the end of the budget the watchdog kills the worker and all it started,
        # which closes the pipe and ends the blocked call.
        watchdog = threading.Timer(self.budget.left, self._time_up)
        watchdog.start()
        try:
            # plain pickle: tensors travel as bytes, not as shared memory the worker cannot open
            self.conn.send_bytes(pickle.dumps(case))
            ready = multiprocessing.connection.wait(
                [self.conn, self.process.sentinel], timeout=self.budget.left
            )
            if self.conn in ready:
                data = self.conn.recv_bytes(MAX_REPLY_BYTES)
            else:
                data = None
        except (EOFError, OSError, BrokenPipeError):
            data = None
        finally:
            watchdog.cancel()
            self.budget.charge(time.monotonic() - started)
        if data is None:
            why = self._why_no_reply()
            self.stop()
            raise BlockError(why)
        decoding = time.monotonic()
        try:
            return decode(data, self.job.results, case)
        except ReplyTooLarge as error:
            self.stop()
            raise BlockError(
                f"the block's process sent an answer larger than its results can be ({error})"
            ) from None
        except (ValueError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
            self.stop()
            raise BlockError(f"the block's process sent an unreadable answer ({error})") from None
        finally:
            self.budget.charge(time.monotonic() - decoding)

    def _time_up(self):
        self.timed_out = True
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        self.judge.sweep()

    def _why_no_reply(self) -> str:
        if self.timed_out or (self.process.is_alive() and self.budget.left <= 0):
            return (
                f"the block ran past its time limit of {self.budget.seconds:g} s "
                "(an endless loop?) and was stopped"
            )
        self.process.join(1)
        code = self.process.exitcode
        if code is None:
            return "the block's process stopped answering"
        if code < 0:
            return f"the block's process was killed by signal {-code} (a crash, or out of memory?)"
        return f"the block ended its process (exit code {code})"


class Block:
    """What a check calls: one case of one TODO block, in its worker."""

    def __init__(self, judge: Judge, todo, job: worker.Job, canary_job: worker.Job, budget):
        self.todo, self.judge = todo, judge
        self.worker = Worker(judge, job, budget)
        self.canary = Worker(judge, canary_job, Budget(judge.limits.seconds))
        self.verified = todo in judge.verified

    def __call__(
        self, inputs=None, requires_grad=(), grads=(), extras=(), seed=0, stand_ins=None, **args
    ):
        """One case. `stand_ins`: the values of names that the file's other blocks set, as data
        (a tensor, a number, or a form of tools/worker.py STAND_IN_FORMS such as
        `("mean", "gen_logits")`); `inputs` serve as stand-ins too."""
        own = set(self.worker.job.results)
        case = {
            "inputs": dict(inputs or {}),
            "stand_ins": {k: v for k, v in (stand_ins or {}).items() if k not in own},
            "requires_grad": tuple(requires_grad),
            "grads": tuple(grads),
            "extras": tuple(extras),
            "seed": seed,
            "args": args,
        }
        if not self.verified:
            self._run_canary(case)
        header, tensors = self.worker.call(case)
        if not header["ok"]:
            raise BlockError(_student_message(header.get("error", "")))
        return Outputs(header, tensors, self.worker.job.results)

    def _run_canary(self, case):
        try:
            header, _ = self.canary.call(case)
        except BlockError as error:
            said = _last_line(Path(self.canary.job.scratch) / "output.txt")
            raise HarnessError(
                f"{self.todo}: the starter's block did not run ({error}"
                + (f"; it said: {said}" if said else "")
                + ")"
            ) from None
        finally:
            self.canary.stop()
        error = str(header.get("error", ""))
        if header["ok"] or not markers.is_starter_error(error):
            raise HarnessError(
                f"{self.todo}: the grading set-up does not reach the block "
                f"({error or 'the starter block returned without raising'})"
            )
        self.verified = True
        self.judge.verified.add(self.todo)

    def close(self):
        self.worker.stop()


def _last_line(path: Path) -> str:
    """The last non-empty line a worker of ours wrote (the canary runs the starter's body)."""
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return printable(lines[-1][:300]) if lines else ""


def printable(text) -> str:
    """A worker's text made safe to print and to write as JSON (no lone surrogates)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _student_message(error: str) -> str:
    error = printable(error)
    if markers.is_starter_error(error):
        return f"{NOT_DONE}: {error}"
    return error


# ----------------------------------------------------------------------------- the judge


@dataclass
class Verdict:
    check: Check
    passed: bool
    message: str
    seconds: float


@dataclass
class Judge:
    """Runs checks of blocks in workers; `with Judge(...) as judge:` cleans up every process."""

    tree: Path  # the solution-free tree the workers see
    import_roots: tuple[str, ...]
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    preload: tuple[str, ...] = ()
    scratch: Path | None = None
    hidden: tuple[str, ...] = ()  # folders of the course tree that hold solutions

    def __enter__(self):
        self.verified = set()  # TODOs whose canary showed that the set-up reaches the block
        self.isolation = sandbox.isolation(self.hidden)
        self.user = self.isolation.user
        sandbox.become_subreaper()
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(
            [
                "tools.worker",
                "tools.sandbox",
                "tools.markers",
                "tools.judge",
                "tools.preload",
                *self.preload,
            ]  # fmt: skip
        )
        self.keep = set(sandbox.children(os.getpid()))
        # start the server now, so that it is not taken for a stray process later
        self.ensure_server()
        probe = self.context.Process(target=_nothing)
        self.start(probe)
        probe.join()
        self.keep = set(sandbox.children(os.getpid()))
        return self

    def __exit__(self, *exc):
        self.sweep()

    def sweep(self):
        sandbox.sweep(self.keep, self.user)

    def start(self, process):
        """Start a process of the server. Its child changes into this process's working folder
        first, which must exist in the sandbox: start it from the shared folder."""
        main = sys.modules["__main__"]
        # the child would import this process's main script; a worker has no use for it, and
        # in the sandbox it may not even exist
        sys.modules["__main__"] = types.ModuleType("__main__")
        here = os.getcwd()
        try:
            if self.isolation.sandbox is not None:
                os.chdir(self.isolation.shared)
            process.start()
        finally:
            sys.modules["__main__"] = main
            os.chdir(here)

    def ensure_server(self):
        """The server that forks the workers runs in the sandbox where there is one (started
        once per process, and again, sandboxed, if it ever ended)."""
        sandbox.ensure_server(self.isolation, self.tree)

    def clean_up(self):
        """After each TODO: nothing the block left (processes, files, IPC objects) reaches the
        next one. In the sandbox, a process of the server empties its private folders and IPC
        namespace; without one, the worker user's files in every world-writable folder of the
        host and its IPC objects are removed."""
        self.sweep()
        sandbox.release_memory()  # a TODO's big replies must not add up to the next one's
        if self.isolation.sandbox is not None:
            self.ensure_server()
            cleaner = self.context.Process(
                target=sandbox.clear_private, args=(str(self.isolation.shared),)
            )
            self.start(cleaner)
            cleaner.join(60)
            if cleaner.is_alive():
                cleaner.kill()
                cleaner.join()
        elif self.user is not None:
            for folder in sandbox.shared_folders():
                sandbox.remove_files_of(self.user[0], (folder,))
            sandbox.remove_ipc_of(self.user[0])

    def job(self, todo, table, body, source, label) -> worker.Job:
        others = {
            t.number: t.results for t in table.TODOS if t.path == todo.path and t.id != todo.id
        }
        scratch = Path(self.scratch) / f"{todo.number}-{Path(todo.path).stem}-{label}"
        return worker.Job(
            tree=str(self.tree),
            import_roots=self.import_roots,
            path=todo.path,
            number=todo.number,
            scope=todo.scope,
            results=todo.results,
            others=others,
            body=body,
            source=source,
            reach=table.REACH_MODULE,
            scratch=str(scratch),
            limits=self.limits,
            user=self.user,
            hidden=self.hidden,
        )

    def run(self, todo, table, checks: list[Check], body, source=None, seconds=None):
        """Every check of one TODO block (a list of Verdicts); the block is the student's body
        (or whole file); `seconds`, when given, replaces the limit of this TODO."""
        starter = markers.starter_body(todo.number, todo.path)
        budget = Budget(self.limits.seconds if seconds is None else seconds)
        block = Block(
            self,
            todo.id,
            self.job(todo, table, body, source, "student"),
            self.job(todo, table, starter, None, "canary"),
            budget,
        )
        verdicts = []
        try:
            for item in checks:
                if budget.left <= 0:
                    verdicts.append(Verdict(item, False, budget.used_up(), 0.0))
                    continue
                started, charged = time.monotonic(), budget.used
                canary = block.canary.budget.used
                try:
                    if item.has_param:
                        param = item.param if isinstance(item.param, tuple) else (item.param,)
                        item.function(block, *param)
                    else:
                        item.function(block)
                    passed, message = True, "passed"
                except HarnessError:
                    raise
                except AssertionError as error:
                    passed, message = False, str(error).strip() or "a check failed"
                except Exception as error:  # the oracle could not use the block's numbers
                    passed = False
                    message = f"the block's results could not be checked ({type(error).__name__}: {error})"
                seconds = time.monotonic() - started
                # the judge's own work in the check (decoding, comparing) is the TODO's time too;
                # the canary's (the grading set-up's) is not
                budget.charge(
                    seconds - (block.canary.budget.used - canary) - (budget.used - charged)
                )
                verdicts.append(Verdict(item, passed, message, seconds))
        finally:
            block.close()
            self.clean_up()
        return verdicts


def _nothing():
    pass
