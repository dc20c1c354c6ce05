#ifndef LOWBIT_FUZZ_SUPPORT_H
#define LOWBIT_FUZZ_SUPPORT_H
#include <stddef.h>
#include <stdint.h>

/* SwiftPM links an executable target with `main` aliased to `<Target>_main`, which a
 * -parse-as-library target does not emit, so libFuzzer's own main cannot be used: each
 * target defines <Target>_main and hands over to libFuzzer's driver from there. */
int lowbit_fuzz_run(int argc, char **argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
