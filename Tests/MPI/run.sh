#!/usr/bin/env bash
# Distributed training over Open MPI (step 6 of Tests/run.sh): builds lowbit with the MPI
# trait, then under `mpirun -np 2` (one thread per rank) checks that
#   1. two ranks train the models two in-process workers train, bit for bit (packed files
#      and metrics compared; one thread each, since OpenBLAS sums differ with its thread count);
#   2. a run stopped after epoch 5 on 2 ranks resumes in one process (--workers 2, the same
#      sums) and one stopped in one process resumes on 2 ranks, each ending where the
#      uninterrupted run ends; and it resumes on 1 worker (another P) to a finished model;
#   3. a rank killed mid-run makes the job fail at once, with mpirun naming the rank.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/setup --mpi
swift build -c release --traits MPI --product lowbit --scratch-path .build-mpi 2>&1 | grep -E "error|warning: unre|Compiling lowbit|Build" || true
bin=$PWD/.build-mpi/release/lowbit
[[ -x $bin ]] || { echo "lowbit with the MPI trait did not build"; exit 1; }
mpirun=(mpirun --oversubscribe --bind-to none -np 2)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" info | grep -q "^distributed: .*Open MPI" || fail "lowbit info does not report the MPI build"
"$bin" generate --series 480 --test-series 160 --steps 32 --channels 4 --classes 4 --seed 1 --out "$work/data" >/dev/null
base=(train --data "$work/data/Synthetic_TRAIN.ts" --mode float,ternary --ensemble 1 --batch-size 32
      --hidden-size 32 --layers 1 --heads 2 --seed 3 --json)
common=("${base[@]}" --epochs 20)
same() {   # same DIR_A DIR_B: the packed models and the models' histories agree
    for m in float ternary; do
        cmp -s "$1/$m/model.packed.safetensors" "$2/$m/model.packed.safetensors" || fail "$m: $1 and $2 packed different models"
    done
    python3 - "$1" "$2" <<'PY' || fail "$1 and $2 differ in accuracy or loss"
import json, sys
a, b = (json.load(open(d + "/summary.json")) for d in sys.argv[1:])
key = lambda r: (r["mode"], r["test_accuracy"], r["final_loss"], r["evaluation_loss"], r["steps"])
assert [key(r) for r in a] == [key(r) for r in b], ([key(r) for r in a], [key(r) for r in b])
PY
}

echo "-- 2 ranks against 2 workers"
LOWBIT_THREADS=1 "${mpirun[@]}" "$bin" "${common[@]}" --distributed --out "$work/ranks" > "$work/ranks.json" 2> "$work/ranks.log"
LOWBIT_THREADS=1 "$bin" "${common[@]}" --workers 2 --out "$work/workers" > "$work/workers.json" 2>/dev/null
same "$work/ranks" "$work/workers"
python3 -c "import json,sys; r=json.load(open('$work/ranks.json')); assert [x['mode'] for x in r]==['float','ternary'] and min(x['test_accuracy'] for x in r) > 0.5, r" \
    || fail "the distributed run's JSON is not one array with both modes learning"
echo "ok: 2 ranks trained the models of 2 workers, bit for bit"

echo "-- resume across a change of P"
LOWBIT_THREADS=1 "${mpirun[@]}" "$bin" "${common[@]}" --distributed --stop-after-epoch 5 --out "$work/r21" > /dev/null 2>&1
[[ -f $work/r21/ternary/checkpoint.safetensors ]] || fail "no checkpoint after --stop-after-epoch 5 on 2 ranks"
LOWBIT_THREADS=1 "$bin" "${common[@]}" --workers 2 --resume --out "$work/r21" > /dev/null 2>&1
same "$work/r21" "$work/workers"
LOWBIT_THREADS=1 "$bin" "${common[@]}" --workers 2 --stop-after-epoch 5 --out "$work/r12" > /dev/null 2>&1
LOWBIT_THREADS=1 "${mpirun[@]}" "$bin" "${common[@]}" --distributed --resume --out "$work/r12" > /dev/null 2>&1
same "$work/r12" "$work/workers"
LOWBIT_THREADS=1 "${mpirun[@]}" "$bin" "${common[@]}" --distributed --stop-after-epoch 10 --out "$work/r2to1" > /dev/null 2>&1
LOWBIT_THREADS=1 "$bin" "${common[@]}" --resume --out "$work/r2to1" > "$work/r2to1.json" 2>/dev/null
python3 -c "import json; r=json.load(open('$work/r2to1.json')); assert [x['steps'] for x in r]==[300,300] and min(x['test_accuracy'] for x in r) > 0.5, r" \
    || fail "a run from 2 ranks did not finish on 1"
echo "ok: stopped on 2 ranks and resumed in one process, and the other way round, as if never stopped; 2 ranks to 1 worker finishes"

echo "-- a rank that fails stops the job, naming itself"
status=0
LOWBIT_THREADS=1 timeout 60 "${mpirun[@]}" "$bin" train --distributed --data "$work/missing.ts" > "$work/fails.log" 2>&1 || status=$?
((status != 0 && status != 124)) || fail "a failing rank left the job with status $status"
grep -q "rank 1 of 2 failed: .*missing.ts" "$work/fails.log" || { cat "$work/fails.log"; fail "no message naming the failed rank and the file"; }
echo "ok: status $status, $(grep -m1 'rank 1 of 2 failed' "$work/fails.log")"

echo "-- a rank that dies"
LOWBIT_THREADS=1 timeout 120 "${mpirun[@]}" "$bin" "${base[@]}" --epochs 400 --distributed --out "$work/dies" > "$work/dies.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 200); do
    for p in $(pgrep -f "$bin train" || true); do
        grep -qz "^OMPI_COMM_WORLD_RANK=1$" "/proc/$p/environ" 2>/dev/null && victim=$p
    done
    [[ -n $victim && -f $work/dies/float/checkpoint.safetensors ]] && break
    sleep 0.1
done
[[ -n $victim ]] || fail "rank 1 not found"
kill -9 "$victim"
status=0
wait "$job" || status=$?
((status != 0 && status != 124)) || fail "the job ended with status $status after rank 1 died (124: it hung)"
grep -q "rank 1" "$work/dies.log" || { cat "$work/dies.log"; fail "mpirun's message does not name rank 1"; }
echo "ok: rank 1 killed; the job failed with status $status: $(grep -m1 'rank 1' "$work/dies.log")"
