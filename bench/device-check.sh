#!/usr/bin/env bash
# Every GPU check and benchmark in one call, for the scarce GPU machine. Two halves:
#
#   bench/device-check.sh pack   On the development machine (with the .NET SDK): publishes the test project and
#                                the CLI framework-dependent, adds one copy of the .NET runtime, and packs it all
#                                into carry/bundle.tar.xz (the carry limit is 64 MiB).
#   bench/device-check.sh run    On the GPU machine (device tool, carry: ["carry"]; no .NET there): unpacks the
#                                bundle and writes one report to $OUT/report.md — GPU and driver (doctor), NVRTC
#                                compile of every kernel for this GPU and sm_80/sm_90, the GPU parity tests, the
#                                whole test suite, and the kernel lab (GB/s and TFLOP/s against the roofline).
#
# `run` degrades cleanly: without a GPU every GPU test skips with its reason and the lab says why it did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

if [ "$mode" = pack ]; then
  set -e
  rm -rf carry/build && mkdir -p carry/build
  dotnet publish tests/Tmca.Tests -c Release -r linux-x64 --self-contained false -o carry/build/tests -v q -nologo
  dotnet publish src/Tmca.Cli -c Release -r linux-x64 --self-contained false -o carry/build/cli -v q -nologo
  root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  ver=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')
  mkdir -p carry/build/dotnet/host/fxr carry/build/dotnet/shared/Microsoft.NETCore.App
  cp "$root/dotnet" carry/build/dotnet/
  cp -r "$root/host/fxr/$ver" carry/build/dotnet/host/fxr/ 2>/dev/null || cp -r "$root/host/fxr/"* carry/build/dotnet/host/fxr/
  cp -r "$root/shared/Microsoft.NETCore.App/$ver" carry/build/dotnet/shared/Microsoft.NETCore.App/
  tar -C carry/build -cJf carry/bundle.tar.xz .
  rm -rf carry/build
  size=$(stat -c %s carry/bundle.tar.xz)
  echo "carry/bundle.tar.xz: $((size / 1048576)) MiB (.NET $ver runtime included)"
  [ "$size" -lt $((60 * 1048576)) ] || { echo "bundle too large for the 64 MiB carry limit" >&2; exit 1; }
  exit 0
fi

[ "$mode" = run ] || { echo "usage: $0 pack|run" >&2; exit 2; }
OUT=${OUT:-out/device-check}
mkdir -p "$OUT"
report="$OUT/report.md"
b=$(mktemp -d /tmp/tmca-bundle.XXXX)
if [ -f carry/bundle.tar.xz ]; then tar -C "$b" -xJf carry/bundle.tar.xz
else echo "no carry/bundle.tar.xz: run '$0 pack' first" >&2; exit 2; fi
dn="$b/dotnet/dotnet"
export DOTNET_ROOT="$b/dotnet" TMCA_CACHE="$b/cache" DOTNET_CLI_TELEMETRY_OPTOUT=1 TMCA_REPO="$(pwd)"
section() { printf '\n## %s\n\n```\n' "$1" >> "$report"; }
endsection() { printf '```\n' >> "$report"; }
step() { local t0=$(date +%s); "$@" >> "$report" 2>&1; local rc=$?; echo "(exit $rc, $(( $(date +%s) - t0 )) s)" >> "$report"; return $rc; }

echo "# Tmca.Native device check — $(date -u '+%F %T') UTC" > "$report"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >> "$report"
section "GPU"; step nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "nvidia-smi not available" >> "$report"; endsection
section "tmca doctor"; step "$dn" "$b/cli/tmca.dll" doctor; endsection
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
section "NVRTC compile of every kernel"; step "$dn" "$b/cli/tmca.dll" kernels --compile --arch "${arch:+$arch,}80,90"; endsection
section "GPU tests (CUDA vs CPU parity, kernel compile)"; step "$dn" "$b/tests/Tmca.Tests.dll" -noColor -namespace "Tmca.Tests.Cuda" -xml "$OUT/gpu-tests.xml"; endsection
section "whole test suite (tests needing ../shared skip here)"; step "$dn" "$b/tests/Tmca.Tests.dll" -noColor -namespace- "Tmca.Tests.Cuda"; endsection
section "kernel lab"; step "$dn" "$b/cli/tmca.dll" kernels --bench --out "$OUT/kernels.md"; endsection
rm -rf "$b"
echo "report: $report"
grep -E "Failed: [1-9]|FAIL" "$report" >/dev/null && exit 1 || exit 0
