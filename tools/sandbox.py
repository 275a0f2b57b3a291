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
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
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


def confine(limits: Limits, scratch: Path, user: tuple[int, int] | None) -> None:
    """Called first thing in a worker: its own session, resource limits, an unprivileged user,
    stdin from /dev/null and stdout/stderr into a file of the scratch folder."""
    os.setsid()
    memory = int(limits.memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = max(1, int(limits.seconds * 2) + 5)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if user is not None:
        uid, gid = user
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
