"""Instructor tool: publish the student starter, build the Gradescope autograder, check the TODOs.

    python tools/release.py --out ../hw5-starter          # the starter repository for students
    python tools/release.py --autograder build/autograder --zip
    python tools/release.py --check                       # what CI runs

The starter is every tracked file of this repository (`git ls-files`, plus untracked files
that git does not ignore; outside a git checkout, every file but environments, caches and run
outputs), with each TODO block's body replaced by `raise NotImplementedError(...)`, and
without instructor-only material:
  - tools/release.py (this tool) and tools/snippets.py (it shows the reference solutions) with
    its tools/report_html.py and tools/report_media.py,
  - tests/tools/, tests/test_mutants.py and tests/mutants/ (mutants contain answers), .ci/,
  - every folder that holds a file named `.instructor-only` (with that file): to keep a folder
    out of the starter, put an empty `.instructor-only` file in it.

`--autograder DIR` writes a Gradescope bundle: setup.sh, run_autograder, and the STARTER's
homework trees, grading checks and grading tools (so no solution ships; grade.py runs the
student's blocks in it). `--zip` also writes DIR.zip, the file to upload to Gradescope.

`--check` builds the starter in a temporary folder and verifies that every TODO of
tools/todos.py whose file exists is marked exactly once, that no marker lacks a table entry,
that the starter compiles, that every TODO has grading checks, and that grading gives full
marks to the solution and zero to the starter. One line per TODO; non-zero exit on failure.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/release.py`: run as the module tools.release, so every module has one name.
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    os.execve(
        sys.executable,
        [sys.executable, "-m", "tools.release", *sys.argv[1:]],
        {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"},
    )

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tools import grade, markers, sandbox, todos
from tools.files import atomic_file, atomic_folder
from tools.judge import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR_FILES = {
    "tools/release.py",
    "tools/snippets.py",
    "tools/report_html.py",
    "tools/report_media.py",
    "tests/test_mutants.py",
    "tests/test_grading.py",
}
INSTRUCTOR_DIRS = ("tests/tools/", "tests/mutants/", ".ci/")
INSTRUCTOR_FLAG = ".instructor-only"
WALK_SKIP = todos.SKIP_DIRS | {"build", ".whl", ".mypy_cache"}
GRADING_TOOLS = (
    "__init__.py",
    "todos.py",
    "grade.py",
    "judge.py",
    "worker.py",
    "sandbox.py",
    "markers.py",
    "files.py",
)
# A Markdown section between these comments is left out of the starter.
INSTRUCTOR_SECTION = re.compile(
    r"^<!-- instructor-only\b.*?-->$.*?^<!-- end instructor-only -->\n*", re.MULTILINE | re.DOTALL
)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STARTER_LINT_IGNORES = ["F401", "F821", "F841"]


def repo_files(root: Path) -> list[str]:
    """Repo-relative paths of the files a release starts from."""
    try:
        listing = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [n for n in listing.split("\0") if n and (root / n).is_file()]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in WALK_SKIP and not d.endswith("_results"))
            for name in files:
                if not name.endswith(".pyc"):
                    names.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(set(names))


def instructor_only(rel: str, flagged: set[str]) -> bool:
    if rel in INSTRUCTOR_FILES or rel.startswith(INSTRUCTOR_DIRS):
        return True
    parents = PurePosixPath(rel).parents
    return any(str(p) in flagged for p in parents) or PurePosixPath(rel).name == INSTRUCTOR_FLAG


def release_files(root: Path) -> list[str]:
    names = repo_files(root)
    flagged = {
        str(PurePosixPath(n).parent) for n in names if PurePosixPath(n).name == INSTRUCTOR_FLAG
    }
    return [n for n in names if not instructor_only(n, flagged)]


def starter_lint_config(pyproject: str, blanked: list[str]) -> str:
    """pyproject.toml for the starter: ruff lets the files with blank TODO blocks be.

    Until a block is filled in, the names it sets are undefined (F821), the names it would read
    look unused (F841), and so may an import it would use (F401); `make test` lints first, so
    without this a student could not run the tests of an unfinished tree.
    """
    header = "[tool.ruff.lint.per-file-ignores]"
    entries = "".join(f'"{rel}" = {json.dumps(STARTER_LINT_IGNORES)}\n' for rel in sorted(blanked))
    if header in pyproject:
        return pyproject.replace(header + "\n", header + "\n" + entries, 1)
    return (
        pyproject.rstrip("\n")
        + "\n\n# Files whose TODO blocks are still blank.\n"
        + header
        + "\n"
        + entries
    )


def write_starter(root: Path, out: Path, names: list[str] | None = None) -> list[str]:
    """Writes the starter into `out` (an empty or new folder); returns the files written."""
    names = release_files(root) if names is None else names
    blanked = []
    for rel in names:
        source, target = root / rel, out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if rel.endswith(".md"):
            text = source.read_text(encoding="utf-8")
            if INSTRUCTOR_SECTION.search(text):
                target.write_text(INSTRUCTOR_SECTION.sub("", text), encoding="utf-8")
        if rel.endswith(".py"):
            text = source.read_text(encoding="utf-8")
            if markers.has_markers(text):
                try:
                    target.write_text(markers.starterize(text, rel), encoding="utf-8")
                except markers.MarkerError as error:
                    raise SystemExit(f"Cannot release: damaged TODO markers in {error}.") from None
                blanked.append(rel)
    if blanked and "pyproject.toml" in names:
        pyproject = out / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(starter_lint_config(text, blanked), encoding="utf-8")
    broken = []
    for rel in names:
        if rel.endswith(".py"):
            try:
                compile((out / rel).read_text(encoding="utf-8"), rel, "exec")
            except (SyntaxError, ValueError) as error:
                broken.append(f"{rel}: {error}")
    if broken:
        raise SystemExit("The starter does not compile: " + "; ".join(broken))
    return names


def _check_fresh_target(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SystemExit(
            f"{path} already exists and is not empty; remove it or choose another folder."
        )


def release(root: Path, out: Path) -> list[str]:
    _check_fresh_target(out)
    with atomic_folder(out) as tmp:
        return write_starter(root, tmp)


# ----------------------------------------------------------------------------- autograder

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs Python, the CPU build of torch and the course's requirements into /autograder/venv.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -y
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --index-url {index} "{torch}"
/autograder/venv/bin/pip install -r requirements-dev.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades the student's TODO blocks into
# /autograder/results/results.json. AUTOGRADER_ROOT and AUTOGRADER_PYTHON override the
# defaults, to try the bundle on another machine.
set -uo pipefail
AUTOGRADER="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$AUTOGRADER/venv/bin/python}}"
WORK="$(mktemp -d)"
cp -r "$AUTOGRADER/submission" "$WORK/submission"
mkdir -p "$AUTOGRADER/results"
cd "$AUTOGRADER/source"
export OMP_NUM_THREADS="${{OMP_NUM_THREADS:-{threads}}}"
"$PYTHON" tools/grade.py --submission "$WORK/submission" \\
    --out "$AUTOGRADER/results/results.json" --timeout-per-todo {per_todo}
"""


def torch_spec(root: Path) -> str:
    """The torch pin of the Makefile (TORCH_SPEC ?= torch==X), else plain torch."""
    makefile = root / "Makefile"
    if makefile.is_file():
        match = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)", makefile.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return "torch"


def bundle_files(root: Path, names: list[str]) -> list[str]:
    table = grade.load_table(root)
    keep_dirs = tuple(d + "/" for d in grade.homework_dirs(table)) + ("tests/grading/",)
    keep = {"pyproject.toml", "requirements.txt", "requirements-dev.txt"}
    keep |= {f"tools/{n}" for n in GRADING_TOOLS}
    return [n for n in names if n.startswith(keep_dirs) or n in keep]


def write_autograder(root: Path, out: Path, make_zip: bool, per_todo: float):
    _check_fresh_target(out)
    with atomic_folder(out) as tmp:
        names = bundle_files(root, release_files(root))
        write_starter(root, tmp, names)
        for name in GRADING_TOOLS:  # from this folder where the tree lacks them
            if not (tmp / "tools" / name).exists():
                source = root / "tools" / name
                source = source if source.exists() else Path(__file__).parent / name
                shutil.copy2(source, tmp / "tools" / name)
        scripts = {
            "setup.sh": SETUP_SH.format(index=CPU_INDEX, torch=torch_spec(root)),
            "run_autograder": RUN_AUTOGRADER.format(threads=2, per_todo=_num(per_todo)),
        }
        for name, text in scripts.items():
            (tmp / name).write_text(text)
            (tmp / name).chmod(0o755)
    if make_zip:
        zip_path = out.with_name(out.name + ".zip")
        with (
            atomic_file(zip_path) as part,
            zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive,
        ):
            for file in sorted(p for p in out.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo.from_file(file, file.relative_to(out).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (
                    stat.S_IFREG | (0o755 if os.access(file, os.X_OK) else 0o644)
                ) << 16
                archive.writestr(info, file.read_bytes())
        return zip_path
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ----------------------------------------------------------------------------- check


def check(root: Path, per_todo: float) -> int:
    table = grade.load_table(root)
    present = grade.present_todos(root, table)
    known = {t.id for t in table.TODOS}
    problems: dict[str, list[str]] = {t: [] for t in present}
    general = []
    names = release_files(root)
    marked: dict[str, int] = {}
    for rel in names:
        if not rel.endswith(".py"):
            continue
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        if not markers.has_markers(text):
            continue
        try:
            blocks = markers.find_blocks(text, rel)
        except markers.MarkerError as error:
            general.append(f"damaged markers: {error}")
            continue
        for block in blocks:
            todo = f"{rel}#{block.number}"
            marked[todo] = marked.get(todo, 0) + 1
            if todo not in known:
                general.append(
                    f"{todo} (lines {block.lines[0]}-{block.lines[1]}) has no entry in tools/todos.py"
                )
    for todo in present:
        if marked.get(todo, 0) != 1:
            problems[todo].append(f"marked {marked.get(todo, 0)} times, expected once")
    if general:
        print("\n".join(general))
        return 1

    with tempfile.TemporaryDirectory(prefix="hw5-check-") as tmp:
        starter = Path(tmp) / "starter"
        write_starter(root, starter, names)
        print(f"starter: {len(names)} files, every Python file compiles")
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--quiet", "."],
            cwd=starter,
            capture_output=True,
            text=True,
        )
        if lint.returncode != 0 and "No module named ruff" not in lint.stderr:
            print("the starter does not pass `ruff check` (make test lints first):")
            print(lint.stdout.strip() or lint.stderr.strip())
            return 1
        limits = sandbox.Limits(per_todo)
        try:
            solution_results = grade.grade(root, root, limits=limits)
            starter_results = grade.grade(starter, root, limits=limits)
        except HarnessError as error:
            print(f"the grading set-up is broken: {error}")
            return 1

    width = max([len(t) for t in present] + [10])
    for todo in present:
        sol, sta = solution_results["todos"][todo], starter_results["todos"][todo]
        if sol["tests"] == 0:
            problems[todo].append(f"no grading check in {table.BY_ID[todo].checks}")
        if sol["score"] < sol["max_score"] - 1e-9 or sol["tests"] == 0:
            failed = [
                t["name"].split(" ", 1)[1]
                for t in solution_results["tests"]
                if t["name"].startswith(todo + " ") and t["score"] < t["max_score"]
            ]
            if sol["tests"]:
                problems[todo].append("solution fails " + ", ".join(failed))
        if sta["score"] > 1e-9:
            passed = [
                t["name"].split(" ", 1)[1]
                for t in starter_results["tests"]
                if t["name"].startswith(todo + " ") and t["score"] > 0
            ]
            problems[todo].append("starter passes " + ", ".join(passed))
        verdict = "ok" if not problems[todo] else "FAIL: " + "; ".join(problems[todo])
        solution = f"{grade._fmt(sol['score'])}/{grade._fmt(sol['max_score'])}"
        starter = f"{grade._fmt(sta['score'])}/{grade._fmt(sta['max_score'])}"
        print(f"{todo.ljust(width)}   solution {solution:<9}   starter {starter:<9}   {verdict}")
    missing = [t.id for t in table.TODOS if t.id not in present]
    if missing:
        print(f"not checked (file not in the tree yet): {', '.join(missing)}")
    failures = sum(bool(p) for p in problems.values())
    if failures:
        for label, results in (("solution", solution_results), ("starter", starter_results)):
            notes = results["output"].split("\n")[1:]
            if notes:
                print(f"grading notes ({label}):\n" + "\n".join(notes))
        print(f"release check FAILED for {failures} of {len(present)} TODOs")
        return 1
    print(f"release check passed: {len(present)} TODOs")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", help="write the student starter into this (new or empty) folder")
    action.add_argument("--autograder", help="write the Gradescope bundle into this folder")
    action.add_argument(
        "--check", action="store_true", help="check every TODO on solution and starter"
    )
    parser.add_argument("--zip", action="store_true", help="with --autograder: also write DIR.zip")
    parser.add_argument(
        "--tree", default=str(REPO_ROOT), help="the course tree (default: this repository)"
    )
    parser.add_argument("--timeout-per-todo", type=float, default=60.0,
                        help="seconds for the checks of one TODO block")  # fmt: skip
    args = parser.parse_args(argv)
    root = Path(args.tree).resolve()
    if not (root / "tools" / "todos.py").is_file():
        raise SystemExit(
            f"{root} has no tools/todos.py; pass --tree the root of the course repository."
        )
    if args.zip and not args.autograder:
        raise SystemExit("--zip goes with --autograder DIR.")
    if args.check:
        return check(root, args.timeout_per_todo)
    if args.out:
        out = Path(args.out).resolve()
        if out == root or root in out.parents:
            raise SystemExit("--out must be outside the course tree; choose a folder elsewhere.")
        names = release(root, out)
        todo_files = sum(
            1 for n in names if n.endswith(".py") and markers.has_markers((out / n).read_text())
        )
        print(
            f"wrote the starter to {out}: {len(names)} files, TODO blocks replaced in {todo_files}"
        )
        return 0
    written = write_autograder(
        root, Path(args.autograder).resolve(), args.zip, args.timeout_per_todo
    )
    print(f"wrote the autograder bundle {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
