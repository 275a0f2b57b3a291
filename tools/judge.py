"""The judge: runs the checks of every TODO block against workers, and alone decides the verdicts.

A checks module (named per TODO in tools/todos.py) holds, for the judge, functions marked with
`@check(todo_id, weight=..., params=[...])`; each gets a `Block` and calls it like the function
the TODO table describes: `out = block(inputs={...}, ...)` sends one case to the block's worker
and returns the worker's numbers (`Outputs`); the check compares them with its own oracle and
raises `Fail` (or AssertionError) with a message for the student. For the worker, the same
module holds `REACH`: how the program reaches each block (see tools/worker.py).

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
import shutil
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors

from tools import sandbox, worker

MAX_REPLY_BYTES = 256 * 1024**2
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


def decode(data: bytes, results: tuple[str, ...]):
    """(header, tensors) of a reply; raises ValueError on anything malformed."""
    if len(data) < 4:
        raise ValueError("short reply")
    (size,) = struct.unpack("<I", data[:4])
    if size > len(data) - 4 or size > 1_000_000:
        raise ValueError("bad header length")
    header = json.loads(data[4 : 4 + size].decode())
    if not isinstance(header, dict) or not isinstance(header.get("ok"), bool):
        raise ValueError("bad header")
    blob = data[4 + size :]
    tensors = load_tensors(blob) if blob else {}
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


# ----------------------------------------------------------------------------- workers


@dataclass
class Budget:
    seconds: float
    used: float = 0.0

    @property
    def left(self) -> float:
        return self.seconds - self.used


class Worker:
    """One worker process for one block; restarted after a crash, killed at the end."""

    def __init__(self, judge: Judge, job: worker.Job, budget: Budget):
        self.judge, self.job, self.budget = judge, job, budget
        self.process = self.conn = None
        self.timed_out = False

    def start(self):
        scratch = Path(self.job.scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700, parents=True)
        mine, theirs = self.judge.context.Pipe(duplex=True)
        process = self.judge.context.Process(target=worker.serve, args=(theirs, self.job))
        try:
            process.start()
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
            raise BlockError(
                f"not run: the block used up its time limit of {self.budget.seconds:g} s"
            )
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
            self.budget.used += time.monotonic() - started
        if data is None:
            why = self._why_no_reply()
            self.stop()
            raise BlockError(why)
        try:
            return decode(data, self.job.results)
        except (ValueError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
            self.stop()
            raise BlockError(f"the block's process sent an unreadable answer ({error})") from None

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

    def __call__(self, inputs=None, requires_grad=(), grads=(), extras=(), seed=0, **args):
        case = {
            "inputs": dict(inputs or {}),
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
            raise HarnessError(f"{self.todo}: the starter's block did not run ({error})") from None
        finally:
            self.canary.stop()
        error = str(header.get("error", ""))
        if header["ok"] or not error.startswith("NotImplementedError: TODO #"):
            raise HarnessError(
                f"{self.todo}: the grading set-up does not reach the block "
                f"({error or 'the starter block returned without raising'})"
            )
        self.verified = True
        self.judge.verified.add(self.todo)

    def close(self):
        self.worker.stop()


def printable(text) -> str:
    """A worker's text made safe to print and to write as JSON (no lone surrogates)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _student_message(error: str) -> str:
    error = printable(error)
    if error.startswith("NotImplementedError: TODO #"):
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
        self.user = sandbox.worker_user()
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
        probe = self.context.Process(target=_nothing)
        probe.start()
        probe.join()
        self.keep = set(sandbox.children(os.getpid()))
        return self

    def __exit__(self, *exc):
        self.sweep()

    def sweep(self):
        sandbox.sweep(self.keep, self.user)

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
            checks=todo.checks,
            scratch=str(scratch),
            limits=self.limits,
            user=self.user,
            hidden=self.hidden,
        )

    def run(self, todo, table, checks: list[Check], body, source=None) -> list[Verdict]:
        """Every check of one TODO block; the block is the student's body (or whole file)."""
        starter = f'raise NotImplementedError("TODO #{todo.number} in {todo.path}")\n'
        budget = Budget(self.limits.seconds)
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
                started = time.monotonic()
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
                verdicts.append(Verdict(item, passed, message, time.monotonic() - started))
        finally:
            block.close()
            if self.user is not None:
                sandbox.remove_files_of(self.user[0])
        return verdicts


def _nothing():
    pass
