// libFuzzer's driver entry (compiler-rt, libclang_rt.fuzzer_no_main). Weak, so
// that ordinary builds link without libFuzzer; scripts/fuzz links it in.
#include <stddef.h>
#include <stdint.h>
typedef int (*LLVMFuzzerCallback)(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, LLVMFuzzerCallback callback);
static inline int willis_fuzzer_linked(void) { return LLVMFuzzerRunDriver != 0; }
static inline int willis_run_fuzzer(int *argc, char ***argv, LLVMFuzzerCallback callback) {
  return LLVMFuzzerRunDriver(argc, argv, callback);
}
