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
import resource
import signal
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


def worker_user() -> tuple[int, int] | None:
    """(uid, gid) that this grading run's workers take when it runs as root: a user of their
    own, which owns no file and no other process, so that kill(-1) from a worker reaches only
    this run's workers, and killing that user's processes ends only them."""
    if not running_as_root():
        return None
    ident = FIRST_WORKER_ID + os.getpid()
    return ident, ident


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


def remove_files_of(uid: int, folders=("/tmp", "/var/tmp", "/dev/shm")) -> None:
    """Delete what a worker user left in the world-writable folders (root only)."""
    for folder in folders:
        for top, dirs, files in os.walk(folder, topdown=False):
            for name in files + dirs:
                path = os.path.join(top, name)
                try:
                    if os.lstat(path).st_uid != uid:
                        continue
                    if os.path.isdir(path) and not os.path.islink(path):
                        os.rmdir(path)
                    else:
                        os.unlink(path)
                except OSError:
                    continue


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
