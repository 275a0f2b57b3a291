"""The autograder's work is bounded by what a case can return and what a submission can be.

- The judge bounds a worker's reply before it parses it (entries, header bytes, tensor bytes,
  relative to the results the case can return), and charges its own time on a check (decoding,
  comparing) to the TODO's time limit.
- Reading a submission is bounded in entries, depth, copies of the homework and bytes, with a
  note when something is left out.

Hostile blocks stand in TODO #1 of the fixture tree (`double`), as in test_grade_hostile.py.
"""

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_tensors
from test_grade_hostile import LIMIT, OTHERS, assert_only_double_lost, graded, graded_submission
from tool_helpers import submission_from

from tools import grade, judge

FULL = {"hw/calc.py#1": 3.0, **OTHERS}
WANTED = ["hw/calc.py", "hw/geom/area.py"]


def scores(results):
    return {todo: s["score"] for todo, s in results["todos"].items()}


def outputs_of(results, todo="hw/calc.py#1"):
    return [t["output"] for t in results["tests"] if t["name"].startswith(todo + " ")]


# ----------------------------------------------------------------------------- replies


def reply(header: dict, tensors: dict | None = None, entries: dict | None = None) -> bytes:
    """A reply as a worker sends it: 4-byte length, JSON header, safetensors blob. `entries`
    replaces the blob's header (a crafted blob, its data zero-filled to fit)."""
    head = json.dumps(header).encode()
    if entries is None:
        blob = save_tensors(tensors) if tensors else b""
    else:
        table = json.dumps(entries).encode()
        table += b" " * (-len(table) % 8)
        end = max([e["data_offsets"][1] for e in entries.values()] or [0])
        blob = struct.pack("<Q", len(table)) + table + bytes(end)
    return struct.pack("<I", len(head)) + head + blob


def ok_header(*names):
    return {"ok": True, "values": {n: {"kind": "tensor"} for n in names}, "grads": {}, "after": []}


def padded_entries(count):
    entries = {f"after/pad{i}": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}
               for i in range(count)}  # fmt: skip
    entries["value/y"] = {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}
    return entries


CASE = {"inputs": {"x": torch.ones(4, 3)}, "grads": (("y", "x", "mean"),), "extras": ("z",)}


def test_a_reply_within_its_case_bounds_decodes():
    tensors = {
        "value/y": torch.ones(4),
        "value/z": torch.zeros(2),
        "grad/y|x": torch.ones(4, 3),
        "after/x": torch.ones(4, 3),
    }
    header, found = judge.decode(reply(ok_header("y", "z"), tensors), ("y",), CASE)
    assert header["ok"] and set(found) == set(tensors)


@pytest.mark.parametrize(
    "data, why",
    [
        (reply(ok_header("y"), entries=padded_entries(100_000)), "a tensor header of"),
        (reply(ok_header("y"), entries=padded_entries(5)), "6 tensors where at most 4 can be"),
        (
            reply(ok_header("y"), {"value/y": torch.ones(1), "after/elsewhere": torch.ones(1)}),
            "the case did not ask for",
        ),
        (
            reply(ok_header("y"), {"value/y": torch.zeros(5_000_000)}),
            "bytes of tensors where at most",
        ),
        (reply(ok_header(*(f"v{i}" for i in range(10))), {}), "10 values where the case has 2"),
        (reply({"ok": False, "error": "x" * 2_000_000}), "a header of"),
    ],
    ids=[
        "a million-entry padding",
        "more entries",
        "an entry not asked for",
        "too many bytes",
        "too many values",
        "a huge header",
    ],  # fmt: skip
)
def test_a_reply_larger_than_its_case_is_refused_before_parsing(data, why):
    with pytest.raises(judge.ReplyTooLarge, match=why):
        judge.decode(data, ("y",), CASE)


def test_a_deeply_nested_header_is_unreadable_not_a_crash():
    head = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(ValueError):
        judge.decode(struct.pack("<I", len(head)) + head, ("y",), CASE)


def test_the_bytes_bound_grows_with_the_inputs_sent():
    small = judge.reply_bounds({"inputs": {"x": torch.ones(1)}}, ("y",))["data_bytes"]
    large = judge.reply_bounds({"inputs": {"x": torch.ones(10**6)}}, ("y",))["data_bytes"]
    assert small >= judge.REPLY_FLOOR_BYTES and large >= small + 8 * 4 * 10**6


# A block that pads every reply of its worker with a million empty tensors (the data of a correct
# answer is kept): the judge must refuse it before parsing, for this TODO only.
PADS_EVERY_REPLY = """
import gc, json, struct
from multiprocessing.connection import Connection
def padded(data, send):
    size = struct.unpack("<I", data[:4])[0]
    blob = data[4 + size:]
    if blob:
        table_size = struct.unpack("<Q", blob[:8])[0]
        table = json.loads(blob[8:8 + table_size])
        end = max(e["data_offsets"][1] for k, e in table.items() if k != "__metadata__")
        for i in range(1_000_000):
            table[f"after/pad{i}"] = {"dtype": "F32", "shape": [0], "data_offsets": [end, end]}
        head = json.dumps(table).encode()
        head += b" " * (-len(head) % 8)
        data = data[:4 + size] + struct.pack("<Q", len(head)) + head + blob[8 + table_size:]
    send(data)
for obj in gc.get_objects():
    if isinstance(obj, Connection):
        obj.send_bytes = lambda data, send=obj.send_bytes: padded(data, send)
y = 2 * x
"""


def test_a_padded_reply_loses_only_its_own_marks(tree, tmp_path):
    results, _ = graded(tree, tmp_path, PADS_EVERY_REPLY, limit=30)
    assert_only_double_lost(results)
    outputs = outputs_of(results)
    assert "sent an answer larger than its results can be (a tensor header of" in outputs[0]
    # padding a reply costs the block's own time: a later check may find its time used up
    assert all("larger than its results can be" in out or "time limit" in out for out in outputs)


SLOW_JUDGE_CHECKS = f"""

import time as _time
from tools.judge import check as _check


@_check("hw/calc.py#1")
def double_then_a_slow_comparison(block):
    block(x=1)
    _time.sleep({LIMIT} + 1)


@_check("hw/calc.py#1")
def double_after_the_slow_comparison(block):
    assert float(block(x=4)["y"]) == 8
"""


def test_the_judge_time_of_a_check_counts_against_the_todo(tree, tmp_path):
    checks = tree / "tests" / "grading" / "calc.py"
    checks.write_text(checks.read_text() + SLOW_JUDGE_CHECKS)
    sub = submission_from(tree, tmp_path / "sub")
    results, _ = graded_submission(tree, sub)
    assert scores(results)["hw/geom/area.py#1"] == OTHERS["hw/geom/area.py#1"]
    outputs = dict(
        (t["name"].split()[1], t["output"])
        for t in results["tests"]
        if t["name"].startswith("hw/calc.py#1 ")
    )
    assert outputs["double_then_a_slow_comparison"] == "passed"
    assert outputs["double_after_the_slow_comparison"] == (
        f"not run: the block used up its time limit of {LIMIT:g} s"
    )


# ----------------------------------------------------------------------------- submissions


def padded_copy(tree, dest, filler_bytes):
    """A copy of the fixture homework whose files are padded with blank lines."""
    sub = submission_from(tree, dest)
    for rel in WANTED:
        path = sub / rel
        path.write_text(path.read_text() + "\n" * filler_bytes)
    return sub


def test_a_zip_of_fifty_padded_copies_is_read_within_bounds(tree, tmp_path):
    copy = padded_copy(tree, tmp_path / "copy", grade.MAX_FILE_BYTES - 10_000)
    archive = tmp_path / "copies.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for i in range(50):
            for rel in WANTED:
                out.write(copy / rel, f"copy{i:02d}/{rel}")
    assert archive.stat().st_size < 1_000_000
    sub = grade.read_submission(archive, WANTED)
    assert sub.prefix and set(sub.files) == set(WANTED)
    notes = "\n".join(sub.notes)
    assert f"holds 50 copies of the homework; only the {grade.MAX_COPIES}" in notes
    assert f"more than {grade.MAX_READ_BYTES // 1_000_000} MB" in notes
    results, _ = graded_submission(tree, archive)
    assert scores(results) == FULL
    assert "holds 50 copies of the homework" in results["output"]


def test_copies_are_read_fullest_and_shallowest_first(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "MAX_COPIES", 2)
    for name in ("a/deeper/still", "b", "c/partial"):
        submission_from(tree, tmp_path / "sub" / name)
    (tmp_path / "sub" / "c/partial/hw/geom/area.py").unlink()
    sub = grade.read_submission(tmp_path / "sub", WANTED)
    assert sub.prefix == "b/"
    assert "holds 3 copies of the homework; only the 2" in "\n".join(sub.notes)
    assert "also under a/deeper/still/" in "\n".join(sub.notes)


def test_a_zip_with_too_many_entries_is_read_in_part(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "MAX_ENTRIES", 10)
    archive = tmp_path / "many.zip"
    sub = submission_from(tree, tmp_path / "copy")
    with zipfile.ZipFile(archive, "w") as out:
        for rel in WANTED:
            out.write(sub / rel, rel)
        for i in range(20):
            out.writestr(f"junk/{i}.txt", "x")
    read = grade.read_submission(archive, WANTED)
    assert set(read.files) == set(WANTED)
    assert "holds 22 entries; only the first 10 were looked at" in "\n".join(read.notes)


def test_a_folder_with_too_many_entries_is_read_in_part(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "MAX_ENTRIES", 30)
    sub = submission_from(tree, tmp_path / "sub")
    junk = sub / "junk"
    junk.mkdir()
    for i in range(100):
        (junk / f"{i}.txt").write_text("x")
    read = grade.read_submission(sub, WANTED)
    assert "holds more than 30 files and folders" in "\n".join(read.notes)


def deep_chain(top, depth):
    """`depth` nested folders under `top`, made without recursion, a homework-looking file at
    the bottom."""
    top.mkdir(parents=True)
    folder = str(top)
    for _ in range(depth):
        folder += "/d"
        os.mkdir(folder)
    os.mkdir(folder + "/hw")
    Path(folder, "hw", "calc.py").write_text("y = 1\n")


def remove_chain(top):
    """Removes what deep_chain made, bottom up, without recursion."""
    folder = str(top)
    while os.path.isdir(folder + "/d"):
        folder += "/d"
    os.unlink(folder + "/hw/calc.py")
    os.rmdir(folder + "/hw")
    while folder != str(top):
        os.rmdir(folder)
        folder = folder[: -len("/d")]


@pytest.mark.parametrize("where", ["chain", ".hidden/chain"])
def test_a_thousand_nested_folders_in_a_submission_are_not_walked(tree, tmp_path, where):
    sub = submission_from(tree, tmp_path / "sub")
    deep_chain(sub / where, 1000)
    try:
        read = grade.read_submission(sub, WANTED)
        assert read.prefix == "" and set(read.files) == set(WANTED)
        deep = (
            f"Folders more than {grade.MAX_DEPTH} levels deep in the submission were not looked at."
        )
        assert (deep in read.notes) == (where == "chain")
        results, _ = graded_submission(tree, sub)
        assert scores(results) == FULL
    finally:
        remove_chain(sub / where)


def test_a_homework_copy_deeper_than_the_limit_is_left_out(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "MAX_DEPTH", 3)
    submission_from(tree, tmp_path / "sub" / "a")  # hw/geom/ is the 3rd level: read
    assert set(grade.read_submission(tmp_path / "sub", WANTED).files) == set(WANTED)
    submission_from(tree, tmp_path / "deep" / "a" / "b" / "c")
    read = grade.read_submission(tmp_path / "deep", WANTED)
    assert not read.files and any("3 levels deep" in note for note in read.notes)


def test_the_course_homework_reads_within_the_bounds(tmp_path):
    table = grade.load_table(grade.REPO_ROOT)
    wanted = sorted({t.path for t in table.TODOS})
    for folder in grade.homework_dirs(table):
        shutil.copytree(
            grade.REPO_ROOT / folder,
            tmp_path / "sub" / "hw5" / folder,
            ignore=lambda _, names: [n for n in names if grade.skip_dir(table, n)],
        )
    read = grade.read_submission(tmp_path / "sub", wanted)
    assert set(read.files) == set(wanted) and read.prefix == "hw5/"
    assert read.notes == ["The submission's files were found under hw5/."]


def test_shallow_homework_is_found_before_deep_folders_fill_the_bound(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "MAX_ENTRIES", 60)
    sub = submission_from(tree, tmp_path / "sub")
    packages = sub / "env" / "lib" / "python3" / "site-packages"
    packages.mkdir(parents=True)
    for i in range(100):
        (packages / f"{i}.py").write_text("")
    read = grade.read_submission(sub, WANTED)
    assert set(read.files) == set(WANTED)
    assert "holds more than 60 files and folders" in "\n".join(read.notes)
