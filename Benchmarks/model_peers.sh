#!/usr/bin/env bash
# The design's model side by side with PyTorch (CPU, eager), one after the other in one run,
# each pinned to one core with one thread: LowBit's training step (QAT and QT) and packed
# forward at batch 32 and 1 (`lowbit bench model --shape design --train`), then the peer's
# float and fake-quant (straight-through) training steps and its float and dynamic-int8
# forwards; then one table of ratios (peer time / LowBit time: above 1, LowBit is faster).
# Needs a release build and `pip install torch`; the peer script is the workplace's
# (../shared/peers/torch_bench.py, or --peer PATH).
#   Benchmarks/model_peers.sh [--peer PATH] [--out DIR] [--cpu N]
set -euo pipefail
cd "$(dirname "$0")/.."
peer=../shared/peers/torch_bench.py
out=out/model-peers
cpu=1
while (($#)); do
    case $1 in
        --peer) peer=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
python3 -c 'import torch' 2>/dev/null || { echo "the PyTorch peer needs torch: pip install torch" >&2; exit 2; }
[[ -f $peer ]] || { echo "no peer script at $peer (--peer PATH)" >&2; exit 2; }
[[ -x .build/release/lowbit ]] || swift build -c release --product lowbit
mkdir -p "$out"
echo "== LowBit (1 thread, core $cpu)" >&2
LOWBIT_THREADS=1 taskset -c "$cpu" .build/release/lowbit bench model --shape design --train --threads 1 --backends kernels --json > "$out/lowbit.json"
LOWBIT_THREADS=1 taskset -c "$cpu" .build/release/lowbit bench model --shape design --train --qt --threads 1 --backends kernels \
    --modes int8,int4,ternary,binary --json > "$out/lowbit-qt.json"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') (1 thread, core $cpu)" >&2
: > "$out/torch.jsonl"
for mode in float ste_w8a8 ste_w4a8; do
    OMP_NUM_THREADS=1 taskset -c "$cpu" python3 "$peer" "$mode" >> "$out/torch.jsonl"
done
python3 Benchmarks/peers/model_table.py "$out"
