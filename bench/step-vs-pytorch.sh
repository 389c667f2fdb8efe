#!/usr/bin/env bash
# One CPU training step (forward, all losses, backward, AdamW), TMCA engine vs PyTorch, same machine, same command.
#   bench/step-vs-pytorch.sh [batch] [steps]
# Needs Debian's python3-torch for the PyTorch side (apt-get install python3-torch); the engine never does.
# The PyTorch reference is first checked against the model oracle, so both sides compute the same thing.
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-8}; steps=${2:-20}
py=/usr/bin/python3
$py -c "import torch" 2>/dev/null || { echo "PyTorch not found: apt-get install -y python3-torch" >&2; exit 2; }
oracle=../shared/oracles/model-tmca-full.safetensors
[ -f "$oracle" ] && $py bench/reference/tmca_reference.py --check "$oracle" | tail -1
dotnet build -c Release bench/Tmca.Bench -v q -nologo >/dev/null
echo "date: $(date -u +%F), machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), batch $batch, median of $steps steps after 3 warm-up"
printf '| preset | engine ms/step | PyTorch ms/step | ratio | engine peak RSS MiB (managed heap) | PyTorch peak RSS MiB |\n|---|---|---|---|---|---|\n'
for preset in nano small; do
  ours=$(dotnet bench/Tmca.Bench/bin/Release/net10.0/Tmca.Bench.dll step $preset $batch $steps 3)
  theirs=$($py bench/reference/tmca_reference.py --preset $preset --batch $batch --steps $steps --threads "$(nproc)")
  $py - "$ours" "$theirs" "$preset" <<'PY'
import json, sys
o, t, p = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"| {p} | {o['median_ms']:.1f} | {t['median_ms']:.1f} | {o['median_ms'] / t['median_ms']:.2f}× | {o['peak_rss_mib']:.0f} ({o['peak_managed_mib']:.0f}) | {t['peak_rss_mib']:.0f} |")
PY
done
