"""The autograder against blocks that try to win marks without the work, or to sink the others.

Every hostile block stands in TODO #1 of the fixture tree (`double`); the other TODOs are the
solution's. Whatever #1 does, #2 and area.py#1 keep their full marks, #1 earns nothing, grading
ends in about the per-TODO limit, and no process of the submission outlives grading.
"""

import json
import os
import time

import pytest
from tool_helpers import run_tool, submission_from

from tools import grade, sandbox

LIMIT = 3.0
OTHERS = {"hw/calc.py#2": 3.0, "hw/geom/area.py#1": 6.0}
AS_ROOT = pytest.mark.skipif(not sandbox.running_as_root(), reason="needs a separate worker user")


def graded(tree, tmp_path, body, limit=LIMIT):
    block = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("    y = 2 * x\n", block)]})
    started = time.monotonic()
    results = grade.grade(sub, tree, limits=sandbox.Limits(limit))
    return results, time.monotonic() - started


def assert_only_double_lost(results):
    scores = {todo: s["score"] for todo, s in results["todos"].items()}
    assert scores == {"hw/calc.py#1": 0.0, **OTHERS}, results["tests"]


HOSTILE = {
    "forges the judge's modules": """
import sys, builtins
for module in list(sys.modules.values()):
    if getattr(module, "__name__", "").startswith("tools"):
        for name in dir(module):
            if name in ("Fail", "check", "grade", "score"):
                setattr(module, name, None)
builtins.float = lambda *args: 6.0
y = x + 1
""",
    "replaces the comparison functions": """
import math, operator, torch
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
operator.eq = lambda a, b: True
math.isclose = lambda *args, **kwargs: True
y = x + 1
""",
    "exits": "import os\nos._exit(0)",
    "kills itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "segfaults": "import ctypes\nctypes.string_at(0)",
    "exhausts memory": "hog = bytearray(64 * 2**30)\ny = 2 * x",
    "sends half a message and waits": """
import gc, os, struct, time
from multiprocessing.connection import Connection
for obj in gc.get_objects():
    if isinstance(obj, Connection):
        os.write(obj.fileno(), struct.pack("!i", 1000) + b"x" * 10)
time.sleep(1000)
""",
    "writes to every inherited pipe": """
import os
for fd in range(3, 256):
    try:
        os.write(fd, b"x" * 4096)
    except OSError:
        pass
y = x + 1
""",
    "raises with a lone surrogate": 'raise ValueError("\\ud800 boom")',
    "sends a forged answer": """
import gc
from multiprocessing.connection import Connection
for obj in gc.get_objects():
    if isinstance(obj, Connection):
        obj.send_bytes(b'{"ok": true, "values": {"y": {"kind": "number"}}}')
y = 2 * x + 1
""",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_block_loses_only_its_own_marks(tree, tmp_path, body):
    results, seconds = graded(tree, tmp_path, body)
    assert_only_double_lost(results)


@pytest.mark.parametrize(
    "body",
    [
        "while True:\n    y = 2 * x",
        "import signal\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
    ],
    ids=["endless loop", "ignores signals"],
)
def test_an_endless_block_costs_its_time_limit_only(tree, tmp_path, body):
    _, normal = graded(tree, tmp_path / "normal", "y = 2 * x")
    results, seconds = graded(tree, tmp_path / "loop", body)
    assert_only_double_lost(results)
    assert seconds < normal + LIMIT + 30  # generous for a loaded machine; typically + LIMIT
    outputs = [t["output"] for t in results["tests"] if t["name"].startswith("hw/calc.py#1 ")]
    assert "ran past its time limit of 3 s" in outputs[0]
    assert all("time limit" in output for output in outputs)


def test_nothing_the_block_starts_outlives_grading(tree, tmp_path):
    marker = tmp_path.parent / f"escaped-{os.getpid()}"
    body = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(2)
        open({str(marker)!r}, "w").write("still running")
    os._exit(0)
y = 2 * x
"""
    os.chmod(tmp_path.parent, 0o777)
    results, _ = graded(tree, tmp_path, body)
    assert results["todos"]["hw/calc.py#1"]["score"] == 3.0  # its numbers are right
    time.sleep(4)
    assert not marker.exists(), "a daemon of the submission ran after grading"
    for pid in sandbox.children(os.getpid()):  # only the worker server and its tracker live on
        stat = open(f"/proc/{pid}/stat").read()
        if stat[stat.rfind(")") + 2] != "Z":  # a dead child waiting to be reaped ran nothing
            assert "multiprocessing" in open(f"/proc/{pid}/cmdline").read()


@AS_ROOT
def test_a_block_can_neither_read_the_course_tree_nor_write_the_results(tree, tmp_path):
    for folder in [tree, *tree.parents]:  # a course tree anyone may read, as a checkout often is
        if folder.is_dir() and str(folder).startswith("/tmp/"):
            folder.chmod(0o755)
    out = tmp_path / "results.json"
    body = f"""
import glob, os
answer = None
for path in ({str(tree / "hw" / "calc.py")!r}, "/proc/%d/cwd/hw/calc.py" % os.getppid()):
    try:
        answer = open(path).read()
    except OSError:
        pass
try:
    open({str(out)!r}, "w").write('{{"score": 100}}')
except OSError:
    pass
try:
    open(__file__, "a").write("\\nPOISON = 1\\n")
except OSError:
    pass
y = 2 * x if answer and "y = 2 * x" in answer else 0
"""
    block = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    sub = submission_from(tree, tmp_path / "sub", {"hw/calc.py": [("    y = 2 * x\n", block)]})
    result = run_tool("grade", "--submission", sub, "--tree", tree, "--out", out, cwd=tree)
    assert result.returncode == 0, result.stderr
    scores = {t["name"].split()[0]: 0 for t in json.loads(out.read_text())["tests"]}
    results = json.loads(out.read_text())
    assert results["score"] == 9.0, results["tests"]
    assert set(scores) == {"hw/calc.py#1", "hw/calc.py#2", "hw/geom/area.py#1"}


@AS_ROOT
def test_killing_every_process_it_may_reaches_only_its_own(tree, tmp_path):
    results, _ = graded(tree, tmp_path, "import os, signal\nos.kill(-1, signal.SIGKILL)")
    assert_only_double_lost(results)


def test_odd_submissions_end_in_results(tree, tmp_path):
    sub = submission_from(tree, tmp_path / "sub")
    (sub / "hw" / "calc.py").write_text(
        (tree / "hw" / "calc.py").read_text() + "\n# BEGIN TODO #" + "9" * 5000 + "\n"
    )
    (sub / "hw" / "geom" / "area.py").unlink()
    (sub / "hw" / "geom" / "area.py").symlink_to(sub / "hw" / "geom" / "loop.py")
    (sub / "hw" / "geom" / "loop.py").symlink_to(sub / "hw" / "geom" / "area.py")
    results, _ = graded_submission(tree, sub)
    assert results["todos"]["hw/calc.py#1"]["score"] == 3.0
    assert results["todos"]["hw/geom/area.py#1"]["score"] == 0.0
    assert "hw/geom/area.py could not be read (a loop of links)" in results["output"]


def graded_submission(tree, sub, limit=LIMIT):
    started = time.monotonic()
    results = grade.grade(sub, tree, limits=sandbox.Limits(limit))
    return results, time.monotonic() - started
