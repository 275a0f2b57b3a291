"""Autograder: a score per TODO block, decided by a judge that never runs the student's code.

    python tools/grade.py --submission hw5.zip --out results.json [--only GAN_homework/ ...]

The submission is a folder or a zip holding the student's files at their repository paths
(`GAN_homework/training/loss.py`, ...), possibly inside wrapping folders. Grading
1. reads the submission (`read_submission`): any zip or folder, however broken, gives the files
   it can and a note for the rest; of two copies of the homework, the one with filled blocks;
2. builds a solution-free tree: the course tree with every TODO body replaced by the starter's;
3. runs every TODO's checks (tools/judge.py): the student's block runs as a function, inside the
   program, in a confined worker process per TODO, and the judge compares its numbers with
   independent oracles;
4. scores (`score`: a pure function of the verdicts and tools/todos.py) and writes Gradescope's
   results.json, every test named after its TODO id, then prints a summary with the reasons.
Exits 0 whenever grading ran, whatever the score; 2 with one sentence when it could not.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/grade.py`: run again as the module tools.grade (tools/_startup.py).
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tools._startup import run_as_module

    run_as_module(__file__)

import argparse
import collections
import contextlib
import getpass
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tools import markers, sandbox, todos
from tools.files import check_output_file, write_atomic

try:
    from tools.judge import NOT_DONE, HarnessError, Judge, Verdict, collect, load_checks
except ImportError as missing:  # a broken grading environment must never score zeros
    raise SystemExit(
        f"error: the grading environment lacks the Python module {missing.name}; install the "
        "course's environment first (pip install -r requirements-dev.txt, see README.md)."
    ) from None

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 5_000_000
MIN_TODO_SECONDS = 2.0  # under a deadline, a TODO with less time left is not started  # one homework file of a submission
# Reading a submission is bounded (a real one has about 100 files and less than 10 MB in all):
MAX_ENTRIES = 100_000  # zip members, or files and folders of a submission folder, looked at
MAX_DEPTH = 24  # folders below the submission's top
MAX_COPIES = 4  # copies of the homework read, those with the most homework files first
MAX_READ_BYTES = 16_000_000  # bytes of homework files read, all copies together


def load_table(root: Path):
    """The TODO registry of a course tree: ROOT/tools/todos.py."""
    path = root / "tools" / "todos.py"
    if not path.is_file():
        raise SystemExit(
            f"{root} has no tools/todos.py; pass --tree the root of the course repository."
        )
    spec = importlib.util.spec_from_file_location(f"_todo_table_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def present_todos(root: Path, table) -> list[str]:
    """TODO ids of the registry whose file exists in the tree."""
    return [t.id for t in table.TODOS if (root / t.path).is_file()]


def homework_dirs(table) -> list[str]:
    return sorted({PurePosixPath(t.path).parts[0] for t in table.TODOS})


def import_roots(table) -> tuple[str, ...]:
    return tuple(getattr(table, "IMPORT_ROOTS", homework_dirs(table)))


def skip_dir(table, name: str) -> bool:
    return name in table.SKIP_DIRS or name.endswith("_results") or name.startswith(".")


# ----------------------------------------------------------------------------- submissions


@dataclass
class Submission:
    source: str
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> text
    prefix: str = ""
    notes: list[str] = field(default_factory=list)


def _decode(data: bytes) -> str:
    return markers.normalize(data.decode("utf-8", errors="replace").lstrip("\ufeff"))


def filled_blocks(text: str, relpath: str) -> int:
    """How many TODO blocks of a file hold code other than the starter's `raise`."""
    try:
        blocks = markers.find_blocks(text)
    except markers.MarkerError:
        return 1
    return sum(1 for b in blocks if markers.has_code(b.body) and not markers.is_starter(b, relpath))


def _choose_copy(candidates: dict[str, dict[str, str]], notes: list[str]) -> tuple[str, dict]:
    """The copy of the homework to grade: most filled blocks, then most files, then shallowest."""
    if not candidates:
        return "", {}

    def rank(prefix):
        files = candidates[prefix]
        filled = sum(filled_blocks(text, rel) for rel, text in files.items())
        return (-filled, -len(files), len(prefix))

    best = min(candidates, key=rank)
    others = [p or "the top level" for p in candidates if p != best]
    if others:
        notes.append(
            f"The submission holds more than one copy of the homework (also under "
            f"{', '.join(others)}); graded the one under {best or 'the top level'}, which has the "
            "most filled TODO blocks."
        )
    elif best:
        notes.append(f"The submission's files were found under {best}.")
    return best, candidates[best]


def _prefixes(names, wanted: list[str]) -> dict[str, list[str]]:
    """{prefix: the wanted files under it} for every copy of the homework among `names`, those
    with the most wanted files first, then the shallowest."""
    found: dict[str, list[str]] = {}
    tails = {PurePosixPath(w).name for w in wanted}
    for name in names:
        if name.rpartition("/")[2] not in tails:
            continue
        for want in set(wanted):
            if name == want or name.endswith("/" + want):
                found.setdefault(name[: len(name) - len(want)], []).append(want)
    order = sorted(found, key=lambda p: (-len(found[p]), p.count("/"), p))
    return {prefix: sorted(found[prefix]) for prefix in order}


class _Intake:
    """What reading a submission has used of its bounds, and the notes on what it left out."""

    def __init__(self, sub: Submission):
        self.sub, self.bytes, self.over_bytes = sub, 0, []

    def copies(self, names, wanted: list[str]) -> dict[str, list[str]]:
        """The copies of the homework to read: at most MAX_COPIES (a note says if there are
        more)."""
        found = _prefixes(names, wanted)
        if len(found) > MAX_COPIES:
            self.sub.notes.append(
                f"The submission holds {len(found)} copies of the homework; only the "
                f"{MAX_COPIES} with the most homework files (the shallowest first) were read."
            )
        return dict(list(found.items())[:MAX_COPIES])

    def admit(self, name: str, size: int) -> bool:
        """Whether a file of `size` bytes may be read (a note says why not)."""
        if size > MAX_FILE_BYTES:
            self.sub.notes.append(
                f"{name} is larger than {MAX_FILE_BYTES // 1_000_000} MB and was not read."
            )
            return False
        if self.bytes + size > MAX_READ_BYTES:
            self.over_bytes.append(name)
            return False
        self.bytes += size
        return True

    def finish(self) -> None:
        if self.over_bytes:
            self.sub.notes.append(
                f"{len(self.over_bytes)} homework file(s) were not read ({self.over_bytes[0]}"
                f"{', ...' if len(self.over_bytes) > 1 else ''}): the submission's homework "
                f"files add up to more than {MAX_READ_BYTES // 1_000_000} MB."
            )


def read_submission(path: str | Path, wanted: list[str]) -> Submission:
    """The wanted repo-relative files of a folder or zip submission. Never raises for a broken
    submission: what cannot be read becomes a note, and grading goes on with the rest. Reading
    is bounded (MAX_ENTRIES, MAX_DEPTH, MAX_COPIES, MAX_FILE_BYTES, MAX_READ_BYTES); a note says
    what was left out."""
    path = Path(path)
    sub = Submission(str(path))
    if path.is_dir():
        _read_folder(path, wanted, sub)
    elif path.is_file() and zipfile.is_zipfile(path):
        _read_zip(path, wanted, sub)
    elif path.exists():
        sub.notes.append(
            f"The submission {path.name} is neither a folder nor a zip file: every TODO scores zero."
        )
    return sub


def _read_zip(path: Path, wanted: list[str], sub: Submission) -> None:
    intake = _Intake(sub)
    try:
        with zipfile.ZipFile(path) as archive:
            members, deep = {}, 0
            infos = archive.infolist()
            for info in infos[:MAX_ENTRIES]:
                name = info.filename.replace("\\", "/").lstrip("./")
                if info.is_dir() or "__MACOSX/" in f"/{name}":
                    continue
                if name.count("/") > MAX_DEPTH:
                    deep += 1
                    continue
                members[name] = info
            if len(infos) > MAX_ENTRIES:
                sub.notes.append(
                    f"The zip file holds {len(infos)} entries; only the first {MAX_ENTRIES} "
                    "were looked at."
                )
            if deep:
                sub.notes.append(
                    f"{deep} file(s) of the zip lie more than {MAX_DEPTH} folders deep and were "
                    "not looked at."
                )
            candidates: dict[str, dict[str, str]] = {}
            for prefix, files in intake.copies(members, wanted).items():
                for want in files:
                    info = members[prefix + want]
                    if not intake.admit(prefix + want, info.file_size):
                        continue
                    try:
                        text = _decode(archive.read(info))
                    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, EOFError,
                            NotImplementedError, ValueError) as error:  # fmt: skip
                        sub.notes.append(
                            f"{prefix + want} could not be read from the zip "
                            f"({type(error).__name__}); its TODOs score zero."
                        )
                        continue
                    candidates.setdefault(prefix, {})[want] = text
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, EOFError, ValueError) as error:
        sub.notes.append(
            f"The zip file {path.name} cannot be read ({type(error).__name__}); zip the homework "
            "again: every TODO scores zero."
        )
        return
    intake.finish()
    sub.prefix, sub.files = _choose_copy(candidates, sub.notes)


def _walk(top: Path, sub: Submission) -> list[str]:
    """The files under `top` (paths relative to it), without recursion, shallowest first (a
    virtual environment's thousands of files lie deeper than the homework): at most
    MAX_ENTRIES entries visited and MAX_DEPTH folders deep, never into links, dot-folders or
    SKIP_DIRS."""
    names: list[str] = []
    pending, visited, deep, full = collections.deque([("", 0)]), 0, False, False
    while pending and not full:
        rel, depth = pending.popleft()
        try:
            with os.scandir(top / rel if rel else top) as entries:
                for entry in entries:
                    visited += 1
                    if visited > MAX_ENTRIES:
                        full = True
                        break
                    name = f"{rel}/{entry.name}" if rel else entry.name
                    kind = _kind(entry)
                    if kind == "folder":
                        if entry.name.startswith(".") or entry.name in todos.SKIP_DIRS:
                            continue
                        if depth >= MAX_DEPTH:
                            deep = True
                            continue
                        pending.append((name, depth + 1))
                    elif kind == "file":
                        names.append(name)
        except OSError:
            continue
    if full:
        sub.notes.append(
            f"The submission folder holds more than {MAX_ENTRIES} files and folders; only the "
            f"first {MAX_ENTRIES} were looked at."
        )
    if deep:
        sub.notes.append(
            f"Folders more than {MAX_DEPTH} levels deep in the submission were not looked at."
        )
    return sorted(names)


def _kind(entry: os.DirEntry) -> str:
    """What a folder entry is to the walk: "folder", "file" (a link to anything but a folder
    included: _read_folder reads only links to files inside the submission) or "" (a link to
    a folder, never followed)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        return "" if entry.is_symlink() and entry.is_dir() else "file"
    except OSError:  # e.g. a loop of links
        return "file"


def _read_folder(path: Path, wanted: list[str], sub: Submission) -> None:
    """Walks the folder without following links; a file that is a link is read only if it
    leads to a file inside the submission."""
    top = path.resolve()
    names = _walk(path, sub)
    intake = _Intake(sub)
    candidates: dict[str, dict[str, str]] = {}
    for prefix, files in intake.copies(names, wanted).items():
        for want in files:
            file = path / (prefix + want)
            try:
                real = file.resolve()
                if not real.is_relative_to(top) or not real.is_file():
                    sub.notes.append(f"{prefix + want} is a link out of the submission; not read.")
                    continue
                if not intake.admit(prefix + want, real.stat().st_size):
                    continue
                candidates.setdefault(prefix, {})[want] = _decode(real.read_bytes())
            except (OSError, RuntimeError) as error:  # RuntimeError: a loop of links
                reason = getattr(error, "strerror", None) or "a loop of links"
                sub.notes.append(f"{prefix + want} could not be read ({reason}).")
    intake.finish()
    if not candidates:
        zips = [n for n in names if "/" not in n and n.endswith(".zip")]
        if len(zips) == 1 and (path / zips[0]).is_file():
            # e.g. Gradescope's upload folder holding the student's zip
            _read_zip(path / zips[0], wanted, sub)
            return
    sub.prefix, sub.files = _choose_copy(candidates, sub.notes)


# ----------------------------------------------------------------------------- the graded tree


def solution_free_tree(root: Path, table, dest: Path) -> None:
    """The course tree's homework folders, tools/ and the reach module (tools/todos.py
    REACH_MODULE) with every TODO body replaced by the starter's `raise`: what workers see.
    No checks module: the judge loads those from the course tree itself."""

    def ignore(folder, names):
        return [
            n
            for n in names
            if (os.path.isdir(os.path.join(folder, n)) and skip_dir(table, n))
            or os.path.splitext(n)[1] in table.SKIP_SUFFIXES
            or os.path.islink(os.path.join(folder, n))
        ]

    dest.mkdir(parents=True, exist_ok=True)
    for name in (*homework_dirs(table), "tools"):
        if (root / name).is_dir():
            shutil.copytree(root / name, dest / name, ignore=ignore)
    reach = table.REACH_MODULE
    if (root / reach).is_file():  # without it every canary reports a broken set-up
        (dest / reach).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / reach, dest / reach)
    for file in sorted(dest.rglob("*.py")):
        text = file.read_text(encoding="utf-8", errors="replace")
        if not markers.has_markers(text):
            continue
        rel = file.relative_to(dest).as_posix()
        try:
            file.write_text(markers.starterize(text, rel), encoding="utf-8")
        except markers.MarkerError as error:
            raise SystemExit(f"The course tree has damaged TODO markers: {error}.") from None
    for folder in [dest, *[p for p in dest.rglob("*") if p.is_dir()]]:
        folder.chmod(0o755)
    for file in dest.rglob("*"):
        if file.is_file():
            file.chmod(0o644)


def student_blocks(todos, sub: Submission, starters: dict[str, str]):
    """{todo id: (body, whole file or None, note or None)} for the graded TODOs whose file the
    submission has."""
    found, notes = {}, []
    for path in sorted({t.path for t in todos}):
        text = sub.files.get(path)
        if text is None:
            continue
        expected = set(markers.blocks_by_number(starters[path], path))
        try:
            blocks = markers.blocks_by_number(text, path)
            if set(blocks) != expected:
                raise markers.MarkerError(
                    f"the file has TODO blocks {sorted(blocks)} but should have {sorted(expected)}"
                )
        except markers.MarkerError as error:
            notes.append(f"Damaged TODO markers ({error}): {path} was graded as a whole file.")
            for todo in todos:
                if todo.path == path:
                    found[todo.id] = (None, text)
            continue
        for todo in todos:
            if todo.path == path:
                found[todo.id] = (blocks[todo.number].body, None)
    return found, notes


# ----------------------------------------------------------------------------- scoring


def score(table, todos: list[str], verdicts: dict[str, list[Verdict]]) -> tuple[list, dict]:
    """Gradescope test entries and a per-TODO summary from the verdicts: each TODO's points
    shared among its checks by their weights."""
    tests, summary = [], {}
    for todo in todos:
        points = float(table.points(todo))
        mine = verdicts.get(todo, [])
        total_weight = sum(v.check.weight for v in mine) or 1.0
        entry = {"score": 0.0, "max_score": points, "passed": 0, "tests": len(mine), "failed": []}
        passed_weight = 0.0
        for v in mine:
            max_score = points * v.check.weight / total_weight
            earned = max_score if v.passed else 0.0
            passed_weight += v.check.weight if v.passed else 0.0
            entry["passed"] += int(v.passed)
            if not v.passed:
                entry["failed"].append(v.message.splitlines()[0] if v.message else "failed")
            tests.append(_test_entry(f"{todo} {v.check.name}", earned, max_score, v.message))
        entry["score"] = points * passed_weight / total_weight  # exact when every check passes
        summary[todo] = entry
    return tests, summary


def _test_entry(name: str, earned: float, max_score: float, output: str) -> dict:
    return {
        "name": name,
        "score": round(earned, 4),
        "max_score": round(max_score, 4),
        "status": "passed" if earned >= max_score > 0 else "failed",
        "output": output,
        "visibility": "visible",
    }


def _fmt(x: float) -> str:
    """3.0, 2.5, 0.67: points as a grader reads them."""
    x = round(float(x), 2)
    return f"{x:.1f}" if x == int(x) else f"{x:.2f}".rstrip("0")


# ----------------------------------------------------------------------------- grading


@dataclass
class GradingSession:
    table: object
    tree: Path
    checks: dict
    judge: Judge

    def run(self, todo, body, source=None, seconds=None) -> list[Verdict]:
        return self.judge.run(todo, self.table, self.checks[todo.id], body, source, seconds)


@contextlib.contextmanager
def grading_session(root: Path, table, todos, limits: sandbox.Limits | None = None):
    """A solution-free tree, the checks of `todos`, and a judge, removed again on exit."""
    work = Path(tempfile.mkdtemp(prefix="session-", dir=sandbox.grading_folder()))
    work.chmod(0o755)
    try:
        tree = work / "tree"
        solution_free_tree(root, table, tree)
        modules = {t.checks: load_checks(root, t.checks) for t in todos}
        checks = {t.id: [c for c in collect(modules[t.checks]) if c.todo == t.id] for t in todos}
        scratch = work / "scratch"
        scratch.mkdir(mode=0o711)
        judge = Judge(tree, import_roots(table), limits or sandbox.Limits(),
                      tuple(getattr(table, "PRELOAD", ())), scratch, solution_folders(root, table))  # fmt: skip
        with judge:
            yield GradingSession(table, tree, checks, judge)
    finally:
        sandbox.remove_tree(work)


def grade_bodies(bodies: dict[str, str], root: Path = REPO_ROOT, session=None) -> dict:
    """Scores of given block bodies ({TODO id: code at any indentation}), as grade() would give
    them: for the mutant tables. Returns grade()'s "todos" summary for those TODOs."""
    root = Path(root).resolve()
    table = load_table(root)
    todos = [table.BY_ID[t] for t in bodies]
    if session is None:
        with grading_session(root, table, todos) as session:
            return grade_bodies(bodies, root, session)
    verdicts = {t.id: session.run(t, bodies[t.id]) for t in todos}
    return score(table, [t.id for t in todos], verdicts)[1]


def grade(
    submission: str | Path,
    root: Path = REPO_ROOT,
    only: list[str] | None = None,
    limits: sandbox.Limits | None = None,
    deadline: float | None = None,
) -> dict:
    """Grades a submission; returns Gradescope's results dict plus a "todos" summary.
    `deadline`: seconds for the whole grading, set-up included; a TODO gets what is left of it
    when that is less than its own limit, and none once it is spent (0 points, with the reason).
    Raises judge.HarnessError when the grading set-up itself is broken."""
    started = time.time()
    ends = None if deadline is None else time.monotonic() + deadline
    root = Path(root).resolve()
    table = load_table(root)
    present = present_todos(root, table)
    only = list(only or [])
    for prefix in only:
        if not any(t.startswith(prefix) for t in present):
            raise SystemExit(
                f"--only {prefix} matches no TODO id of {root / 'tools' / 'todos.py'} whose file exists."
            )
    graded = [
        t
        for t in table.TODOS
        if t.id in present and (not only or any(t.id.startswith(p) for p in only))
    ]
    files = sorted({t.path for t in table.TODOS if t.id in present})
    if not Path(submission).exists():
        raise SystemExit(
            f"The submission {submission} does not exist; pass a folder or a .zip file that holds "
            f"{' and '.join(d + '/' for d in homework_dirs(table))}."
        )
    sub = read_submission(submission, files)
    notes = list(sub.notes)
    if not sub.files:
        notes.append(
            f"No homework files were found in the submission (expected files such as "
            f"{files[0] if files else 'GAN_homework/...'}): every TODO scores zero."
        )
    else:
        for rel in files:
            if rel not in sub.files and any(t.path == rel for t in graded):
                notes.append(f"{rel} is not in the submission: its TODOs score zero.")

    verdicts: dict[str, list[Verdict]] = {}
    with grading_session(root, table, graded, limits) as session:
        starters = {p: (session.tree / p).read_text(encoding="utf-8") for p in files}
        blocks, marker_notes = student_blocks(graded, sub, starters)
        notes += marker_notes
        for todo in graded:
            if todo.id not in blocks:
                verdicts[todo.id] = [
                    Verdict(c, False, f"not run: {todo.path} is not in the submission", 0.0)
                    for c in session.checks[todo.id]
                ]
                continue
            seconds = None if ends is None else ends - time.monotonic()
            if seconds is not None and seconds < MIN_TODO_SECONDS:
                verdicts[todo.id] = [
                    Verdict(c, False, f"not run: grading reached its overall time limit of "
                            f"{deadline:g} s before this TODO", 0.0)
                    for c in session.checks[todo.id]
                ]  # fmt: skip
                continue
            limit = (limits or sandbox.Limits()).seconds
            verdicts[todo.id] = session.run(
                todo, *blocks[todo.id], seconds=None if seconds is None else min(limit, seconds)
            )

    tests, summary = score(table, [t.id for t in graded], verdicts)
    total = sum(s["score"] for s in summary.values())
    maximum = sum(s["max_score"] for s in summary.values())
    header = f"Score {_fmt(total)} / {_fmt(maximum)} over {len(graded)} TODO blocks."
    return {
        "score": round(total, 4),
        "execution_time": round(time.time() - started),
        "output": "\n".join([header, *notes]),
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": tests,
        "todos": summary,
    }


REASON_CHARS = 1000  # a reason longer than this (a program's own error text) is cut on screen


def _reasons(results: dict, todo: str) -> list[str]:
    """The whole message of each failing check of `todo`, in order, each distinct text once:
    a check run on several inputs gives its first failing input's message."""
    by_check = {}
    for test in results.get("tests", []):
        name = str(test.get("name", ""))
        if name.startswith(f"{todo} ") and test.get("status") == "failed":
            check = name[len(todo) + 1 :].split("[", 1)[0]
            by_check.setdefault(check, str(test.get("output") or "").strip() or "failed")
    reasons = list(by_check.values()) or results["todos"][todo].get("failed", [])
    return [
        r if len(r) <= REASON_CHARS else r[:REASON_CHARS] + " [...]" for r in dict.fromkeys(reasons)
    ]


def _wrapped(first: str, text: str, indent: str) -> list[str]:
    """`first` + `text` wrapped to the terminal (80 to 120 columns), later lines at `indent`."""
    columns = min(max(shutil.get_terminal_size((100, 24)).columns, 80), 120)
    lines = []
    for paragraph in text.splitlines() or [""]:
        lead = indent if lines else first
        lines += textwrap.wrap(paragraph, columns, initial_indent=lead, subsequent_indent=indent,
                               break_on_hyphens=False) or [lead.rstrip()]  # fmt: skip
    return lines


def summary_table(results: dict) -> str:
    """The console summary: a line per TODO, and under each that lost points the whole message
    of each failing check, each distinct message once."""
    todos = results["todos"]
    width = max([len(t) for t in todos] + [10])
    lines = [f"{'TODO'.ljust(width)}  {'score':>13}  checks passed"]
    for todo, s in todos.items():
        points = f"{_fmt(s['score'])}/{_fmt(s['max_score'])}"
        lines.append(f"{todo.ljust(width)}  {points:>13}  {s['passed']}/{s['tests']}")
        if s["passed"] < s["tests"]:
            for reason in _reasons(results, todo):
                lines += _wrapped("    - ", reason, " " * 6)
    lines.append(results["output"])
    return "\n".join(lines)


def status_table(results: dict) -> tuple[str, bool]:
    """A line per TODO: `done`, `not done yet` (its block is still the starter's) or `wrong` with
    the whole message of its first failing check; then the counts. And whether any is wrong."""
    todos = results["todos"]
    width = max([len(t) for t in todos] + [10])
    lines, counts = [f"{'TODO'.ljust(width)}  status"], {"done": 0, "wrong": 0, NOT_DONE: 0}
    for todo, s in todos.items():
        if s["tests"] and s["score"] >= s["max_score"] - 1e-9:
            state = text = "done"
        elif s["failed"] and all(r.startswith(NOT_DONE) for r in s["failed"]):
            state = text = NOT_DONE
        else:
            state, reasons = "wrong", _reasons(results, todo)
            text = "wrong: " + (reasons[0] if reasons else "no check ran")
        counts[state] += 1
        lines += _wrapped(f"{todo.ljust(width)}  ", text, " " * (width + 2))
    lines.append(
        f"{len(todos)} TODOs: {counts['done']} done, {counts['wrong']} wrong, "
        f"{counts[NOT_DONE]} not done yet."
    )
    return "\n".join(lines), counts["wrong"] > 0


def gradescope(results: dict) -> dict:
    """The results without the "todos" summary, which Gradescope's format does not have, and
    every text shown as plain text (a student's text is never rendered as HTML)."""
    out = {key: value for key, value in results.items() if key != "todos"}
    out.update(output_format="text", test_output_format="text", test_name_format="text")
    return out


def failed_results(reason: str) -> dict:
    """results.json of a grading that could not finish: no score, and why, for the student."""
    return gradescope(
        {
            "score": 0.0,
            "output": (
                f"The autograder could not grade this submission: {reason}. Nothing was scored; "
                "this is not a verdict on your code: tell your instructor."
            ),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [],
        }
    )


def write_json(path: Path, data: dict) -> None:
    write_atomic(Path(path), (json.dumps(data, indent=2) + "\n").encode())


def solution_folders(root: Path, table) -> tuple[str, ...]:
    """The folders of a course tree that may hold solutions (its git history included),
    covered in every worker where there is no sandbox but mount namespaces work."""
    names = (*homework_dirs(table), "tests/mutants", "tests/grading", ".git")
    return tuple(str(root / name) for name in names if (root / name).is_dir())


def trust_note(root: Path) -> str | None:
    """One line when grading from the instructor's tree, which holds solutions, where workers
    could read them: as an ordinary user, or as root where folders cannot be covered."""
    if not (root / "tools" / "release.py").is_file():
        return None
    if sandbox.running_as_root():
        found = sandbox.isolation(solution_folders(root, load_table(root)))
        if found.sandbox is not None or found.hides:
            return None
        who = "root without mount namespaces"
    else:
        who = f"{getpass.getuser()}, not root"
    return (
        f"note: grading as {who}: a submission's code can read what this user can read, this "
        "tree's solutions included; grade untrusted submissions with the autograder bundle "
        "(tools/release.py --autograder), as root."
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--submission", required=True, help="a folder or a .zip of the student's files"
    )
    parser.add_argument("--out", default="results.json", help="where to write results.json")
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="PREFIX",
                        help="grade only the TODO ids that start with PREFIX")  # fmt: skip
    parser.add_argument(
        "--tree", default=str(REPO_ROOT), help="the course tree (default: this repository)"
    )
    parser.add_argument("--status", action="store_true",
                        help="print done / not done yet / wrong per TODO; write no results; "
                        "exit 1 if a TODO is wrong")  # fmt: skip
    parser.add_argument("--timeout-per-todo", type=float, default=sandbox.Limits.seconds,
                        help="seconds for all the checks of one TODO block (default 30)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                        help="seconds for the whole grading: TODOs not graded by then score 0 "
                        "with the reason, and results.json is written in time (Gradescope: 540 "
                        "of its 600)")  # fmt: skip
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(errors="backslashreplace")  # student text never stops the summary
    try:
        if not args.status:
            check_output_file(Path(args.out), "--out")
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if not args.timeout_per_todo > 0:
        raise SystemExit("--timeout-per-todo must be a positive number of seconds.")
    if args.deadline is not None and not args.deadline > MIN_TODO_SECONDS:
        raise SystemExit(f"--deadline must be more than {MIN_TODO_SECONDS:g} seconds.")
    out = None if args.status else Path(args.out)
    if out is not None and args.deadline is not None:
        _last_resort(out, args.deadline)
    try:
        return _grade_and_report(args, out)
    except SystemExit as error:
        if out is not None and not isinstance(error.code, int | None):
            _write_failure(out, str(error.code).rstrip("."))
        raise
    except HarnessError as error:
        print(f"error: the grading set-up is broken, nothing was scored: {error}.", file=sys.stderr)
        if out is not None:
            _write_failure(out, f"the grading set-up is broken ({error})")
        return 2
    except BaseException as error:  # the grader's own failure: still a results.json
        if out is not None:
            _write_failure(out, f"the grader itself failed ({type(error).__name__})")
        raise


def _grade_and_report(args, out: Path | None) -> int:
    tree = Path(args.tree).resolve()
    limits = sandbox.Limits(args.timeout_per_todo)
    note = trust_note(tree)
    if note:
        print(note, file=sys.stderr)
    if not args.status:
        hidden = solution_folders(tree, load_table(tree)) if (tree / "tools").is_dir() else ()
        print(sandbox.isolation(hidden).line(limits), flush=True)
    results = grade(args.submission, tree, args.only, limits, args.deadline)
    if args.status:
        table, wrong = status_table(results)
        print(table)
        return 1 if wrong else 0
    try:
        write_json(out, gradescope(results))
    except OSError as error:
        raise SystemExit(f"--out {args.out} cannot be written ({error.strerror}).") from None
    print(summary_table(results))
    print(f"wrote {args.out}")
    return 0


def _write_failure(out: Path, reason: str) -> None:
    try:
        write_json(out, failed_results(reason))
        print(f"wrote {out} (no score: {reason})", file=sys.stderr)
    except OSError as error:
        print(f"error: {out} cannot be written either ({error.strerror})", file=sys.stderr)


def _last_resort(out: Path, deadline: float) -> None:
    """A daemon timer that, should grading overrun its deadline by 30 s in spite of the
    per-TODO limits, writes a results.json that says so and ends the process and its workers."""

    def overrun():
        _write_failure(out, f"grading did not finish within {deadline + 30:g} s")
        sys.stdout.flush()
        sandbox.sweep(set())
        os._exit(3)

    timer = threading.Timer(deadline + 30, overrun)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
