#!/usr/bin/env bash
# Builds and runs Examples/ClassifySeries, a package that depends on LowBit by version, as a
# user's package would: this working tree is committed to a scratch repository tagged 0.1.0,
# the example resolves LowBit from it (LOWBIT_URL) and trains, saves, loads and classifies
# on ItalyPowerDemand. Fails if it does not build, exits non-zero, or prints no answer.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/lowbit"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [[ -e $f ]] && cp --parents "$f" "$work/lowbit/"
done
git -C "$work/lowbit" init -q
git -C "$work/lowbit" add -A
git -C "$work/lowbit" -c user.name=example -c user.email=example@localhost commit -qm "LowBit as released"
git -C "$work/lowbit" tag 0.1.0
cp -r Examples/ClassifySeries "$work/example"
rm -rf "$work/example/.build"
export LOWBIT_URL="file://$work/lowbit"
swift build --package-path "$work/example"
data=Tests/Data/panel/ItalyPowerDemand
"$work/example/.build/debug/ClassifySeries" "$data/ItalyPowerDemand_TRAIN.ts" "$data/ItalyPowerDemand_TEST.ts" \
    "$work/models" | tee "$work/out.txt"
for mode in float int8 int4 ternary binary; do
    grep -q "^$mode " "$work/out.txt" || { echo "Examples/run.sh: no result for $mode"; exit 1; }
done
grep -q "^classified as " "$work/out.txt" || { echo "Examples/run.sh: the example classified nothing"; exit 1; }
echo "Examples/run.sh: ClassifySeries built against LowBit 0.1.0 and ran"
