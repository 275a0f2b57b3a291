"""The course's job scripts on a real SLURM (Debian's slurm-wlm on localhost, tests/field/local_slurm.py).

The scripts are submitted as written, from a copy of the repository with the tiny GAN config,
generated dogs and a course-style checkpoint of the tiny config, on CPU (HW5_SKIP_GPU_CHECK=1).
A GAN chain is interrupted the ways a cluster interrupts it (its own early signal, on a partition
shorter than the header asks; `scancel`; a requeue) and its final G, D and G_ema must equal an
uninterrupted run's bit for bit: no iteration lost or trained twice. The field tier: run as root
with HW5_FIELD=1 (CI's .ci/run sets it); it installs SLURM if missing; skipped elsewhere.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "gan"))
import gan_helpers  # noqa: E402
import local_slurm  # noqa: E402

PART1_TODOS = tuple(f"GAN_homework/training/loss.py#{n}" for n in (1, 2, 3, 4))
ITERS = 30  # a few seconds of tiny training per job on CPU
# Jobs train with OMP_NUM_THREADS = their --cpus-per-task, and so must the reference run. The
# headers' 6 would oversubscribe this machine's cores: the tests pass --cpus-per-task=1, which the
# chain must then keep.
CPUS = "1"


def _reason() -> str | None:
    if os.environ.get("HW5_FIELD") != "1":
        return "the field tier runs with HW5_FIELD=1 (CI's .ci/run sets it)"
    if os.geteuid() != 0:
        return "the real-SLURM tier runs as root (it starts munged, slurmctld and slurmd)"
    return None


pytestmark = [
    pytest.mark.skipif(_reason() is not None, reason=str(_reason())),
    pytest.mark.slow,
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = local_slurm.install()
    if why:
        pytest.skip(why)
    cluster = local_slurm.LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def copy_repo(dest: Path) -> Path:
    """The repository's slurm/, tools/, tests/grading and homeworks, without outputs or downloads."""
    skip = shutil.ignore_patterns(
        "__pycache__", "training-runs", "many_shot_dog", "checkpoint", "*_results*", "logs",
        ".pytest_cache",
    )  # fmt: skip
    for name in ("slurm", "GAN_homework", "Diffusion_homework", "tools"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    shutil.copytree(ROOT / "tests" / "grading", dest / "tests" / "grading", ignore=skip)
    (dest / "slurm" / "logs").mkdir()
    return dest


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A GAN_homework with dogs and a course checkpoint of the tiny config (made once), and the
    G, D and G_ema of an uninterrupted part-1 run of ITERS iterations from it."""
    base = tmp_path_factory.mktemp("course")
    gan = base / "GAN_homework"
    gan_helpers.write_images(gan / "many_shot_dog", count=8, size=32)
    env = {**gan_helpers.env(), "OMP_NUM_THREADS": CPUS}
    init = base / "init"
    subprocess.run(
        [sys.executable, "train.py", *gan_helpers.tiny_args(init, gan / "many_shot_dog", False, False, 1, 1)],
        cwd=ROOT / "GAN_homework", env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (gan / "checkpoint").mkdir()
    subprocess.run(
        [sys.executable, "-m", "training.checkpoint", next(init.glob("*/checkpoint-*.pt")),
         gan / "checkpoint" / "part1-10K.pkl"],
        cwd=ROOT / "GAN_homework", env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    reference = base / "reference"
    subprocess.run(
        [sys.executable, "train.py", "--outdir", reference, "--data", gan / "many_shot_dog",
         "--use_r1_regularization", "False", "--use_diffaug", "False",
         "--checkpoint_path", gan / "checkpoint" / "part1-10K.pkl", "--iters", str(ITERS),
         "--cfg", "tiny", "--snap", "1000"],
        cwd=ROOT / "GAN_homework", env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return gan, final_weights(reference)


def final_weights(outdir: Path) -> dict:
    import torch

    (path,) = Path(outdir).glob(f"*/checkpoint-{ITERS:06d}.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {key: state[key] for key in ("G", "D", "G_ema")}


def assert_same_weights(ours: dict, reference: dict) -> None:
    import torch

    for key in ("G", "D", "G_ema"):
        assert ours[key].keys() == reference[key].keys()
        for name, tensor in reference[key].items():
            assert torch.equal(ours[key][name], tensor), (
                f"{key}.{name} differs from the uninterrupted run"
            )


@pytest.fixture
def bare_repo(tmp_path):
    return copy_repo(tmp_path / "repo")


@pytest.fixture
def repo(bare_repo, course):
    repo = bare_repo
    gan, _ = course
    shutil.copytree(gan / "many_shot_dog", repo / "GAN_homework" / "many_shot_dog")
    shutil.copytree(gan / "checkpoint", repo / "GAN_homework" / "checkpoint")
    return repo


def job_env(slurm, **extra) -> dict[str, str]:
    """A student's shell on the login node: the env's python first on PATH, no modules, no GPU."""
    return slurm.env(
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        HW5_ENV_KIND="none", HW5_MODULES="", HW5_SKIP_GPU_CHECK=1, HF_HUB_OFFLINE=1,
        HW5_SCRATCH=ROOT / "build", PYTHONUNBUFFERED=1, **extra,
    )  # fmt: skip


def sbatch(slurm, *args, env, cwd) -> str:
    out = slurm.run("sbatch", "--parsable", *args, env=env, cwd=cwd).stdout.strip()
    return out.split(";")[0]


def log_of(repo: Path, name: str, job: str) -> Path:
    return repo / "slurm" / "logs" / f"{name}-{job}.out"


def wait_for_text(path: Path, pattern: str, slurm, job: str, timeout=240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.is_file() else ""
        if re.search(pattern, text):
            return text
        if slurm.job(job).get("JobState") not in ("PENDING", "RUNNING", "CONFIGURING", None):
            break
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} never appeared in {path}:\n{text[-3000:]}")


def training_started(repo, job, slurm) -> str:
    return wait_for_text(log_of(repo, "gan_part1", job), rf"\b[1-9]\d*/{ITERS} \[", slurm, job)


def chain_summary(slurm, repo) -> list[dict]:
    records = [slurm.job(j) for j in slurm.jobs()]
    return [r for r in records if r.get("WorkDir", "").startswith(str(repo))]


GAN_ENV = dict(ITERS=ITERS, EXTRA_ARGS="--cfg tiny --snap 1000")


@pytest.mark.needs(*PART1_TODOS)
def test_chain_on_a_shorter_partition_stops_at_its_signal_and_continues_bit_for_bit(
    slurm, repo, course
):
    env = job_env(slurm, **GAN_ENV)
    # The README's way to another partition: its limit (30 min) is shorter than the header's 2 h.
    first = sbatch(
        slurm, "--partition=gpu", "--time=00:20:00", f"--cpus-per-task={CPUS}", "slurm/gan_part1.sbatch",
        env=env, cwd=repo,
    )  # fmt: skip
    training_started(repo, first, slurm)
    # The time limit's early warning (#SBATCH --signal=B:USR1@300), sent now, to the batch shell.
    slurm.run("scancel", "--batch", "--signal=USR1", first)
    slurm.wait_quiet(timeout=420)
    jobs = chain_summary(slurm, repo)
    print("chain:", [(j["JobId"], j["JobState"], j["Partition"], j["TimeLimit"]) for j in jobs])
    assert [j["JobState"] for j in jobs] == ["COMPLETED", "COMPLETED"], jobs
    second = jobs[1]
    kept = (second["Partition"], second["TimeLimit"], second["JobName"], second["NumCPUs"])
    assert kept == ("gpu", "00:20:00", "gan_part1", CPUS), second
    text = log_of(repo, "gan_part1", second["JobId"]).read_text()
    stopped = int(
        re.search(
            r"stopped at iteration (\d+)", log_of(repo, "gan_part1", first).read_text()
        ).group(1)
    )
    assert f"at iteration {stopped}; continuing to {ITERS}" in text and "chain ends" in text, text[
        -2000:
    ]
    assert_same_weights(final_weights(repo / "GAN_homework" / "training-runs"), course[1])


@pytest.mark.needs(*PART1_TODOS)
def test_requeued_first_job_continues_its_own_run_and_keeps_its_log(slurm, repo, course):
    env = job_env(slurm, **GAN_ENV)
    job = sbatch(slurm, f"--cpus-per-task={CPUS}", "slurm/gan_part1.sbatch", env=env, cwd=repo)
    training_started(repo, job, slurm)
    before = log_of(repo, "gan_part1", job).read_text()
    slurm.run("scontrol", "requeue", job)  # what a node failure or preemption does
    deadline = time.monotonic() + 60
    while slurm.job(job).get("JobState") != "PENDING" and time.monotonic() < deadline:
        time.sleep(0.3)
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")  # skip SLURM's requeue delay
    slurm.wait_quiet(timeout=420)
    record = slurm.job(job)
    assert record["JobState"] == "COMPLETED" and record["Restarts"] == "1", record
    assert len(chain_summary(slurm, repo)) == 1, "a requeue must not submit another job"
    text = log_of(repo, "gan_part1", job).read_text()
    assert text.startswith(before), "the requeued job's log lost its first attempt"
    assert "requeued by Slurm (restart 1): continuing" in text, text[-3000:]
    runs = [p for p in (repo / "GAN_homework" / "training-runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, f"the requeued job opened another run folder: {runs}"
    assert_same_weights(final_weights(repo / "GAN_homework" / "training-runs"), course[1])


@pytest.mark.needs(*PART1_TODOS)
def test_scancel_stops_the_chain_and_its_continue_line_continues_the_same_run(slurm, repo, course):
    env = job_env(slurm, **GAN_ENV)
    first = sbatch(slurm, f"--cpus-per-task={CPUS}", "slurm/gan_part1.sbatch", env=env, cwd=repo)
    training_started(repo, first, slurm)
    slurm.run("scancel", first)
    slurm.wait(first, until=("CANCELLED", "COMPLETED", "FAILED"), timeout=120)
    text = wait_for_text(
        log_of(repo, "gan_part1", first), r"Continue with: .*\n", slurm, first, timeout=60
    )
    assert len(chain_summary(slurm, repo)) == 1, "scancel must not resubmit"
    line = re.search(r"Continue with: (.*)\n", text).group(1)
    assert "RESUME=auto" in line and f"ITERS={ITERS}" in line, line
    # Pasted as it is, in a login shell elsewhere (the user's environment, not the job's).
    student = job_env(slurm, EXTRA_ARGS=GAN_ENV["EXTRA_ARGS"])
    pasted = subprocess.run(
        ["bash", "-c", line], cwd="/", env=student, capture_output=True, text=True, timeout=60
    )
    assert pasted.returncode == 0, pasted.stderr
    slurm.wait_quiet(timeout=420)
    jobs = chain_summary(slurm, repo)
    print("chain:", [(j["JobId"], j["JobState"]) for j in jobs])
    assert len(jobs) == 2 and jobs[1]["JobState"] == "COMPLETED", jobs
    runs = [p for p in (repo / "GAN_homework" / "training-runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, f"the pasted line started another run: {runs}"
    assert_same_weights(final_weights(repo / "GAN_homework" / "training-runs"), course[1])


def test_jobs_submitted_from_any_folder_log_into_the_repository(slurm, bare_repo, tmp_path):
    repo = bare_repo
    env = job_env(slurm)
    from_homework = sbatch(slurm, "../slurm/ddpm.sbatch", env=env, cwd=repo / "Diffusion_homework")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    from_elsewhere = sbatch(slurm, repo / "slurm" / "dps.sbatch", env=env, cwd=elsewhere)
    slurm.wait_quiet(timeout=300)
    for name, job in (("ddpm", from_homework), ("dps", from_elsewhere)):
        log = log_of(repo, name, job)
        assert log.is_file(), (
            f"no log {log}; logs: {sorted(p.name for p in (repo / 'slurm' / 'logs').iterdir())}"
        )
        text = log.read_text()
        # Offline without the model: one sentence, no traceback, nothing deleted.
        assert "Error:" in text and "Traceback" not in text, text[-2000:]
        assert slurm.job(job)["JobState"] == "FAILED"
    assert not list(elsewhere.iterdir()), "a job left files in the folder it was submitted from"


def test_submit_sh_explains_a_request_the_partition_cannot_run_and_queues_nothing(slurm, bare_repo):
    repo, env = bare_repo, job_env(slurm)
    cases = [
        (
            ["gan_part1", "--partition=gpu"],
            "allows at most 30:00",
        ),  # the header's 2 h on a 30 min partition
        (["ddpm", "--cpus-per-task=64"], "no node of partition 'spgpu' has more than 16"),
        (["gan_multigpu", "--gpus=4"], "no node of partition 'spgpu' has more than 2"),
        (["ddpm", "--partition=nosuch"], "there is no partition 'nosuch'"),
        (["nosuch"], "there is no slurm/nosuch.sbatch"),
    ]
    for args, message in cases:
        result = slurm.run(
            "bash", repo / "slurm" / "submit.sh", *args, env=env, cwd=repo, check=False
        )
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not chain_summary(slurm, repo), "a refused request must queue nothing"
    # From a homework folder, on the shorter partition with a time that fits: queued, and the log
    # lands in the repository's slurm/logs/.
    result = slurm.run(
        "bash", "../slurm/submit.sh", "ddim", "--partition=gpu", "--time=00:10:00",
        env=env, cwd=repo / "GAN_homework", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = re.search(r"Submitted batch job (\d+)", result.stdout).group(1)
    assert str(repo / "slurm" / "logs" / f"ddim-{job}.out") in result.stdout
    slurm.wait(job, timeout=300)
    assert "Error:" in log_of(repo, "ddim", job).read_text()


@pytest.mark.needs(*PART1_TODOS)
def test_multigpu_chain_stops_without_a_traceback_and_continues(slurm, repo):
    env = job_env(slurm, PART=1, ITERS=ITERS, EXTRA_ARGS="--cfg tiny --snap 1000")
    first = sbatch(slurm, "--cpus-per-task=2", "slurm/gan_multigpu.sbatch", env=env, cwd=repo)
    wait_for_text(log_of(repo, "gan_multigpu", first), rf"\b[1-9]\d*/{ITERS} \[", slurm, first)
    slurm.run("scancel", "--batch", "--signal=USR1", first)
    slurm.wait_quiet(timeout=420)
    jobs = chain_summary(slurm, repo)
    print("chain:", [(j["JobId"], j["JobState"], j["NumCPUs"]) for j in jobs])
    assert [j["JobState"] for j in jobs] == ["COMPLETED", "COMPLETED"], jobs
    text = log_of(repo, "gan_multigpu", first).read_text()
    assert re.search(r"torchrun: the workers (exited with status 3|stopped)", text), text[-3000:]
    assert "resubmitting" in text, text[-3000:]
    assert "Traceback" not in text and "ChildFailedError" not in text, text[-3000:]
    second = log_of(repo, "gan_multigpu", jobs[1]["JobId"]).read_text()
    assert "chain ends" in second and "Traceback" not in second, second[-3000:]


@pytest.mark.needs(*PART1_TODOS)
def test_course_checkpoint_job_keeps_the_checkpoint_it_replaces(slurm, repo):
    checkpoint = repo / "GAN_homework" / "checkpoint" / "part1-10K.pkl"
    before = checkpoint.read_bytes()
    env = job_env(slurm, PART=1, ITERS=3, EXTRA_ARGS="--cfg tiny --snap 1000")
    job = sbatch(slurm, "--cpus-per-task=1", "slurm/course_checkpoint.sbatch", env=env, cwd=repo)
    record = slurm.wait(job, timeout=300)
    text = log_of(repo, "course_checkpoint", job).read_text()
    assert record["JobState"] == "COMPLETED", text[-3000:]
    kept = list(checkpoint.parent.glob("part1-10K.replaced-*.pkl"))
    assert len(kept) == 1 and kept[0].read_bytes() == before
    assert checkpoint.read_bytes() != before and "exported" in text
    assert not list(checkpoint.parent.glob(".*")), "no temporary file left"


def _submission(folder: Path, text: str) -> Path:
    path = folder / "Diffusion_homework" / "scheduler" / "DDPM_scheduler.py"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return folder


def test_grade_class_grades_each_submission_in_an_array_and_writes_the_index(
    slurm, bare_repo, tmp_path
):
    sys.path.insert(0, str(ROOT))
    from tools import markers

    rel = "Diffusion_homework/scheduler/DDPM_scheduler.py"
    solution = (ROOT / rel).read_text()
    if markers.is_starter(markers.blocks_by_number(solution, rel)[2], rel):
        pytest.skip("needs the solution of DDPM #2")
    right_body = (
        "pred_original_sample = (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5\n"
    )
    subs = tmp_path / "all zips"
    subs.mkdir()
    _submission(subs / "right", solution)
    _submission(
        subs / "wrong",
        markers.replace_bodies(
            solution, {2: right_body.replace("beta_prod_t**0.5", "beta_prod_t")}, rel
        ),
    )
    _submission(subs / "blank", markers.starterize(solution, rel))
    hostile = "import torch\ntorch.allclose = lambda *a, **k: True\npred_original_sample = sample\n"
    folder = _submission(subs / "hostile", markers.replace_bodies(solution, {2: hostile}, rel))
    with zipfile.ZipFile(subs / "hostile.zip", "w") as z:  # a zip as Gradescope gives it
        z.write(folder / rel, rel)
    shutil.rmtree(folder)
    report = tmp_path / "report"
    # Relative paths, from the folder sbatch runs in (not the repository).
    env = job_env(slurm, SUBMISSIONS=subs.name, REPORT=report.name, GRADE_ARGS=f"--only {rel}#2")
    first = sbatch(slurm, bare_repo / "slurm" / "grade_class.sbatch", env=env, cwd=tmp_path)
    slurm.wait_quiet(timeout=600)
    jobs = chain_summary(slurm, bare_repo) or [slurm.job(j) for j in slurm.jobs()]
    print(
        "grading jobs:",
        [(j["JobId"], j["JobName"], j["JobState"]) for j in jobs if j["JobName"] == "grade_class"],
    )
    plan_log = log_of(bare_repo, "grade_class", first).read_text()
    assert "4 submissions: array job" in plan_log, plan_log
    scores = {}
    for name in ("right", "wrong", "blank", "hostile"):
        results = json.loads((report / "results" / f"{name}.json").read_text())
        scores[name] = results["score"]
    print("scores:", scores)
    assert scores["right"] > 0 and scores["wrong"] == scores["blank"] == scores["hostile"] == 0, (
        scores
    )
    index = (report / "index.html").read_text()
    assert all(name in index for name in ("right", "wrong", "blank", "hostile"))
    assert all(
        (report / f"{name}.html").is_file() for name in ("right", "wrong", "blank", "hostile")
    )


def _interactive(slurm, repo) -> str:
    """`bash slurm/salloc.sh` in a terminal (script(1)), typing one command: the job step id the
    shell runs in ('' on the login node)."""
    typed = "echo STEP=${SLURM_STEP_ID:-none}:$SLURM_JOB_ID\nexit\n"
    env = job_env(slurm, HW5_CPUS=1, SHELL="/bin/bash")
    result = subprocess.run(
        ["script", "-qec", f"bash {repo / 'slurm' / 'salloc.sh'}", "/dev/null"], input=typed,
        env=env, cwd=repo, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.findall(r"STEP=([^\s:]+):(\d+)", result.stdout.replace("\r", ""))
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    return found[-1][0]


def test_salloc_sh_opens_its_shell_on_the_allocated_node_with_or_without_interactive_step(
    slurm, bare_repo
):
    if shutil.which("script") is None:
        pytest.skip("script(1) (util-linux) is needed for a terminal")
    # LaunchParameters=use_interactive_step: salloc's own interactive step.
    assert _interactive(slurm, bare_repo) not in ("none", "")
    text = slurm.conf.read_text()
    try:
        slurm.conf.write_text(text.replace("LaunchParameters=use_interactive_step\n", ""))
        slurm.run("scontrol", "reconfigure")
        time.sleep(2)
        # Without it salloc's shell would stay on the login node (no step): salloc.sh starts the
        # shell on the node with srun.
        assert _interactive(slurm, bare_repo) == "0"
    finally:
        slurm.conf.write_text(text)
        slurm.run("scontrol", "reconfigure", check=False)
        time.sleep(2)
