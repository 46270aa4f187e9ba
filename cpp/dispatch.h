// The one ISA dispatch. Every kernel with per-ISA builds (the GEMM micro-kernels, the convolution loops, the
// pooling / dropout / activation loops) asks isa() which build to run. The level is detected once from the CPU and can
// be capped with set_isa, for every kernel at once (to test or compare the lower builds on a wider CPU); nothing is
// read from the environment here (cnnlite/config.py turns CNNLITE_ISA into a set_isa call).
//
// Per-ISA builds of a loop are the same C++ source compiled for each level: separate translation units with their own
// flags (gemm_kernel_*.cpp), or functions stamped out by CNNLITE_ISA_VARIANTS below with a target attribute each. A
// build's flags decide its rounding where the compiler may contract a * b + c into an FMA (the AVX-512F build may, in
// 512-bit and scalar code; the AVX2 and generic builds of the convolution loops have no FMA), so the levels may differ
// in the last bits; each level is bitwise identical for any thread count.
#pragma once

namespace cnnlite {

// Ordered: a higher level may use everything a lower one does.
enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

// "generic", "avx2", "avx512"; and back (std::invalid_argument for any other name).
const char* isa_name(Isa level);
Isa isa_from_name(const char* name);

// The widest level this CPU supports: avx512 = AVX-512 F, VL, BW and DQ; avx2 = AVX2 and FMA; else generic (always
// generic off x86-64). Detected once.
Isa cpu_isa_level();

// The level kernels use: the CPU's level, capped by set_isa.
Isa isa();

// Caps the level at `level` for later kernel calls and returns the previous cap. A level the CPU lacks is
// std::invalid_argument (downgrades only). Not to be called while kernels run on other threads.
Isa set_isa(Isa level);

}  // namespace cnnlite

// Function attributes of the per-ISA builds (x86-64 with GCC or Clang; elsewhere only the generic build exists).
#if defined(CNNLITE_X86) && defined(__GNUC__)
#define CNNLITE_HAVE_ISA_VARIANTS 1
#define CNNLITE_TARGET_AVX2 __attribute__((target("avx2")))
#define CNNLITE_TARGET_AVX512F __attribute__((target("avx512f")))
#define CNNLITE_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define CNNLITE_HAVE_ISA_VARIANTS 0
#define CNNLITE_TARGET_AVX2
#define CNNLITE_TARGET_AVX512F
#define CNNLITE_TARGET_AVX512
#endif

// CNNLITE_ISA_VARIANTS(attrs, name, impl, params, args): defines `void name params` that runs `impl args` built for
// the level isa() names: name_avx512 (AVX-512F), name_avx2 (AVX2, no FMA) or name_generic (the baseline), each with the
// extra attributes attrs. impl must be always_inline (as must every helper and lambda it calls), so that it is
// compiled into each build.
#if CNNLITE_HAVE_ISA_VARIANTS
// The entry point of a set of variants: calls the build of the level in use.
#define CNNLITE_ISA_DISPATCH(name, params, args)               \
  void name params {                                          \
    switch (::cnnlite::isa()) {                               \
      case ::cnnlite::Isa::kAvx512: return name##_avx512 args; \
      case ::cnnlite::Isa::kAvx2: return name##_avx2 args;    \
      default: return name##_generic args;                    \
    }                                                         \
  }
#define CNNLITE_ISA_VARIANTS(attrs, name, impl, params, args) \
  attrs void name##_generic params { impl args; }             \
  attrs CNNLITE_TARGET_AVX2 void name##_avx2 params { impl args; } \
  attrs CNNLITE_TARGET_AVX512F void name##_avx512 params { impl args; } \
  CNNLITE_ISA_DISPATCH(name, params, args)
#else
#define CNNLITE_ISA_VARIANTS(attrs, name, impl, params, args) \
  attrs void name params { impl args; }
#endif

// As CNNLITE_ISA_VARIANTS, with impl a template on the level (impl<Isa::kAvx512> in name_avx512, and so on): for
// loops that take a hand-written path at some level and the shared source elsewhere.
#if CNNLITE_HAVE_ISA_VARIANTS
#define CNNLITE_ISA_VARIANTS_BY_LEVEL(attrs, name, impl, params, args)                    \
  attrs void name##_generic params { impl<::cnnlite::Isa::kGeneric> args; }               \
  attrs CNNLITE_TARGET_AVX2 void name##_avx2 params { impl<::cnnlite::Isa::kAvx2> args; } \
  attrs CNNLITE_TARGET_AVX512F void name##_avx512 params { impl<::cnnlite::Isa::kAvx512> args; } \
  CNNLITE_ISA_DISPATCH(name, params, args)
#else
#define CNNLITE_ISA_VARIANTS_BY_LEVEL(attrs, name, impl, params, args) \
  attrs void name params { impl<::cnnlite::Isa::kGeneric> args; }
#endif
