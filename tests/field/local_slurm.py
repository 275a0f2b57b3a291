"""A real SLURM on this machine for the field tier: Debian's slurm-wlm and munge on localhost.

One node, `hw5node`, declared with the course's resources (16 CPUs, 120 GB, 2 GPUs counted by
gres with `File=` empty regular files, which SLURM 22.05 needs: a GPU gres with no file is dropped
and the node marked invalid) and three partitions: `spgpu` (the course's, 2 hours), `gpu` (30
minutes, shorter than the headers ask) and `standard` (CPU jobs, for grading). The declared
resources are more than this machine has (SlurmdParameters=config_overrides): jobs run as
ordinary processes, without cgroups. Everything (configuration, state, munge key and socket, logs)
lives under one folder; clients find the cluster through SLURM_CONF, so /etc is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
NODE = "hw5node"


def missing_programs() -> list[str]:
    return [p for p in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(p) is None]


def install() -> str | None:
    """Installs Debian's packages if missing; None, or why it could not."""
    if not missing_programs():
        return None
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    for attempt in (command, None):
        if attempt is None:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
            attempt = command
        result = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode == 0 and not missing_programs():
            return None
    return f"apt-get could not install {' '.join(PACKAGES)}: {result.stderr.strip()[-300:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """munged, slurmctld and slurmd under `root`; `stop()` cancels every job and ends them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.pids: list[Path] = []

    # ------------------------------------------------------------------ bring up and tear down

    def start(self) -> LocalSlurm:
        root = self.root
        for sub in ("state", "spool", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(
            ["munged", f"--key-file={key}", f"--socket={root / 'munge.sock'}",
             f"--pid-file={root / 'munged.pid'}", f"--log-file={root / 'log/munged.log'}",
             f"--seed-file={root / 'munge.seed'}", "--force"],
            root / "munged.pid",
        )  # fmt: skip
        for i in range(2):
            (root / f"gpu{i}").touch()
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(
            "\n".join([
                "ClusterName=hw5field",
                f"SlurmctldHost={host}(127.0.0.1)",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={root / 'munge.sock'}",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'log/slurmctld.log'}",
                f"SlurmdLogFile={root / 'log/slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "SchedulerType=sched/backfill",
                "SlurmdParameters=config_overrides",
                "GresTypes=gpu",
                "ReturnToService=2",
                "MpiDefault=none",
                "SwitchType=switch/none",
                "KillWait=30",
                "MinJobAge=600",
                "LaunchParameters=use_interactive_step",
                f"NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs=16 "
                "RealMemory=120000 Gres=gpu:2 State=UNKNOWN",
                f"PartitionName=spgpu Nodes={NODE} MaxTime=02:00:00 Default=YES State=UP",
                f"PartitionName=gpu Nodes={NODE} MaxTime=00:30:00 State=UP",
                f"PartitionName=standard Nodes={NODE} MaxTime=04:00:00 State=UP",
                "",
            ])
        )  # fmt: skip
        (root / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File={root}/gpu[0-1]\n")
        self._daemon(["slurmctld", "-c", "-f", str(self.conf)], root / "slurmctld.pid")
        self._daemon(["slurmd", "-f", str(self.conf), "-N", NODE], root / "slurmd.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.split()
            if state and all(s == "idle" for s in state):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the node never became idle ({state}); see {root / 'log'}")

    def _daemon(self, command: list[str], pid_file: Path) -> None:
        result = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} did not start: {result.stderr.strip()[-500:]}")
        self.pids.append(pid_file)
        deadline = time.monotonic() + 20
        while not pid_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """Cancels every job, waits for them to end, then ends the daemons (TERM, then KILL)."""
        if (self.root / "slurmctld.pid").is_file():
            self.run("scancel", "--full", "-u", "root", check=False)
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline
                and self.run("squeue", "-h", "-t", "R,CG", check=False).stdout.strip()
            ):
                time.sleep(0.5)
        for pid_file in reversed(self.pids):
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.1)
                if not _alive(pid):
                    break
        self.pids.clear()

    # ------------------------------------------------------------------------------ client side

    def env(self, **extra) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf), **{k: str(v) for k, v in extra.items()}}

    def run(
        self, *command, env=None, cwd=None, check=True, timeout=60
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            list(map(str, command)), env=env or self.env(), cwd=cwd, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, command))}: {result.stderr.strip()}")
        return result

    def job(self, job_id) -> dict[str, str]:
        """Slurm's record of a job (scontrol show job), {} once it is forgotten."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False).stdout.strip()
        fields = {}
        for word in out.split(" "):
            key, sep, value = word.partition("=")
            if sep and key not in fields:
                fields[key] = value
        return fields

    def jobs(self) -> list[str]:
        """Ids of every job Slurm knows, oldest first."""
        out = self.run("scontrol", "show", "job", "-o", check=False).stdout
        ids = [
            line.split()[0].partition("=")[2]
            for line in out.splitlines()
            if line.startswith("JobId=")
        ]
        return sorted(ids, key=lambda i: int(i.split("_")[0]))

    def wait(self, job_id, until=("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=300):
        """Waits until the job's state is one of `until`; returns its record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.job(job_id)
            if record.get("JobState") in until:
                return record
            time.sleep(0.5)
        raise AssertionError(
            f"job {job_id} still {self.job(job_id).get('JobState')} after {timeout} s"
        )

    def wait_quiet(self, timeout=300) -> None:
        """Waits until no job is pending or running (dependencies and requeues included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run("squeue", "-h", check=False).stdout.strip():
                return
            time.sleep(0.5)
        raise AssertionError("jobs still queued: " + self.run("squeue", check=False).stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
