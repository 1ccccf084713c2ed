#!/usr/bin/env bash
# Make the aarch64 Python folder the ARM lane's float twin runs under qemu (runtimes/arm_lane/float_twin.py):
#   DIR/usr/bin/python3.11 (+ its libraries)  Debian 12's arm64 packages, unpacked with dpkg -x (not installed)
#   DIR/site/                                 the aarch64 wheels of numpy and tflite-runtime, unpacked
# DIR defaults to ${BURN_EDGE_CACHE:-~/.cache/burn-edge}/aarch64-python, where the lane looks when neither
# --aarch64-python nor $BURN_EDGE_AARCH64_PYTHON names one. Downloads about 25 MB (plus the arm64 package
# lists); about 10 s here. Needs root once for `dpkg --add-architecture arm64 && apt-get update` (only the
# package lists change; nothing arm64 is installed). If that update fails, arm64 is removed again.
# The folder is made under a temporary name and renamed when complete; a complete folder is left as it is.
# Usage: runtimes/arm_lane/aarch64_python.sh [DIR]
set -euo pipefail
dir=${1:-${BURN_EDGE_CACHE:-$HOME/.cache/burn-edge}/aarch64-python}
if [ -x "$dir/usr/bin/python3.11" ] && [ -f "$dir/site/tflite_runtime/interpreter.py" ] \
    && [ -f "$dir/site/numpy/__init__.py" ]; then
  echo "aarch64 Python already there: $dir"
  exit 0
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  if ! apt-get update -qq; then
    dpkg --remove-architecture arm64
    echo "error: apt-get update failed after dpkg --add-architecture arm64 (arm64 removed again)" >&2
    exit 1
  fi
elif ! apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; then
  apt-get update -qq
fi
mkdir -p "$(dirname "$dir")"
stage=$(mktemp -d "$dir.partial.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/debs" "$stage/site" "$stage/wheels"
(cd "$stage/debs" && apt-get download -q python3.11-minimal:arm64 libpython3.11-minimal:arm64 \
  libpython3.11-stdlib:arm64 libc6:arm64 zlib1g:arm64 libexpat1:arm64 libffi8:arm64 libbz2-1.0:arm64 \
  liblzma5:arm64 libgcc-s1:arm64 libstdc++6:arm64)
for d in "$stage"/debs/*.deb; do dpkg -x "$d" "$stage"; done
python -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 -d "$stage/wheels" \
  --platform manylinux_2_34_aarch64 --platform manylinux2014_aarch64 "tflite-runtime==2.14.0" "numpy==1.26.4"
for w in "$stage"/wheels/*.whl; do python -m zipfile -e "$w" "$stage/site"; done
rm -rf "$stage/debs" "$stage/wheels" "$dir"
mv "$stage" "$dir"
echo "aarch64 Python ready: $dir (the lane finds it there; elsewhere: export BURN_EDGE_AARCH64_PYTHON=DIR)"
