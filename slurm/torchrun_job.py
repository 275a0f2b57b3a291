"""torchrun for a job of a GAN chain: same arguments, but a stop is a stop, not a failure.

    python slurm/torchrun_job.py --standalone --nproc_per_node 2 ... train.py ARGS

torchrun itself, sent SIGUSR1 (the job's early warning) or SIGTERM (scancel, the time limit),
passes it to its workers and then ends with status 1 and a page-long traceback, whatever the
workers did; and it reports workers that exit non-zero as a failure, with another traceback,
even when they stopped as asked (train.py saves a checkpoint and exits with 3).
Here SIGUSR1 and SIGTERM are passed to every worker, and torchrun keeps waiting for them; when
every worker that failed exited with the same status, that status is this launcher's, with one
line and no traceback (slurm/common.sh reads 3 as "stopped with a checkpoint"). After such a
signal, workers that exited with 3 beside workers torchrun ended with SIGTERM (it ends the others
as soon as one has exited) are a stop too. Any other failure
is summarized in one line per worker (status, or the signal that killed it) and exits with the
first status other than 3 (1 for a worker killed by a signal).
"""

import logging
import os
import signal
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import get_args_parser, run

FORWARDED = (signal.SIGUSR1, signal.SIGTERM)


def children() -> list[int]:
    """The pids of this process's children (torchrun's workers)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:  # field 4: the parent's pid
            found.append(int(entry))
    return found


forwarded: list[int] = []  # the signals passed to the workers so far


def forward(signum, frame) -> None:
    forwarded.append(signum)
    for pid in children():
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    # torchrun handles the other signals as it always does; these two are forwarded here.
    names = {s.name for s in FORWARDED}
    args.signals_to_handle = ",".join(
        s for s in args.signals_to_handle.split(",") if s.strip() and s.strip() not in names
    )
    for signum in FORWARDED:
        signal.signal(signum, forward)
    # The elastic agent logs every worker that exits non-zero as an error; the summary below says it once.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(args)
    except ChildFailedError as error:
        failures = sorted(error.failures.items())
        codes = {failure.exitcode for _, failure in failures}
        if len(codes) == 1 and (code := next(iter(codes))) > 0:
            print(f"torchrun: the workers exited with status {code}.", file=sys.stderr)
            return code
        if forwarded and 3 in codes and codes <= {3, -signal.SIGTERM}:
            # A stop: torchrun ends the other workers (SIGTERM) as soon as one has exited, which
            # can be before they exit with 3 themselves; checkpoints are written whole or not at
            # all, so the run continues from the newest complete one.
            print(
                "torchrun: the workers stopped (status 3; torchrun ended the last ones with SIGTERM).",
                file=sys.stderr,
            )
            return 3
        for rank, failure in failures:
            how = (
                f"killed by {failure.signal_name()}"
                if failure.exitcode < 0
                else f"exited with status {failure.exitcode}"
            )
            print(f"torchrun: worker {rank} {how}.", file=sys.stderr)
        # Not a stop: the first status other than 3 (1 for a worker killed by a signal).
        other = [failure.exitcode for _, failure in failures if failure.exitcode != 3]
        return other[0] if other and other[0] > 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
