#!/usr/bin/env bash
# Make the aarch64 Python folder the ARM lane's float twin runs under qemu (runtimes/arm_lane/float_twin.py):
#   DIR/usr/bin/python3.11 (+ its libraries)  Debian 12's arm64 packages, unpacked with dpkg -x (not installed)
#   DIR/site/                                 the aarch64 wheels of numpy and tflite-runtime, unpacked
# Needs root once for `dpkg --add-architecture arm64 && apt-get update` (only package lists change).
# Usage: runtimes/arm_lane/aarch64_python.sh DIR
set -euo pipefail
dir=${1:?usage: aarch64_python.sh DIR}
mkdir -p "$dir/debs" "$dir/site" "$dir/wheels"
dir=$(cd "$dir" && pwd)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64 && apt-get update -qq
fi
(cd "$dir/debs" && apt-get download -q python3.11-minimal:arm64 libpython3.11-minimal:arm64 \
  libpython3.11-stdlib:arm64 libc6:arm64 zlib1g:arm64 libexpat1:arm64 libffi8:arm64 libbz2-1.0:arm64 \
  liblzma5:arm64 libgcc-s1:arm64 libstdc++6:arm64)
for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir"; done
python -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 -d "$dir/wheels" \
  --platform manylinux_2_34_aarch64 --platform manylinux2014_aarch64 "tflite-runtime==2.14.0" "numpy==1.26.4"
for w in "$dir"/wheels/*.whl; do python -m zipfile -e "$w" "$dir/site"; done
echo "aarch64 Python ready: $dir (export BURN_EDGE_AARCH64_PYTHON=$dir)"
