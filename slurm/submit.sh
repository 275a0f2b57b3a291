#!/bin/bash
# Submits a job script of slurm/ from any folder, after checking that the partition can run it.
#   bash slurm/submit.sh gan_part1                               # = sbatch slurm/gan_part1.sbatch
#   bash slurm/submit.sh ddpm --partition=gpu --time=00:30:00    # options go to sbatch
#   ITERS=6000 bash slurm/submit.sh gan_part2                    # settings as with sbatch
# Slurm queues a request that no node of the partition can ever run (a time limit longer than
# the partition's, more CPUs, GPUs or memory than its nodes have) and the job waits with no error.
# This reads the request (the script's #SBATCH header, then the options given here) and compares
# it with the partition (sinfo) and with `sbatch --test-only`; a request that cannot run is
# explained in one sentence and nothing is queued. --signal=... is passed on as SBATCH_SIGNAL, so
# that every job of a GAN chain keeps it.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

(($#)) || hw5_die "usage: bash slurm/submit.sh <script> [sbatch options], e.g. bash slurm/submit.sh gan_part1"
name="$(basename "$1" .sbatch)"
shift
script="$REPO/slurm/$name.sbatch"
[[ -f "$script" ]] || hw5_die "there is no slurm/$name.sbatch; the job scripts are: $(cd "$REPO/slurm" && ls ./*.sbatch | sed 's|^\./||; s|\.sbatch$||' | tr '\n' ' ')"
command -v sbatch >/dev/null 2>&1 || hw5_die "sbatch is missing: submit from the cluster's login node."

# The request: the header's values, then the options given here (sbatch's own precedence).
declare -A want=()
while read -r key value; do
    want[$key]="$value"
done < <(sed -n '2,/^[^#]/p' "$script" | sed -n 's/^#SBATCH[[:space:]]*--\([a-z-]*\)[=[:space:]]*\(.*\)$/\1 \2/p')
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    arg="${args[i]}" key="" value=""
    case "$arg" in
        --*=*) key="${arg%%=*}" key="${key#--}" value="${arg#*=}" ;;
        -p | -t | -G | -c | -A | --partition | --time | --gpus | --cpus-per-task | --mem-per-gpu | --account | --signal)
            key="$arg" value="${args[i + 1]:-}"
            ((i += 1))
            ;;
    esac
    case "$key" in
        -p) key=partition ;; -t) key=time ;; -G) key=gpus ;; -c) key=cpus-per-task ;; -A) key=account ;;
        --*) key="${key#--}" ;;
    esac
    [[ -n "$key" ]] && want[$key]="$value"
done
if [[ -n "${want[signal]:-}" ]]; then
    export SBATCH_SIGNAL="${want[signal]}"
fi

hw5_check_fit "${want[partition]:-$PARTITION}" "${want[time]:-$TIME}" "${want[gpus]:-0}" \
    "${want[cpus-per-task]:-1}" "${want[mem-per-gpu]:-}" || exit 1
if ! test_only="$(cd "$REPO" && sbatch --test-only "$@" "slurm/$name.sbatch" 2>&1)"; then
    hw5_die "Slurm would not accept this job: $(printf '%s\n' "$test_only" | grep -m 1 -i error || printf '%s\n' "$test_only" | head -n 1)"
fi

job="$(cd "$REPO" && sbatch --parsable "$@" "slurm/$name.sbatch")"
job="${job%%;*}"
echo "Submitted batch job $job ($name); log: $LOG_DIR/$name-$job.out"
