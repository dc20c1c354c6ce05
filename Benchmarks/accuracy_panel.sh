#!/usr/bin/env bash
# The accuracy panel side by side: `lowbit bench accuracy` (every mode, default recipe) and
# MiniRocket (aeon), one after the other in one run, same files, same seeds; then one table
# with the issue's targets checked. Needs a release build and `pip install aeon`.
#   Benchmarks/accuracy_panel.sh [--datasets A,B] [--seeds 0,1,2] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=ArrowHead,ItalyPowerDemand,OSULeaf,ACSF1,CardanoSentiment,JapaneseVowels
seeds=0,1,2
out=out/accuracy-panel
while (($#)); do
    case $1 in
        --datasets) datasets=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
python3 -c 'import aeon' 2>/dev/null || { echo "MiniRocket needs aeon: pip install aeon" >&2; exit 2; }
[[ -x .build/release/lowbit ]] || swift build -c release --product lowbit
# MiniRocket reads JapaneseVowels from the library's embedded copy.
panel=$(mktemp -d)
trap 'rm -rf "$panel"' EXIT
cp -r Tests/Data/panel/*/ "$panel"/
mkdir -p "$panel/JapaneseVowels" && cp Sources/LowBit/Resources/JapaneseVowels/*.ts "$panel/JapaneseVowels/"
echo "== MiniRocket (aeon $(python3 -c 'import aeon; print(aeon.__version__)'), 1 thread)" >&2
python3 Benchmarks/peers/minirocket.py --panel "$panel" --datasets "$datasets" --seeds "$seeds" > "$out/minirocket.jsonl"
echo "== LowBit" >&2
.build/release/lowbit bench accuracy --panel "$panel" --datasets "$datasets" --seeds "$seeds" \
    --out "$out/runs" --json > "$out/lowbit.json"
python3 Benchmarks/peers/panel_table.py "$out/lowbit.json" "$out/minirocket.jsonl" | tee "$out/table.md"
