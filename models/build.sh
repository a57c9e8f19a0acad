#!/usr/bin/env bash
# Builds every example model in models/repository/ and the reference samples in models/samples/
# from scikit-learn's bundled (offline) datasets. Deterministic: running it again gives the same bytes.
# Usage: models/build.sh            (from anywhere; PYTHON=python3.11 models/build.sh to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --disable-pip-version-check --quiet -r requirements.txt
# One thread everywhere: BLAS/OpenMP reductions over several threads may sum in a different order,
# which would change trained weights in the last bits and so the committed bytes.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
exec .venv/bin/python build.py "$@"
