#!/usr/bin/env bash
# Download, on a machine WITH internet, every wheel the offline GPU check (bench/device_check.sh) needs into
# wheelhouse/ (git-ignored; it travels with the working tree). The GPU machine has python 3.12, torch (CUDA),
# triton, timm, torchvision, numpy, scipy, scikit-image/-learn, matplotlib, rich, tqdm, tensorboard and pyyaml,
# but not these:
#   omegaconf                       seal's configs (2.4 needs only PyYAML; 2.3 also needed antlr4-python3-runtime)
#   spconv 2.3.8 + cumm 0.7.x       CPU builds: the reference side of the CPU-vs-GPU parity test
#   pccm ccimport pybind11 fire termcolor lark portalocker ninja requests(+urllib3 idna certifi charset-normalizer)
#                                   spconv/cumm's install requirements
#   spconv-triton                   the GPU sparse engine (pure Python + Triton)
#   segment-anything                SAM superpixels (benchmark)
#   pytest iniconfig pluggy packaging pygments   in case the GPU machine has no pytest
#   setuptools wheel                so `pip install -e .` can build seal offline (isolated build)
#
#   bash bench/fetch_wheels.sh                 # cp312 manylinux wheels into wheelhouse/
#   PY_VERSION=3.11 WHEELHOUSE=/tmp/wh311 bash bench/fetch_wheels.sh   # the same set for another Python
#
# Idempotent: wheels already present are kept (pip skips them), nothing else is touched. Total must stay under
# 64 MiB (the limit of what travels to the device machine); the script prints it and fails above it.
set -euo pipefail
cd "$(dirname "$0")/.."

PY_VERSION=${PY_VERSION:-3.12}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
LIMIT_MIB=64
PYTHON=${PYTHON:-python3}

# name==version: the versions this repository is tested with on the CPU side (spconv needs cumm<0.8).
PACKAGES=(
  omegaconf==2.4.0
  spconv==2.3.8 cumm==0.7.11 pccm==0.4.16 ccimport==0.4.4
  pybind11 fire termcolor lark portalocker ninja
  requests urllib3 idna certifi charset-normalizer
  spconv-triton==1.0.0
  segment-anything==1.0
  pytest iniconfig pluggy packaging pygments
  setuptools wheel
)

mkdir -p "$WHEELHOUSE"
# --no-deps: the list above is the closure (what the GPU machine lacks); binary wheels for CPython $PY_VERSION
# on manylinux x86_64 only (pure-Python packages come as py3-none-any).
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PY_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  -d "$WHEELHOUSE" "${PACKAGES[@]}"

echo "wheelhouse: $WHEELHOUSE (CPython $PY_VERSION, manylinux x86_64)"
ls -1 "$WHEELHOUSE" | sed 's/^/  /'
bytes=$(du -cb "$WHEELHOUSE"/*.whl | tail -n 1 | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
count=$(ls -1 "$WHEELHOUSE"/*.whl | wc -l)
echo "total: $count wheels, $mib MiB ($bytes bytes; limit $LIMIT_MIB MiB)"
if [ "$bytes" -ge $((LIMIT_MIB * 1048576)) ]; then
  echo "error: the wheelhouse is over $LIMIT_MIB MiB" >&2
  exit 1
fi
