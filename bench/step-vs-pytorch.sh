#!/usr/bin/env bash
# One CPU training step (forward, all losses, backward, AdamW), TMCA engine vs PyTorch, on this machine, in one command.
#   bench/step-vs-pytorch.sh [--rounds R] [--presets "nano small tiny"] [--out FILE] [--torch-args "..."]
#
# The baseline must be the fastest honest PyTorch: Debian's python3-torch calls whatever `libblas.so.3` the alternatives
# system points at, and with only `libblas3` installed that is the unoptimised reference (netlib) BLAS, several times
# slower. So this script requires OpenBLAS (it installs libopenblas0-pthread when run as root), and prints which BLAS and
# which CPU kernels PyTorch really loads. PyTorch's side is this repository's PyTorch version of the spec
# (bench/reference/tmca_reference.py), checked against the model oracle first, so both sides compute the same step.
#
# The VM is noisy, so each preset runs R rounds, each round one fresh process per side, the order alternating (engine
# first in odd rounds, PyTorch first in even ones); the table gives the median over rounds of each run's median step time,
# the minimum over all steps, and each side's largest peak RSS over its runs. Batch: 8 for nano and small, 4 for tiny.
# The engine never needs PyTorch; this script does.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3; presets="nano small tiny"; out=bench-results/step-vs-pytorch.md; torch_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --presets) presets=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --torch-args) torch_args=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--presets \"nano small tiny\"] [--out FILE] [--torch-args \"--foreach ...\"]" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
root=false; [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && root=true
need() {   # need PACKAGE WHY: install a Debian package when root, else stop and say what is missing
  if $root; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null || { echo "error: apt-get install $1 failed ($2)" >&2; exit 2; }
  else echo "error: $2: install it (apt-get install -y $1)" >&2; exit 2; fi
}
blas_alt() { update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}'; }

$py -c "import torch" 2>/dev/null || need python3-torch "PyTorch (Debian's python3-torch) is not installed"
case "$(blas_alt)" in *openblas*|*blis*|*mkl*) ;; *) need libopenblas0-pthread "libblas.so.3 is the reference BLAS ($(blas_alt)), not an optimised one" ;; esac
case "$(blas_alt)" in *openblas*|*blis*|*mkl*) ;; *) echo "error: libblas.so.3 still points at $(blas_alt); run update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2; exit 2 ;; esac
$py -c "import threadpoolctl" 2>/dev/null || { $root && need python3-threadpoolctl "threadpoolctl names the BLAS PyTorch loaded"; } || true

# What PyTorch's CPU step really runs on: the BLAS it loaded (after a matmul, so the library is in), its threads, oneDNN.
blas_line=$($py - "$(nproc)" <<'PY'
import re, sys, torch
torch.set_num_threads(int(sys.argv[1]))   # as the timed runs do
torch.ones(64, 64) @ torch.ones(64, 64)
cfg = torch.__config__.show()
cap = re.search(r"CPU capability usage: (\S+)", cfg)
try:
    import threadpoolctl
    libs = [f"{i['internal_api']} {i['version']} ({i['filepath']}, {i['num_threads']} threads)" for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
except ImportError:
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if re.search(r"blas|mkl|blis", l)})
print(f"PyTorch {torch.__version__}: BLAS {', '.join(libs) or 'none found'}; oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}; "
      f"CPU kernels {cap.group(1) if cap else '?'}; {torch.get_num_threads()} intra-op threads")
PY
)
echo "$blas_line"
oracle=../shared/oracles/model-tmca-full.safetensors
if [ -f "$oracle" ]; then $py bench/reference/tmca_reference.py --check "$oracle" | tail -1 | grep -q PASS || { echo "error: the PyTorch reference does not match $oracle" >&2; exit 1; }; fi
dotnet build -c Release bench/Tmca.Bench -v q -nologo >/dev/null
engine=bench/Tmca.Bench/bin/Release/net10.0/Tmca.Bench.dll

runs=$(mktemp); trap 'rm -f "$runs"' EXIT
for preset in $presets; do
  case $preset in tiny) batch=4; steps=3; warm=1 ;; small) batch=8; steps=10; warm=3 ;; *) batch=8; steps=20; warm=3 ;; esac
  for r in $(seq 1 "$rounds"); do
    sides="engine pytorch"; [ $((r % 2)) = 0 ] && sides="pytorch engine"
    for side in $sides; do
      if [ $side = engine ]; then dotnet $engine step $preset $batch $steps $warm >> "$runs"
      else $py bench/reference/tmca_reference.py --preset $preset --batch $batch --steps $steps --warmup $warm --threads "$(nproc)" $torch_args >> "$runs"; fi
      echo "  $preset round $r: $side done" >&2
    done
  done
done

mkdir -p "$(dirname "$out")"
{
  echo "date: $(date -u '+%F %H:%M UTC'); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); .NET $(dotnet --version)"
  echo "baseline: $blas_line${torch_args:+; PyTorch options: $torch_args}"
  echo "command: bench/step-vs-pytorch.sh --rounds $rounds --presets \"$presets\"${torch_args:+ --torch-args \"$torch_args\"}; $rounds rounds, sides alternating"
  echo
  $py - "$runs" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| preset | batch | engine ms/step median (min) | PyTorch ms/step median (min) | time ratio median (min) | engine peak RSS MiB | PyTorch peak RSS MiB | RSS ratio |")
print("|---|---|---|---|---|---|---|---|")
for p in dict.fromkeys(r["preset"] for r in runs):
    e = [r for r in runs if r["preset"] == p and r["impl"] != "pytorch"]; t = [r for r in runs if r["preset"] == p and r["impl"] == "pytorch"]
    em, tm = statistics.median(r["median_ms"] for r in e), statistics.median(r["median_ms"] for r in t)
    en, tn = min(r["min_ms"] for r in e), min(r["min_ms"] for r in t)
    er, tr = max(r["peak_rss_mib"] for r in e), max(r["peak_rss_mib"] for r in t)
    print(f"| {p} | {e[0]['batch']} | {em:.1f} ({en:.1f}) | {tm:.1f} ({tn:.1f}) | **{em / tm:.2f}×** ({en / tn:.2f}×) | {er:.0f} | {tr:.0f} | **{er / tr:.2f}×** |")
PY
} | tee "$out"
