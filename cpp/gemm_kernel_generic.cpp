// Portable GEMM micro-kernel: 4 x 16 tile in plain C++ that the compiler vectorises for the baseline ISA.
#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 4;
constexpr int NR = 16;

void micro_4x16(idx kc, const float* __restrict a, const float* __restrict b, float* c, idx ldc, float alpha,
                float beta, idx mv, idx nv, const float* bias) {
  float acc[MR][NR] = {};
  for (idx p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
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

void pack_a(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc) {
  pack_a_tmpl<MR>(dst, a, lda, trans, mc, kc);
}
void pack_b(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc) {
  pack_b_tmpl<NR>(dst, b, ldb, trans, kc, nc);
}
void macro(idx mc, idx nc, idx kc, const float* ap, const float* bp, float* c, idx ldc, float alpha, float beta,
           const float* bias) {
  macro_tmpl<MR, NR>(micro_4x16, mc, nc, kc, ap, bp, c, ldc, alpha, beta, bias);
}

const GemmKernel kKernel = {"generic", MR, NR, /*kc=*/256, /*mc=*/128, /*nc=*/2048, pack_a, pack_b, macro};

}  // namespace

const GemmKernel* gemm_kernel_generic() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
