"""The starter's recorded checks (tools/recorded.py): what they learn from a real check, how they
judge a student's answer, and the fixture course's starter graded by them."""

import json

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import save_file
from tool_helpers import run_tool, submission_from

from tools import grade, recorded
from tools.judge import Check, Fail, Outputs, collect, load_checks

X = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64)
IMAGES = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(2, 3, 4)


def outputs(values: dict, grads: dict | None = None, after: dict | None = None) -> Outputs:
    """A worker's reply as the judge reads it: values are tensors, floats (numbers) or None."""
    header = {"ok": True, "values": {}, "grads": {}, "after": list(after or {})}
    tensors = {}
    for name, value in values.items():
        if value is None:
            header["values"][name] = {"kind": "missing"}
            continue
        kind = "number" if isinstance(value, float) else "tensor"
        header["values"][name] = {"kind": kind, "type": "x", "requires_grad": kind == "tensor"}
        tensors[f"value/{name}"] = (
            torch.tensor(value, dtype=torch.float64) if kind == "number" else value
        )
    for key, grad in (grads or {}).items():
        header["grads"][key] = "none" if grad is None else "ok"
        if grad is not None:
            tensors[f"grad/{key}"] = grad
    for name, value in (after or {}).items():
        tensors[f"after/{name}"] = value
    return Outputs(header, tensors, tuple(values))


# ---------------------------------------------------------------- two checks, as the real ones


def loss_check(block):
    """Like gan_loss.py: a per-sample loss or its batch mean, its gradient, the input kept."""
    out = block(inputs={"x": X}, requires_grad=("x",), grads=(("loss", "x", "mean"),), batch=3)
    value = out["loss"]
    if value.numel() not in (1, 3):
        raise Fail("loss has the wrong shape")
    if not torch.allclose(value.double().mean(), F.softplus(-X).mean(), rtol=1e-6, atol=1e-9):
        raise Fail("loss is wrong")
    grad = out.grad("loss", "x")
    if grad is None or not torch.allclose(grad, -torch.sigmoid(-X) / 3, rtol=1e-6, atol=1e-9):
        raise Fail("the gradient is wrong")
    out.assert_unchanged({"x": X})


def chosen_check(block):
    """Like gan_loss.py #3: the very tensor, of the very shape."""
    out = block(inputs={"img": IMAGES}, batch=2)
    if not torch.equal(out["chosen"], IMAGES):
        raise Fail("not the images")


def reference_loss(case):
    x = case["inputs"]["x"]
    return outputs({"loss": F.softplus(-x)}, {"loss|x": -torch.sigmoid(-x) / 3}, {"x": x.clone()})


@pytest.fixture
def recording(tmp_path):
    """A Recording of loss_check and chosen_check, learnt from the reference's replies."""
    store, checks = recorded.TensorStore(), {}
    references = {
        "loss_check": (loss_check, reference_loss),
        "chosen_check": (chosen_check, lambda case: outputs({"chosen": IMAGES.clone()})),
    }
    for name, (function, reference) in references.items():
        calls = []

        def record(calls=calls, reference=reference, **kwargs):
            case = recorded.full_case(**kwargs)
            out = reference(case)
            calls.append(recorded.Call(case, out))
            return out

        function(record)
        learnt = recorded.learn(Check("t.py#1", name, 1.0, function), calls, store)
        checks[name] = {"todo": "t.py#1", "function": name, "label": None, "weight": 1.0, **learnt}
    (tmp_path / "recorded").mkdir()
    data = {"format": recorded.FORMAT, "module": "m.py", "checks": checks}
    (tmp_path / "recorded" / "m.json").write_text(json.dumps(data))
    save_file(store.tensors, str(tmp_path / "recorded" / "m.safetensors"))
    return recorded.Recording(str(tmp_path / "m.py"))


class Student:
    """A block that answers every case with answer(x)."""

    todo = "t.py#1"

    def __init__(self, answer):
        self.answer = answer

    def __call__(self, **kwargs):
        return self.answer(recorded.full_case(**kwargs)["inputs"])


def loss_answer(value, grad="right", changed=False):
    def answer(inputs):
        x = inputs["x"]
        if changed:
            x.mul_(2)
        g = {"right": -torch.sigmoid(-X) / 3, "none": None, "sum": -torch.sigmoid(-X)}[grad]
        return outputs({"loss": value(X)}, {"loss|x": g}, {"x": x})

    return answer


RIGHT_LOSSES = {
    "per sample [B, 1]": lambda x: F.softplus(-x),
    "per sample [B]": lambda x: F.softplus(-x).squeeze(1),
    "the batch mean, 0-dim": lambda x: F.softplus(-x).mean(),
    "the batch mean, 1 element": lambda x: F.softplus(-x).mean().reshape(1),
    "float32": lambda x: F.softplus(-x).float(),
    "another formula": lambda x: -F.logsigmoid(x),
}


@pytest.mark.parametrize("form", list(RIGHT_LOSSES))
def test_every_form_the_real_check_accepts_passes(recording, form):
    recording.replay(Student(loss_answer(RIGHT_LOSSES[form])), "loss_check")


MEAN = f"{float(F.softplus(-X).mean()):.6g}"
GRAD = f"{float(-torch.sigmoid(-X[0, 0]) / 3):.6g}"
WRONG_LOSSES = {
    "the sign": (
        loss_answer(lambda x: F.softplus(x)),
        f"the mean of `loss` over the batch should be {MEAN}, got {float(F.softplus(X).mean()):.6g}",
    ),
    "a sum": (
        loss_answer(lambda x: F.softplus(-x).sum()),
        f"the mean of `loss` over the batch should be {MEAN}, got ",
    ),
    "another shape": (
        loss_answer(lambda x: F.softplus(-x).expand(3, 2)),
        "`loss` should be a tensor of shape [3, 1] or ",
    ),
    "detached": (loss_answer(lambda x: F.softplus(-x), grad="none"), "no gradient of `loss`"),
    "a wrong gradient": (
        loss_answer(lambda x: F.softplus(-x), grad="sum"),
        f"the gradient of `loss` with respect to `x` should be [{GRAD}, ",
    ),
    "in place": (loss_answer(lambda x: F.softplus(-x), changed=True), "changed `x` in place"),
    "not set": (
        lambda inputs: outputs({"loss": None}, {"loss|x": None}, {"x": inputs["x"]}),
        "The block did not set `loss`.",
    ),
}


@pytest.mark.parametrize("mistake", list(WRONG_LOSSES))
def test_a_wrong_answer_fails_naming_the_result_and_the_numbers(recording, mistake):
    answer, message = WRONG_LOSSES[mistake]
    with pytest.raises(Fail) as failed:
        recording.replay(Student(answer), "loss_check")
    text = str(failed.value)
    assert text.startswith("case 1 of 1 (batch=3): ") and message in text, text


def test_the_learnt_policy_matches_the_real_check(recording):
    policy = recording.load()["checks"]["loss_check"]
    loss = policy["values"]["loss"]
    assert loss["required"] and loss["compared"] and loss["dtypes"] == ["float32", "float64"]
    assert loss["shapes"]["same"] == "mean" and loss["shapes"]["0-dim"] == "mean"
    assert "flat" not in loss["shapes"] or loss["shapes"]["flat"] == "mean"
    assert loss["tolerance"] is not None and loss["tolerance"][0] <= 1e-6  # as tight as the check
    assert policy["grads"]["loss|x"]["required"] and policy["kept"] == ["x"]
    chosen = recording.load()["checks"]["chosen_check"]["values"]["chosen"]
    assert chosen["tolerance"] is None  # exact, and this shape only:
    assert recorded.forms(chosen, "tensor", IMAGES, {}) == {("tensor", (2, 3, 4)): "values"}


def test_an_exact_check_stays_exact(recording):
    def answer(inputs, change):
        return outputs({"chosen": change(IMAGES.clone())})

    recording.replay(Student(lambda inputs: answer(inputs, lambda v: v)), "chosen_check")
    for change in (lambda v: v + 1e-12, lambda v: v.reshape(2, 12), lambda v: v.float()):
        with pytest.raises(Fail, match="`chosen`"):
            recording.replay(Student(lambda inputs, c=change: answer(inputs, c)), "chosen_check")


def test_a_check_that_does_not_replay_the_same_cannot_be_recorded():
    def random_check(block):
        block(inputs={"x": torch.randn(3)})

    calls = [recorded.Call(recorded.full_case(inputs={"x": torch.randn(3)}), outputs({}))]
    with pytest.raises(recorded.RecordError, match="same verdict"):
        recorded.learn(
            Check("t.py#1", "random_check", 1.0, random_check), calls, recorded.TensorStore()
        )


def test_cases_survive_the_round_trip():
    case = recorded.full_case(
        inputs={"x": X, "t": 3},
        stand_ins={"a": ("mean", "x"), "b": IMAGES},
        grads=[("loss", "x", "mean")],
        shape=(1, 2),
        flag=True,
        scale=float("inf"),
        name="leading",
    )
    store = recorded.TensorStore()
    back = recorded.decode(json.loads(json.dumps(recorded.encode(case, store))), store.tensors)
    assert recorded._fingerprint(back) == recorded._fingerprint(case)
    assert back["args"]["shape"] == (1, 2) and back["stand_ins"]["a"] == ("mean", "x")
    assert torch.equal(back["inputs"]["x"], X) and back["grads"] == (("loss", "x", "mean"),)


# ---------------------------------------------------------------- the fixture course's starter


def test_the_fixture_starter_grades_with_recorded_checks(tree, tmp_path):
    out = tmp_path / "starter"
    result = run_tool("release", "--tree", tree, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    calc = (out / "tests/grading/calc.py").read_text()
    assert "Recording(__file__)" in calc and "REACH" not in calc and "== 6" not in calc
    assert (out / "tests/grading/recorded/calc.json").is_file()
    assert (out / "tests/grading/recorded/calc.safetensors").is_file()
    assert (out / "tests/grading/reach.py").read_text() == (
        tree / "tests/grading/reach.py"
    ).read_text()
    for module in ("tests/grading/calc.py", "tests/grading/area.py"):
        original = [(c.todo, c.name, c.weight) for c in collect(load_checks(tree, module))]
        replayed = [(c.todo, c.name, c.weight) for c in collect(load_checks(out, module))]
        assert replayed == [c for c in original if c[0] != "hw/not_written_yet.py#1"]

    solution = grade.grade(tree, out)
    assert solution["score"] == 12.0, grade.summary_table(solution)
    blank = grade.grade(out, out)
    table, wrong = grade.status_table(blank)
    assert blank["score"] == 0 and not wrong and table.count("  not done yet\n") == 3

    wrong_clamp = {"hw/calc.py": [("c = min(max(value, low), high)", "c = max(value, low)")]}
    results = grade.grade(submission_from(tree, tmp_path / "sub", wrong_clamp), out)
    clamp = results["todos"]["hw/calc.py#2"]
    assert clamp["passed"] == 2 and clamp["score"] == 2.0
    assert clamp["failed"] == [
        "case 1 of 1 (value=3, low=0, high=1): `c` should be exactly 1, got 3."
    ]
