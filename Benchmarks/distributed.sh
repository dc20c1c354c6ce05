#!/usr/bin/env bash
# One model's training step on this machine's two cores, three ways, one after the other in
# one run (`lowbit bench model --shape design --train`, kernels backend):
#   one rank     one process, one thread (the baseline);
#   workers      one process, the batch split over 2 in-process workers (--data-parallel);
#   ranks        `mpirun -np 2`, one thread per rank (--distributed), with the all-reduce
#                of the gradients timed alone;
# then the speed-ups over one rank and the all-reduce's share of a step.
# Needs Open MPI and a lowbit built with the MPI trait (Tests/MPI/run.sh builds .build-mpi).
#   Benchmarks/distributed.sh [--out DIR] [--modes LIST] [--qt]
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/distributed
modes=float,int8,ternary
qt=()
while (($#)); do
    case $1 in
        --out) out=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --qt) qt=(--qt); shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bin=.build-mpi/release/lowbit
[[ -x $bin ]] || swift build -c release --traits MPI --product lowbit --scratch-path .build-mpi
mpirun=(mpirun --bind-to core -np 2)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
mkdir -p "$out"
bench=(bench model --shape design --train --backends kernels --modes "$modes" "${qt[@]}" --json)
echo "== one rank (1 thread)" >&2
LOWBIT_THREADS=1 "$bin" "${bench[@]}" --threads 1 > "$out/one.json"
echo "== 2 in-process workers (2 threads)" >&2
LOWBIT_THREADS=2 "$bin" "${bench[@]}" --threads 2 --data-parallel > "$out/workers.json"
echo "== mpirun -np 2 (1 thread per rank)" >&2
LOWBIT_THREADS=1 "${mpirun[@]}" "$bin" "${bench[@]}" --threads 1 --distributed > "$out/ranks.json"
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
one, workers, ranks = (json.load(open(f"{d}/{n}.json")) for n in ("one", "workers", "ranks"))
print("mode        1 rank ms  2 workers ms  2 ranks ms  workers ×  ranks ×  all-reduce ms (MB)  all-reduce share")
for a, w, r in zip(one, workers, ranks):
    m = a["mode"] + ("+qt" if a["qt"] else "")
    print(f"{m:<11} {a['train_step_ms']:>9.1f}  {w['train_step_ms']:>12.1f}  {r['train_step_ms']:>10.1f}  "
          f"{a['train_step_ms'] / w['train_step_ms']:>9.2f}  {a['train_step_ms'] / r['train_step_ms']:>7.2f}  "
          f"{r['allreduce_ms']:>8.2f} ({r['gradient_mb']:.1f})      {r['allreduce_ms'] / r['train_step_ms']:>6.1%}")
PY
