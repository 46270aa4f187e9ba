// Run-time choice between the portable and the AVX-512 builds of the pooling/dropout inner loops.
// The AVX-512 variants are the same C++ source compiled with __attribute__((target)); set the environment variable
// CNNLITE_OPS_ISA=generic (read once, at first use) to force the portable code, e.g. to test it on an AVX-512 host.
#pragma once
#include <cstdlib>
#include <cstring>

namespace cnnlite {

#if defined(__x86_64__) && defined(__GNUC__)
#define CNNLITE_OPS_AVX512 1
#define CNNLITE_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define CNNLITE_OPS_AVX512 0
#define CNNLITE_TARGET_AVX512
#endif

// True when the AVX-512 variants should run on this CPU.
inline bool ops_use_avx512() {
#if CNNLITE_OPS_AVX512
  static const bool use = [] {
    const char* want = std::getenv("CNNLITE_OPS_ISA");
    if (want && std::strcmp(want, "generic") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  }();
  return use;
#else
  return false;
#endif
}

}  // namespace cnnlite
