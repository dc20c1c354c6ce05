#!/usr/bin/env bash
# The packed matmul beside ONNX Runtime's quantized CPU matmuls, one after the other in one run,
# each pinned to one core with one thread, same shapes: `lowbit bench kernels` (every mode, and
# OpenBLAS sgemm/sgemv) and the workplace's peer (../shared/peers/ort_matmul.py: MatMul f32,
# MatMulInteger u8 × s8, MatMulNBits 4-bit); then the ratios (LowBit GOP/s over ORT's: above 1,
# LowBit is faster). Needs a release build and `pip install onnxruntime onnx`.
#   Benchmarks/ort_peers.sh [--peer PATH] [--out DIR] [--cpu N] [--m M --k K] [--n LIST]
set -euo pipefail
cd "$(dirname "$0")/.."
peer=../shared/peers/ort_matmul.py
out=out/ort-peers
cpu=1 m=4096 k=4096 n=1,64,256
while (($#)); do
    case $1 in
        --peer) peer=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        --m) m=$2; shift 2 ;;
        --k) k=$2; shift 2 ;;
        --n) n=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
python3 -c 'import onnxruntime, onnx' 2>/dev/null || { echo "the ONNX Runtime peer needs: pip install onnxruntime onnx" >&2; exit 2; }
[[ -f $peer ]] || { echo "no peer script at $peer (--peer PATH)" >&2; exit 2; }
bin=${LOWBIT_BIN:-.build/release/lowbit}
[[ -x $bin ]] || swift build -c release --product lowbit
mkdir -p "$out"
echo "== LowBit (1 thread, core $cpu)" >&2
LOWBIT_THREADS=1 taskset -c "$cpu" "$bin" bench kernels --m "$m" --k "$k" --n "$n" --threads 1 --json > "$out/lowbit.json"
echo "== ONNX Runtime $(python3 -c 'import onnxruntime; print(onnxruntime.__version__)') (1 thread, core $cpu)" >&2
OMP_NUM_THREADS=1 taskset -c "$cpu" python3 "$peer" --m "$m" --k "$k" --n "$n" --threads 1 > "$out/ort.json"
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
rows = json.load(open(f"{d}/lowbit.json")) + json.load(open(f"{d}/ort.json"))
gops = {(r["mode"], r["backend"], r["n"]): r["gops"] for r in rows}
ns = sorted({r["n"] for r in rows})
def get(mode, backend, n): return gops.get((mode, backend, n))
print("N     LowBit GOP/s: int8  int4  ternary binary | ORT: int8  nbits4  f32 | int8/ORT-int8  int4/ORT-nbits4  ternary/ORT-int8  binary/ORT-int8")
for n in ns:
    lb = {m: get(m, "kernels", n) for m in ("int8", "int4", "ternary", "binary")}
    ort = {m: get(m, "onnxruntime", n) for m in ("ort-int8", "ort-nbits4", "ort-f32")}
    ratio = lambda a, b: f"{a / b:.2f}×" if a and b else "-"
    fmt = lambda v: f"{v:.1f}" if v else "-"
    print(f"{n:<5} {fmt(lb['int8']):>19} {fmt(lb['int4']):>5} {fmt(lb['ternary']):>8} {fmt(lb['binary']):>6} | "
          f"{fmt(ort['ort-int8']):>9} {fmt(ort['ort-nbits4']):>7} {fmt(ort['ort-f32']):>5} | "
          f"{ratio(lb['int8'], ort['ort-int8']):>13} {ratio(lb['int4'], ort['ort-nbits4']):>16} "
          f"{ratio(lb['ternary'], ort['ort-int8']):>17} {ratio(lb['binary'], ort['ort-int8']):>16}")
PY
