// Portable GEMM micro-kernels in plain C++ that the compiler vectorises for the baseline ISA: 4 x 16 and 4 x 8.
#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 4;

template <int NR>
struct Micro {
  template <class Acc>
  static inline void run(idx kc, Acc a, const float* __restrict b, float* c, idx ldc, float alpha, float beta, idx mv,
                         idx nv, const float* bias) {
    float acc[MR][NR] = {};
    for (idx p = 0; p < kc; ++p) {
      for (int i = 0; i < MR; ++i) {
        const float ai = *a.at(i);
        for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
      }
      a.next();
      b += NR;
    }
    for (idx i = 0; i < mv; ++i) {
      float* row = c + i * ldc;
      for (idx j = 0; j < nv; ++j) {
        float r = alpha * acc[i][j];
        if (beta != 0.0f) r += beta * row[j];
        if (bias) r += bias[j];
        row[j] = r;
      }
    }
  }
};

template <int NR>
struct MicroInd {
  static inline void run(idx taps, idx cin, const float* const* ptrs, const float* __restrict b, float* c, idx ldc,
                         idx mv, idx nv, const float* bias) {
    float acc[MR][NR] = {};
    for (idx t = 0; t < taps; ++t, ptrs += MR) {
      for (idx ci = 0; ci < cin; ++ci) {
        for (int i = 0; i < MR; ++i) {
          const float ai = ptrs[i][ci];
          for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
        }
        b += NR;
      }
    }
    for (idx i = 0; i < mv; ++i)
      for (idx j = 0; j < nv; ++j) c[i * ldc + j] = bias ? acc[i][j] + bias[j] : acc[i][j];
  }
};

void pack_a(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc) {
  pack_a_tmpl<MR>(dst, a, lda, trans, mc, kc);
}
void pack_b(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc, idx nr) {
  if (nr == 8)
    pack_b_tmpl<8>(dst, b, ldb, trans, kc, nc);
  else
    pack_b_tmpl<16>(dst, b, ldb, trans, kc, nc);
}
void macro(idx mc, idx nc, idx kc, const float* a, idx lda, int mode, const float* bp, idx nr, float* c, idx ldc,
           float alpha, float beta, const float* bias, float* edge) {
  if (nr == 8)
    macro_tmpl<MR, 8, Micro>(mc, nc, kc, a, lda, mode, bp, c, ldc, alpha, beta, bias, edge);
  else
    macro_tmpl<MR, 16, Micro>(mc, nc, kc, a, lda, mode, bp, c, ldc, alpha, beta, bias, edge);
}
void macro_indirect(idx mc, idx nc, idx taps, idx cin, const float* const* ind, const float* zero, const float* bp,
                    idx nr, float* c, idx ldc, const float* bias, const float** scratch) {
  if (nr == 8)
    macro_indirect_tmpl<MR, 8, MicroInd>(mc, nc, taps, cin, ind, zero, bp, c, ldc, bias, scratch);
  else
    macro_indirect_tmpl<MR, 16, MicroInd>(mc, nc, taps, cin, ind, zero, bp, c, ldc, bias, scratch);
}
void macro_indirect_t(idx mc, idx nc, idx kc, const float* const* ind, idx taps, idx span, idx row0, idx m,
                      const float* bp, idx nr, float* c, idx ldc, float beta, float* edge) {
  if (nr == 8)
    macro_indirect_t_tmpl<MR, 8, Micro>(mc, nc, kc, ind, taps, span, row0, m, bp, c, ldc, beta, edge);
  else
    macro_indirect_t_tmpl<MR, 16, Micro>(mc, nc, kc, ind, taps, span, row0, m, bp, c, ldc, beta, edge);
}

const GemmKernel kKernel = {"generic",   MR,     16,     8,     /*kc=*/256,     /*mc=*/128,
                            /*nc=*/2048, pack_a, pack_b, macro, macro_indirect, macro_indirect_t};

}  // namespace

const GemmKernel* gemm_kernel_generic() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
