"""What isolation a grading run has, says so in one line, and keeps: the course tree, its .git
and the submission out of a worker's reach, and nothing a block leaves (files however deep,
IPC objects) reaching the next TODO or the next grading run.

The sandbox (bubblewrap) needs root and the bwrap program; the fallback (HW5_NO_SANDBOX=1, as
on a platform without namespaces) needs root for the worker user. Each test skips with the
reason where its case cannot be made here.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tool_helpers import run_tool, submission_from

from tools import grade, sandbox

AS_ROOT = pytest.mark.skipif(not sandbox.running_as_root(), reason="needs root (a worker user)")
SANDBOX = pytest.mark.skipif(
    not sandbox.running_as_root() or shutil.which("bwrap") is None,
    reason="needs root and bubblewrap (apt-get install bubblewrap)",
)
OTHERS = {"hw/calc.py#2": 3.0, "hw/geom/area.py#1": 6.0}


def hostile(tree, tmp_path, body, name="sub"):
    block = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return submission_from(tree, tmp_path / name, {"hw/calc.py": [("    y = 2 * x\n", block)]})


def graded_by_cli(submission, tree, tmp_path, *args, env=None):
    out = tmp_path / "results.json"
    result = run_tool(
        "grade", "--submission", submission, "--tree", tree, "--out", out, *args, env=env
    )
    return result, (json.loads(out.read_text()) if out.is_file() else None)


def test_remove_tree_takes_a_chain_deeper_than_any_recursion(tmp_path):
    top = tmp_path / "chain"
    top.mkdir()
    folder = os.open(top, os.O_RDONLY)
    for i in range(3000):  # far deeper than Python's recursion limit and than PATH_MAX
        os.mkdir("d" * 40, dir_fd=folder)
        deeper = os.open("d" * 40, os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = deeper
        if i % 1000 == 0:
            os.symlink("/etc", "link", dir_fd=folder)  # removed, never followed
    os.close(folder)
    sandbox.remove_tree(top)
    assert not top.exists()
    assert os.path.isdir("/etc")


@AS_ROOT
def test_remove_files_of_a_user_takes_only_theirs(tmp_path):
    shared = tmp_path / "shared"
    inner = shared / "inner"
    inner.mkdir(parents=True)
    for folder in (shared, inner):
        folder.chmod(0o1777)
    mine, theirs = inner / "mine", shared / "theirs"
    (mine / "a" / "b").mkdir(parents=True)
    theirs.write_text("kept")
    for path in (mine, mine / "a", mine / "a" / "b"):
        os.chown(path, 4242, 4242)
    removed = sandbox.remove_files_of(4242, (str(shared),))
    assert removed == 1 and not mine.exists() and theirs.read_text() == "kept"


def test_world_writable_folders_are_found(tmp_path):
    found = sandbox.world_writable_folders()
    assert "/tmp" in found or not os.stat("/tmp").st_mode & 0o002


def test_worker_ids_fit_the_user_namespace(monkeypatch):
    monkeypatch.setattr(sandbox, "mapped_ids", lambda kind="uid": [(0, 65536)])
    ident = sandbox._pick_id("uid")
    assert 65536 * 3 // 4 - 3 <= ident <= 65532, ident
    monkeypatch.setattr(sandbox, "mapped_ids", lambda kind="uid": [(0, 1)])
    assert sandbox._pick_id("uid") is None  # only root mapped: no uid of their own
    monkeypatch.setattr(sandbox, "mapped_ids", lambda kind="uid": [(0, 2**32 - 1)])
    assert sandbox._pick_id("uid") == sandbox.FIRST_WORKER_ID + os.getpid()


def test_the_isolation_line_names_what_the_run_has_and_lacks(tree, tmp_path):
    result, results = graded_by_cli(tree, tree, tmp_path, env={"HW5_NO_SANDBOX": "1"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("isolation:")]
    assert len(lines) == 1, result.stdout
    assert "Lacks: a file system of its own (HW5_NO_SANDBOX is set)" in lines[0]
    if sandbox.running_as_root():
        assert "own uid" in lines[0].split("Lacks")[0]
    else:
        assert "an own uid (not root" in lines[0]
    assert results["score"] == 12.0


@SANDBOX
def test_a_sandboxed_block_sees_no_course_no_git_no_submission(tree, tmp_path):
    """The block looks for the course tree, its .git (git show HEAD:<file> gives the reference
    on an instructor's checkout), the submission and the mount table, and scores only if it
    finds nothing."""
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    sub_path = tmp_path / "sub"
    body = f"""
import os
places = [{str(tree)!r}, {str(tree / ".git")!r}, {str(tree / "hw")!r}, {str(sub_path)!r}]
seen = [p for p in places if os.path.exists(p)]
mounts = open("/proc/self/mountinfo").read()
seen += [p for p in places if p in mounts]
y = 2 * x if not seen else None
"""
    sub = hostile(tree, tmp_path, body)
    found = sandbox.isolation()
    assert found.sandbox is not None, found.reason
    results = grade.grade(sub, tree)
    assert results["todos"]["hw/calc.py#1"]["score"] == 3.0, results["tests"]


@SANDBOX
def test_a_python_installation_under_tmp_is_seen_in_the_sandbox(monkeypatch, request):
    """A checkout (and its .venv) under /tmp stays visible above the sandbox's private /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="hw5-test-venv-", dir="/tmp"))
    request.addfinalizer(lambda: sandbox.remove_tree(folder))
    (folder / "marker").write_text("here")
    real = sandbox.python_folders()
    monkeypatch.setattr(sandbox, "python_folders", lambda: [*real, str(folder)])
    command = sandbox.bubblewrap_command(sandbox.grading_folder(), "/nowhere")
    done = subprocess.run([*command, "cat", str(folder / "marker")], capture_output=True)
    assert done.returncode == 0 and done.stdout == b"here", done.stderr


@SANDBOX
def test_nothing_a_block_leaves_reaches_the_next_run(tree, tmp_path):
    """A block leaves a chain of 1000 folders and a file in /tmp, a System V shared memory
    segment and a message queue; the next run's same block finds none of it, and the host keeps
    none of it."""
    leave = """
import ctypes, os
libc = ctypes.CDLL(None)
os.makedirs("/tmp/left", exist_ok=True)
open("/tmp/left/file", "w").write("x")
path = "/tmp/left"
fd = os.open(path, os.O_RDONLY)
for _ in range(1000):
    os.makedirs(f"/proc/self/fd/{fd}/d", exist_ok=True)
    deeper = os.open("d", os.O_RDONLY, dir_fd=fd); os.close(fd); fd = deeper
libc.shmget(0x4857, 4096, 0o1666)
libc.msgget(0x4857, 0o1666)
y = 2 * x
"""
    look = """
import ctypes, os
libc = ctypes.CDLL(None)
found = os.path.exists("/tmp/left") or libc.shmget(0x4857, 0, 0) >= 0 or libc.msgget(0x4857, 0) >= 0
y = 2 * x if not found else None
"""
    first = grade.grade(hostile(tree, tmp_path, leave, "first"), tree)
    assert first["todos"]["hw/calc.py#1"]["score"] == 3.0, first["tests"]
    second = grade.grade(hostile(tree, tmp_path, look, "second"), tree)
    assert second["todos"]["hw/calc.py#1"]["score"] == 3.0, second["tests"]
    host = open("/proc/sysvipc/shm").read() + open("/proc/sysvipc/msg").read()
    assert "18519" not in host.split()  # 0x4857 as the decimal key /proc shows
    assert not os.path.exists("/tmp/left")


@AS_ROOT
def test_without_namespaces_what_a_block_leaves_is_swept(tree, tmp_path, request):
    """The fallback (no sandbox): files of the worker user in any world-writable folder, however
    deep, and its IPC objects are gone after grading."""
    marker = Path(tempfile.mkdtemp(prefix="hw5-test-shared-", dir="/var/tmp"))
    marker.chmod(0o1777)  # a world-writable folder inside another, where a worker can reach
    request.addfinalizer(lambda: sandbox.remove_tree(marker))
    body = f"""
import ctypes, os
libc = ctypes.CDLL(None)
fd = os.open({str(marker)!r}, os.O_RDONLY)
for _ in range(1200):
    os.makedirs(f"/proc/self/fd/{{fd}}/d", exist_ok=True)
    deeper = os.open("d", os.O_RDONLY, dir_fd=fd); os.close(fd); fd = deeper
libc.shmget(0x4858, 4096, 0o1666)
y = 2 * x
"""
    sub = hostile(tree, tmp_path, body)
    sandbox._WORLD_WRITABLE = None
    result, results = graded_by_cli(sub, tree, tmp_path, env={"HW5_NO_SANDBOX": "1"})
    assert result.returncode == 0, result.stderr
    assert results["score"] == 12.0, results["tests"]
    assert list(marker.iterdir()) == []
    assert "18520" not in open("/proc/sysvipc/shm").read().split()


@AS_ROOT
def test_in_a_user_namespace_that_maps_only_root_grading_still_ends_in_results(tree, tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux's unshare")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    out = tmp_path / "results.json"
    done = subprocess.run(
        [unshare, "--user", "--map-root-user", sys.executable, str(grade.REPO_ROOT / "tools/grade.py"),
         "--submission", str(tree), "--tree", str(tree), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("isolation:"))
    assert "an own uid (only root is mapped" in line
    assert json.loads(out.read_text())["score"] == 12.0


@AS_ROOT
def test_without_cap_sys_admin_the_run_says_what_it_lacks(tree, tmp_path):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs util-linux's setpriv")
    out = tmp_path / "results.json"
    done = subprocess.run(
        [setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", sys.executable,
         str(grade.REPO_ROOT / "tools/grade.py"), "--submission", str(tree), "--tree", str(tree),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("isolation:"))
    assert "Lacks: a file system of its own" in line, line
    assert json.loads(out.read_text())["score"] == 12.0


@SANDBOX
def test_a_server_that_ended_starts_again_in_the_sandbox(tree, tmp_path):
    from multiprocessing import forkserver

    first = grade.grade(tree, tree)
    assert first["score"] == 12.0
    server = forkserver._forkserver._forkserver_pid
    assert server is not None
    os.kill(server, signal.SIGKILL)
    body = f"y = 2 * x if not __import__('os').path.exists({str(tree)!r}) else None"
    results = grade.grade(hostile(tree, tmp_path, body), tree)
    assert results["todos"]["hw/calc.py#1"]["score"] == 3.0, results["tests"]
    assert forkserver._forkserver._forkserver_pid != server


@AS_ROOT
def test_a_private_temporary_folder_does_not_stop_grading(tree, tmp_path, request):
    """TMPDIR under a folder other users cannot enter (a 0700 home): the workers' folder goes
    where they can reach it, with or without the sandbox."""
    private = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # short: it holds sockets
    request.addfinalizer(lambda: sandbox.remove_tree(private))
    (private / "tmp").mkdir()
    private.chmod(0o700)
    for extra in ({"HW5_NO_SANDBOX": "1"}, {}):
        result, results = graded_by_cli(
            tree, tree, tmp_path, env={"TMPDIR": str(private / "tmp"), **extra}
        )
        assert result.returncode == 0, result.stderr
        assert results["score"] == 12.0, (extra, results["tests"])


@SANDBOX
def test_emptying_the_private_tmp_keeps_what_is_bound_inside_it(monkeypatch, request):
    """The clean-up after each TODO empties the sandbox's /tmp but never moves or deletes a folder
    on the way to a bound one (a checkout and its .venv under /tmp), nor the grading folder."""
    folder = Path(tempfile.mkdtemp(prefix="hw5-test-bound-", dir="/tmp"))
    request.addfinalizer(lambda: sandbox.remove_tree(folder))
    (folder / "main" / ".venv").mkdir(parents=True)
    (folder / "main" / ".venv" / "marker").write_text("here")
    real = sandbox.python_folders()
    monkeypatch.setattr(sandbox, "python_folders", lambda: [*real, str(folder / "main" / ".venv")])
    shared = sandbox.grading_folder()
    sandbox.copy_tools(shared)
    command = sandbox.bubblewrap_command(shared, str(shared / "lib"))
    script = (
        "import os, sys; from tools import sandbox\n"
        "open('/tmp/left', 'w').write('x'); os.makedirs('/tmp/dir/sub')\n"
        "sandbox.clear_private(sys.argv[1])\n"
        "print(sorted(os.listdir('/tmp')), open(sys.argv[2]).read())\n"
    )
    done = subprocess.run(
        [*command, sys.executable, "-c", script, str(shared), str(folder / "main/.venv/marker")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listing, marker = done.stdout.rsplit(" ", 1)
    assert marker.strip() == "here"
    assert "left" not in listing and "'dir'" not in listing, listing
    assert shared.name in listing and folder.name in listing, listing
