#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite.
#  - Debian's NVRTC 11.8 (non-free) so that every CUDA kernel is compile-checked without a GPU (needs root and
#    apt; without them the kernel-compile test skips and says why).
#  - GPU tests run only where a GPU is present; elsewhere they skip with the reason.
set -euo pipefail
cd "$(dirname "$0")"
tools/install-nvrtc.sh || echo "warning: NVRTC could not be installed; kernel compile checks will skip" >&2
dotnet test Tmca.Native.sln -c Release "$@"
