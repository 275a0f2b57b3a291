#!/bin/bash
# An interactive shell on a GPU node: the handout's line
#   salloc --cpus-per-task=6 --gpus=1 --mem-per-gpu=44GB --partition=spgpu --time=0-02:00:00 \
#          --account=eecs498s014f24_class
# with the values from common.sh (HW5_ACCOUNT, HW5_PARTITION, ... override them). Extra arguments
# go to salloc, e.g. `bash slurm/salloc.sh --time=0-00:30:00`. Then, in the shell it opens:
#   module load python3.9-anaconda && conda activate HW5 && cd GAN_homework && python train.py ...
# Leave the shell (exit) as soon as you are done: the GPU is released only then.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A request no node of the partition can run would wait forever: say why first (extra arguments
# are salloc's to check).
(($#)) || hw5_check_fit "$PARTITION" "$TIME" "$GPUS" "$CPUS" "$MEM_PER_GPU" || exit 1
# salloc opens its shell on the GPU node only where the cluster sets
# LaunchParameters=use_interactive_step; elsewhere the shell would stay on the login node, without
# the GPU, so the shell is started on the node with srun. (Give salloc's options as --name=value:
# a word without a leading '-' is taken as your own command, which runs as salloc runs it.)
shell=(srun --pty --preserve-env "${SHELL:-/bin/bash}" -l)
for arg in "$@"; do
    [[ "$arg" == -* ]] || shell=()
done
config="$(scontrol show config 2>/dev/null || true)"
if [[ -z "$config" || "$config" =~ LaunchParameters[[:space:]]*=[^$'\n']*use_interactive_step ]]; then
    shell=()
fi
exec salloc --cpus-per-task="$CPUS" --gpus="$GPUS" --mem-per-gpu="$MEM_PER_GPU" \
    --partition="$PARTITION" --time="0-$TIME" --account="$ACCOUNT" "$@" "${shell[@]}"
