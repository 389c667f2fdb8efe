#!/usr/bin/env bash
# Every GPU check and benchmark in one call, for the scarce GPU machine. Two halves:
#
#   bench/device-check.sh pack   On the development machine (with the .NET SDK and ../shared): publishes the test
#                                project and the CLI framework-dependent, adds one copy of the .NET runtime, a slice of
#                                the QaTa-COV19 subset (120 train, 40 val, 100 test ids), the ops oracle, HF ConvNeXt and
#                                the PyTorch reference, and packs it all into carry/bundle.tar.xz (carry limit 64 MiB).
#   bench/device-check.sh run    On the GPU machine (device tool, carry: ["carry"]; no .NET there): unpacks the
#                                bundle and writes one report to $OUT/report.md — the GPU and driver (doctor), NVRTC
#                                compile of every kernel for this GPU and sm_80/sm_90, the whole test suite (every
#                                CUDA-vs-CPU parity test, fused = composed, the model oracles and the training-loss
#                                comparison run on the GPU there), the oracles through `tmca oracle --device cuda`,
#                                a training run on the QaTa slice (both metric protocols), the kernel lab
#                                ($OUT/kernels.md), and one training step of ours beside bench/reference's PyTorch
#                                (eager FP32, TF32, TF32 + torch.compile) on the same GPU in the same call.
#
# `run` degrades cleanly: without a GPU the device tests run on the CUDA simulator (when g++ is there) or skip with
# their reason, and every GPU-only step says why it did not run.
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
  # data and references (../shared does not travel to the device machine)
  sh=../shared
  mkdir -p carry/build/shared/oracles/hf carry/build/shared/data/qata/images carry/build/shared/data/qata/masks carry/build/shared/data/qata/reports
  cp "$sh/oracles/ops.safetensors" "$sh/oracles/README.md" carry/build/shared/oracles/
  cp "$sh/oracles/hf/convnext.safetensors" carry/build/shared/oracles/hf/
  python3 - "$sh/data/qata-cov19-subset" carry/build/shared/data/qata <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
split = json.load(open(os.path.join(src, "split.json")))
keep = {"train": split["train"][:120], "val": split["val"][:40], "test": split["test"][:100]}
names = {k: [f for f in os.listdir(os.path.join(src, k))] for k in ("images", "masks", "reports")}
for ids in keep.values():
    for i in ids:
        for k in ("images", "masks", "reports"):
            for f in names[k]:
                if os.path.splitext(f)[0] == i: shutil.copy(os.path.join(src, k, f), os.path.join(dst, k, f))
json.dump(keep, open(os.path.join(dst, "split.json"), "w"))
PY
  mkdir -p carry/build/reference && cp bench/reference/tmca_reference.py carry/build/reference/
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
export TMCA_SHARED="$b/shared"
section "whole test suite on the GPU (parity, fused = composed, oracles, CPU-vs-GPU training losses)"; step "$dn" "$b/tests/Tmca.Tests.dll" -noColor -xml "$OUT/tests.xml"; endsection
section "oracles through the CLI on the GPU (TF32 off)"; step "$dn" "$b/cli/tmca.dll" oracle --device cuda --failures-only "$b/shared/oracles/ops.safetensors" "$b/shared/oracles/hf/convnext.safetensors" "$b/tests/fixtures/"*.safetensors; endsection
section "training on the QaTa-COV19 slice (120 train, 40 val, 100 test; small, 20 epochs; both metric protocols)"
step timeout 300 "$dn" "$b/cli/tmca.dll" train "$b/shared/data/qata" --device cuda --epochs 20 --out "$b/run-qata" && cat "$b/run-qata/eval-test/results.md" >> "$report"; endsection
section "kernel lab"; step timeout 300 "$dn" "$b/cli/tmca.dll" kernels --bench --device cuda --out "$OUT/kernels.md"; endsection
section "one training step: ours vs PyTorch on this GPU (batch 32; median of 20 after 3 warm-up)"
for preset in small tiny; do
  step timeout 200 "$dn" "$b/cli/tmca.dll" step --device cuda --preset $preset --batch 32 --steps 20 --warmup 3
  for mode in "" "--tf32" "--tf32 --compile"; do
    step timeout 300 python3 "$b/reference/tmca_reference.py" --device cuda --preset $preset --batch 32 --steps 20 --warmup 3 $mode
  done
done
endsection
section "the non-finite guard's cost on the GPU (small, batch 32): the trainer's step without and with it"
for loop in trainer guarded trainer guarded; do step timeout 200 "$dn" "$b/cli/tmca.dll" step --device cuda --preset small --batch 32 --steps 20 --warmup 3 --loop $loop; done
endsection
section "device faults on the real driver (injected at the runtime seam; each must end in one line and exit code 1)"
TMCA_DEVICE_FAULT=oom:400 step timeout 200 "$dn" "$b/cli/tmca.dll" train "$b/shared/data/qata" --device cuda --epochs 1 --out "$b/run-oom"
TMCA_DEVICE_FAULT=sticky:*:300 step timeout 200 "$dn" "$b/cli/tmca.dll" train "$b/shared/data/qata" --device cuda --epochs 1 --out "$b/run-sticky"
TMCA_INJECT_NONFINITE=backward:layer_norm@2 step timeout 200 "$dn" "$b/cli/tmca.dll" train "$b/shared/data/qata" --device cuda --epochs 1 --out "$b/run-nan"
endsection
rm -rf "$b"
echo "report: $report"
grep -E "Failed: [1-9]|FAIL" "$report" >/dev/null && exit 1 || exit 0
