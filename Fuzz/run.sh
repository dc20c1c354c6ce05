#!/usr/bin/env bash
# Builds LowBit's libFuzzer targets (AddressSanitizer + libFuzzer, release) and runs each,
# seeded with the real files in Fuzz/Corpus/ (the inputs it finds go to a scratch corpus,
# not into the repository). A crash, a sanitizer report, a hang (-timeout) or an allocation
# past -rss_limit_mb / -malloc_limit_mb stops the fuzzer with a non-zero status; the input
# that did it is written as crash-*/timeout-*/oom-* in the current directory.
#   Fuzz/run.sh [--seconds N | --runs N] [TARGET ...]    targets: FuzzTS FuzzCSV FuzzSafeTensors FuzzModelFile
set -euo pipefail
cd "$(dirname "$0")"
limit=(-max_total_time=60)
while (($#)); do
    case $1 in
        --seconds) limit=(-max_total_time="$2"); shift 2 ;;
        --runs) limit=(-runs="$2"); shift 2 ;;
        *) break ;;
    esac
done
targets=("${@:-FuzzTS FuzzCSV FuzzSafeTensors FuzzModelFile}")
targets=(${targets[@]})
bash ../.ci/setup
# lld: gold fails to link these (an internal error in its error reporting).
swift build -c release --scratch-path .build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld 2>&1 | tail -3
declare -A seeds=([FuzzTS]=ts [FuzzCSV]=csv [FuzzSafeTensors]=model [FuzzModelFile]=model)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    [[ -n ${seeds[$t]:-} ]] || { echo "unknown target $t" >&2; exit 2; }
    mkdir -p "$scratch/$t"
    echo "== $t (${limit[*]})"
    start=$SECONDS
    status=0
    ASAN_OPTIONS=detect_leaks=0 ".build/release/$t" "$scratch/$t" "Corpus/${seeds[$t]}" "${limit[@]}" \
        -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 > "$scratch/$t.log" 2>&1 || status=$?
    grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY|Test unit written|Fatal error" "$scratch/$t.log" || true
    ((status == 0)) || tail -40 "$scratch/$t.log"
    echo "$t: exit $status after $((SECONDS - start)) s"
    ((status == 0)) || exit "$status"
done
