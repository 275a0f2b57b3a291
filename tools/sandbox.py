"""Limits for the processes that run students' code, and the sweep that ends every one of them.

The judge (tools/judge.py) runs each TODO block in a worker process. A worker confines itself
before it runs any student code (`confine`): its own session, limits on memory, CPU time, file
size and core dumps, and, when grading runs as root, an unprivileged user that can neither read
the instructor's files nor write the results. The judge makes itself a child subreaper
(`become_subreaper`), so that every process a worker starts, double-forked daemons included,
ends up as the judge's child once its parent is gone; `sweep` kills all of them.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
FIRST_WORKER_ID = 200_000  # above the ids of real users and of container id maps


@dataclass(frozen=True)
class Limits:
    seconds: float = 30.0  # wall time of one TODO's worker calls, together
    memory_bytes: int = 6 * 1024**3  # address space of one worker
    file_bytes: int = 64 * 1024**2  # largest file a worker may write
    processes: int = 64  # processes of the unprivileged user (root only)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def mapped_ids(kind: str = "uid") -> list[tuple[int, int]]:
    """[(first id, count)] of the ids usable in this user namespace (/proc/self/uid_map), or the
    whole 32-bit range where the map cannot be read (no user namespaces)."""
    try:
        lines = Path(f"/proc/self/{kind}_map").read_text().splitlines()
    except OSError:
        return [(0, 2**32 - 1)]
    ranges = []
    for line in lines:
        fields = line.split()
        if len(fields) == 3:
            ranges.append((int(fields[0]), int(fields[2])))
    return ranges


def _pick_id(kind: str) -> int | None:
    """An id for this run's workers, inside the ids mapped here: above real users' ids in the
    whole range (FIRST_WORKER_ID + pid), or, in a user namespace with a smaller map (often
    65,536 ids), one of the top quarter of the largest mapped range below its last two ids
    (nobody, 65534, and 65535). None where nothing but root is mapped."""
    ranges = [(first, count) for first, count in mapped_ids(kind) if count > 1]
    if not ranges:
        return None
    first, count = max(ranges, key=lambda r: r[1])
    if first + count > FIRST_WORKER_ID + 4 * 1024**2:  # the pid limit of Linux is 4194304
        return FIRST_WORKER_ID + os.getpid()
    span = max(1, count // 4)
    return first + count - 3 - (os.getpid() % span)


def worker_user() -> tuple[int, int] | None:
    """(uid, gid) that this grading run's workers take when it runs as root: a user of their
    own, which owns no file and no other process, so that kill(-1) from a worker reaches only
    this run's workers, and killing that user's processes ends only them. None when not root,
    or where the user namespace maps no id but root (then workers run as root: `isolation`
    says so)."""
    if not running_as_root():
        return None
    uid, gid = _pick_id("uid"), _pick_id("gid")
    if uid is None or gid is None or not _can_become(uid, gid):
        return None
    return uid, gid


def _can_become(uid: int, gid: int) -> bool:
    """Whether a child of this process can take (uid, gid), tried in a short-lived child."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def children(pid: int) -> list[int]:
    """The live child processes of `pid`, read from /proc."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))  # zombies too: they are reaped by the sweep
    return found


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def kill_user(uid: int) -> None:
    """Kill every process of `uid`, from a short-lived process that takes that uid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    _reap(pid)


def sweep(keep: set[int], user: tuple[int, int] | None = None, rounds: int = 50) -> int:
    """Kill every child of this process but `keep` (and, as root, every worker-user process).

    Repeats until no such child is left, since a dying process's children are re-parented here.
    Returns how many processes were killed."""
    killed = 0
    for _ in range(rounds):
        if user is not None:
            kill_user(user[0])
        strays = [pid for pid in children(os.getpid()) if pid not in keep]
        if not strays:
            return killed
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed += 1
        for pid in strays:
            _reap(pid)
        time.sleep(0.01)
    return killed


def close_inherited(keep: int) -> None:
    """Close every file descriptor above stderr but `keep`: a worker must not hold the pipes of
    the process server or of multiprocessing's resource tracker, which run as the judge's user."""
    for entry in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(entry)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass
    from multiprocessing import forkserver, resource_tracker

    forkserver._forkserver._forkserver_alive_fd = None
    resource_tracker._resource_tracker._fd = None


def remove_tree(path) -> None:
    """Remove a folder and everything in it, however deep, without recursion and with two open
    folders at most: each sub-folder is first moved up into the top folder, so that a chain of
    thousands of nested folders is removed like a flat one. Never follows links; a file that
    cannot be removed is left."""
    path = os.fspath(path)
    protected = mount_paths()
    try:
        info = os.lstat(path)
        if (info.st_dev, info.st_ino) in protected:
            return
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    device = os.fstat(top).st_dev
    try:
        pending, moved = [None], 0  # None: the top folder itself
        while pending:
            name = pending.pop()
            try:
                folder = (
                    top
                    if name is None
                    else os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                )
            except OSError:
                continue
            try:
                with os.scandir(folder) as entries:
                    names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
                for entry, is_dir in names:
                    try:
                        found = os.stat(entry, dir_fd=folder, follow_symlinks=False)
                        if found.st_dev != device or (found.st_dev, found.st_ino) in protected:
                            continue  # a mount point, or a folder on the way to one: not ours
                        if is_dir:
                            moved += 1
                            flat = f".rm-{os.getpid()}-{moved}"
                            os.rename(entry, flat, src_dir_fd=folder, dst_dir_fd=top)
                            pending.append(flat)
                        else:
                            os.unlink(entry, dir_fd=folder)
                    except OSError:
                        continue
            finally:
                if folder != top:
                    os.close(folder)
            if name is not None:
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError:
                    pass
    finally:
        os.close(top)
    try:
        os.rmdir(path)
    except OSError:
        pass


def mount_paths() -> set[tuple[int, int]]:
    """(device, inode) of every mount point of this process and of every folder on the way to
    one: what removing a tree must never move or delete (in the sandbox, the bound Python
    installation and grading folder may lie inside /tmp)."""
    found = set()
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        for folder in (point, *point.parents):
            try:
                info = os.stat(folder, follow_symlinks=False)
            except OSError:
                continue
            found.add((info.st_dev, info.st_ino))
    return found


def clear_folder(path, keep: str | None = None) -> None:
    """Remove everything inside a folder, keeping the folder, and `keep` if it is inside."""
    try:
        with os.scandir(path) as entries:
            names = [entry.path for entry in entries]
    except OSError:
        return
    for name in names:
        if keep is None or not (keep == name or keep.startswith(name + "/")):
            remove_tree(name)


SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
SHARED_MEMORY_FOLDERS = ("/dev/shm", "/dev/mqueue")


def world_writable_folders(top: str = "/", limit: int = 200_000) -> list[str]:
    """Every folder any user may create files in (mode o+w), found once by a walk of the file
    system that skips /proc, /sys and /dev (but for shared memory and message queues) and visits
    at most `limit` folders: where a worker user can leave something behind."""
    found = [p for p in SHARED_MEMORY_FOLDERS if os.path.isdir(p)]
    pending, seen = [top], 0
    while pending and seen < limit:
        folder = pending.pop()
        seen += 1
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False) or entry.path in SYSTEM_FOLDERS:
                        continue
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    if not mode & stat.S_IXOTH:
                        continue
                    if mode & stat.S_IWOTH:
                        found.append(entry.path)  # its contents are removed, not walked here
                    else:
                        pending.append(entry.path)
        except OSError:
            continue
    return found


def remove_files_of(uid: int, folders=("/tmp", "/var/tmp", "/dev/shm")) -> int:
    """Delete what a worker user left in the world-writable folders (root only): every entry
    owned by `uid`, a folder of its own with all it holds, however deep. Returns how many
    entries were removed."""
    removed = 0
    pending = list(folders)
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listing = list(entries)
        except OSError:
            continue
        for entry in listing:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                remove_tree(entry.path)
                removed += 1
            elif stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH:
                pending.append(entry.path)  # another shared folder inside
    return removed


IPC_RMID = 0
IPC_KINDS = (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl"))


def remove_ipc_of(uid: int | None = None) -> int:
    """Remove the System V shared memory segments, message queues and semaphore sets that `uid`
    owns or created (every one when uid is None), as /proc/sysvipc lists them for this
    process's IPC namespace. Returns how many were removed."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    removed = 0
    for kind, control in IPC_KINDS:
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        columns = lines[0].split()
        for line in lines[1:]:
            row = dict(zip(columns, line.split()))
            try:
                ident = int(row.get("shmid") or row.get("msqid") or row.get("semid"))
                owners = {int(row["uid"]), int(row["cuid"])}
            except (KeyError, TypeError, ValueError):
                continue
            if uid is not None and uid not in owners:
                continue
            args = (ident, 0, IPC_RMID, None) if kind == "sem" else (ident, IPC_RMID, None)
            if getattr(libc, control)(*args) == 0:
                removed += 1
    return removed


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 16384, 1 << 18
CLONE_NEWNS = 0x00020000


def hide(paths) -> bool:
    """In a mount namespace of this process's own, cover each folder with an empty read-only
    file system, so that nothing below it can be read from here (root only; False where the
    kernel or the container does not allow it)."""
    if not sys.platform.startswith("linux") or not paths:
        return not paths
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    for path in paths:
        if libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", flags, b"size=4k") != 0:
            return False
    return True


def can_hide(paths) -> bool:
    """Whether `hide` works here, tried in a short-lived child."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if hide(paths) else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def confine(limits: Limits, scratch: Path, user: tuple[int, int] | None, hidden=()) -> None:
    """Called first thing in a worker: its own session, resource limits, the `hidden` folders
    covered (the course tree's solutions) and an unprivileged user (as root), stdin from
    /dev/null and stdout/stderr into a file of the scratch folder."""
    os.setsid()
    memory = int(limits.memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = max(1, int(limits.seconds * 2) + 5)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if user is not None:
        uid, gid = user
        hide(hidden)
        os.chown(scratch, uid, gid)
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    log = os.open(scratch / "output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(HOME=str(scratch), TMPDIR=str(scratch), HF_HUB_OFFLINE="1")


# ----------------------------------------------------------------------------- the file system


SYSTEM_ROOTS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
PRIVATE_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
PRIVATE_BYTES = 64 * 1024**2  # each private temporary folder of the sandbox


def python_folders() -> list[str]:
    """The folders of this Python installation (its prefixes, the virtual environment, the
    site-packages), without any folder inside another."""
    import site

    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found |= set(site.getsitepackages())
    found.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    found = {os.path.realpath(p) for p in found if p and os.path.isdir(p)} | {
        p for p in found if p and os.path.isdir(p)
    }
    found = {p for p in found if p != "/"}
    return sorted(p for p in found if not any(p != q and p.startswith(q + "/") for q in found))


def bubblewrap_command(shared: Path, pythonpath: str) -> list[str] | None:
    """The bubblewrap command that runs a program with the file system a worker needs and no
    more: the system's programs and libraries and the Python installation read-only, `shared`
    (this run's solution-free trees and scratch folders), private size-limited /tmp, /var/tmp
    and /dev/shm, and IPC, network and host-name namespaces of its own. None without bwrap."""
    import shutil

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    command = [bwrap, "--die-with-parent", "--unshare-ipc", "--unshare-net", "--unshare-uts"]
    for folder in SYSTEM_ROOTS:
        if os.path.islink(folder):
            command += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            command += ["--ro-bind", folder, folder]
    made = set()

    def parents(folder):  # bwrap makes missing folders 0700: make them 0755, the worker walks them
        out = []
        for parent in reversed(Path(folder).parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    command += ["--proc", "/proc", "--dev", "/dev", "--mqueue", "/dev/mqueue"]
    for folder in PRIVATE_FOLDERS:  # first: what is bound below may lie inside them (/tmp/...)
        command += [*parents(folder), "--perms", "1777", "--size", str(PRIVATE_BYTES)]
        command += ["--tmpfs", folder]
    for folder in python_folders():
        if not folder.startswith(tuple(f + "/" for f in SYSTEM_ROOTS)):
            command += [*parents(folder), "--ro-bind", folder, folder]
    command += [*parents(shared), "--bind", str(shared), str(shared), "--chdir", str(shared)]
    command += ["--setenv", "PYTHONPATH", pythonpath, "--setenv", "PYTHONSAFEPATH", "1"]
    return command


def clear_private(shared: str) -> None:
    """Run inside the sandbox, as root, after each TODO: empty the private temporary folders
    (but for the run's own folder) and remove every System V IPC object and POSIX message queue
    of the sandbox's IPC namespace: nothing a block left reaches the next."""
    for folder in PRIVATE_FOLDERS:
        clear_folder(folder, keep=shared)
    clear_folder("/dev/mqueue")
    remove_ipc_of(None)


# ----------------------------------------------------------------------------- isolation


@dataclass
class Isolation:
    """What isolation the workers of this process have, decided once per process."""

    user: tuple[int, int] | None  # the workers' own uid and gid, or None
    sandbox: list[str] | None  # the bubblewrap command of the worker server, or None
    shared: Path | None  # the folder of trees and scratch folders the sandbox sees
    hides: bool  # without a sandbox: whether the course's folders can be covered
    reason: str  # why there is no sandbox

    def line(self, limits: Limits) -> str:
        """One line for stdout: `isolation: has ...; lacks ...`."""
        has, lacks = [], []
        if self.user is not None:
            has.append(f"own uid {self.user[0]}")
        elif running_as_root():
            lacks.append(
                "an own uid (only root is mapped in this user namespace: workers run as root)"
            )
        else:
            lacks.append(
                f"an own uid (not root: workers run as {os.getuid()} and read what it reads)"
            )
        if self.sandbox is not None:
            has.append(
                "a file system of its own (bubblewrap: the Python installation read-only, the "
                "solution-free tree, no course tree)"
            )
            has.append(f"private /tmp, /var/tmp and /dev/shm of {PRIVATE_BYTES // 1024**2} MB")
            has.append("IPC, network and host-name namespaces")
        else:
            lacks.append(f"a file system of its own ({self.reason})")
            if self.hides:
                has.append("the course tree's homework, checks and .git folders covered")
                lacks.append("a view without other copies of the course on this machine")
            elif self.user is not None:
                lacks.append(
                    "covered course folders (no mount namespace: course files must be readable by root only)"
                )
            if self.user is not None:
                has.append(
                    "the worker uid's files in world-writable folders and its IPC objects "
                    "removed after each TODO"
                )
            lacks.append("an IPC namespace")
        has.append(
            f"limits per TODO: {limits.seconds:g} s, {limits.memory_bytes / 1024**3:g} GB of "
            f"address space, files of {limits.file_bytes // 1024**2} MB"
        )
        return (
            "isolation: "
            + "; ".join(has)
            + (". Lacks: " + "; ".join(lacks) + "." if lacks else ".")
        )


_ISOLATION: Isolation | None = None


def grading_folder() -> Path:
    """One folder per grading process that holds every session's solution-free tree and the
    workers' scratch folders: the only folder of the host a sandboxed worker sees besides the
    Python installation. Removed when the process ends."""
    import atexit
    import tempfile

    global _SHARED
    if _SHARED is None or not _SHARED.is_dir():
        # workers of another uid must reach it, so under a folder every user may enter
        bases = [tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]
        base = next((b for b in bases if os.path.isdir(b) and _enterable(b)), None)
        _SHARED = Path(tempfile.mkdtemp(prefix="hw5-grading-", dir=base))
        _SHARED.chmod(0o711)
        atexit.register(remove_tree, _SHARED)
    return _SHARED


_SHARED: Path | None = None


def _enterable(folder) -> bool:
    """Whether every user may enter the folder and each folder above it (o+x)."""
    path = Path(folder).resolve()
    for part in (path, *path.parents):
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def isolation(hidden=()) -> Isolation:
    """The isolation of this process's workers (decided at the first call, then the same)."""
    global _ISOLATION
    if _ISOLATION is None:
        user = worker_user()
        sandbox, reason = None, "bubblewrap (bwrap) is not installed"
        if os.environ.get("HW5_NO_SANDBOX"):
            reason = "HW5_NO_SANDBOX is set"
        elif not running_as_root():
            reason = "not root"
        else:
            shared = grading_folder()
            command = bubblewrap_command(shared, str(shared / "lib"))
            if command is not None:
                reason = _try_sandbox(command)
                sandbox = command if reason is None else None
        _ISOLATION = Isolation(user, sandbox, _SHARED, False, reason or "")
    if _ISOLATION.sandbox is None and _ISOLATION.user is not None and hidden:
        _ISOLATION.hides = can_hide(hidden)
    return _ISOLATION


def _try_sandbox(command: list[str]) -> str | None:
    """None if the sandbox starts here, else why not (e.g. no CAP_SYS_ADMIN in a container)."""
    import subprocess

    try:
        done = subprocess.run(
            [*command, sys.executable, "-c", "import os; os.listdir('/proc/self')"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"bubblewrap cannot run ({error})"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return "bubblewrap could not start Python here" + (f": {said[-1]}" if said else "")
    return None


def copy_tools(shared: Path) -> None:
    """The grading tools (this package) where the sandboxed worker server imports them from."""
    import shutil

    target = shared / "lib" / "tools"
    if target.is_dir():
        return
    target.mkdir(parents=True)
    for file in Path(__file__).resolve().parent.glob("*.py"):
        shutil.copy2(file, target / file.name)
    for folder in [shared / "lib", target]:
        folder.chmod(0o755)
    for file in target.iterdir():
        file.chmod(0o644)


def ensure_server(iso: Isolation, tree) -> None:
    """Start multiprocessing's fork server inside the sandbox, unless it runs already: every
    worker is forked from it, so every worker is in the sandbox. The server imports the grading
    tools from a copy in the shared folder (the course tree is not in the sandbox), and its
    preload reads the graded files from `tree`, the solution-free tree."""
    if iso.sandbox is None:
        return
    from multiprocessing import forkserver, spawn

    server = forkserver._forkserver
    if server._forkserver_pid is not None:
        try:
            if os.waitpid(server._forkserver_pid, os.WNOHANG)[0] == 0:
                return  # alive
        except ChildProcessError:
            pass
        with server._lock:  # it ended: forget it, so that it starts again in the sandbox
            os.close(server._forkserver_alive_fd)
            server._forkserver_address = server._forkserver_alive_fd = None
            server._forkserver_pid = None
    copy_tools(iso.shared)
    wrapper = iso.shared / "sandboxed-python"
    quoted = " ".join(_quote(arg) for arg in iso.sandbox)
    wrapper.write_text(f'#!/bin/sh\nexec {quoted} -- {_quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o700)
    before, preload = spawn.get_executable(), os.environ.get("HW5_PRELOAD_TREE")
    spawn.set_executable(str(wrapper))
    os.environ["HW5_PRELOAD_TREE"] = str(tree)
    try:
        forkserver.ensure_running()
    finally:
        spawn.set_executable(before)
        if preload is None:
            os.environ.pop("HW5_PRELOAD_TREE", None)
        else:
            os.environ["HW5_PRELOAD_TREE"] = preload


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(str(text))


_WORLD_WRITABLE: list[str] | None = None


def shared_folders() -> list[str]:
    """The host's world-writable folders (found once per process)."""
    global _WORLD_WRITABLE
    if _WORLD_WRITABLE is None:
        _WORLD_WRITABLE = world_writable_folders()
    return _WORLD_WRITABLE


def release_memory() -> None:
    """Collect garbage and hand the freed heap back to the system (glibc's malloc_trim), so
    that this process's memory stays what it needs now, not the most it ever held: grading runs
    in 768 MB on Gradescope."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass
