"""Recorded checks: the starter's local checks, made of the reference's answers on fixed cases.

The autograder's checks modules (tests/grading/<name>.py) compute the expected value of every
case with their own oracle, so they spell out the answers; they stay in the course tree and in
the autograder bundle. For the student's starter, `tools/release.py --out` records them instead:

- `record` runs every check of a checks module through the real judge against the
  reference body of its TODO block, and keeps each case the check sends to the block (inputs,
  gradients asked for, arguments) with what the reference's block gave back (its results, the
  gradients, whether it left its inputs as they were). It then learns, by trying each on the
  real check with the reference's numbers, which forms of a result the check accepts (a
  per-sample loss or its batch mean, 0-dim or 1 element, float32 or float64, another shape of
  the same values), which results, gradients and inputs it looks at, and how closely.
- `write_recorded` writes, in the starter, tests/grading/<name>.py as a generated module with
  the same checks (same TODO, name and weight, so the same points), whose every check replays
  its recorded cases (`Recording.replay`): it sends each case to the student's block and compares
  the block's answer with the recorded one. The data lie beside it, in
  tests/grading/recorded/<name>.json (cases, shapes, accepted forms) and <name>.safetensors (the
  tensors, in the safetensors format): data only, no code, no formula.

A checks module of a randomized block whose checks test properties only (no expected values)
cannot be replayed against recorded numbers: release.py ships such a module as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tools.judge import Fail, HarnessError, Outputs

FORMAT = 1
# (rtol, atol) tried, loosest first: the first is judge.assert_close's; atol is scaled by 1 + the
# largest expected value. A check that holds to none of them compares exactly.
TOLERANCES = ((1e-4, 1e-5), (1e-5, 1e-6), (1e-6, 1e-7), (1e-7, 1e-8), (1e-8, 1e-9), (1e-8, 0.0))
SHOWN = 4  # numbers shown of a tensor in a message


class RecordError(RuntimeError):
    """A checks module cannot be recorded (the reference fails it, or it is not deterministic)."""


# ----------------------------------------------------------------------------- data encoding


class TensorStore:
    """Tensors by content: equal tensors are stored once."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.keys: dict[str, str] = {}

    def put(self, tensor: torch.Tensor) -> str:
        tensor = tensor.detach().to("cpu").contiguous()
        digest = hashlib.sha1(
            f"{tensor.dtype}{tuple(tensor.shape)}".encode()
            + tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        ).hexdigest()
        if digest not in self.keys:
            key = f"t{len(self.tensors)}"
            self.keys[digest] = key
            self.tensors[key] = tensor.clone()
        return self.keys[digest]


def encode(value, store: TensorStore):
    """A case's value as JSON: tensors by key, tuples and dicts tagged."""
    if isinstance(value, torch.Tensor):
        return {"tensor": store.put(value)}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, store) for v in value]}
    if isinstance(value, list):
        return [encode(v, store) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise RecordError("a case holds a dict whose keys are not all strings")
        return {"dict": {k: encode(v, store) for k, v in value.items()}}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise RecordError(f"a case holds a {type(value).__name__}, which cannot be recorded")


def decode(value, tensors: dict):
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if isinstance(value, dict):
        (tag, inner), *_ = value.items()
        if tag == "tensor":
            return tensors[inner].clone()
        if tag == "dtype":
            return getattr(torch, inner)
        if tag == "tuple":
            return tuple(decode(v, tensors) for v in inner)
        if tag == "float":
            return float(inner)
        return {k: decode(v, tensors) for k, v in inner.items()}
    return value


def full_case(
    inputs=None, requires_grad=(), grads=(), extras=(), seed=0, stand_ins=None, **args
) -> dict:
    """A block call's keyword arguments, as judge.Block.__call__ reads them."""
    return {
        "inputs": dict(inputs or {}),
        "stand_ins": dict(stand_ins or {}),
        "requires_grad": tuple(requires_grad),
        "grads": tuple(tuple(g) for g in grads),
        "extras": tuple(extras),
        "seed": seed,
        "args": dict(args),
    }


def call_kwargs(case: dict) -> dict:
    return {
        "inputs": case["inputs"],
        "stand_ins": case["stand_ins"],
        "requires_grad": case["requires_grad"],
        "grads": case["grads"],
        "extras": case["extras"],
        "seed": case["seed"],
        **case["args"],
    }


class _Summary(TensorStore):
    """Stands for a TensorStore in `encode`: a tensor's dtype, shape and sum, for a quick test
    that a check sends the cases it sent when recorded."""

    def put(self, tensor: torch.Tensor) -> str:
        total = float(tensor.detach().double().sum()) if tensor.numel() else 0.0
        return f"{tensor.dtype}{tuple(tensor.shape)}{total!r}"


def _fingerprint(case: dict) -> str:
    return json.dumps(encode(case, _Summary()), sort_keys=True)


# ----------------------------------------------------------------------------- replay (starter)


def tolerance(expected: torch.Tensor, tier) -> tuple[float, float]:
    """(rtol, atol) of a tolerance tier for these expected values."""
    rtol, atol = tier
    return rtol, atol * (1 + float(expected.abs().max()))


def show(value: torch.Tensor) -> str:
    """The first few numbers of a tensor, and its shape."""
    flat = value.detach().double().reshape(-1)
    numbers = ", ".join(f"{x:.6g}" for x in flat[:SHOWN].tolist())
    if value.dim() == 0:
        return numbers
    more = ", ..." if flat.numel() > SHOWN else ""
    return f"[{numbers}{more}] (shape {list(value.shape)})"


def describe_case(case: dict) -> str:
    """The case's plain arguments and inputs, e.g. `t=999, steps=1000, spacing='leading'`."""
    parts = []
    for source in (case["args"], case["inputs"]):
        for name, value in source.items():
            if isinstance(value, torch.Tensor):
                if value.numel() == 1:
                    parts.append(f"{name}={value.item():.6g}")
                continue
            parts.append(f"{name}={value!r}")
    text = ", ".join(parts)
    return text if len(text) <= 160 else text[:157] + "..."


def batch_of(shape: tuple, inputs: dict):
    """The batch size of a per-sample form of a result of this shape in a case with these inputs:
    the result's first dimension, else the first input tensor's."""
    if shape:
        return shape[0]
    for tensor in inputs.values():
        if isinstance(tensor, torch.Tensor) and tensor.dim():
            return tensor.shape[0]
    return None


# The shapes a result may take besides the reference's, from its shape and the batch size; the
# recorder learns which of them a check accepts, and whether it then compares the values or only
# their mean (a per-sample loss or its batch mean).
SHAPES = {
    "same": lambda shape, batch: shape,
    "flat": lambda shape, batch: (math.prod(shape),),
    "squeezed": lambda shape, batch: tuple(n for n in shape if n != 1),
    "one more dim": lambda shape, batch: (*shape, 1),
    "three more dims": lambda shape, batch: (*shape, 1, 1, 1),
    "0-dim": lambda shape, batch: (),
    "1 element": lambda shape, batch: (1,),
    "1 x 1": lambda shape, batch: (1, 1),
    "per sample": lambda shape, batch: None if batch is None else (batch,),
    "per sample x 1": lambda shape, batch: None if batch is None else (batch, 1),
}


def forms(policy: dict, kind: str, expected: torch.Tensor, inputs: dict) -> dict:
    """{(kind, shape): "values" or "mean"}: the forms of a result the check accepts in one case."""
    shape = tuple(expected.shape)
    found: dict[tuple, str] = {}
    if kind == "tensor":
        found["tensor", shape] = "values"
    for label, how in policy["shapes"].items():
        other = SHAPES[label](shape, batch_of(shape, inputs))
        if other is not None:
            key = ("tensor", tuple(other))
            found[key] = "mean" if "mean" in (how, found.get(key)) else how
    if kind == "number" or policy["number"]:
        found["number", ()] = "values" if expected.numel() == 1 else "mean"
    return found


def _describe_forms(accepted: dict) -> str:
    shown = []
    for kind, shape in accepted:
        if kind == "number":
            shown.append("a number")
        else:
            shown.append(f"a tensor of shape {list(shape)}")
    return " or ".join(dict.fromkeys(shown))


def _compare(got, expected, tier, what, where):
    """Fail unless `got` agrees with `expected` within the tolerance tier (exactly if None)."""
    if tier is None:
        if got.shape == expected.shape and torch.equal(got, expected.to(got.dtype)):
            return
        raise Fail(f"{where}: {what} should be exactly {show(expected)}, got {show(got)}.")
    got, expected = got.double(), expected.double()
    rtol, atol = tolerance(expected, tier)
    if torch.allclose(got, expected, rtol=rtol, atol=atol):
        return
    err = (got - expected).abs().nan_to_num(float("inf")).max().item()
    raise Fail(
        f"{where}: {what} should be {show(expected)}, got {show(got)} (largest error {err:.3g})."
    )


class Recording:
    """The recorded cases of one checks module, read once from recorded/<name>.json and
    recorded/<name>.safetensors beside it."""

    def __init__(self, module_file: str):
        path = Path(module_file)
        self.json = path.parent / "recorded" / f"{path.stem}.json"
        self.blob = path.parent / "recorded" / f"{path.stem}.safetensors"
        self.data = self.tensors = None

    def load(self):
        if self.data is None:
            try:
                data = json.loads(self.json.read_text(encoding="utf-8"))
                tensors = load_file(str(self.blob)) if self.blob.exists() else {}
            except (OSError, ValueError) as error:
                raise HarnessError(
                    f"the recorded cases {self.json.name} cannot be read ({error}); "
                    "the starter is incomplete"
                ) from None
            if data.get("format") != FORMAT:
                raise HarnessError(f"{self.json.name} was written by another version of the tools")
            self.data, self.tensors = data, tensors
        return self.data

    def replay(self, block, name: str, label: str | None = None):
        """Send every recorded case of one check to the block; Fail at the first disagreement."""
        full = name if label is None else f"{name}[{label}]"
        entry = self.load()["checks"].get(full)
        if entry is None:
            raise HarnessError(f"{self.json.name} has no recorded cases for the check {full}")
        calls = entry["calls"]
        for number, call in enumerate(calls, 1):
            case = decode(call["case"], self.tensors)
            sent = {k: v.clone() for k, v in case["inputs"].items() if isinstance(v, torch.Tensor)}
            out = block(**call_kwargs(case))
            plain = describe_case(case)
            where = f"case {number} of {len(calls)}" + (f" ({plain})" if plain else "")
            for name in entry["kept"]:
                if name in sent and not torch.equal(out.after(name), sent[name]):
                    raise Fail(
                        f"{where}: the block changed `{name}` in place (the caller's tensor); "
                        "compute new tensors instead."
                    )
            for name, (kind, key) in call["values"].items():
                self._check_value(out, name, entry["values"][name], kind, key, sent, where)
            for key, tensor_key in call["grads"].items():
                self._check_grad(out, key, entry["grads"][key], tensor_key, where)

    def _check_value(self, out, name, policy, kind, key, inputs, where):
        if out.kind(name) == "missing" and not policy["required"]:
            return
        try:
            got = out[name]
        except Fail as error:  # a missing name, or a value that is not a tensor or a number
            raise Fail(f"{where}: {error}") from None
        expected = self.tensors[key]
        accepted = forms(policy, kind, expected, inputs)
        how = accepted.get((out.kind(name), () if out.kind(name) == "number" else tuple(got.shape)))
        if how is None:
            form = (
                "a number" if out.kind(name) == "number" else f"a tensor of shape {list(got.shape)}"
            )
            raise Fail(f"{where}: `{name}` should be {_describe_forms(accepted)}, got {form}.")
        dtype = str(got.dtype).removeprefix("torch.")
        dtypes = list(
            dict.fromkeys([str(expected.dtype).removeprefix("torch."), *policy["dtypes"]])
        )
        if out.kind(name) == "tensor" and kind == "tensor" and dtype not in dtypes:
            raise Fail(f"{where}: `{name}` is a {dtype} tensor, expected {' or '.join(dtypes)}.")
        if not policy["compared"]:
            return
        if how == "mean":
            what = f"the mean of `{name}` over the batch"
            _compare(
                got.double().mean(), expected.double().mean(), policy["tolerance"], what, where
            )
        else:
            _compare(got.reshape(expected.shape), expected, policy["tolerance"], f"`{name}`", where)

    def _check_grad(self, out, key, policy, tensor_key, where):
        result, wrt = key.split("|", 1)
        got = out.grad(result, wrt)
        if got is None:
            if policy["required"]:
                raise Fail(
                    f"{where}: no gradient of `{result}` reaches `{wrt}`: is the result "
                    "detached (.detach(), .item(), .data, numpy, torch.no_grad())?"
                )
            return
        if not policy["compared"]:
            return
        expected = self.tensors[tensor_key]
        what = f"the gradient of `{result}` with respect to `{wrt}`"
        if tuple(got.shape) != tuple(expected.shape):
            raise Fail(
                f"{where}: {what} has shape {list(got.shape)}, expected {list(expected.shape)}."
            )
        _compare(got, expected, policy["tolerance"], what, where)


# ----------------------------------------------------------------------------- recording


@dataclasses.dataclass
class Call:
    case: dict
    out: Outputs
    fingerprint: str = ""

    def __post_init__(self):
        self.fingerprint = _fingerprint(self.case)


class Recorder:
    """Stands for the judge's Block in a check: forwards each call and keeps case and answer."""

    def __init__(self, block, calls: list):
        self.block, self.calls = block, calls
        self.todo = block.todo

    def __call__(self, **kwargs):
        case = copy.deepcopy(full_case(**kwargs))
        out = self.block(**kwargs)
        self.calls.append(Call(case, out))
        return out


class Diverged(Exception):
    """A check sent a case other than the recorded one."""


class Replayer:
    """Stands for a block in a check: answers the recorded calls, changed by `change`."""

    def __init__(self, todo: str, calls: list[Call], change=None):
        self.todo, self.calls, self.change, self.used = todo, calls, change, 0

    def __call__(self, **kwargs):
        if self.used >= len(self.calls):
            raise Diverged("the check sent more cases than when it was recorded")
        call = self.calls[self.used]
        self.used += 1
        if _fingerprint(full_case(**kwargs)) != call.fingerprint:
            raise Diverged("the check sent another case than when it was recorded")
        if self.change is None:
            return call.out
        header = json.loads(json.dumps(call.out.header))
        tensors = dict(call.out.tensors)
        self.change(call, header, tensors)
        return Outputs(header, tensors, call.out.results)


def _run(check, block) -> None:
    if check.has_param:
        param = check.param if isinstance(check.param, tuple) else (check.param,)
        check.function(block, *param)
    else:
        check.function(block)


def _passes(check, calls, change) -> bool:
    try:
        _run(check, Replayer(check.todo, calls, change))
    except Exception:  # noqa: BLE001 (a failing check, whatever it raises)
        return False
    return True


def _perturbed(value: torch.Tensor, tier="far") -> torch.Tensor:
    """The value moved by 0.9 of a tolerance tier; by far more than any tolerance ("far")."""
    if not value.is_floating_point():
        return value + 1 if value.dtype != torch.bool else ~value
    if tier == "far":
        return value + (1 + value.abs().max()) * 0.5 + 0.25
    rtol, atol = tolerance(value.double(), tier)
    return (value.double() + 0.9 * (atol + rtol * value.double().abs())).to(value.dtype)


def _batch(value: torch.Tensor, call: Call):
    return batch_of(tuple(value.shape), call.case["inputs"])


def _value_of(call: Call, name: str):
    if call.out.kind(name) in ("tensor", "number"):
        return call.out.tensors[f"value/{name}"]
    return None


def _set_value(name, make):
    """A change of every reply: result `name` becomes make(value, call): a tensor (same kind),
    (kind, tensor), or None (missing)."""

    def change(call, header, tensors):
        value = _value_of(call, name)
        if value is None:
            return
        result = make(value, call)
        if result is None:
            header["values"][name] = {"kind": "missing"}
            tensors.pop(f"value/{name}", None)
            return
        kind, result = result if isinstance(result, tuple) else (call.out.kind(name), result)
        header["values"][name].update(kind=kind, type="float" if kind == "number" else "Tensor")
        tensors[f"value/{name}"] = result

    return change


def _set_grad(key, make):
    def change(call, header, tensors):
        if f"grad/{key}" not in tensors:
            return
        value = make(tensors[f"grad/{key}"])
        if value is None:
            header["grads"][key] = "none"
            tensors.pop(f"grad/{key}")
        else:
            tensors[f"grad/{key}"] = value

    return change


def _tolerance(check, calls, change_for):
    """The loosest tolerance tier that the real check accepts; None: it compares exactly."""
    for tier in TOLERANCES:
        if _passes(check, calls, change_for(tier)):
            return list(tier)
    return None


def _learn_value(check, calls, name) -> dict:
    """How the check reads result `name`: whether it must be there, the forms it may take, the
    dtypes, whether and how closely the check compares it."""
    values = [v for c in calls if (v := _value_of(c, name)) is not None]
    policy = {"required": not _passes(check, calls, _set_value(name, lambda v, c: None))}
    policy["compared"] = not _passes(check, calls, _set_value(name, lambda v, c: _perturbed(v)))
    shapes, tried = {}, {}
    for label, shape_of in SHAPES.items():

        def target(v, c, shape_of=shape_of):
            return shape_of(tuple(v.shape), _batch(v, c))

        targets = tuple(target(v, c) for c in calls if (v := _value_of(c, name)) is not None)
        if None in targets:
            continue
        if targets in tried:  # the same shapes as another label's in every case
            if tried[targets] is not None:
                shapes[label] = tried[targets]
            continue
        tried[targets] = None

        def mean_fill(v, c, target=target):
            return "tensor", torch.full(target(v, c), float(v.double().mean()), dtype=v.dtype)

        def reshaped(v, c, target=target):
            return "tensor", v.reshape(target(v, c))

        fits = all(
            v.numel() == math.prod(target(v, c))
            for c in calls
            if (v := _value_of(c, name)) is not None
        )
        if _passes(check, calls, _set_value(name, mean_fill)):
            shapes[label] = tried[targets] = "mean"
        elif fits and (label == "same" or _passes(check, calls, _set_value(name, reshaped))):
            shapes[label] = tried[targets] = "values"
    policy["shapes"] = shapes

    def number(v, c):
        return "number", torch.tensor(float(v.double().mean()), dtype=torch.float64)

    policy["number"] = _passes(check, calls, _set_value(name, number))
    policy["dtypes"] = []
    if all(v.is_floating_point() for v in values):
        for dtype in (torch.float32, torch.float64):
            if _passes(check, calls, _set_value(name, lambda v, c, d=dtype: v.to(d))):
                policy["dtypes"].append(str(dtype).removeprefix("torch."))
    policy["tolerance"] = list(TOLERANCES[0])
    if policy["compared"]:
        policy["tolerance"] = _tolerance(
            check, calls, lambda tier: _set_value(name, lambda v, c: _perturbed(v, tier))
        )
    return policy


def _learn_grad(check, calls, key) -> dict:
    policy = {"required": not _passes(check, calls, _set_grad(key, lambda g: None))}
    policy["compared"] = not _passes(check, calls, _set_grad(key, lambda g: _perturbed(g)))
    policy["tolerance"] = list(TOLERANCES[0])
    if policy["compared"]:
        policy["tolerance"] = _tolerance(
            check, calls, lambda tier: _set_grad(key, lambda g: _perturbed(g, tier))
        )
    return policy


def _kept_inputs(check, calls) -> list[str]:
    """The inputs that the reference left as they were and that the check requires back so."""
    kept = []
    for name in sorted({n for c in calls for n in c.out.header.get("after", [])}):
        if not all(
            name not in c.out.header["after"]
            or torch.equal(c.out.after(name), c.case["inputs"][name])
            for c in calls
        ):
            continue

        def changed(call, header, tensors, name=name):
            if f"after/{name}" in tensors:
                tensors[f"after/{name}"] = _perturbed(tensors[f"after/{name}"])

        if not _passes(check, calls, changed):
            kept.append(name)
    return kept


def learn(check, calls: list[Call], store: TensorStore) -> dict:
    """The recorded calls of one check as data: each case with the reference's answer, and how
    the check judges an answer (per result, gradient and input)."""
    if not _passes(check, calls, None):
        raise RecordError(f"{check.name} does not give the same verdict when replayed")
    names = dict.fromkeys(n for c in calls for n in c.out.header["values"])
    values = {
        n: _learn_value(check, calls, n)
        for n in names
        if any(_value_of(c, n) is not None for c in calls)
    }
    keys = dict.fromkeys(k for c in calls for k in c.out.header["grads"])
    grads = {
        k: _learn_grad(check, calls, k)
        for k in keys
        if any(f"grad/{k}" in c.out.tensors for c in calls)
    }
    recorded = []
    for call in calls:
        recorded.append(
            {
                "case": encode(call.case, store),
                "values": {
                    n: [call.out.kind(n), store.put(_value_of(call, n))]
                    for n in values
                    if _value_of(call, n) is not None
                },
                "grads": {
                    k: store.put(call.out.tensors[f"grad/{k}"])
                    for k in grads
                    if f"grad/{k}" in call.out.tensors
                },
            }
        )
    return {"values": values, "grads": grads, "kept": _kept_inputs(check, calls), "calls": recorded}


# ----------------------------------------------------------------------------- the starter's modules


def _recording(check, logs: dict):
    """The check, run on a Recorder of the judge's block that logs into logs[check.name]."""

    def function(block, *param):
        calls = logs.setdefault(check.name, [])
        calls.clear()
        return check.function(Recorder(block, calls), *param)

    return function


def reference_body(root: Path, todo) -> str:
    from tools import markers

    text = markers.normalize((root / todo.path).read_text(encoding="utf-8"))
    return markers.blocks_by_number(text, todo.path)[todo.number].body


def record(root: Path, modules: list[str], limits=None) -> dict[str, tuple[str, dict, dict]]:
    """{checks module: (generated source, JSON data, tensors)} for the given checks modules of
    the course tree `root`, each recorded from the reference bodies of its TODO blocks."""
    from tools import grade

    root = Path(root).resolve()
    table = grade.load_table(root)
    present = set(grade.present_todos(root, table))
    todos = [t for t in table.TODOS if t.id in present and t.checks in modules]
    found = {rel: (TensorStore(), {}) for rel in modules}
    with grade.grading_session(root, table, todos, limits) as session:
        for todo in todos:
            store, checks = found[todo.checks]
            logs: dict[str, list] = {}
            originals = session.checks[todo.id]
            wrapped = [dataclasses.replace(c, function=_recording(c, logs)) for c in originals]
            verdicts = session.judge.run(todo, table, wrapped, reference_body(root, todo))
            failed = [f"{v.check.name} ({v.message})" for v in verdicts if not v.passed]
            if failed:
                raise RecordError(f"the reference body of {todo.id} fails " + "; ".join(failed))
            for check in originals:
                function = check.name.split("[", 1)[0]
                checks[check.name] = {
                    "todo": todo.id,
                    "function": function,
                    "label": check.name[len(function) + 1 : -1] if check.has_param else None,
                    "weight": check.weight,
                    **learn(check, logs.get(check.name, []), store),
                }
    result = {}
    for rel, (store, checks) in found.items():
        data = {"format": FORMAT, "module": rel, "checks": checks}
        result[rel] = (module_source(rel, checks), data, store.tensors)
    return result


def module_source(rel: str, checks: dict) -> str:
    """The starter's checks module: one recorded check per check of the original."""
    stem = Path(rel).stem
    todos = list(dict.fromkeys(c["todo"] for c in checks.values()))
    functions: dict[str, dict] = {}
    for entry in checks.values():
        function = functions.setdefault(
            entry["function"], {"todo": entry["todo"], "weight": entry["weight"], "labels": []}
        )
        if entry["label"] is not None:
            function["labels"].append(entry["label"])
    by_file: dict[str, list[str]] = {}
    for todo in todos:
        path, number = todo.split("#")
        by_file.setdefault(path, []).append(f"#{number}")
    what = "; ".join(f"TODO {', '.join(n)} of {path}" for path, n in by_file.items())
    lines = [
        f'"""The starter\'s checks of {what or "no TODO of the starter yet"}.',
        "",
        "Generated by tools/release.py: each check sends the block the cases recorded in",
        f"recorded/{stem}.json and recorded/{stem}.safetensors, and compares its answers with",
        "those of the reference solution on the same cases (tools/recorded.py). The checks, their",
        "names and weights are the autograder's; the autograder computes its expected values anew.",
        '"""',
        "",
    ]
    if functions:
        lines += [
            "from tools.judge import check",
            "from tools.recorded import Recording",
            "",
            "RECORDED = Recording(__file__)",
        ]
    for name, function in functions.items():
        lines += ["", ""]
        labels = function["labels"]
        if labels:
            lines += [
                "@check(",
                f"    {json.dumps(function['todo'])},",
                f"    weight={function['weight']!r},",
                "    params=[",
                *[f"        {json.dumps(label)}," for label in labels],
                "    ],",
                ")",
                f"def {name}(block, case):",
                f"    RECORDED.replay(block, {json.dumps(name)}, case)",
            ]
        else:
            lines += [
                f"@check({json.dumps(function['todo'])}, weight={function['weight']!r})",
                f"def {name}(block):",
                f"    RECORDED.replay(block, {json.dumps(name)})",
            ]
    return "\n".join(lines) + "\n"


def write_recorded(root: Path, out: Path, modules: list[str], limits=None) -> list[str]:
    """Records `modules` from the course tree `root` and writes, in the starter `out`, each as a
    generated module with its data in tests/grading/recorded/; returns the files written."""
    written = []
    for rel, (source, data, tensors) in record(root, modules, limits).items():
        target = Path(out) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
        folder = target.parent / "recorded"
        folder.mkdir(exist_ok=True)
        meta = folder / f"{target.stem}.json"
        meta.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        written += [rel, meta.relative_to(out).as_posix()]
        if tensors:
            blob = folder / f"{target.stem}.safetensors"
            save_file(tensors, str(blob))
            blob.chmod(0o644)
            written.append(blob.relative_to(out).as_posix())
    return written
