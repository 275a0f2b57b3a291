"""Instructor tool: publish the student starter, build the Gradescope autograder, check the TODOs.

    python tools/release.py --out ../hw5-starter          # the starter repository for students
    python tools/release.py --autograder build/autograder --zip
    python tools/release.py --check                       # what CI runs
    python tools/release.py --lock                        # refresh the bundle's lock file

The starter is every tracked file of this repository (`git ls-files`, plus untracked files
that git does not ignore; outside a git checkout, every file but environments, caches and run
outputs), with each TODO block's body replaced by `raise NotImplementedError(...)`, and
without instructor-only material:
  - tools/release.py (this tool) and tools/snippets.py (it shows the reference solutions) with
    its tools/report_html.py and tools/report_media.py,
  - tests/tools/, tests/test_mutants.py and tests/mutants/ (mutants contain answers), .ci/,
  - slurm/course_checkpoint.sbatch (it retrains the course checkpoints), and
    slurm/grade_class.sbatch with tools/grade_class.py (grading a class on the cluster),
  - every folder that holds a file named `.instructor-only` (with that file): to keep a folder
    out of the starter, put an empty `.instructor-only` file in it.
The checks modules of tests/grading/ compute every expected value, so they hold the answers:
in the starter each is replaced by recorded checks (tools/recorded.py), generated from a run of
the real checks on the reference bodies: the same checks, names and weights, comparing the
student's answers on the recorded cases with the reference's, from data in
tests/grading/recorded/. The reach module and STARTER_CHECKS_AS_IS ship as they are.

`--autograder DIR` writes a Gradescope bundle: setup.sh, run_autograder, and the STARTER's
homework trees, grading checks and grading tools (so no solution ships; grade.py runs the
student's blocks in it). `--zip` also writes DIR.zip, the file to upload to Gradescope.

`--check` first verifies that every TODO of tools/todos.py whose file exists has its pieces
(README.md, "Adding a TODO"): its marker lines, its reach entry, its checks and its wrong
mutants (tests/mutants/), and that every marker block has a registry entry; it names each
missing piece in one sentence. Then it builds the starter in a temporary folder, verifies that
it compiles and that grading gives full marks to the solution and zero to the starter, with the
autograder's checks and with the starter's recorded ones. One line per TODO; non-zero exit on
failure.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # `python tools/release.py`: run again as the module tools.release (tools/_startup.py).
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tools._startup import run_as_module

    run_as_module(__file__)

import argparse
import importlib.metadata
import json
import os
import re
import runpy
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tools import grade, markers, recorded, sandbox, todos
from tools.files import atomic_file, atomic_folder, write_atomic
from tools.judge import HarnessError, collect, load_checks
from tools.worker import load_reach

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR_FILES = {
    "tools/release.py",
    "tools/snippets.py",
    "tools/report_html.py",
    "tools/report_media.py",
    "tests/test_mutants.py",
    "tests/test_grading.py",
    "slurm/course_checkpoint.sbatch",
    "slurm/grade_class.sbatch",
    "tools/grade_class.py",
}
INSTRUCTOR_DIRS = ("tests/tools/", "tests/mutants/", ".ci/")
INSTRUCTOR_FLAG = ".instructor-only"
WALK_SKIP = todos.SKIP_DIRS | {"build", ".whl", ".mypy_cache"}
GRADING_TOOLS = (
    "__init__.py",
    "_startup.py",
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
# Checks modules that ship to the starter as they are, not recorded: those of a randomized block
# whose checks test properties that the handout states (any correct draw passes) and compute no
# expected value, so they hold no answer, and recorded numbers could not stand for them.
STARTER_CHECKS_AS_IS = ("tests/grading/gan_diffaugment.py",)


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


def write_starter(
    root: Path,
    out: Path,
    names: list[str] | None = None,
    record: bool = False,
    limits: sandbox.Limits | None = None,
) -> list[str]:
    """Writes the starter into `out` (an empty or new folder); returns the files written.

    With `record` (the students' starter, not the autograder bundle) the checks modules become
    recorded checks that hold no answer (`starter_checks`)."""
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
    if record:
        names = sorted(set(names) | set(starter_checks(root, out, names, limits)))
    return names


def starter_checks(root: Path, out: Path, names: list[str], limits=None) -> list[str]:
    """Replaces, in the starter `out`, every checks module of tools/todos.py by recorded checks
    (tools/recorded.py): the same checks, comparing with the reference's answers on recorded
    cases instead of computing them. The reach module and the modules of STARTER_CHECKS_AS_IS
    ship as they are. Returns the files written."""
    table = grade.load_table(root)
    present = set(grade.present_todos(root, table))
    keep = {getattr(table, "REACH_MODULE", None), *STARTER_CHECKS_AS_IS}
    modules = [m for m in dict.fromkeys(t.checks for t in table.TODOS) if m not in keep]
    recorded_modules = [
        m for m in modules if any(t.checks == m and t.id in present for t in table.TODOS)
    ]
    try:
        written = recorded.write_recorded(root, out, recorded_modules, limits)
    except recorded.RecordError as error:
        raise SystemExit(
            f"Cannot release: the starter's checks cannot be recorded: {error}."
        ) from None
    except HarnessError as error:
        raise SystemExit(f"Cannot release: the grading set-up is broken: {error}.") from None
    for rel in modules:  # checks of TODOs whose file is not in the tree yet: none to record
        if rel not in recorded_modules and rel in names:
            (out / rel).write_text(recorded.module_source(rel, {}), encoding="utf-8")
    return written


def _check_fresh_target(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SystemExit(
            f"{path} already exists and is not empty; remove it or choose another folder."
        )


def release(root: Path, out: Path, per_todo: float = 60.0) -> list[str]:
    _check_fresh_target(out)
    with atomic_folder(out) as tmp:
        return write_starter(root, tmp, record=True, limits=sandbox.Limits(per_todo))


# ----------------------------------------------------------------------------- autograder

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (its default base image,
# Ubuntu 22.04, whose python3 is {python}). It installs the exact versions of requirements.lock and
# the CPU build of torch into {venv}, which every user can read (the workers run as users of their
# own), and imports every module grading needs, so that a broken image fails here, not in grading.
set -euo pipefail
cd "$(dirname "$0")"
umask 022
export DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
apt-get update -y
apt-get install -y --no-install-recommends python3 python3-venv
python3 - <<'EOF'
import sys
if sys.version_info[:2] != ({major}, {minor}):
    sys.exit("setup.sh: requirements.lock is for Python {python} and python3 is " + sys.version.split()[0]
             + "; choose Gradescope's Ubuntu 22.04 base image, or write a lock for it (tools/release.py --lock).")
EOF
rm -rf {venv}
python3 -m venv {venv}
PY={venv}/bin/python
"$PY" -m pip install --no-deps "{pip}"
"$PY" -m pip install --no-deps --index-url {index} "{torch}"
"$PY" -m pip install --no-deps --only-binary=:all: -r requirements.lock
"$PY" -m pip check
"$PY" - <<'EOF'
import importlib
failed = []
for module, names in {imports}:
    try:
        loaded = importlib.import_module(module)
        for name in names:
            getattr(loaded, name)
    except Exception as error:
        failed.append(module + " (" + str(error) + ")")
if failed:
    raise SystemExit("setup.sh: grading cannot import " + ", ".join(failed))
print("setup.sh: every module that grading imports loads")
EOF
chmod -R a+rX {venv}
chmod 700 "$PWD"  # the course files: root only
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission, as root: it grades the student's TODO blocks into
# /autograder/results/results.json. Whatever happens, it leaves a results.json: when grading
# itself fails (Python cannot start, is killed for memory, runs out of time), one that scores
# nothing and says why. AUTOGRADER_ROOT, AUTOGRADER_PYTHON and AUTOGRADER_TIMEOUT (the
# assignment's timeout in seconds, Gradescope's default 600) override the defaults, and
# AUTOGRADER_GRADE_ARGS adds options of grade.py (e.g. --only PREFIX), to try the bundle on
# another machine.
set -u
AUTOGRADER="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-{venv}/bin/python}}"
TIMEOUT="${{AUTOGRADER_TIMEOUT:-600}}"
RESULTS="$AUTOGRADER/results/results.json"

json_string() {{
    local s=$1
    s=${{s//\\\\/\\\\\\\\}}; s=${{s//\\"/\\\\\\"}}; s=${{s//$'\\n'/\\\\n}}; s=${{s//$'\\t'/ }}; s=${{s//$'\\r'/}}
    printf '"%s"' "$s"
}}

give_up() {{  # a results.json that scores nothing and says why, then exit 0
    local why="The autograder could not grade this submission: $1 Nothing was scored; the course staff see the details in the autograder's output and can regrade it."
    echo "$why"
    mkdir -p "$AUTOGRADER/results"
    printf '{{"score": 0, "output": %s, "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}}\\n' \\
        "$(json_string "$why")" > "$RESULTS.part" && mv -f "$RESULTS.part" "$RESULTS"
    exit 0
}}

case "$TIMEOUT" in ''|*[!0-9]*) TIMEOUT=600 ;; esac
[ "$TIMEOUT" -ge 120 ] || TIMEOUT=120
mkdir -p "$AUTOGRADER/results" || give_up "its results folder cannot be written."
rm -f "$RESULTS"
chmod 700 "$AUTOGRADER/source" 2>/dev/null  # the course files: root only
WORK="$(mktemp -d)" || give_up "no temporary folder could be made."
trap 'rm -rf "$WORK"' EXIT
cp -r "$AUTOGRADER/submission" "$WORK/submission" 2>/dev/null || give_up "the submission could not be copied."
cd "$AUTOGRADER/source" || give_up "its files are missing (/autograder/source)."
export OMP_NUM_THREADS="${{OMP_NUM_THREADS:-{threads}}}"
# grade.py finishes by its deadline; the time limit below is the last resort, 20 s before
# Gradescope's own, so that a results.json is written in any case.
timeout --kill-after=10 $((TIMEOUT - 20)) "$PYTHON" tools/grade.py --submission "$WORK/submission" \\
    --out "$RESULTS" --timeout-per-todo {per_todo}{deadline} ${{AUTOGRADER_GRADE_ARGS:-}}
status=$?
[ -s "$RESULTS" ] && exit 0
if [ "$status" -eq 124 ] || [ "$SECONDS" -ge $((TIMEOUT - 20)) ]; then
    give_up "grading did not finish within the time limit ($TIMEOUT s); raise the autograder timeout in the assignment's settings."
elif [ "$status" -eq 137 ]; then
    give_up "the grading program was killed (signal 9), most likely for lack of memory; give the autograder more memory in the assignment's settings ({memory_mb} MB or more)."
elif [ "$status" -eq 126 ] || [ "$status" -eq 127 ]; then
    give_up "Python could not be started ($PYTHON); the autograder image did not build correctly (see the log of setup.sh)."
elif [ "$status" -gt 128 ]; then
    give_up "the grading program was stopped by signal $((status - 128))."
else
    give_up "the grading program stopped with exit status $status without writing its results."
fi
"""


def torch_spec(root: Path) -> str:
    """The torch pin of the Makefile (TORCH_SPEC ?= torch==X), else plain torch."""
    makefile = root / "Makefile"
    if makefile.is_file():
        match = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)", makefile.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return "torch"


# ----------------------------------------------------------------------------- lock file

# The autograder's Python: python3 of Gradescope's default base image, Ubuntu 22.04 (glibc 2.35,
# x86_64). The lock holds exact versions of what grading imports, resolved for it.
LOCK_FILE = "tools/autograder/requirements-py310.lock"
BUNDLE_PYTHON = (3, 10, 12)
BUNDLE_GLIBC = (2, 35)
BUNDLE_VENV = "/opt/autograder-venv"
BUNDLE_MEMORY_MB = 1024  # what to raise Gradescope's memory to if its 768 MB default ever fails
# torch comes from the CPU index on its own: the CUDA packages of PyPI's Linux build stay out.
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton$)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def grading_imports(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every module outside the standard library and the course tree that
    grading imports: the graded files and the homework modules they import, the checks, the
    grading tools, the modules preloaded for the workers and those a block may import."""
    from tools.preload import STUDENT_MODULES, external_imports

    table = grade.load_table(root)
    files = {root / t.path for t in table.TODOS} | {root / t.checks for t in table.TODOS}
    files |= {root / "tools" / name for name in GRADING_TOOLS}
    roots = [root / r for r in grade.import_roots(table)]
    wanted = [(m, ()) for m in (*getattr(table, "PRELOAD", ()), *STUDENT_MODULES)]
    found: dict[str, set[str]] = {}
    for module, names in wanted + external_imports(sorted(files), roots):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in ("tools", "tests", "__future__"):
            continue
        if (root / top).exists() or (root / f"{top}.py").exists():
            continue
        found.setdefault(module, set()).update(names)
    return [(m, tuple(sorted(found[m]))) for m in sorted(found)]


def grading_distributions(root: Path) -> list[str]:
    """The distributions (canonical names) that provide what grading imports, from this
    environment's installed packages."""
    provided = importlib.metadata.packages_distributions()
    names, missing = set(), []
    for module, _ in grading_imports(root):
        top = module.split(".")[0]
        if top not in provided:
            missing.append(top)
        names.update(_canonical(d) for d in provided.get(top, ()))
    if missing:
        raise SystemExit(
            f"Grading imports {', '.join(sorted(set(missing)))}, which this Python does not have; "
            "run tools/release.py --lock from the course's environment (.venv, see README.md)."
        )
    return sorted(names)


def _course_specifiers(root: Path) -> dict[str, str]:
    """requirements.txt's version range per distribution, exact pins loosened to ceilings: the
    bundle's Python may need an older release than the course's."""
    from packaging.requirements import Requirement

    ranges = {}
    path = root / "requirements.txt"
    for line in path.read_text().splitlines() if path.is_file() else []:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        ranges[_canonical(req.name)] = ",".join(
            str(s).replace("==", "<=", 1) if s.operator == "==" else str(s) for s in req.specifier
        )
    return ranges


def pip_target_args() -> list[str]:
    """pip's options that pick wheels for the bundle's Python and platform."""
    major, minor, _ = BUNDLE_PYTHON
    platforms = [f"manylinux_{BUNDLE_GLIBC[0]}_{m}_x86_64" for m in range(BUNDLE_GLIBC[1], 4, -1)]
    args = ["--python-version", f"{major}.{minor}", "--only-binary=:all:"]
    for platform in [*platforms, "manylinux2014_x86_64"]:
        args += ["--platform", platform]
    return args


def resolve(requirements: list[str], python: str = sys.executable) -> dict[str, dict]:
    """pip's resolution of `requirements` for the bundle's Python and platform, downloading
    only metadata: {canonical name: the report's metadata}."""
    with tempfile.TemporaryDirectory(prefix="hw5-lock-") as tmp:
        report = Path(tmp) / "report.json"
        command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--report", str(report), *pip_target_args(), *requirements]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0 or not report.is_file():
            lines = [x for x in run.stderr.splitlines() if x.startswith("ERROR")] or [run.stderr]
            raise SystemExit(f"pip cannot resolve the requirements for Python 3.10: {lines[-1]}")
        items = json.loads(report.read_text())["install"]
    return {_canonical(i["metadata"]["name"]): i["metadata"] for i in items}


def lock_closure(roots: list[str], resolved: dict[str, dict]) -> tuple[dict[str, str], set[str]]:
    """What the bundle's Python needs of a resolution: every distribution that `roots` reach
    under the bundle's markers (pip evaluates markers for the Python that runs it, whatever
    --python-version says), without torch's CUDA packages. Returns ({name: version}, the names
    needed but missing from the resolution)."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    version = ".".join(map(str, BUNDLE_PYTHON))
    env = {**default_environment(), "python_version": version[:4], "python_full_version": version,
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "os_name": "posix"}  # fmt: skip
    needed, missing = {}, set()
    queue = [(Requirement(r), "") for r in roots]
    while queue:
        req, extra = queue.pop()
        name = _canonical(req.name)
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        if CUDA_ONLY.match(name):
            continue
        if name not in resolved:
            missing.add(name)
            continue
        first = name not in needed
        needed[name] = resolved[name]["version"]
        for requested in ([""] if first else []) + sorted(req.extras):
            for dep in resolved[name].get("requires_dist", []):
                dep_req = Requirement(dep)
                if dep_req.marker is None and requested:
                    continue  # a base dependency, followed once
                queue.append((dep_req, requested))
    return needed, missing


def write_lock(root: Path, python: str = sys.executable) -> tuple[Path, dict[str, str]]:
    """Resolves what grading imports for the bundle's Python and writes LOCK_FILE."""
    torch = torch_spec(root)
    ranges = _course_specifiers(root)
    names = [n for n in grading_distributions(root) if n != "torch"]
    roots = [n + ranges.get(n, "") for n in names] + [torch, "pip"]
    constraints = [n + r for n, r in ranges.items() if r and n != "torch"]
    extra: set[str] = set()
    for _ in range(5):
        with tempfile.TemporaryDirectory(prefix="hw5-lock-") as tmp:
            constraint_file = Path(tmp) / "constraints.txt"
            constraint_file.write_text("\n".join(constraints) + "\n")
            resolved = resolve([*roots, *sorted(extra), "-c", str(constraint_file)], python)
        pins, missing = lock_closure(roots + sorted(extra), resolved)
        if not missing:
            break
        extra |= missing
    else:
        raise SystemExit(f"pip's resolution lacks {', '.join(sorted(missing))} for Python 3.10.")
    pins.pop("torch", None)
    for name in extra:  # a dependency under the bundle's markers only, not a root of its own
        pins.setdefault(name, resolved[name]["version"])
    major, minor, _ = BUNDLE_PYTHON
    header = [
        f"# Exact versions of what grading imports, for the autograder bundle's Python {major}.{minor}",
        "# (Gradescope's default base image, Ubuntu 22.04, x86_64), every dependency included.",
        "# Written by `python tools/release.py --lock` from requirements.txt and the modules that",
        f"# grading imports; setup.sh installs {torch} (CPU build) on its own, then these with",
        "# --no-deps.",
    ]
    lines = header + [f"{name}=={pins[name]}" for name in sorted(pins)]
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    flag = path.parent / INSTRUCTOR_FLAG
    if not flag.exists():
        flag.write_text("")
    write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path, pins


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version
    return pins


def bundle_lock(root: Path) -> Path:
    """The lock file for the bundle: the tree's, else this repository's."""
    for path in (root / LOCK_FILE, REPO_ROOT / LOCK_FILE):
        if path.is_file():
            return path
    raise SystemExit(f"{root / LOCK_FILE} is missing; write it with tools/release.py --lock.")


def bundle_files(root: Path, names: list[str]) -> list[str]:
    """The bundle's files: the homework folders, the grading tools, the checks modules (the
    judge reads them) and the reach module (the workers load it)."""
    table = grade.load_table(root)
    keep_dirs = tuple(d + "/" for d in grade.homework_dirs(table)) + ("tests/grading/",)
    keep = {"pyproject.toml", "requirements.txt", "requirements-dev.txt", table.REACH_MODULE}
    keep |= {t.checks for t in table.TODOS}
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
        lock = bundle_lock(root)
        pins = read_lock(lock)
        shutil.copy2(lock, tmp / "requirements.lock")
        imports = grading_imports(root)
        provided = importlib.metadata.packages_distributions()
        unlocked = sorted(
            {m.split(".")[0] for m, _ in imports}
            - {m for m, dists in provided.items() if any(_canonical(d) in pins for d in dists)}
            - {"torch"}
        )
        if unlocked:
            raise SystemExit(
                f"Grading imports {', '.join(unlocked)}, which {lock} lacks; refresh it with "
                "tools/release.py --lock."
            )
        major, minor, _ = BUNDLE_PYTHON
        grade_text = (tmp / "tools" / "grade.py").read_text(encoding="utf-8")
        deadline = ' --deadline "$((TIMEOUT - 75))"' if '"--deadline"' in grade_text else ""
        scripts = {
            "setup.sh": SETUP_SH.format(
                index=CPU_INDEX,
                torch=torch_spec(root),
                python=f"{major}.{minor}",
                major=major,
                minor=minor,
                venv=BUNDLE_VENV,
                pip=f"pip=={pins.get('pip', '')}".rstrip("="),
                imports=repr([(m, list(n)) for m, n in imports]),
            ),
            "run_autograder": RUN_AUTOGRADER.format(
                venv=BUNDLE_VENV,
                threads=1,
                per_todo=_num(per_todo),
                deadline=deadline,
                memory_mb=BUNDLE_MEMORY_MB,
            ),
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


MUTANTS_DIR = "tests/mutants"  # the mutant tables: MUTANTS = {TODO id: {"wrong": [...], ...}}


def missing_pieces(root: Path, table, todo_ids: list[str]) -> list[str]:
    """One sentence for each piece that a marked TODO of the registry lacks: its reach entry
    (REACH_MODULE), its checks (the registry's checks module), its wrong mutants (MUTANTS_DIR).
    README.md, "Adding a TODO", lists the pieces."""
    sentences = []
    reach_rel = table.REACH_MODULE
    try:
        reach = load_reach(root, reach_rel).REACH
    except Exception as error:
        reach = None
        sentences.append(f"the reach module {reach_rel} cannot be loaded ({error})")
    checks: dict[str, list | None] = {}
    for rel in dict.fromkeys(table.BY_ID[t].checks for t in todo_ids):
        try:
            checks[rel] = collect(load_checks(root, rel))
        except HarnessError as error:
            checks[rel] = None
            sentences.append(str(error))
    mutants: dict[str, dict] = {}
    for path in sorted((root / MUTANTS_DIR).glob("*.py")):
        try:
            tables = runpy.run_path(str(path)).get("MUTANTS", {})
        except Exception as error:
            sentences.append(f"{path.relative_to(root).as_posix()} cannot be loaded ({error})")
            continue
        for todo, kinds in tables.items():
            mutants.setdefault(todo, {}).update(kinds)
    for todo_id in todo_ids:
        todo = table.BY_ID[todo_id]
        if reach is not None and todo.number not in reach.get(todo.path, {}):
            sentences.append(
                f"{todo_id} has no reach entry in {reach_rel} (REACH[{todo.path!r}][{todo.number}])"
            )
        if checks[todo.checks] is not None and not any(
            c.todo == todo_id for c in checks[todo.checks]
        ):
            sentences.append(f"{todo_id} has no checks in {todo.checks}")
        if not mutants.get(todo_id, {}).get("wrong"):
            sentences.append(
                f"{todo_id} has no mutants in {MUTANTS_DIR}/ (wrong bodies in MUTANTS)"
            )
    return sentences


def check(root: Path, per_todo: float) -> int:
    table = grade.load_table(root)
    present = grade.present_todos(root, table)
    known = {t.id for t in table.TODOS}
    problems: dict[str, list[str]] = {t: [] for t in present}
    general = []
    names = release_files(root)
    marked: set[str] = set()
    damaged: set[str] = set()
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
            damaged.add(rel)
            continue
        for block in blocks:
            todo = f"{rel}#{block.number}"
            marked.add(todo)
            if todo not in known:
                general.append(
                    f"{todo} (lines {block.lines[0]}-{block.lines[1]}) has no entry in tools/todos.py"
                )
    for todo in present:
        if todo not in marked and table.BY_ID[todo].path not in damaged:
            general.append(
                f"{todo} is in tools/todos.py, but {table.BY_ID[todo].path} has no BEGIN/END "
                f"TODO #{table.BY_ID[todo].number} lines"
            )
    general += missing_pieces(root, table, [t for t in present if t in marked])
    if general:
        print("\n".join(general))
        return 1

    with tempfile.TemporaryDirectory(prefix="hw5-check-") as tmp:
        starter = Path(tmp) / "starter"
        write_starter(root, starter, names)
        print(f"starter: {len(names)} files, every Python file compiles")
        limits = sandbox.Limits(per_todo)
        try:
            solution_results = grade.grade(root, root, limits=limits)
            starter_results = grade.grade(starter, root, limits=limits)
        except HarnessError as error:
            print(f"the grading set-up is broken: {error}")
            return 1
        # The starter's own checks, recorded from the reference: they must give the solution full
        # marks and the starter none, as the autograder's do.
        recorded_results = None
        if all(
            s["tests"] and s["score"] >= s["max_score"] - 1e-9
            for s in solution_results["todos"].values()
        ):
            try:
                starter_checks(root, starter, names, limits)
                recorded_results = (
                    grade.grade(root, starter, limits=limits),
                    grade.grade(starter, starter, limits=limits),
                )
            except SystemExit as error:
                print(error)
                return 1
            except HarnessError as error:
                print(f"the starter's recorded checks are broken: {error}")
                return 1
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
        recorded_scores = ""
        if recorded_results is not None:
            rec_sol, rec_sta = (r["todos"][todo] for r in recorded_results)
            if rec_sol["score"] < rec_sol["max_score"] - 1e-9:
                problems[todo].append(
                    "the starter's recorded checks fail the solution: "
                    + ", ".join(_names(recorded_results[0], todo, passed=False))
                )
            if rec_sta["score"] > 1e-9:
                problems[todo].append(
                    "the starter's recorded checks pass the starter: "
                    + ", ".join(_names(recorded_results[1], todo, passed=True))
                )
            recorded_scores = (
                f"   recorded {grade._fmt(rec_sol['score'])}/{grade._fmt(rec_sol['max_score'])}"
                f" {grade._fmt(rec_sta['score'])}/{grade._fmt(rec_sta['max_score'])}"
            )
        verdict = "ok" if not problems[todo] else "FAIL: " + "; ".join(problems[todo])
        solution = f"{grade._fmt(sol['score'])}/{grade._fmt(sol['max_score'])}"
        starter = f"{grade._fmt(sta['score'])}/{grade._fmt(sta['max_score'])}"
        print(
            f"{todo.ljust(width)}   solution {solution:<9}   starter {starter:<9}"
            f"{recorded_scores}   {verdict}"
        )
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


def _names(results: dict, todo: str, passed: bool) -> list[str]:
    """The checks of `todo` that passed (or failed) in grade()'s results."""
    return [
        t["name"].split(" ", 1)[1]
        for t in results["tests"]
        if t["name"].startswith(todo + " ") and (t["score"] > 0) == passed
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", help="write the student starter into this (new or empty) folder")
    action.add_argument("--autograder", help="write the Gradescope bundle into this folder")
    action.add_argument(
        "--check", action="store_true", help="check every TODO on solution and starter"
    )
    action.add_argument("--lock", action="store_true",
                        help=f"write {LOCK_FILE}: exact versions for the bundle's Python")  # fmt: skip
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
    if args.lock:
        path, pins = write_lock(root)
        print(f"wrote {path}: {len(pins)} exact versions for Python 3.10")
        return 0
    if args.out:
        out = Path(args.out).resolve()
        if out == root or root in out.parents:
            raise SystemExit("--out must be outside the course tree; choose a folder elsewhere.")
        names = release(root, out, args.timeout_per_todo)
        todo_files = sum(
            1 for n in names if n.endswith(".py") and markers.has_markers((out / n).read_text())
        )
        data = [out / n for n in names if n.startswith("tests/grading/recorded/")]
        size = sum(p.stat().st_size for p in data)
        print(
            f"wrote the starter to {out}: {len(names)} files, TODO blocks replaced in {todo_files}, "
            f"checks recorded in {len(data)} data files ({size / 1e6:.1f} MB)"
        )
        return 0
    written = write_autograder(
        root, Path(args.autograder).resolve(), args.zip, args.timeout_per_todo
    )
    print(f"wrote the autograder bundle {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
