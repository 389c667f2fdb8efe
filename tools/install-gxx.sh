#!/usr/bin/env bash
# Installs the host C++ compiler the CUDA simulator builds kernels with (Debian's g++). Idempotent: exits 0 when
# g++ (or $TMCA_SIM_CXX) already runs.
set -euo pipefail
cxx="${TMCA_SIM_CXX:-g++}"
if command -v "$cxx" >/dev/null 2>&1 && "$cxx" -dumpfullversion >/dev/null 2>&1; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "install-gxx: not root, cannot install g++" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "install-gxx: no apt-get, cannot install g++" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends g++ >/dev/null
