"""Autograder: scores a student's TODO blocks with the grading tests, one score per TODO.

    python tools/grade.py --submission hw5.zip --out results.json [--only GAN_homework/ ...]

The submission is a folder or a zip holding the student's files at their repository paths
(`GAN_homework/training/loss.py`, ...), possibly inside one wrapping folder. Grading:
1. copies the pristine tree (the homework trees, tests/grading, tests/conftest.py, tools/,
   pyproject.toml) into a temporary folder and turns it into the starter (every TODO raises
   NotImplementedError), so a TODO missing from the submission scores zero;
2. splices each of the student's TODO blocks, found by its marker lines, into that copy.
   A file whose markers are damaged is taken whole; a file that does not compile is put back
   to its starter version (only its TODOs are lost). The output says so;
3. runs `pytest tests/grading` in a subprocess with a time limit per test (pytest-timeout) and
   one for the whole run; tests that did not report by then score zero;
4. shares each TODO's points (tools/todos.py) among its tests by their weights and writes
   Gradescope's results.json, then prints a summary per TODO.
Exits 0 whenever grading ran, whatever the score.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))
import markers  # noqa: E402

TOOLS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TOOLS_DIR.parent
SKIP_DIRS = {
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    ".git",
    ".venv",
    "venv",
    "many_shot_dog",
    "training-runs",
    "checkpoint",
    "demo-output",
    "__MACOSX",
}
SKIP_SUFFIXES = {".pyc", ".pkl", ".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".zip"}
MAX_FILE_BYTES = 5_000_000


def skip_dir(name: str) -> bool:
    return name in SKIP_DIRS or re.search(r"_results", name) is not None


def load_table(root: Path):
    """The TODO table module of a tree: ROOT/tools/todos.py (TODOS, points)."""
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
    """TODO ids of the table whose file exists in the tree."""
    return [t.id for t in table.TODOS if (root / t.path).is_file()]


def homework_dirs(table) -> list[str]:
    return sorted({PurePosixPath(t.path).parts[0] for t in table.TODOS})


# ----------------------------------------------------------------------------- submissions


@dataclass
class Submission:
    source: str
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> text
    prefix: str = ""


def _decode(data: bytes) -> str:
    return markers.normalize(data.decode("utf-8", errors="replace").lstrip("\ufeff"))


def read_submission(path: str | Path, wanted: list[str]) -> Submission:
    """The wanted repo-relative files of a folder or zip submission (found at any wrapping depth)."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(
            f"The submission {path} does not exist; pass a folder or a .zip file that holds "
            "GAN_homework/ and Diffusion_homework/."
        )
    if path.is_dir():
        return _read_folder(path, wanted)
    if zipfile.is_zipfile(path):
        try:
            return _read_zip(path, wanted)
        except (zipfile.BadZipFile, OSError, RuntimeError) as error:
            raise SystemExit(
                f"The zip file {path} cannot be read ({error}); zip it again."
            ) from None
    raise SystemExit(
        f"The submission {path} is neither a folder nor a zip file; pass the folder or the .zip "
        "that holds GAN_homework/ and Diffusion_homework/."
    )


def _best_prefix(names: list[str], wanted: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        for want in wanted:
            if name == want or name.endswith("/" + want):
                prefix = name[: len(name) - len(want)]
                counts[prefix] = counts.get(prefix, 0) + 1
    if not counts:
        return ""
    return min(counts, key=lambda p: (-counts[p], len(p)))


def _read_zip(path: Path, wanted: list[str]) -> Submission:
    sub = Submission(str(path))
    with zipfile.ZipFile(path) as archive:
        members = {}
        for info in archive.infolist():
            name = info.filename.replace("\\", "/").lstrip("./")
            if info.is_dir() or name.startswith("__MACOSX/") or "/__MACOSX/" in name:
                continue
            members[name] = info
        sub.prefix = _best_prefix(list(members), wanted)
        for want in wanted:
            info = members.get(sub.prefix + want)
            if info is not None and info.file_size <= MAX_FILE_BYTES:
                sub.files[want] = _decode(archive.read(info))
    return sub


def _read_folder(path: Path, wanted: list[str]) -> Submission:
    sub = Submission(str(path))
    # shallowest folder (depth <= 2) holding the most wanted files
    frontier, best, best_count = [path], path, 0
    for _ in range(3):
        next_frontier = []
        for folder in frontier:
            count = sum((folder / want).is_file() for want in wanted)
            if count > best_count:
                best, best_count = folder, count
            try:
                children = sorted(c for c in folder.iterdir() if c.is_dir())
            except OSError:
                children = []
            next_frontier += [
                c for c in children if not skip_dir(c.name) and not c.name.startswith(".")
            ]
        frontier = next_frontier
    if best_count == 0:
        zips = sorted(path.glob("*.zip"))
        if len(zips) == 1 and zipfile.is_zipfile(zips[0]):  # e.g. Gradescope's upload folder
            return _read_zip(zips[0], wanted)
    sub.prefix = best.relative_to(path).as_posix() + "/" if best != path else ""
    for want in wanted:
        file = best / want
        if file.is_file() and file.stat().st_size <= MAX_FILE_BYTES:
            sub.files[want] = _decode(file.read_bytes())
    return sub


# ----------------------------------------------------------------------------- the graded tree


def _ignore(folder, names):
    return [
        n
        for n in names
        if (skip_dir(n) and os.path.isdir(os.path.join(folder, n)))
        or os.path.splitext(n)[1] in SKIP_SUFFIXES
    ]


def copy_grading_tree(root: Path, table, dest: Path) -> None:
    """Copies what grading needs from the pristine tree, and this tool's plugin."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in homework_dirs(table):
        if (root / name).is_dir():
            shutil.copytree(root / name, dest / name, ignore=_ignore)
    if (root / "tests" / "grading").is_dir():
        shutil.copytree(root / "tests" / "grading", dest / "tests" / "grading", ignore=_ignore)
    (dest / "tests").mkdir(exist_ok=True)
    for name in ("tests/conftest.py", "pyproject.toml"):
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    (dest / "tools").mkdir(exist_ok=True)
    for file in (root / "tools").glob("*.py"):
        shutil.copy2(file, dest / "tools" / file.name)
    for name in ("__init__.py", "markers.py", "grading_plugin.py"):
        if not (dest / "tools" / name).exists() or name == "grading_plugin.py":
            shutil.copy2(TOOLS_DIR / name, dest / "tools" / name)


def starterize_tree(tree: Path, table) -> dict[str, str]:
    """Replaces every TODO body under the homework trees; returns {relpath: starter text}."""
    starters = {}
    for name in homework_dirs(table):
        for file in sorted((tree / name).rglob("*.py")) if (tree / name).is_dir() else []:
            text = file.read_text(encoding="utf-8")
            if "TODO #" not in text or not markers.has_markers(text):
                continue
            rel = file.relative_to(tree).as_posix()
            try:
                starter = markers.starterize(text, rel)
            except markers.MarkerError as error:
                raise SystemExit(f"The pristine tree has damaged TODO markers: {error}.") from None
            file.write_text(starter, encoding="utf-8")
            starters[rel] = starter
    return starters


def splice_submission(tree: Path, starters: dict[str, str], files: list[str], sub: Submission):
    """Writes the student's blocks into the starter tree; returns notes for the output."""
    notes = []
    for rel in files:
        starter = starters.get(rel)
        if starter is None or rel not in sub.files:
            continue
        student = sub.files[rel]
        expected = set(markers.blocks_by_number(starter, rel))
        try:
            blocks = markers.blocks_by_number(student, rel)
            if set(blocks) != expected:
                raise markers.MarkerError(
                    f"{rel}: the file has TODO blocks {sorted(blocks)} but should have {sorted(expected)}"
                )
            text = markers.splice(starter, blocks, rel)
        except markers.MarkerError as error:
            text = student
            notes.append(f"Damaged TODO markers ({error}): {rel} was graded as a whole file.")
        try:
            compile(text, rel, "exec")
        except (SyntaxError, ValueError) as error:
            line = getattr(error, "lineno", None)
            where = f" at line {line}" if line else ""
            numbers = ", ".join(f"#{n}" for n in sorted(expected))
            notes.append(
                f"{rel} does not compile ({type(error).__name__}{where}: "
                f"{getattr(error, 'msg', error)}): its TODOs {numbers} score zero."
            )
            text = starter
        (tree / rel).write_text(text, encoding="utf-8")
    return notes


# ----------------------------------------------------------------------------- running pytest


def _test_targets(tree: Path, only: list[str]) -> list[str]:
    """Grading test files that name the file of an --only prefix (all of them if none does).

    A grading test file names the path of its TODO's file literally (e.g. in its TODO id), so
    files that do not can be skipped without importing them; the plugin then selects the tests
    by their TODO markers exactly.
    """
    needles = {prefix.split("#")[0] for prefix in only}
    if needles:
        hits = [
            f.relative_to(tree).as_posix()
            for f in sorted((tree / "tests" / "grading").glob("test_*.py"))
            if any(n in f.read_text(encoding="utf-8", errors="replace") for n in needles)
        ]
        if hits:
            return hits
    return ["tests/grading"]


def run_pytest(
    tree: Path,
    log: Path,
    only: list[str],
    per_test: float,
    timeout: float,
    collect_only: bool = False,
    runner=None,
):
    """Runs the grading tests; returns (records, exit code or None if killed, output tail).

    `runner`, if given, runs pytest instead of a fresh subprocess: an object with
    `run(args, cwd, env, out_path, timeout) -> exit code or None` (see tests/test_mutants.py).
    """
    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(PYTHONDONTWRITEBYTECODE="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    args = [
        *_test_targets(tree, only),
        "-p", "tools.grading_plugin", "--grading-log", str(log),
        "-p", "no:cacheprovider", "--continue-on-collection-errors", "-q",
        "--rootdir", str(tree), "--timeout", str(per_test), "--timeout-method", "signal",
    ]  # fmt: skip
    for prefix in only:
        args += ["--grading-only", prefix]
    if collect_only:
        args.append("--collect-only")
    out_path = log.with_suffix(".out")
    if runner is not None:
        code = runner.run(args, str(tree), env, str(out_path), timeout)
    else:
        with open(out_path, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *args], cwd=tree, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None
    records = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill
    tail = "\n".join(out_path.read_text(errors="replace").splitlines()[-30:])
    return records, code, tail


# ----------------------------------------------------------------------------- scoring


def _fmt(x: float) -> str:
    """3.0, 2.5, 0.67: points as a grader reads them."""
    x = round(float(x), 2)
    return f"{x:.1f}" if x == int(x) else f"{x:.2f}".rstrip("0")


def grade(
    submission: str | Path,
    root: Path = REPO_ROOT,
    only: list[str] | None = None,
    per_test: float = 60.0,
    timeout: float = 1200.0,
    keep: Path | None = None,
    runner=None,
) -> dict:
    """Grades a submission; returns Gradescope's results dict plus a "todos" summary."""
    started = time.time()
    root = Path(root).resolve()
    table = load_table(root)
    present = present_todos(root, table)
    only = list(only or [])
    for prefix in only:
        if not any(t.startswith(prefix) for t in present):
            raise SystemExit(
                f"--only {prefix} matches no TODO id of {root / 'tools' / 'todos.py'} whose file exists."
            )
    graded = [t for t in present if not only or any(t.startswith(p) for p in only)]
    files = sorted({t.split("#")[0] for t in present})
    sub = read_submission(submission, files)

    notes = []
    work = Path(tempfile.mkdtemp(prefix="hw5-grade-"))
    try:
        tree = work / "tree"
        copy_grading_tree(root, table, tree)
        starters = starterize_tree(tree, table)
        if not sub.files:
            notes.append(
                f"No homework files were found in the submission (expected files such as "
                f"{files[0] if files else 'GAN_homework/...'}): every TODO scores zero."
            )
        else:
            if sub.prefix:
                notes.append(f"The submission's files were found under {sub.prefix}.")
            for rel in files:
                if rel not in sub.files:
                    notes.append(f"{rel} is not in the submission: its TODOs score zero.")
        notes += splice_submission(tree, starters, files, sub)
        records, code, tail = run_pytest(
            work / "tree", work / "grading.jsonl", only, per_test, timeout, runner=runner
        )

        expected = {r["nodeid"]: r for r in records if r["event"] == "collected"}
        loaded = set(expected)
        results = {r["nodeid"]: r for r in records if r["event"] == "result"}
        collect_errors = [r for r in records if r["event"] == "collect_error"]
        if collect_errors:
            for error in collect_errors:
                notes.append(
                    f"Grading tests in {error['nodeid']} could not be loaded:\n{error['message']}"
                )
            # the full list of tests, from the starter tree that always imports
            clean = work / "clean"
            copy_grading_tree(root, table, clean)
            starterize_tree(clean, table)
            more, _, _ = run_pytest(
                clean, work / "collect.jsonl", only, per_test, timeout, True, runner
            )
            for r in more:
                if r["event"] == "collected" and r["nodeid"] not in expected:
                    expected[r["nodeid"]] = r
        if code is None:
            notes.append(f"Grading stopped at the overall time limit of {_fmt(timeout)} s.")
        elif code not in (0, 1):
            notes.append(f"pytest ended with exit code {code}:\n{tail}")
        if keep is not None:
            shutil.copytree(tree, keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tests, todos = [], {}
    for todo in graded:
        points = float(table.points(todo))
        mine = [n for n, r in expected.items() if r.get("todo") == todo]
        total_weight = sum(float(expected[n]["weight"]) for n in mine) or 1.0
        summary = {"score": 0.0, "max_score": points, "passed": 0, "tests": len(mine)}
        todos[todo] = summary
        if not mine:
            reason = "no grading test of this TODO ran"
            if collect_errors:
                reason += " (a grading test file could not be loaded; see the output above)"
            tests.append(_test_entry(f"{todo} (no test)", 0.0, points, reason))
            continue
        for nodeid in mine:
            max_score = points * float(expected[nodeid]["weight"]) / total_weight
            result = results.get(nodeid)
            if result is None:
                if code is None:
                    message = f"not run: grading hit the overall time limit of {_fmt(timeout)} s"
                elif nodeid not in loaded:
                    message = "not run: its test file could not be loaded (see the output above)"
                else:
                    message = f"not run: the test process ended early (exit code {code})"
                passed = False
            else:
                passed = result["outcome"] == "passed"
                message = "passed" if passed else f"{result['outcome']}: {result['message']}"
            score = max_score if passed else 0.0
            summary["score"] += score
            summary["passed"] += int(passed)
            name = f"{todo} {nodeid.removeprefix('tests/grading/')}"
            tests.append(_test_entry(name, score, max_score, message))

    total = sum(s["score"] for s in todos.values())
    maximum = sum(s["max_score"] for s in todos.values())
    header = f"Score {_fmt(total)} / {_fmt(maximum)} over {len(graded)} TODO blocks."
    return {
        "score": round(total, 4),
        "execution_time": round(time.time() - started),
        "output": "\n".join([header, *notes]),
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": tests,
        "todos": todos,
    }


def _test_entry(name: str, score: float, max_score: float, output: str) -> dict:
    return {
        "name": name,
        "score": round(score, 4),
        "max_score": round(max_score, 4),
        "status": "passed" if score >= max_score > 0 else "failed",
        "output": output,
        "visibility": "visible",
    }


def summary_table(results: dict) -> str:
    todos = results["todos"]
    width = max([len(t) for t in todos] + [10])
    lines = [f"{'TODO'.ljust(width)}  {'score':>13}  tests passed"]
    for todo, s in todos.items():
        score = f"{_fmt(s['score'])}/{_fmt(s['max_score'])}"
        lines.append(f"{todo.ljust(width)}  {score:>13}  {s['passed']}/{s['tests']}")
    lines.append(results["output"])
    return "\n".join(lines)


def gradescope(results: dict) -> dict:
    """The results without the "todos" summary, which Gradescope's format does not have."""
    return {key: value for key, value in results.items() if key != "todos"}


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--submission", required=True, help="a folder or a .zip of the student's files"
    )
    parser.add_argument("--out", required=True, help="where to write Gradescope's results.json")
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="PREFIX",
                        help="grade only the TODO ids that start with PREFIX")  # fmt: skip
    parser.add_argument(
        "--tree", default=str(REPO_ROOT), help="the pristine course tree (default: this repository)"
    )
    parser.add_argument(
        "--timeout-per-test", type=float, default=60.0, help="seconds per test (default 60)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds for the whole run (default 1200)"
    )
    args = parser.parse_args(argv)
    if Path(args.out).is_dir():
        raise SystemExit(f"--out {args.out} is a folder; pass a file name such as results.json.")
    if args.timeout_per_test <= 0 or args.timeout <= 0:
        raise SystemExit("--timeout-per-test and --timeout must be positive numbers of seconds.")
    results = grade(
        args.submission, Path(args.tree), args.only, args.timeout_per_test, args.timeout
    )
    print(summary_table(results))
    write_json(Path(args.out), gradescope(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
