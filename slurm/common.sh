# shellcheck shell=bash
# Settings and helpers shared by every job script in slurm/ (sourced, never run on its own).
#
# Sourcing this file sets variables, defines functions and, inside a Slurm job, sends the job's
# output to its log (hw5_open_log); a job script then calls hw5_setup_job (modules, Python
# environment, caches, GPU check) and runs its command.

# ---------------------------------------------------------------------------------------------
# Course settings: the handout's salloc line
#   salloc --cpus-per-task=6 --gpus=1 --mem-per-gpu=44GB --partition=spgpu --time=0-02:00:00 \
#          --account=eecs498s014f24_class
# #SBATCH lines cannot read shell variables, so every job script repeats these values in its
# header (tests/cluster checks that they agree). Another course changes them in one step:
#   bash slurm/configure.sh --account=my_account --partition=gpu --modules="python/3.11"
# rewrites these defaults and every header. For one job, pass options to submit.sh (it checks the
# request against the partition first) or to sbatch, which override the header:
#   bash slurm/submit.sh ddpm --partition=gpu --time=01:00:00
# A GAN job that resubmits itself keeps the account, partition, resources and time limit it ran
# with (the early signal: SBATCH_SIGNAL, see slurm/README.md).
# ---------------------------------------------------------------------------------------------
ACCOUNT="${HW5_ACCOUNT:-eecs498s014f24_class}"
PARTITION="${HW5_PARTITION:-spgpu}"
GPUS="${HW5_GPUS:-1}"
MEM_PER_GPU="${HW5_MEM_PER_GPU:-44GB}"
CPUS="${HW5_CPUS:-6}"
TIME="${HW5_TIME:-02:00:00}" # the course's limit per job
CPU_PARTITION="${HW5_CPU_PARTITION:-standard}" # CPU-only jobs (the instructors' class grading)

# The repository root: this file lives in <repo>/slurm/.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Every job's log, whatever folder sbatch ran from: <LOG_DIR>/<job name>-<job id>.out.
LOG_DIR="${HW5_LOG_DIR:-$REPO/slurm/logs}"

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

# One field of this job's record in Slurm (scontrol show job), empty outside a job or without scontrol.
hw5_job_field() {
    [[ -n "${SLURM_JOB_ID:-}" ]] || return 0
    scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1 || true
}

# Inside a Slurm job whose output Slurm discards (the headers' --output=/dev/null), this job writes
# its own log, appended, so that a requeued job adds to it: <LOG_DIR>/<job name>-<job id>.out
# (<job name>-<array id>_<task>.out for a job array). A relative --output in a header would be
# taken from the folder sbatch ran from, and a job submitted from anywhere else would fail before
# its first line, without a log. A job given its own --output keeps it.
hw5_open_log() {
    [[ -n "${SLURM_JOB_ID:-}" ]] || return 0
    [[ "$(readlink "/proc/$$/fd/1" 2>/dev/null)" == /dev/null ]] || return 0
    local id="$SLURM_JOB_ID"
    [[ -n "${SLURM_ARRAY_JOB_ID:-}" && -n "${SLURM_ARRAY_TASK_ID:-}" ]] &&
        id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    local log="$LOG_DIR/${SLURM_JOB_NAME:-job}-$id.out"
    if ! { mkdir -p "$LOG_DIR" && : >>"$log"; } 2>/dev/null; then
        log="${SLURM_SUBMIT_DIR:-$HOME}/slurm-$id.out"
    fi
    exec >>"$log" 2>&1
}

# Seconds in a Slurm time (minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds); empty for "infinite"/"UNLIMITED" or a bad value.
hw5_seconds() {
    local value="$1" days=0 h=0 m=0 sec=0 rest
    [[ "$value" =~ ^[0-9]+(-[0-9]+)?(:[0-9]+){0,2}$ ]] || return 0
    if [[ "$value" == *-* ]]; then
        days="${value%%-*}" rest="${value#*-}"
        IFS=: read -r h m sec <<<"$rest"
    else
        local -a parts
        IFS=: read -r -a parts <<<"$value"
        case "${#parts[@]}" in
            1) m="${parts[0]}" ;;
            2) m="${parts[0]}" sec="${parts[1]}" ;;
            3) h="${parts[0]}" m="${parts[1]}" sec="${parts[2]}" ;;
        esac
    fi
    echo $(((10#$days * 24 + 10#${h:-0}) * 3600 + 10#${m:-0} * 60 + 10#${sec:-0}))
}

# Megabytes in a Slurm memory size (44GB, 45056, 500M, 1T); empty for a bad value.
hw5_megabytes() {
    [[ "$1" =~ ^([0-9]+)([KkMmGgTt]?)[Bb]?$ ]] || return 0
    local n="${BASH_REMATCH[1]}"
    case "${BASH_REMATCH[2]}" in
        K | k) echo $((n / 1024)) ;;
        "" | M | m) echo "$n" ;;
        G | g) echo $((n * 1024)) ;;
        T | t) echo $((n * 1024 * 1024)) ;;
    esac
}

# Whether a request fits partition $1: time $2, GPUs $3, CPUs per task $4, memory per GPU $5.
# Slurm queues a request that no node of the partition can ever run, and it waits with no error
# (PartitionTimeLimit, or Resources forever): this says why in one sentence, before it waits.
# Returns 1 (with the sentence on stderr) when it cannot fit, 0 when it can or sinfo is missing.
hw5_check_fit() {
    local partition="$1" time="$2" gpus="${3:-0}" cpus="${4:-1}" mem="${5:-}"
    command -v sinfo >/dev/null 2>&1 || return 0
    local lines
    lines="$(sinfo -h -p "$partition" -o '%l|%c|%m|%G' 2>/dev/null || true)"
    if [[ -z "$lines" ]]; then
        echo "error: there is no partition '$partition' here; 'sinfo -s' lists the partitions (set it with --partition=...)." >&2
        return 1
    fi
    local limit max_cpus=0 max_gpus=0 max_mem=0 fits=0 need_mem=0 l_time c m g count
    [[ -n "$mem" ]] && need_mem=$(($(hw5_megabytes "$mem") * (gpus > 0 ? gpus : 1)))
    while IFS='|' read -r l_time c m g; do
        limit="$l_time"
        c="${c//[^0-9]/}" m="${m//[^0-9]/}"
        count=0
        [[ "$g" =~ gpu(:[A-Za-z0-9_.-]+)?:([0-9]+) ]] && count="${BASH_REMATCH[2]}"
        ((${c:-0} > max_cpus)) && max_cpus="${c:-0}"
        ((count > max_gpus)) && max_gpus="$count"
        ((${m:-0} > max_mem)) && max_mem="${m:-0}"
        ((${c:-0} >= cpus && count >= gpus && ${m:-0} >= need_mem)) && fits=1
    done <<<"$lines"
    local want allowed
    want="$(hw5_seconds "$time")" allowed="$(hw5_seconds "$limit")"
    if [[ -n "$want" && -n "$allowed" ]] && ((want > allowed)); then
        echo "error: the job asks for --time=$time but partition '$partition' allows at most $limit; pass --time=$limit (or less), or another --partition ('sinfo -s' lists them)." >&2
        return 1
    fi
    ((fits)) && return 0
    if ((gpus > max_gpus)); then
        echo "error: the job asks for $gpus GPU(s) but no node of partition '$partition' has more than $max_gpus; pass --gpus=$max_gpus (or fewer), or another --partition." >&2
    elif ((cpus > max_cpus)); then
        echo "error: the job asks for $cpus CPUs per task but no node of partition '$partition' has more than $max_cpus; pass --cpus-per-task=$max_cpus (or fewer)." >&2
    else
        echo "error: the job asks for $mem per GPU ($gpus GPU(s)) but no node of partition '$partition' has more than ${max_mem} MB with enough CPUs and GPUs; pass a smaller --mem-per-gpu." >&2
    fi
    return 1
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

# This job's account, partition, name, resources and time limit as sbatch options, in the array
# HW5_OPTS: what `sbatch --time=01:00:00 --gpus=4 ...` changed on the first job's command line holds
# for the whole chain. (The early signal is not in Slurm's record of a job: SBATCH_SIGNAL, an
# environment variable that sbatch reads and every job of the chain inherits, carries it.)
hw5_job_options() {
    HW5_OPTS=()
    [[ -n "${SLURM_JOB_ACCOUNT:-}" ]] && HW5_OPTS+=(--account="$SLURM_JOB_ACCOUNT")
    [[ -n "${SLURM_JOB_PARTITION:-}" ]] && HW5_OPTS+=(--partition="$SLURM_JOB_PARTITION")
    [[ -n "${SLURM_JOB_NAME:-}" ]] && HW5_OPTS+=(--job-name="$SLURM_JOB_NAME")
    local limit
    limit="$(hw5_job_field TimeLimit)"
    [[ "$limit" =~ ^[0-9] ]] && HW5_OPTS+=(--time="$limit")
    [[ -n "${SLURM_GPUS:-}" ]] && HW5_OPTS+=(--gpus="$SLURM_GPUS")
    [[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && HW5_OPTS+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
    [[ -n "${SLURM_MEM_PER_GPU:-}" ]] && HW5_OPTS+=(--mem-per-gpu="$SLURM_MEM_PER_GPU")
    return 0
}

# The command that continues this job's run, to paste as it is: from the repository root, with
# RESUME=auto, the settings the script reads (PART, ITERS, ...) and this job's sbatch options.
hw5_continue_command() {
    local script="$1" name words
    words="cd $(printf '%q' "$REPO") && RESUME=auto"
    for name in PART ITERS MAX_CHAIN EXTRA_ARGS SBATCH_SIGNAL; do
        [[ -n "${!name:-}" ]] && words+=" $name=$(printf '%q' "${!name}")"
    done
    hw5_job_options
    words+=" sbatch"
    ((${#HW5_OPTS[@]})) && words+=" $(printf '%q ' "${HW5_OPTS[@]}")" && words="${words% }"
    printf '%s slurm/%s\n' "$words" "$script"
}

# Submits the next job of a GAN chain: the same script, to start after this job ends, with this
# job's options (hw5_job_options) and the chain index one higher.
hw5_resubmit() {
    local script="$REPO/slurm/$1" next="$2"
    hw5_job_options
    local -a opts=(--parsable --export="ALL,HW5_CHAIN_INDEX=$next,HW5_REPO=$REPO" "${HW5_OPTS[@]}")
    [[ -n "${SLURM_JOB_ID:-}" ]] && opts+=(--dependency="afterany:$SLURM_JOB_ID")
    local job
    job="$(cd "$REPO" && sbatch "${opts[@]}" "$script")" ||
        hw5_die "could not resubmit $script; continue by hand: $(hw5_continue_command "$1")"
    hw5_log "submitted job ${job%%;*} (chain job $next) to continue after this one; cancel it with: scancel ${job%%;*}"
}

# Whether Slurm is requeueing this job (its restart count went up while it ran): after a node
# failure, preemption or `scontrol requeue`, Slurm starts the same job again by itself.
hw5_being_requeued() {
    local restarts
    restarts="$(hw5_job_field Restarts)"
    [[ "$restarts" =~ ^[0-9]+$ ]] && ((restarts > ${SLURM_RESTART_COUNT:-0}))
}

# The checkpoint a requeued first job of a chain continues from: the newest one under $1 written
# since the job first started (the time its log's first "new run" line records), if any.
hw5_requeue_checkpoint() {
    local outdir="$1" log since
    log="$(readlink -f "/proc/$$/fd/1" 2>/dev/null || true)"
    [[ -f "$log" ]] || return 0
    since="$(sed -n 's/.*chain job 1, a new run, started at epoch \([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)"
    [[ -n "$since" ]] || return 0
    find "$outdir" -name 'checkpoint-*.pt' -newermt "@$since" -printf '%T@ %p\n' 2>/dev/null |
        sort -n | tail -n 1 | cut -d ' ' -f 2-
}

# Runs a GAN training command ("$@") as one job of a chain of jobs that make one training run.
# The first job starts a new run (as the handout's command does; RESUME=auto continues the newest
# run of the same setting instead); every job it submits gets `--resume auto`, which continues
# that run from its newest checkpoint (--iters counts from the run's start). A first job that
# Slurm requeued continues the checkpoint it wrote before (a new run if it wrote none).
#   train.py exits 0: the requested iterations are done; the chain ends.
#   train.py exits 3: it was stopped by a signal and wrote a checkpoint. After the early SIGUSR1
#     (#SBATCH --signal) the job resubmits itself (at most MAX_CHAIN jobs in all); after SIGTERM
#     (scancel, the time limit, or a requeue) it does not, so `scancel` ends a chain.
#   anything else: an error; the job fails and nothing is resubmitted.
# Sets HW5_GAN_DONE=1 when the run is complete (status 0), 0 otherwise.
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
        new)
            if ((${SLURM_RESTART_COUNT:-0} > 0)); then
                local previous
                previous="$(hw5_requeue_checkpoint "$outdir")"
                if [[ -n "$previous" ]]; then
                    hw5_log "requeued by Slurm (restart ${SLURM_RESTART_COUNT}): continuing $previous"
                    set -- "$@" --resume "$previous"
                else
                    hw5_log "requeued by Slurm (restart ${SLURM_RESTART_COUNT}) before a checkpoint was written: starting the run anew"
                fi
            else
                hw5_log "chain job 1, a new run, started at epoch $(date +%s)"
            fi
            ;;
        *) hw5_die "RESUME must be 'auto' (continue the newest run) or 'new', not '$resume'." ;;
    esac
    hw5_log "chain job $index of at most $max (MAX_CHAIN): $*"
    HW5_GAN_DONE=0
    local status=0
    hw5_run_forwarding_signals "$@" || status=$?
    case "$status" in
        0)
            hw5_log "training finished (exit status 0): the requested iterations are done; chain ends."
            HW5_GAN_DONE=1
            return 0
            ;;
        3)
            if [[ "$HW5_STOP_SIGNAL" == TERM ]]; then
                if hw5_being_requeued; then
                    hw5_log "stopped by SIGTERM with a checkpoint written: Slurm is requeueing this job, which continues the run when it starts again."
                else
                    hw5_log "stopped by SIGTERM (scancel or the time limit) with a checkpoint written; not resubmitting. Continue with: $(hw5_continue_command "$script")"
                fi
                return 3
            fi
            if ((index >= max)); then
                hw5_log "stopped with a checkpoint written, but this is chain job $index of MAX_CHAIN=$max: not resubmitting. Continue with: $(hw5_continue_command "$script")"
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

hw5_open_log
