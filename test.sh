#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite.
#  - Debian's NVRTC 11.8 (non-free), so that every CUDA kernel is compile-checked without a GPU;
#  - Debian's g++, the CUDA simulator's compiler, so that every GPU test runs its kernels on the CPU.
# Outside CI a failed install only turns those tests into skips that say why; in CI (CI=true) it fails the run:
# a GPU test that skips in CI is not a pass.
set -euo pipefail
cd "$(dirname "$0")"
ci=false; case "${CI:-}" in true|1) ci=true ;; esac
for tool in tools/install-nvrtc.sh tools/install-gxx.sh; do
  if ! "$tool"; then
    if $ci; then echo "error: $tool failed; CI needs it" >&2; exit 1; fi
    echo "warning: $tool failed; the tests that need it will skip and say why" >&2
  fi
done
dotnet test Tmca.Native.sln -c Release "$@"
# The device suite once more on the race-checking simulator (an instrumented build of every kernel: each load and store
# is checked, so two threads touching one location with no barrier, warp operation or atomic between them fail the run).
# About 6–9 minutes on 2 cores (every kernel instrumented); TMCA_SKIP_RACECHECK=1 leaves it out of a local run.
if [ "${TMCA_SKIP_RACECHECK:-}" != 1 ]; then
  TMCA_SIM_RACECHECK=1 dotnet test Tmca.Native.sln -c Release --no-build --filter "FullyQualifiedName~Tmca.Tests.Cuda" "$@"
fi
