#!/bin/bash
# Sets the course's cluster settings in one step: the defaults in common.sh and the #SBATCH header
# of every job script (Slurm reads headers before any shell runs, so they cannot read variables).
#   bash slurm/configure.sh --account=cs231_fall --partition=gpu --cpu-partition=cpu \
#        --time=04:00:00 --cpus-per-gpu=8 --mem-per-gpu=32GB --modules="anaconda3/2024.02"
# Only the settings given change; the others stay. The GPU jobs get --partition, --time,
# --mem-per-gpu and --cpus-per-task = cpus-per-gpu x their GPUs; grade_class.sbatch (CPU only)
# gets --cpu-partition; every script gets --account. --modules is the `module load` list that
# gives the jobs conda ('' for none). Prints what changed; run it again to change more. Students
# then clone the configured repository: commit the result.
set -euo pipefail
SLURM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMMON="$SLURM_DIR/common.sh"

die() {
    echo "error: $*" >&2
    exit 1
}

declare -A new=()
for arg in "$@"; do
    case "$arg" in
        --account=* | --partition=* | --cpu-partition=* | --time=* | --cpus-per-gpu=* | --mem-per-gpu=* | --modules=*)
            key="${arg%%=*}" key="${key#--}" new[$key]="${arg#*=}"
            ;;
        -h | --help)
            sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown option '$arg'; the options are --account, --partition, --cpu-partition, --time, --cpus-per-gpu, --mem-per-gpu and --modules, each as --name=value." ;;
    esac
done
((${#new[@]})) || die "nothing to set; see bash slurm/configure.sh --help."

# Values become sed replacements and shell strings: refuse what would break either.
for key in "${!new[@]}"; do
    value="${new[$key]}"
    case "$key" in
        modules) [[ "$value" =~ ^[A-Za-z0-9_./+\ -]*$ ]] || die "--modules='$value' holds characters a module name does not have." ;;
        time) [[ "$value" =~ ^([0-9]+-)?[0-9]+(:[0-9]{2}){0,2}$ ]] || die "--time='$value' is not a Slurm time such as 02:00:00 or 1-00:00:00." ;;
        cpus-per-gpu) [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "--cpus-per-gpu='$value' is not a whole number." ;;
        mem-per-gpu) [[ "$value" =~ ^[0-9]+[KMGT]?B?$ ]] || die "--mem-per-gpu='$value' is not a Slurm size such as 44GB." ;;
        *) [[ "$value" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--$key='$value' is not a Slurm name (letters, digits, _ . -)." ;;
    esac
done

# Every file is written to a temporary copy and renamed into place, after all are prepared.
declare -A staged=()
cleanup() { for tmp in "${staged[@]}"; do rm -f "$tmp"; done; }
trap cleanup EXIT
stage() { # file, sed program
    local file="$1" tmp="${staged[$1]:-}"
    if [[ -z "$tmp" ]]; then
        tmp="$(mktemp "$(dirname "$file")/.configure.XXXXXX")"
        cp -p "$file" "$tmp"
        staged[$file]="$tmp"
    fi
    sed -i "$2" "$tmp"
}

set_default() { # common.sh variable, its HW5_ name, value
    grep -q "^$1=\"\${$2:-" "$COMMON" || grep -q "^$1=\"\${$2-" "$COMMON" ||
        die "common.sh has no line $1=\"\${$2:-...}\"; it was edited by hand: set it there."
    stage "$COMMON" "s|^$1=\"\${$2\(:\{0,1\}\)-[^}]*}\"|$1=\"\${$2\1-$3}\"|"
}
[[ -n "${new[account]:-}" ]] && set_default ACCOUNT HW5_ACCOUNT "${new[account]}"
[[ -n "${new[partition]:-}" ]] && set_default PARTITION HW5_PARTITION "${new[partition]}"
[[ -n "${new[cpu-partition]:-}" ]] && set_default CPU_PARTITION HW5_CPU_PARTITION "${new[cpu-partition]}"
[[ -n "${new[time]:-}" ]] && set_default TIME HW5_TIME "${new[time]}"
[[ -n "${new[cpus-per-gpu]:-}" ]] && set_default CPUS HW5_CPUS "${new[cpus-per-gpu]}"
[[ -n "${new[mem-per-gpu]:-}" ]] && set_default MEM_PER_GPU HW5_MEM_PER_GPU "${new[mem-per-gpu]}"
[[ -v new[modules] ]] && set_default MODULES HW5_MODULES "${new[modules]}"

for script in "$SLURM_DIR"/*.sbatch; do
    [[ -n "${new[account]:-}" ]] && stage "$script" "s|^#SBATCH --account=.*|#SBATCH --account=${new[account]}|"
    if [[ "$(basename "$script")" == grade_class.sbatch ]]; then
        [[ -n "${new[cpu-partition]:-}" ]] && stage "$script" "s|^#SBATCH --partition=.*|#SBATCH --partition=${new[cpu-partition]}|"
        continue
    fi
    [[ -n "${new[partition]:-}" ]] && stage "$script" "s|^#SBATCH --partition=.*|#SBATCH --partition=${new[partition]}|"
    [[ -n "${new[time]:-}" ]] && stage "$script" "s|^#SBATCH --time=.*|#SBATCH --time=${new[time]}|"
    [[ -n "${new[mem-per-gpu]:-}" ]] && stage "$script" "s|^#SBATCH --mem-per-gpu=.*|#SBATCH --mem-per-gpu=${new[mem-per-gpu]}|"
    if [[ -n "${new[cpus-per-gpu]:-}" ]]; then
        gpus="$(sed -n 's/^#SBATCH --gpus=\([0-9]*\)$/\1/p' "$script")"
        [[ -n "$gpus" ]] && stage "$script" "s|^#SBATCH --cpus-per-task=.*|#SBATCH --cpus-per-task=$((new[cpus-per-gpu] * gpus))|"
    fi
done

changed=0
for file in "${!staged[@]}"; do
    if cmp -s "$file" "${staged[$file]}"; then
        rm -f "${staged[$file]}"
    else
        echo "slurm/$(basename "$file"):"
        diff -u --label "a/slurm/$(basename "$file")" --label "b/slurm/$(basename "$file")" "$file" "${staged[$file]}" | grep '^[-+][^-+]' || true
        mv "${staged[$file]}" "$file"
        changed=$((changed + 1))
    fi
    unset "staged[$file]"
done
echo "configure.sh: $changed file(s) of slurm/ changed."
