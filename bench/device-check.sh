#!/usr/bin/env bash
# Every GPU check and benchmark in one call, for the scarce GPU machine (15 min of device time per issue, at most
# 600 s per call, machine start included). Two halves:
#
#   bench/device-check.sh pack   On the development machine (.NET SDK, ../shared): publishes the tests and the CLI,
#                                adds one copy of the .NET runtime, every oracle file the device tests read, a slice of
#                                QaTa-COV19 (32 train, 8 val, 24 test ids) and the PyTorch reference, and packs it
#                                into carry/bundle.tar.xz; fails if bundle + tree reach the 64 MiB carry limit.
#   bench/device-check.sh run    On the GPU machine (device tool, carry: ["carry"]; no .NET there): stages in order of
#                                value under one deadline, each appending its section to $OUT/report.md as it finishes.
#   bench/device-check.sh run --simulate
#                                The rehearsal, here: the same stages on cuda-sim (from the bundle if there is one, else
#                                from the Release build of tests/Tmca.Tests and ../shared), to show the deadline logic.
#
# Stages, most valuable first: doctor + measured copy bandwidth → parity tests and oracles on the device → our step
# beside PyTorch's (small, tiny; FP32, TF32) → kernel lab → a short training run on the QaTa slice → faults on the
# real driver → torch.compile (only if time is left). Strict GPU mode: TMCA_TEST_DEVICE=cuda and --device cuda
# everywhere; no GPU / NVRTC / cuBLAS fails naming which; if doctor finds no GPU the script stops at once.
#
# The deadline, by construction. T0 is taken on the script's first line; DEADLINE = T0 + BUDGET (TMCA_CHECK_BUDGET,
# default 540). Before a stage, left = DEADLINE − RESERVE − GRACE − now (RESERVE = 10 s for the final table, GRACE = 5 s
# for timeout's KILL after TERM); a stage with left < MIN_STAGE is "not reached". A stage runs as
# `timeout -k GRACE t` with t = min(cap, left) and so ends by now + t + GRACE ≤ DEADLINE − RESERVE (+1 s for date's
# whole seconds). Unpacking is such a stage too. Between stages the script only appends a log (well under a second,
# and the next stage's `left` is read from the clock, so it is counted). After the last stage, the stage table takes
# well under RESERVE. Total ≤ T0 + BUDGET − RESERVE + 1 + (table) < T0 + 540 < T0 + 600: the call cannot be killed by
# the device tool's 600 s limit, and everything finished is in $OUT before the end.
#
# Verdict from the stages' exit codes (never from grepping output): 0 every stage done; 1 a stage failed (or doctor
# found no GPU); 3 partial (nothing failed, but a stage was cut at the deadline or not reached); 2 usage / no bundle.
T0=$(date +%s)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
simulate=0; [ "${2:-}" = --simulate ] && simulate=1

if [ "$mode" = pack ]; then
  set -e
  rm -rf carry/build && mkdir -p carry/build
  dotnet publish tests/Tmca.Tests -c Release -r linux-x64 --self-contained false -o carry/build/tests -v q -nologo
  # the CLI travels inside the tests' publish (the tests reference it and start it as tmca.dll): a second publish of
  # the same assemblies cost ~10 MiB of the 64 MiB carry limit
  root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  ver=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')
  mkdir -p carry/build/dotnet/host/fxr carry/build/dotnet/shared/Microsoft.NETCore.App
  cp "$root/dotnet" carry/build/dotnet/
  cp -r "$root/host/fxr/$ver" carry/build/dotnet/host/fxr/ 2>/dev/null || cp -r "$root/host/fxr/"* carry/build/dotnet/host/fxr/
  cp -r "$root/shared/Microsoft.NETCore.App/$ver" carry/build/dotnet/shared/Microsoft.NETCore.App/
  # data and references (../shared does not travel): every oracle the device tests read (DeviceOracleTests: the three
  # model oracles, hf/convnext and hf/bert, ops), the tokenizer files, so none of them skips there
  sh=../shared
  mkdir -p carry/build/shared/oracles/hf carry/build/shared/models/cxr-bert-specialized carry/build/shared/data/qata/{images,masks,reports}
  cp "$sh"/oracles/*.safetensors "$sh/oracles/README.md" carry/build/shared/oracles/
  cp "$sh"/oracles/hf/* carry/build/shared/oracles/hf/
  cp "$sh"/models/cxr-bert-specialized/vocab.txt carry/build/shared/models/cxr-bert-specialized/
  python3 - "$sh/data/qata-cov19-subset" carry/build/shared/data/qata <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
split = json.load(open(os.path.join(src, "split.json")))
keep = {"train": split["train"][:32], "val": split["val"][:8], "test": split["test"][:24]}
names = {k: [f for f in os.listdir(os.path.join(src, k))] for k in ("images", "masks", "reports")}
for ids in keep.values():
    for i in ids:
        for k in ("images", "masks", "reports"):
            for f in names[k]:
                if os.path.splitext(f)[0] == i: shutil.copy(os.path.join(src, k, f), os.path.join(dst, k, f))
json.dump(keep, open(os.path.join(dst, "split.json"), "w"))
PY
  # the device tests' shared data also under the name they look for (Paths.RequireShared("data/qata-cov19-subset"))
  ln -s qata carry/build/shared/data/qata-cov19-subset
  mkdir -p carry/build/reference && cp bench/reference/tmca_reference.py carry/build/reference/
  # what the GPU machine never runs: the test SDK's code-coverage engines (Windows/macOS/Alpine builds among them) and
  # the runtime's debugger libraries — about 20 MiB raw of the 64 MiB carry limit
  rm -rf carry/build/tests/CodeCoverage carry/build/tests/{alpine,ubuntu,macos,x64,x86,arm64}
  # the committed fixtures travel in the tree already (Support.Fixture falls back to $TMCA_REPO/tests/fixtures)
  rm -rf carry/build/tests/fixtures
  # satellite resource assemblies (translated messages of the test SDK and System.CommandLine)
  rm -rf carry/build/tests/{cs,de,es,fr,it,ja,ko,pl,pt-BR,ru,tr,zh-Hans,zh-Hant}
  rm -f carry/build/dotnet/shared/Microsoft.NETCore.App/*/libmscordbi.so carry/build/dotnet/shared/Microsoft.NETCore.App/*/libmscordaccore.so \
        carry/build/dotnet/shared/Microsoft.NETCore.App/*/createdump \
        carry/build/dotnet/shared/Microsoft.NETCore.App/*/libclrgc.so carry/build/dotnet/shared/Microsoft.NETCore.App/*/libclrgcexp.so
  # libraries' XML docs and symbols (ours keep theirs, for line numbers in stack traces)
  find carry/build/tests -maxdepth 1 \( -name '*.xml' -o \( -name '*.pdb' ! -name 'Tmca.*' ! -name 'tmca.*' \) \) -delete
  tar -C carry/build -cf - . | xz -9e -T2 > carry/bundle.tar.xz
  rm -rf carry/build
  size=$(stat -c %s carry/bundle.tar.xz)
  tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
  echo "carry/bundle.tar.xz: $((size / 1048576)) MiB + tree $((tree / 1048576)) MiB (.NET $ver runtime included)"
  [ $((size + tree)) -lt $((63 * 1048576)) ] || { echo "bundle + tree too large for the 64 MiB carry limit" >&2; exit 1; }
  exit 0
fi

[ "$mode" = run ] || { echo "usage: $0 pack | run [--simulate]" >&2; exit 2; }
BUDGET=${TMCA_CHECK_BUDGET:-540}
RESERVE=10; GRACE=5
MIN_STAGE=${TMCA_CHECK_MIN_STAGE:-$([ $simulate = 1 ] && echo 3 || echo 20)}
DEADLINE=$((T0 + BUDGET))
OUT=${OUT:-out/device-check}
mkdir -p "$OUT/raw"
report="$OUT/report.md"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 TMCA_REPO="$(pwd)"

names=(); states=()
record() { names+=("$1"); states+=("$2"); }
elapsed() { echo $(( $(date +%s) - T0 )); }

# stage NAME CAP FUNCTION: runs FUNCTION (a shell function, exported) under the deadline; its output goes to
# $OUT/raw/NAME.log and into the report's section when it ends. Sets $last_rc.
stage() {
  local name=$1 cap=$2 fn=$3 now left t rc t0 state
  now=$(date +%s); left=$((DEADLINE - RESERVE - GRACE - now)); last_rc=-1
  if [ "$left" -lt "$MIN_STAGE" ]; then record "$name" "not reached (${left} s left at $(elapsed) s)"; return; fi
  t=$(( cap < left ? cap : left ))
  t0=$now
  timeout -k "$GRACE" "$t" bash -c "$fn" > "$OUT/raw/$name.log" 2>&1; rc=$?
  last_rc=$rc
  local took=$(( $(date +%s) - t0 ))
  if [ $rc = 0 ]; then state="done"
  elif [ $rc = 124 ] || [ $rc = 137 ]; then
    if [ "$t" -lt "$cap" ]; then state="cut at the deadline after ${took} s"; else state="failed (timed out at its ${cap} s cap)"; fi
  else state="failed (exit $rc$(grep -m1 '^error:' "$OUT/raw/$name.log" | cut -c1-160 | sed 's/^/: /'))"; fi
  record "$name" "$state"
  { printf '\n## %s — %s (%s s, at %s s of %s)\n\n```\n' "$name" "$state" "$took" "$(elapsed)" "$BUDGET"
    tail -n 120 "$OUT/raw/$name.log"; printf '```\n'; } >> "$report"
}

# ---- where things are: the bundle (GPU machine, or a rehearsal from it), else the local Release build ----
b=$(mktemp -d /tmp/tmca-bundle.XXXX); trap 'rm -rf "$b"' EXIT
export B="$b"
unpack() { tar -C "$B" -xJf carry/bundle.tar.xz; }
export -f unpack
echo "# Tmca.Native device check — $(date -u '+%F %T') UTC" > "$report"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), budget ${BUDGET} s wall, $([ $simulate = 1 ] && echo 'REHEARSAL on cuda-sim (--simulate): no GPU result' || echo 'strict GPU mode')" >> "$report"
if [ -f carry/bundle.tar.xz ] && [ -z "${TMCA_CHECK_BIN:-}" ]; then
  stage unpack 90 unpack
  [ "$last_rc" = 0 ] || { echo "could not unpack carry/bundle.tar.xz" >&2; exit 2; }
  export DN="$b/dotnet/dotnet" CLI="$b/tests/tmca.dll" TESTS="$b/tests/Tmca.Tests.dll" TMCA_SHARED="$b/shared" REF="$b/reference/tmca_reference.py"
  export DOTNET_ROOT="$b/dotnet" PATH="$b/dotnet:$PATH"   # child processes the tests start run `dotnet`
  export QATA="$b/shared/data/qata" TMCA_CACHE="$b/cache"
elif [ $simulate = 1 ]; then
  bin=${TMCA_CHECK_BIN:-tests/Tmca.Tests/bin/Release/net10.0}
  [ -f "$bin/Tmca.Tests.dll" ] || { echo "no $bin/Tmca.Tests.dll: dotnet build tests/Tmca.Tests -c Release" >&2; exit 2; }
  bin=$(readlink -f "$bin")
  export DN=dotnet CLI="$bin/tmca.dll" TESTS="$bin/Tmca.Tests.dll" TMCA_SHARED="$(readlink -f ../shared)" REF="$(pwd)/bench/reference/tmca_reference.py"
  export QATA="$TMCA_SHARED/data/qata-cov19-subset"
else echo "no carry/bundle.tar.xz: run '$0 pack' first" >&2; exit 2; fi
export OUT
if [ $simulate = 1 ]; then
  export DEV=cuda-sim TMCA_TEST_DEVICE=cuda-sim PY_DEV=cpu STEP_ARGS="--batch 2 --steps 2 --warmup 1" PRESETS="nano" EPOCHS=1 TRAIN_ARGS="--preset nano --batch 4"
else
  export DEV=cuda TMCA_TEST_DEVICE=cuda PY_DEV=cuda STEP_ARGS="--batch 32 --steps 20 --warmup 3" PRESETS="small tiny" EPOCHS=3 TRAIN_ARGS=""
fi
export SIMULATE=$simulate

# ---- the stages (each a function run in its own bash under timeout; a non-zero exit is the stage's failure) ----
doctor() {
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  if [ "$SIMULATE" = 1 ]; then "$DN" "$CLI" doctor --measure --device cuda-sim
  else "$DN" "$CLI" doctor --require-gpu --measure; fi
}
parity() {
  local rc=0
  "$DN" "$TESTS" -noColor -trait "Category=GPU" ${TMCA_CHECK_TESTS:-} -xml "$OUT/raw/tests.xml" || rc=1
  "$DN" "$CLI" oracle --device "$DEV" --failures-only "$TMCA_SHARED"/oracles/ops.safetensors "$TMCA_SHARED"/oracles/hf/convnext.safetensors || rc=1
  return $rc
}
torch_ok() { python3 -c "import torch" 2>/dev/null; }
ours_vs_pytorch() {
  local rc=0 p
  for p in $PRESETS; do
    local args=$STEP_ARGS
    echo "### $p: ours (FP32, then TF32)"
    "$DN" "$CLI" step --device "$DEV" --preset "$p" $args || rc=1
    TMCA_TF32=1 "$DN" "$CLI" step --device "$DEV" --preset "$p" $args || rc=1
    if torch_ok; then
      echo "### $p: PyTorch (FP32, then TF32)"
      python3 "$REF" --device "$PY_DEV" --preset "$p" $args || rc=1
      python3 "$REF" --device "$PY_DEV" --preset "$p" $args --tf32 || rc=1
    elif [ "$SIMULATE" = 1 ]; then echo "PyTorch not installed here: the rehearsal runs our side only"
    else echo "error: PyTorch not installed on the GPU machine"; rc=1; fi
  done
  return $rc
}
kernel_lab() {
  local hbm; hbm=$(sed -n 's/^copy bandwidth: \([0-9]*\) GB\/s.*/\1/p' "$OUT/raw/doctor.log" | head -1)
  "$DN" "$CLI" kernels --bench --device "$DEV" --out "$OUT/raw/kernels.md" ${hbm:+--hbm-gbs $hbm}
}
train() { "$DN" "$CLI" train "$QATA" --device "$DEV" --epochs "$EPOCHS" $TRAIN_ARGS --out "$B/run-qata" && cat "$B/run-qata/eval-test/results.md"; }
# each fault must end the run with one line on stderr and exit code 1
faults() {
  local rc=0 f code
  for f in "TMCA_DEVICE_FAULT=oom:400" "TMCA_DEVICE_FAULT=sticky:*:300" "TMCA_INJECT_NONFINITE=backward:layer_norm@2"; do
    env "$f" "$DN" "$CLI" train "$QATA" --device "$DEV" --epochs 1 --batch 4 ${TRAIN_ARGS/--batch 4/} --out "$B/run-fault" 2> "$B/fault.err" > /dev/null; code=$?
    echo "$f: exit $code, $(wc -l < "$B/fault.err") stderr line(s): $(head -c 300 "$B/fault.err")"
    [ $code = 1 ] && [ "$(wc -l < "$B/fault.err")" = 1 ] || rc=1
    rm -rf "$B/run-fault"
  done
  return $rc
}
torch_compile() {
  torch_ok || { [ "$SIMULATE" = 1 ] && { echo "PyTorch not installed here"; return 0; }; echo "error: no PyTorch"; return 1; }
  local p args=$STEP_ARGS
  for p in $PRESETS; do python3 "$REF" --device "$PY_DEV" --preset "$p" $args --tf32 --compile || return 1; done
}
export -f doctor parity torch_ok ours_vs_pytorch kernel_lab train faults torch_compile

#     name              cap (s)  function
stage doctor             60      doctor
if [ "$last_rc" != 0 ] && [ $simulate = 0 ]; then
  grep -m1 "^error:" "$OUT/raw/doctor.log" >&2
  for s in parity ours-vs-pytorch kernel-lab train-qata faults torch-compile; do record "$s" "not reached (doctor found no GPU)"; done
else
  stage parity           200     parity
  stage ours-vs-pytorch  150     ours_vs_pytorch
  stage kernel-lab       90      kernel_lab
  stage train-qata       90      train
  stage faults           90      faults
  stage torch-compile    120     torch_compile
fi

# ---- the stage table and the verdict ----
verdict=0
{ printf '\n## stages (%s s of a %s s budget)\n\n| stage | state |\n|---|---|\n' "$(elapsed)" "$BUDGET"
  for i in "${!names[@]}"; do printf '| %s | %s |\n' "${names[$i]}" "${states[$i]}"; done; } >> "$report"
for s in "${states[@]}"; do
  case $s in failed*) verdict=1 ;; cut*|"not reached"*) [ $verdict = 1 ] || verdict=3 ;; esac
done
echo "verdict: $(case $verdict in 0) echo 'every stage done' ;; 1) echo 'a stage failed' ;; 3) echo 'partial: a stage was cut at the deadline or not reached' ;; esac) (exit $verdict)" >> "$report"
echo "report: $report"
exit $verdict
