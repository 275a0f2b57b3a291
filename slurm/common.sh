# shellcheck shell=bash
# Settings and helpers shared by every job script in slurm/ (sourced, never run on its own).
#
# Sourcing this file only sets variables and defines functions; a job script then calls
# hw5_setup_job (modules, Python environment, caches, GPU check) and runs its command.

# ---------------------------------------------------------------------------------------------
# Course settings: the handout's salloc line
#   salloc --cpus-per-task=6 --gpus=1 --mem-per-gpu=44GB --partition=spgpu --time=0-02:00:00 \
#          --account=eecs498s014f24_class
# #SBATCH lines cannot read shell variables, so every job script repeats these values in its
# header (tests/cluster checks that they agree). To use another account or partition, either
# export HW5_ACCOUNT / HW5_PARTITION (salloc.sh reads them) and pass the same values on the sbatch
# command line, which overrides the header:
#   sbatch --account=my_account --partition=gpu --time=01:00:00 slurm/ddpm.sbatch
# A GAN job that resubmits itself keeps the account and partition it ran with.
# ---------------------------------------------------------------------------------------------
ACCOUNT="${HW5_ACCOUNT:-eecs498s014f24_class}"
PARTITION="${HW5_PARTITION:-spgpu}"
GPUS="${HW5_GPUS:-1}"
MEM_PER_GPU="${HW5_MEM_PER_GPU:-44GB}"
CPUS="${HW5_CPUS:-6}"
TIME="${HW5_TIME:-02:00:00}" # the course's limit per job

# The repository root: this file lives in <repo>/slurm/.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Scratch space (the folder the handout opens in VS Code); the model cache lives there, because
# Stable Diffusion alone takes about 5 GB of the 80 GB each student has.
SCRATCH="${HW5_SCRATCH:-/scratch/${ACCOUNT}_root/${ACCOUNT}/${USER:-$(id -un)}}"
HF_HOME="${HF_HOME:-$SCRATCH/hf_cache}"

# Python environment: a conda env (the handout's way) or a venv. It must be Python >= 3.10:
# the module's conda has Python 3.9, but `conda create -n HW5 python=3.11` (setup_env.sh) does not
# depend on it.
ENV_KIND="${HW5_ENV_KIND:-conda}"           # conda | venv | none (use whatever python is on PATH)
CONDA_ENV="${HW5_CONDA_ENV:-HW5}"           # name of the conda env
VENV_DIR="${HW5_VENV_DIR:-$SCRATCH/hw5-venv}" # used when ENV_KIND=venv
MODULES="${HW5_MODULES-python3.9-anaconda}" # space-separated, empty: none; gives us conda

# Lmod is not always defined in a batch shell; these files define the `module` function.
_HW5_LMOD_INIT=(/etc/profile.d/lmod.sh /usr/share/lmod/lmod/init/bash /etc/profile.d/modules.sh)

hw5_log() {
    printf '[hw5 %s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*"
}

hw5_die() {
    printf '[hw5 %s] ERROR: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2
    exit 1
}

# Lmod and conda's activation scripts read unset variables: run them without `set -u`.
hw5_lenient() {
    local nounset=0 status=0
    [[ $- == *u* ]] && nounset=1
    set +u
    "$@" || status=$?
    ((nounset)) && set -u
    return "$status"
}

hw5_load_modules() {
    [[ -z "$MODULES" ]] && return 0
    if ! type module >/dev/null 2>&1; then
        local init
        for init in "${_HW5_LMOD_INIT[@]}"; do
            # shellcheck disable=SC1090
            [[ -f "$init" ]] && hw5_lenient source "$init" && break
        done
    fi
    type module >/dev/null 2>&1 ||
        hw5_die "the 'module' command is missing; on a machine without modules set HW5_MODULES=''."
    local name
    for name in $MODULES; do
        hw5_lenient module load "$name" || hw5_die "'module load $name' failed; see 'module avail' and set HW5_MODULES."
    done
}

# Makes `conda activate` work in this shell, or stops with one sentence if there is no conda.
hw5_conda_hook() {
    command -v conda >/dev/null 2>&1 ||
        hw5_die "conda is missing: on the cluster 'module load python3.9-anaconda' provides it (HW5_MODULES); elsewhere install Miniconda, or use a venv with HW5_ENV_KIND=venv."
    hw5_lenient eval "$(conda shell.bash hook)" || hw5_die "'conda shell.bash hook' failed."
}

hw5_activate_env() {
    case "$ENV_KIND" in
        conda)
            hw5_conda_hook
            hw5_lenient conda activate "$CONDA_ENV" ||
                hw5_die "conda env '$CONDA_ENV' is missing; create it on the login node with: bash slurm/setup_env.sh"
            ;;
        venv)
            [[ -f "$VENV_DIR/bin/activate" ]] ||
                hw5_die "no venv at $VENV_DIR; create it with: HW5_ENV_KIND=venv bash slurm/setup_env.sh"
            # shellcheck disable=SC1091
            hw5_lenient source "$VENV_DIR/bin/activate"
            ;;
        none) ;;
        *) hw5_die "HW5_ENV_KIND must be conda, venv or none, not '$ENV_KIND'." ;;
    esac
    python -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        hw5_die "$(command -v python) is older than Python 3.10; recreate the env with: bash slurm/setup_env.sh"
}

# Everything a job needs before its command: modules, the Python env, caches, and a GPU check.
hw5_setup_job() {
    hw5_load_modules
    hw5_activate_env
    export HF_HOME
    # Compute nodes may have no internet: use the models pre-downloaded by setup_env.sh.
    # HF_HUB_OFFLINE=0 sbatch ... lets a job download (only where the node can reach the hub).
    export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-$CPUS}"
    export PYTHONUNBUFFERED=1 # log lines reach slurm/logs/ as they happen
    hw5_log "job ${SLURM_JOB_ID:-local} '${SLURM_JOB_NAME:-}' on $(hostname), repo $REPO"
    hw5_log "python $(command -v python), HF_HOME=$HF_HOME, HF_HUB_OFFLINE=$HF_HUB_OFFLINE"
    if [[ "${HW5_SKIP_GPU_CHECK:-0}" != 1 ]]; then
        python -c '
import sys, torch
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), GPUs: {torch.cuda.device_count()}", flush=True)
sys.exit(0 if torch.cuda.is_available() else 1)' ||
            hw5_die "torch sees no GPU: check '#SBATCH --gpus' and that 'pip install torch==2.13.0' installed the CUDA build (a driver older than the wheel's CUDA needs the cu12x build, see slurm/README.md)."
    fi
}

# Runs "$@" in the background and waits for it, forwarding USR1 and TERM to it.
# Bash runs a trap only after the foreground command returns, which would be after the job's
# time is up; `wait` on a background child returns as soon as a trapped signal arrives.
# Sets HW5_STOP_SIGNAL to the last signal forwarded (empty if none); returns the child's status.
hw5_run_forwarding_signals() {
    HW5_STOP_SIGNAL=""
    "$@" &
    _HW5_CHILD=$!
    trap 'HW5_STOP_SIGNAL=USR1; hw5_log "got SIGUSR1: asking $_HW5_CHILD to save and stop"; kill -USR1 "$_HW5_CHILD" 2>/dev/null || true' USR1
    trap 'HW5_STOP_SIGNAL=TERM; hw5_log "got SIGTERM: asking $_HW5_CHILD to save and stop"; kill -TERM "$_HW5_CHILD" 2>/dev/null || true' TERM
    local status
    while :; do
        status=0
        wait "$_HW5_CHILD" || status=$?
        # Still there (running, or exited but not yet collected): wait was cut short by a trap.
        kill -0 "$_HW5_CHILD" 2>/dev/null || break
    done
    if ((status > 128)); then
        # The child may have exited between the interrupted wait and kill -0: its status is kept.
        local again=0
        wait "$_HW5_CHILD" 2>/dev/null || again=$?
        ((again != 127)) && status=$again
    fi
    trap - USR1 TERM
    return "$status"
}

# Submits the next job of a GAN chain: the same script, to start after this job ends, with this
# job's account, partition, job name and resources, and the chain index one higher.
hw5_resubmit() {
    local script="$REPO/slurm/$1" next="$2"
    local -a opts=(--parsable --export="ALL,HW5_CHAIN_INDEX=$next")
    [[ -n "${SLURM_JOB_ID:-}" ]] && opts+=(--dependency="afterany:$SLURM_JOB_ID")
    [[ -n "${SLURM_JOB_ACCOUNT:-}" ]] && opts+=(--account="$SLURM_JOB_ACCOUNT")
    [[ -n "${SLURM_JOB_PARTITION:-}" ]] && opts+=(--partition="$SLURM_JOB_PARTITION")
    [[ -n "${SLURM_JOB_NAME:-}" ]] && opts+=(--job-name="$SLURM_JOB_NAME")
    # What `sbatch --gpus=4 --cpus-per-task=24 ...` changed holds for the whole chain.
    [[ -n "${SLURM_GPUS:-}" ]] && opts+=(--gpus="$SLURM_GPUS")
    [[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && opts+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
    [[ -n "${SLURM_MEM_PER_GPU:-}" ]] && opts+=(--mem-per-gpu="$SLURM_MEM_PER_GPU")
    local job
    # From the repo root, so that the header's relative log path slurm/logs/ resolves.
    job="$(cd "$REPO" && sbatch "${opts[@]}" "$script")" ||
        hw5_die "could not resubmit $script; continue by hand: cd $REPO && sbatch slurm/$1"
    hw5_log "submitted job ${job%%;*} (chain job $next) to continue after this one; cancel it with: scancel ${job%%;*}"
}

# Runs a GAN training command ("$@") as one job of a chain of jobs that make one training run.
# The first job starts a new run (as the handout's command does; RESUME=auto continues the newest
# run of the same setting instead); every job it submits gets `--resume auto`, which continues
# that run from its newest checkpoint (--iters counts from the run's start).
#   train.py exits 0: the requested iterations are done; the chain ends.
#   train.py exits 3: it was stopped by a signal and wrote a checkpoint. After the early SIGUSR1
#     (#SBATCH --signal) the job resubmits itself (at most MAX_CHAIN jobs in all); after SIGTERM
#     (scancel, or the time limit) it does not, so `scancel` ends a chain.
#   anything else: an error; the job fails and nothing is resubmitted.
# Sets HW5_GAN_DONE=1 when the run is complete (status 0), 0 otherwise.
# A launcher (torchrun) reports its workers' status 3 as 1; so a non-zero status after SIGUSR1
# also counts as a stop when a checkpoint newer than the job's start exists under $1 (the outdir).
hw5_gan_run() {
    local script="$1" outdir="$2"
    shift 2
    local index="${HW5_CHAIN_INDEX:-1}" max="${MAX_CHAIN:-5}"
    [[ "$index" =~ ^[0-9]+$ && "$max" =~ ^[0-9]+$ ]] ||
        hw5_die "HW5_CHAIN_INDEX ($index) and MAX_CHAIN ($max) must be whole numbers."
    local resume="${RESUME:-new}"
    ((index > 1)) && resume=auto
    case "$resume" in
        auto) set -- "$@" --resume auto ;;
        new) ;;
        *) hw5_die "RESUME must be 'auto' (continue the newest run) or 'new', not '$resume'." ;;
    esac
    hw5_log "chain job $index of at most $max (MAX_CHAIN): $*"
    HW5_GAN_DONE=0
    local stamp
    stamp="$(mktemp "${TMPDIR:-/tmp}/hw5-start.XXXXXX")"
    local status=0
    hw5_run_forwarding_signals "$@" || status=$?
    if ((status != 0 && status != 3)) && [[ "$HW5_STOP_SIGNAL" == USR1 ]] &&
        [[ -n "$(find "$outdir" -newer "$stamp" -type f \( -name '*.pkl' -o -name '*.pt' \) -print -quit 2>/dev/null)" ]]; then
        hw5_log "the launcher exited with $status after SIGUSR1 and a new checkpoint exists: a stop"
        status=3
    fi
    rm -f "$stamp"
    case "$status" in
        0)
            hw5_log "training finished (exit status 0): the requested iterations are done; chain ends."
            HW5_GAN_DONE=1
            return 0
            ;;
        3)
            if [[ "$HW5_STOP_SIGNAL" == TERM ]]; then
                hw5_log "stopped by SIGTERM (scancel or the time limit) with a checkpoint written; not resubmitting. Continue with: sbatch slurm/$script"
                return 3
            fi
            if ((index >= max)); then
                hw5_log "stopped with a checkpoint written, but this is chain job $index of MAX_CHAIN=$max: not resubmitting. A new chain continues the run: sbatch slurm/$script"
                return 3
            fi
            hw5_log "stopped early with a checkpoint written (exit status 3); resubmitting to continue with --resume auto."
            hw5_resubmit "$script" "$((index + 1))"
            return 0
            ;;
        *)
            printf '[hw5 %s] ERROR: training failed with exit status %s (see the messages above); nothing resubmitted.\n' \
                "$(date '+%Y-%m-%d %H:%M:%S')" "$status" >&2
            return "$status"
            ;;
    esac
}
