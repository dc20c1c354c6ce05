#!/usr/bin/env bash
# C-level kernel tests: every ISA this host runs, natively; the same under AddressSanitizer
# and UndefinedBehaviorSanitizer; and the NEON kernels cross-compiled for aarch64 under
# qemu-aarch64, with SDOT (qemu's default cpu) and without it (cortex-a53).
# ThreadSanitizer runs them too, with libomp's threads made visible to it by Archer (the
# OpenMP tool libomp-dev ships; without it TSan reports the runtime's own synchronisation).
# Usage: Tests/KernelsC/run.sh [native|sanitize|tsan|neon|all] [seed]
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
seed=${2:-$(date +%s)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=(Tests/KernelsC/kernel_tests.c CSources/LowBitKernels/*.c)
inc=(-ICSources/LowBitKernels/include -ICSources/LowBitKernels)
cflags=(-std=c11 -Wall -Wextra -Werror)
echo "kernel tests, seed $seed"

build() { # build OUTPUT FLAGS... ; linker chatter goes to a log, shown only on failure
    local o=$1; shift
    if ! clang "${cflags[@]}" "${inc[@]}" "$@" "${src[@]}" -o "$o" >"$out/build.log" 2>&1; then
        cat "$out/build.log"; return 1
    fi
}

if [[ $what == native || $what == all ]]; then
    echo "== native (every x86 ISA this CPU has), -O2"
    build "$out/native" -O2 -lm -lomp5 -lpthread
    "$out/native" "$seed"
fi
if [[ $what == sanitize || $what == all ]]; then
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
    build "$out/san" -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -lm -lomp5 -lpthread
    ASAN_OPTIONS=detect_leaks=1 "$out/san" "$seed"
fi
if [[ $what == tsan || $what == all ]]; then
    echo "== ThreadSanitizer (OpenMP through Archer)"
    archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1)
    [[ -n $archer ]] || { echo "libarcher.so not found (libomp-dev)"; exit 1; }
    # The toolchain's TSan runtime intercepts libdispatch too, so it links the toolchain's copy.
    swiftlib=$(dirname "$(command -v swiftc)")/../lib/swift/linux
    build "$out/tsan" -O1 -g -fsanitize=thread -lm -lomp5 -lpthread -L"$swiftlib" -Wl,-rpath,"$swiftlib" -ldispatch -lBlocksRuntime
    OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" "$out/tsan" "$seed"
fi
if [[ $what == neon || $what == all ]]; then
    echo "== aarch64 NEON under qemu-aarch64"
    build "$out/arm64" --target=aarch64-linux-gnu -O2 -lm -lgomp -lpthread
    echo "-- cpu max (has SDOT)"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/arm64" "$seed"
    echo "-- cpu cortex-a53 (no SDOT)"
    qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu "$out/arm64" "$seed"
fi
