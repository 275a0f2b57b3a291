"""Runs a command as root of a new user namespace whose map is a rootless container's usual one.

    python tests/field/userns.py -- COMMAND [ARG ...]

Inside, uid and gid 0 are this machine's root and 1-65535 are 100001-165535, as in a rootless
container with a 65,536-id range of subordinate ids. Must be started as root (it writes the
maps from outside). Exits with the command's status.
"""

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
MAP = "0 0 1\n1 100001 65535\n"


def main(argv: list[str]) -> int:
    if argv[:1] != ["--"] or len(argv) < 2:
        raise SystemExit("usage: userns.py -- COMMAND [ARG ...]")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWUSER) != 0:
            os.write(2, b"userns.py: unshare(CLONE_NEWUSER) failed\n")
            os._exit(125)
        os.write(ready_w, b"1")
        if os.read(go_r, 1) != b"1":
            os._exit(125)
        os.setgid(0)
        os.setuid(0)
        os.execvp(argv[1], argv[1:])
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) == b"1":
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as handle:
                handle.write(MAP)
        os.write(go_w, b"1")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) % 256


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
