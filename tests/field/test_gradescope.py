"""The Gradescope bundle as Gradescope runs it: built by release.py, laid out under
AUTOGRADER_ROOT, run_autograder run as root in a cgroup of Gradescope's defaults (768 MB, half a
CPU) with Docker's default capabilities, in user namespaces, with a grader that hangs and one
that Python cannot run. Every run must end with a valid results.json.

The field tier: run as root with HW5_FIELD=1 (CI's .ci/run does); skipped elsewhere. It needs the
package registry (the lock's resolution for Python 3.10, and a venv of the lock's versions that is
kept in build/ between runs). Each run's peak memory and wall time are printed (pytest -s).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools import markers, release, todos  # noqa: E402

MEMORY = 768 * 1024**2  # Gradescope's default
CPU_QUOTA_US, CPU_PERIOD_US = 50_000, 100_000  # half a CPU
DOCKER_CAPS = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
               "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap")  # fmt: skip
CGROUP = Path("/sys/fs/cgroup")
ONE_TODO = f"{todos.LOSS}#1"


def _field_reason() -> str | None:
    if os.environ.get("HW5_FIELD") != "1":
        return "the field tier runs with HW5_FIELD=1 (CI's .ci/run sets it)"
    if os.geteuid() != 0:
        return "the field tier runs as root (cgroups, capabilities, user namespaces)"
    for controller in ("memory", "cpu"):
        if not os.access(CGROUP / controller, os.W_OK):
            return f"no writable cgroup v1 {controller} controller under {CGROUP}"
    if shutil.which("setpriv") is None or shutil.which("unshare") is None:
        return "setpriv and unshare (util-linux) are needed"
    return None


field = pytest.mark.skipif(_field_reason() is not None, reason=str(_field_reason()))


# ----------------------------------------------------------------------------- the lock's closure


def _meta(version, *requires):
    return {"version": version, "requires_dist": list(requires)}


def test_lock_closure_follows_the_bundles_markers_and_leaves_out_cuda():
    resolved = {
        "anyio": _meta(
            "4.0",
            'exceptiongroup>=1; python_version < "3.11"',
            "idna",
            'tomli; python_version >= "3.12"',
            'trio; extra == "trio"',
        ),  # fmt: skip
        "idna": _meta("3.0"),
        "torch": _meta("2.13.0", "filelock", 'nvidia-cublas; platform_system == "Linux"', "triton"),
        "filelock": _meta("3.0"),
        "nvidia-cublas": _meta("13"),
        "triton": _meta("3"),
        "peft": _meta("0.1", "accelerate[big]"),
        "accelerate": _meta("1.0", 'psutil; extra == "big"', 'pyyaml; extra == "other"'),
        "psutil": _meta("7"),
        "unused": _meta("1"),
    }
    pins, missing = release.lock_closure(["anyio", "torch==2.13.0", "peft"], resolved)
    assert missing == {"exceptiongroup"}  # pip run by Python 3.11 would drop it
    assert pins == {"anyio": "4.0", "idna": "3.0", "torch": "2.13.0", "filelock": "3.0",
                    "peft": "0.1", "accelerate": "1.0", "psutil": "7"}  # fmt: skip


def test_committed_lock_covers_what_grading_imports():
    pins = release.read_lock(ROOT / release.LOCK_FILE)
    for name in ("diffusers", "transformers", "peft", "numpy", "safetensors", "pip"):
        assert name in pins, name
    assert "torch" not in pins and "pytest" not in pins and "ruff" not in pins
    assert not any(release.CUDA_ONLY.match(name) for name in pins)


@field
def test_committed_lock_resolves_for_python_310():
    """The whole lock with torch: pip for Python 3.10 resolves it and adds nothing but torch's
    own packages (a lock with a missing or conflicting dependency fails here)."""
    pins = release.read_lock(ROOT / release.LOCK_FILE)
    lock_lines = [f"{name}=={version}" for name, version in pins.items()]
    resolved = release.resolve([*lock_lines, release.torch_spec(ROOT)])
    versions = {name: meta["version"] for name, meta in resolved.items()}
    extra = {
        n for n in versions if n not in pins and n != "torch" and not release.CUDA_ONLY.match(n)
    }
    assert not extra, f"the lock lacks {sorted(extra)}"
    assert {n: versions[n] for n in pins} == pins


# ----------------------------------------------------------------------------- set-up


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder"
    run = subprocess.run([sys.executable, str(ROOT / "tools/release.py"), "--autograder", str(out)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(out / name)]).returncode == 0, name
    assert release.read_lock(out / "requirements.lock") == release.read_lock(
        ROOT / release.LOCK_FILE
    )
    return out


@pytest.fixture(scope="module")
def python(bundle) -> str:
    """A venv of the lock's versions on this machine's Python, kept in build/ between runs."""
    lock = bundle / "requirements.lock"
    key = hashlib.sha256(lock.read_bytes() + release.torch_spec(ROOT).encode()).hexdigest()[:12]
    venv = ROOT / "build" / f"field-venv-{key}"
    done = venv / ".complete"
    if not done.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps"]
        subprocess.run([*pip, "-r", str(lock)], check=True)
        torch = ["--retries", "0", "--extra-index-url", release.CPU_INDEX, release.torch_spec(ROOT)]
        subprocess.run([*pip, *torch],
                       check=True)  # fmt: skip
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "check"], check=True)
        done.write_text("")
    os.chmod(ROOT / "build", 0o755)
    return str(venv / "bin/python")


def reference_files() -> dict[str, str]:
    return {t.path: (ROOT / t.path).read_text(encoding="utf-8") for t in todos.TODOS}


def hanging_files() -> dict[str, str]:
    files = {}
    for rel, text in reference_files().items():
        blocks = markers.find_blocks(text, rel)
        bodies = {b.number: markers.reindent("while True:\n    pass\n", b.indent) for b in blocks}
        files[rel] = markers.replace_bodies(text, bodies, rel)
    return files


def gradescope_home(tmp_path: Path, bundle: Path, files: dict[str, str]) -> Path:
    """/autograder as Gradescope lays it out: source/ (the bundle), submission/, results/."""
    home = tmp_path / "autograder"
    shutil.copytree(bundle, home / "source", symlinks=True)
    for rel, text in files.items():
        (home / "submission" / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / "submission" / rel).write_text(text, encoding="utf-8")
    (home / "results").mkdir()
    os.chmod(tmp_path, 0o755)
    return home


class Cgroup:
    """A cgroup v1 with a memory limit and a CPU quota, removed on exit with all it holds."""

    def __init__(self, memory: int, quota_us: int = CPU_QUOTA_US):
        name = f"hw5-field-{os.getpid()}-{time.monotonic_ns()}"
        self.paths = [CGROUP / "memory" / name, CGROUP / "cpu" / name]
        self.settings = {
            "memory.limit_in_bytes": memory,
            "memory.memsw.limit_in_bytes": memory,
            "memory.swappiness": 0,
            "cpu.cfs_period_us": CPU_PERIOD_US,
            "cpu.cfs_quota_us": quota_us,
        }

    def __enter__(self):
        for path in self.paths:
            path.mkdir()
        for key, value in self.settings.items():
            path = self.paths[0 if key.startswith("memory") else 1] / key
            if path.exists():
                path.write_text(str(value))
        return self

    def join(self) -> None:
        """Moves the calling process in (a subprocess's preexec_fn)."""
        for path in self.paths:
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def read(self, key: str) -> str:
        return (self.paths[0] / key).read_text()

    def __exit__(self, *exc):
        for path in self.paths:
            for _ in range(100):
                pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError(f"cgroup {path} could not be removed")


def run_autograder(home: Path, python: str, *, memory=MEMORY, docker_caps=True, wrap=(),
                   timeout=600, grade_args="", label=""):  # fmt: skip
    """run_autograder as Gradescope runs it; killed (whole group) at `timeout` as Gradescope kills
    it. Returns (its output, results.json or None, peak memory bytes, wall seconds)."""
    env = dict(os.environ, AUTOGRADER_ROOT=str(home), AUTOGRADER_PYTHON=python,
               AUTOGRADER_TIMEOUT=str(timeout), AUTOGRADER_GRADE_ARGS=grade_args)  # fmt: skip
    env.pop("OMP_NUM_THREADS", None)
    command = ["bash", str(home / "source" / "run_autograder")]
    if docker_caps:
        command = ["setpriv", "--bounding-set=-all," + ",".join("+" + c for c in DOCKER_CAPS),
                   "--inh-caps=-all", "--", *command]  # fmt: skip
    command = [*wrap, *command]
    with Cgroup(memory) as cgroup:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                   preexec_fn=cgroup.join)  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            output += f"\n[killed at {timeout} s, as Gradescope would]"
        wall = time.monotonic() - started
        peak = int(cgroup.read("memory.max_usage_in_bytes"))
    path = home / "results" / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else None
    print(f"\n[{label}] exit {process.returncode}, wall {wall:.0f} s, peak memory "
          f"{peak / 1024**2:.0f} MB\n{output[-3000:]}")  # fmt: skip
    return output, results, peak, wall


def valid(results) -> bool:
    return (
        isinstance(results, dict)
        and isinstance(results.get("score"), (int, float))
        and isinstance(results.get("output"), str)
        and all(isinstance(t.get("name"), str) for t in results.get("tests", []))
    )


# ----------------------------------------------------------------------------- the runs


@field
def test_reference_bodies_get_full_marks_at_gradescopes_defaults(bundle, python, tmp_path):
    home = gradescope_home(tmp_path, bundle, reference_files())
    output, results, _, _ = run_autograder(home, python, label="reference, 768 MB, 0.5 CPU")
    assert valid(results), output
    assert results["score"] == pytest.approx(sum(todos.points(t.id) for t in todos.TODOS)), output
    assert all(t["score"] == t["max_score"] for t in results["tests"])
    assert oct(os.stat(home / "source").st_mode & 0o777) == "0o700"


@field
def test_blocks_that_all_hang_end_with_results_in_time(bundle, python, tmp_path):
    """Every block hangs; Gradescope kills at the assignment's timeout (here 150 s, to keep CI
    short: run_autograder takes its limits from AUTOGRADER_TIMEOUT)."""
    home = gradescope_home(tmp_path, bundle, hanging_files())
    output, results, _, _ = run_autograder(home, python, timeout=150, label="every block hangs")
    assert valid(results), output
    assert results["score"] == 0


@field
@pytest.mark.parametrize("ids", ["root only", "65536 ids"])
def test_user_namespace(bundle, python, tmp_path, ids):
    if ids == "root only":
        wrap = ["unshare", "--user", "--map-root-user", "--"]
    else:
        wrap = [sys.executable, str(Path(__file__).with_name("userns.py")), "--"]
    home = gradescope_home(tmp_path, bundle, reference_files())
    output, results, _, _ = run_autograder(home, python, wrap=wrap, docker_caps=False,
                                           grade_args=f"--only {ONE_TODO}", label=f"userns {ids}")  # fmt: skip
    assert valid(results), output
    assert results["score"] == pytest.approx(todos.points(ONE_TODO)), output


@field
@pytest.mark.parametrize("failure", ["killed", "missing", "out of memory"])
def test_a_grader_that_cannot_run_still_leaves_results(bundle, python, tmp_path, failure):
    home = gradescope_home(tmp_path, bundle, reference_files())
    memory = MEMORY
    if failure == "killed":
        python = tmp_path / "python"
        python.write_text("#!/bin/sh\nkill -9 $$\n")
        python.chmod(0o755)
    elif failure == "missing":
        python = tmp_path / "no-python"
    else:
        memory = 96 * 1024**2  # the grader cannot even import torch
    output, results, _, _ = run_autograder(home, str(python), memory=memory,
                                           grade_args=f"--only {ONE_TODO}", label=failure)  # fmt: skip
    assert valid(results), output
    assert results["score"] == 0 and results["output_format"] == "text"
    why = {"killed": "memory", "out of memory": "memory", "missing": "Python could not be started"}
    assert why[failure] in results["output"], results["output"]
    assert "<" not in results["output"]
