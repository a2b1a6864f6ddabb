#!/usr/bin/env bash
# The GPU half of issue 18 in one call on a CUDA machine; every result lands in $OUT:
#   summary.txt     the device line, versions, and each step's exit status and seconds
#   pytest_gpu.log  pytest -m gpu ([cuda] and [strict] variants)
#   app.log, screenshot.png   the app with --device gpu --screenshot after 200 iterations
#   gpu_check.log   CPU <-> GPU switch mid-run (1e-5 relative) and a solver-process run on the GPU
#   gpu_step.log, gpu_step.json   benchmarks/gpu_step.py (engine vs bare cupy GEMMs vs PyTorch CUDA)
# From the device tool, after `bash benchmarks/gpu_carry.sh` here (the Python packages the machine
# lacks: PySide6 cut down, pyqtgraph, pytest-qt, protobuf; see docs/gpu.md):
#   run(command="bash benchmarks/gpu_check.sh", carry=["build/gpu_carry"], timeout_s=560)
# Each step has its own time limit, and a failing step does not stop the others.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

if [ -f build/gpu_carry/site.tar.xz ]; then  # made by benchmarks/gpu_carry.sh
  mkdir -p /tmp/gpu_carry && tar -C /tmp/gpu_carry -xJf build/gpu_carry/site.tar.xz \
    && export PYTHONPATH=/tmp/gpu_carry/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvidia-smi | grep -o "CUDA Version: [0-9.]*"
  "$PY" -c "import sys, numpy, google.protobuf as p; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'protobuf', p.__version__)"
  "$PY" -c "import cupy; print('cupy', cupy.__version__)"
  "$PY" -c "import engine; print('engine.gpu_status:', engine.gpu_status())"
  "$PY" -c "import PySide6, pyqtgraph; print('PySide6', PySide6.__version__, 'pyqtgraph', pyqtgraph.__version__)"
} >>"$SUMMARY" 2>&1

step() {  # step NAME SECONDS COMMAND...: run it with a limit, log to $OUT/NAME.log, note the exit status
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc in $(( $(date +%s) - start )) s" >>"$SUMMARY"
}

if "$PY" -c "import PySide6.QtWidgets, pyqtgraph, pytestqt" 2>/dev/null; then
  step pytest_gpu 150 "$PY" -m pytest -q -p no:cacheprovider --continue-on-collection-errors -m gpu -rs tests
  step app 90 "$PY" main.py --device gpu --screenshot "$OUT/screenshot.png" --steps 200 --size 1600x1000
else
  echo "PySide6 / pyqtgraph / pytest-qt missing: GUI tests and the screenshot skipped" >>"$SUMMARY"
  step pytest_gpu 150 "$PY" -m pytest -q -p no:cacheprovider --continue-on-collection-errors -m gpu -rs tests/engine tests/strict
fi
step gpu_check 90 "$PY" -m benchmarks.gpu_check
step gpu_step 200 "$PY" -m benchmarks.gpu_step --json "$OUT/gpu_step.json"
cat "$SUMMARY"
