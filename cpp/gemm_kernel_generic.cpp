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
                         idx nv, const float* bias, bool relu) {
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
        row[j] = relu && r < 0.0f ? 0.0f : r;  // NaN propagates, as relu_forward
      }
    }
  }
};

template <int NR>
struct MicroInd {
  static inline void run(idx taps, idx cin, const float* const* ptrs, const float* __restrict b, float* c, idx ldc,
                         idx mv, idx nv, const float* bias, bool relu) {
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
      for (idx j = 0; j < nv; ++j) {
        const float r = bias ? acc[i][j] + bias[j] : acc[i][j];
        c[i * ldc + j] = relu && r < 0.0f ? 0.0f : r;
      }
  }
};

const GemmKernel kKernel =
    KernelTable<MR, 16, 8, Micro, MicroInd>::make("generic", /*kc=*/256, /*mc=*/128, /*nc=*/2048);

}  // namespace

const GemmKernel* gemm_kernel_generic() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
