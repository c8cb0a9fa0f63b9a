#!/usr/bin/env bash
# The GPU device check (issue 10): on a lent GPU machine WITHOUT internet, install what it lacks from wheelhouse/
# (made beforehand by bench/fetch_wheels.sh), then run the CUDA tests and the GPU benchmark, all in under
# 6 minutes. Everything printed goes to $OUT/device_check.log too; results land in $OUT.
#
#   OUT=/some/dir bash bench/device_check.sh          # on the GPU machine (from any folder)
#   DEVICE_CHECK_DRY=1 bash bench/device_check.sh     # anywhere: the offline install only, then stop
#
# Environment: OUT (results folder; default /tmp/seal-device-check), PYTHON (default python3), DEVICE_CHECK_BUDGET
# (seconds for the whole script, default 345), DEVICE_CHECK_VENV (default /tmp/seal-device-venv),
# SEAL_TRITON_AUTOTUNE_CONFIGS (spconv-triton autotune candidates kept per kernel, default 1: see bench_gpu.py),
# DEVICE_CHECK_WHEELHOUSE (default ./wheelhouse), DEVICE_CHECK_BENCH_ARGS (extra bench_gpu.py arguments, e.g.
# "--device cpu --quick" for a rehearsal on a machine without a GPU), DEVICE_CHECK_INSTALL_MODE (auto | venv |
# target | unzip: force a fallback, to test it), DEVICE_CHECK_DRY_SIMULATE (dry run only: packages installed from the index into the venv first, standing in
# for what the GPU machine has preinstalled; default "numpy pyyaml sympy"), DEVICE_CHECK_SUPERPIXELS_S (seconds for
# the SAM / SAM 2 superpixel-cost rows; default 0 = not run).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-/tmp/seal-device-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/device_check.log

PY=${PYTHON:-python3}
BUDGET=${DEVICE_CHECK_BUDGET:-345}
VENV=${DEVICE_CHECK_VENV:-/tmp/seal-device-venv}
DRY=${DEVICE_CHECK_DRY:-0}
WHEELHOUSE=${DEVICE_CHECK_WHEELHOUSE:-$REPO/wheelhouse}
BENCH_ARGS=${DEVICE_CHECK_BENCH_ARGS:-}
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/seal-triton-cache}
export SEAL_TRITON_AUTOTUNE_CONFIGS=${SEAL_TRITON_AUTOTUNE_CONFIGS:-1}
export MPLBACKEND=Agg
# seal from the working tree even when the editable install below fails
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

STATUS=()   # "name rc seconds" of every step
ENV_FILE=$VENV.env   # what the install step found: VPY (the python to use) and PYTHONPATH

left() { echo $((BUDGET - SECONDS)); }

# step NAME LIMIT CMD...: run CMD under `timeout LIMIT` (capped by what is left of the budget); never aborts
step() {
  local name=$1 limit=$2 rc=0 start=$SECONDS rest
  shift 2
  rest=$(left)
  if [ "$limit" -gt "$rest" ]; then limit=$rest; fi
  if [ "$limit" -lt 5 ]; then
    echo "### $name: skipped, the ${BUDGET} s budget is spent"
    STATUS+=("$name skipped 0")
    return 0
  fi
  echo
  echo "### $name (limit ${limit} s, t=${SECONDS} s)"
  timeout --kill-after=5 "$limit" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "### $name: TIMED OUT after ${limit} s"; fi
  echo "### $name: exit $rc in $((SECONDS - start)) s"
  STATUS+=("$name $rc $((SECONDS - start))")
  return 0
}

see_python_packages() {
  # --system-site-packages shows the base interpreter's packages; when $PY is itself a venv (or conda env) its
  # torch lives elsewhere: a .pth file puts every site folder of $PY on the new venv's path, after its own
  local purelib
  purelib=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
    > "$purelib/zz_device_python.pth"
  echo "venv sees the site folders of $PY: $(tr '\n' ' ' < "$purelib/zz_device_python.pth")"
}

install_wheels() {
  # 1. a venv that sees the system's torch/triton/numpy (--system-site-packages), with the system's pip when the
  #    venv has none of its own; 2. else pip --target into a folder put on PYTHONPATH; 3. else unzip the wheels.
  if ! ls "$WHEELHOUSE"/*.whl > /dev/null 2>&1; then
    echo "error: $WHEELHOUSE has no wheels: run bash bench/fetch_wheels.sh on a machine with internet first"
    return 1
  fi
  echo "wheelhouse: $(ls -1 "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
  local vpy="" mode=${DEVICE_CHECK_INSTALL_MODE:-auto}
  rm -rf "$VENV"
  if [ "$mode" != "auto" ] && [ "$mode" != "venv" ]; then
    echo "install mode forced: $mode"
  elif "$PY" -m venv --system-site-packages --without-pip "$VENV" && see_python_packages \
       && "$VENV/bin/python" -m pip --version; then
    vpy=$VENV/bin/python
  elif rm -rf "$VENV" && "$PY" -m venv --system-site-packages "$VENV" && see_python_packages \
       && "$VENV/bin/python" -m pip --version; then
    vpy=$VENV/bin/python
  fi
  if [ -n "$vpy" ]; then
    echo "install mode: venv $VENV (system site-packages visible)"
    if [ "$DRY" = "1" ]; then
      echo "dry run: stand-ins for the GPU machine's preinstalled packages, from the index:" \
           "${DEVICE_CHECK_DRY_SIMULATE:-numpy pyyaml sympy}"
      # shellcheck disable=SC2086
      "$vpy" -m pip install -q ${DEVICE_CHECK_DRY_SIMULATE:-numpy pyyaml sympy}
    fi
    # offline from here on (--no-index): dependencies resolved against the system's packages and the wheelhouse;
    # spconv-triton and segment-anything need only torch and numpy, which the GPU machine has: --no-deps, so pip
    # never tries to resolve torch itself
    "$vpy" -m pip install --no-index --find-links "$WHEELHOUSE" omegaconf spconv==2.3.8 pytest
    "$vpy" -m pip install --no-index --find-links "$WHEELHOUSE" --no-deps spconv-triton segment-anything
    # SAM 2 for the superpixel-cost rows: PyPI has sdists only, so the wheels are built beforehand on a machine with
    # internet (SAM2_BUILD_CUDA=0 pip wheel --no-deps --no-build-isolation -w wheelhouse sam2==1.1.0 iopath==0.1.10
    # antlr4-python3-runtime==4.9.3 hydra-core==1.3.8); without them those rows say so and nothing else changes
    "$vpy" -m pip install --no-index --find-links "$WHEELHOUSE" --no-deps sam2 hydra-core antlr4-python3-runtime \
      iopath || echo "sam2: not in $WHEELHOUSE; the SAM 2 superpixel rows will be skipped"
    if "$vpy" -m pip install --no-index --find-links "$WHEELHOUSE" --no-deps -e "$REPO"; then
      echo "seal: editable install"
    else
      echo "seal: editable install failed; using PYTHONPATH=$REPO"
    fi
    "$vpy" -m pip freeze > "$OUT/pip_freeze.txt" 2>/dev/null || true
    printf 'VPY=%q\nPYTHONPATH=%q\n' "$vpy" "$PYTHONPATH" > "$ENV_FILE"
    return 0
  fi
  local site=$VENV-site
  rm -rf "$site"
  mkdir -p "$site"
  if [ "$mode" != "unzip" ] && "$PY" -m pip --version; then
    echo "install mode: pip --target $site (no venv available)"
    "$PY" -m pip install --no-index --no-deps --target "$site" "$WHEELHOUSE"/*.whl
  else
    echo "install mode: unzipping the wheels into $site (no pip available)"
    "$PY" - "$site" "$WHEELHOUSE"/*.whl <<'PYEOF'
import sys
import zipfile

for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
PYEOF
  fi
  printf 'VPY=%q\nPYTHONPATH=%q\n' "$PY" "$site:$PYTHONPATH" > "$ENV_FILE"
}

check_imports() {
  if [ "$DRY" = "1" ]; then
    # no torch on a dry-run machine: say what imports without it
    "$VPY" - <<'PYEOF'
import importlib
from importlib import metadata

for module, dist in (("omegaconf", "omegaconf"), ("pytest", "pytest"), ("cumm", "cumm"), ("pccm", "pccm"),
                     ("spconv", "spconv"), ("spconv_triton", "spconv-triton"), ("segment_anything", "segment-anything"),
                     ("seal", "seal")):
    try:
        importlib.import_module(module)
        state = "imports"
    except ImportError as err:  # torch-dependent packages cannot import where there is no torch
        state = f"installed; importing it needs what this machine lacks ({err})"
    print(f"  {dist} {metadata.version(dist)}: {state}")
PYEOF
    return
  fi
  "$VPY" - <<'PYEOF'
from importlib import metadata

import torch

print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), cuda available: {torch.cuda.is_available()}")
for dist in ("triton", "timm", "torchvision", "omegaconf", "spconv", "cumm", "spconv-triton", "segment-anything",
             "pytest", "seal"):
    try:
        print(f"  {dist} {metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        print(f"  {dist}: not installed")
import omegaconf  # noqa: E402,F401
import segment_anything  # noqa: E402,F401
import spconv.pytorch  # noqa: E402,F401
import spconv_triton.pytorch  # noqa: E402,F401

import seal  # noqa: E402,F401

print("imports ok: omegaconf, segment_anything, spconv.pytorch (CPU build), spconv_triton.pytorch, seal")
PYEOF
}

# the steps run in child processes (so `timeout` can bound them): `bash device_check.sh --step NAME`
if [ "${1:-}" = "--step" ]; then
  if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    export PYTHONPATH
  fi
  VPY=${VPY:-$PY}
  case "$2" in
    install) install_wheels ;;
    imports) check_imports ;;
    *) echo "unknown step $2" >&2; exit 2 ;;
  esac
  exit $?
fi

summary() {
  echo
  echo "### summary (${SECONDS} s of the ${BUDGET} s budget)"
  local entry
  : > "$OUT/device_check_status.txt"
  for entry in "${STATUS[@]}"; do
    # shellcheck disable=SC2086
    set -- $entry
    printf '  %-12s exit %-8s %4s s\n' "$1" "$2" "$3"
    echo "$1 $2 $3" >> "$OUT/device_check_status.txt"
  done
  ls -la "$OUT"
}

main() {
  echo "seal device check: $(date -u +%Y-%m-%dT%H:%M:%SZ), repo $REPO" \
       "($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git')), out $OUT, budget ${BUDGET} s, dry=$DRY"
  echo "python: $("$PY" --version 2>&1) at $(command -v "$PY")"
  rm -f "$ENV_FILE"
  step install 120 bash "$0" --step install
  step imports 60 bash "$0" --step imports
  if [ "$DRY" = "1" ]; then
    echo
    echo "dry run: stopping before the GPU parts (nvidia-smi, seal doctor, tests, bench)"
    summary
    return 0
  fi
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  export PYTHONPATH
  step nvidia-smi 20 nvidia-smi
  step doctor 60 "$VPY" -m seal doctor
  # the CUDA tests and the (CPU-side) engine-selection tests in one process
  step tests 160 "$VPY" -m pytest -v -s -rs --durations=0 -p no:cacheprovider -m "cuda or not slow" \
    --junitxml "$OUT/pytest.xml" tests/test_cuda.py tests/test_sparse_engines.py
  # SAM vs SAM 2 superpixel costs per image (issue 17), only when asked: DEVICE_CHECK_SUPERPIXELS_S seconds of their
  # own (e.g. 240, with DEVICE_CHECK_BUDGET raised by as much); table in $OUT/superpixels/superpixel_costs.md
  if [ "${DEVICE_CHECK_SUPERPIXELS_S:-0}" -gt 0 ]; then
    step superpixels "$DEVICE_CHECK_SUPERPIXELS_S" "$VPY" bench/bench_gpu.py --out "$OUT/superpixels" \
      --parts superpixels --budget $((DEVICE_CHECK_SUPERPIXELS_S - 10))
  fi
  # the benchmark gets what is left, minus a margin; it writes its results after every part
  local rest budget
  rest=$(( $(left) - 10 ))
  budget=$(( rest > 30 ? rest - 15 : 15 ))
  # shellcheck disable=SC2086
  step bench "$rest" "$VPY" bench/bench_gpu.py --out "$OUT" --budget "$budget" \
    --autotune-configs "$SEAL_TRITON_AUTOTUNE_CONFIGS" $BENCH_ARGS
  summary
}

: > "$LOG"
main 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
# the verdict: install, imports, tests and bench must all have exited 0 (nvidia-smi and doctor are informative)
if [ "$rc" -eq 0 ] && [ -f "$OUT/device_check_status.txt" ]; then
  rc=$(awk '$1 ~ /^(install|imports|tests|bench)$/ && $2 != "0" { bad = 1 } END { print bad ? 1 : 0 }' \
       "$OUT/device_check_status.txt")
fi
exit "$rc"
