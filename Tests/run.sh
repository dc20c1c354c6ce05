#!/usr/bin/env bash
# The test command (README, and CI through .ci/run). Installs what is missing, then:
#   1. the C kernel tests: every ISA this CPU runs against the scalar twins, the same
#      under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, and
#      the NEON kernels under qemu-aarch64 (with and without SDOT);
#   2. the Swift Testing suites under ASan, with UBSan on the C code (swift-driver has no
#      UBSan for Swift on Linux);
#   3. the Swift Testing suites in a release build (the C kernels at -O2) under
#      ThreadSanitizer: the threaded kernels, models trained side by side, the CLI's
#      child processes (built with it too). libomp's threads are made visible to TSan
#      by Archer, the OpenMP tool libomp-dev ships;
#   4. a smoke run of the fuzzers (Fuzz/run.sh: libFuzzer + ASan, 20 s per reader);
#   5. Examples/ClassifySeries, a package that depends on LowBit by version, built and run;
#   6. distributed training over Open MPI under `mpirun -np 2` (Tests/MPI/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup --tests
echo "== C kernel tests"
bash Tests/KernelsC/run.sh all
echo "== Swift tests under AddressSanitizer + UndefinedBehaviorSanitizer"
# One suppression, for a leak inside Foundation.Process (see the file).
LSAN_OPTIONS="suppressions=$PWD/Tests/lsan.supp" swift test --sanitize=address --disable-xctest --scratch-path .build-asan \
    -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
echo "== Swift tests, release build, under ThreadSanitizer"
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1)
[[ -n $archer ]] || { echo "libarcher.so not found (libomp-dev)"; exit 1; }
OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" \
    swift test -c release --sanitize=thread --disable-xctest --scratch-path .build-tsan
echo "== Fuzz smoke: the .ts, CSV and safetensors readers and the model loaders, 20 s each"
bash Fuzz/run.sh --seconds 20
echo "== A package that depends on LowBit by version: Examples/ClassifySeries"
bash Examples/run.sh
echo "== Distributed training over Open MPI: mpirun -np 2"
bash Tests/MPI/run.sh
