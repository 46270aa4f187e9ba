#include "activations.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "dispatch.h"
#include "parallel.h"

// No fused multiply-adds in this file: the AVX-512 builds of sigmoid and tanh must round exactly like the portable
// ones, so results are bitwise identical on every ISA.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace cnnlite {

namespace {

void require_size(idx n, const char* what) {
  if (n < 0) throw std::invalid_argument(what);
}

inline __attribute__((always_inline)) uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline __attribute__((always_inline)) float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// c ? a : b on bit patterns, as arithmetic. Written so because GCC (under the default -ftrapping-math) sinks the
// float operations feeding only one arm of a ?: into a branch and then refuses to vectorise the loop.
inline __attribute__((always_inline)) uint32_t select_bits(bool c, uint32_t a, uint32_t b) {
  return b ^ ((a ^ b) & (0u - static_cast<uint32_t>(c)));
}

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;

// exp(-a) for a = |x| given as the bit pattern of a non-negative float, without a libm call so loops over it
// vectorise. Cephes's expf scheme: -a = k ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact reduction), a
// degree-6 polynomial for exp(r), 2^k from exponent bits. Returns 0 for a > -log(FLT_MIN) (the true value is
// subnormal) and NaN for NaN.
inline __attribute__((always_inline)) float exp_neg_abs(uint32_t abs_bits) {
  constexpr float kMaxArg = 87.33654475f;  // -log(FLT_MIN)
  const uint32_t max_bits = bits_of(kMaxArg);
  const bool underflow = abs_bits > max_bits;  // includes inf and NaN
  const float x = -float_of(select_bits(underflow, max_bits, abs_bits));
  // k = floor(x log2(e) + 0.5) in [-126, 0]; shifted to be positive so truncation is the floor.
  const int32_t k = static_cast<int32_t>(x * 1.44269504088896341f + 126.5f) - 126;
  const float kf = static_cast<float>(k);
  const float r = (x - kf * 0.693359375f) - kf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const float value = p * float_of(static_cast<uint32_t>(k + 127) << 23);
  const uint32_t finite = select_bits(underflow, 0u, bits_of(value));
  return float_of(select_bits(abs_bits > kInfBits, abs_bits, finite));  // NaN stays NaN
}

// 1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|.
inline __attribute__((always_inline)) float sigmoid_one(float x) {
  const uint32_t u = bits_of(x);
  const float e = exp_neg_abs(u & kAbsMask);
  const float inv = 1.0f / (1.0f + e);
  const float neg = e * inv;
  return float_of(select_bits(u >> 31, bits_of(neg), bits_of(inv)));
}

// tanh(x): Cephes's odd polynomial for |x| < 0.625 (where 1 - e would cancel), else (1 - e) / (1 + e) with
// e = exp(-2|x|) and the sign of x.
inline __attribute__((always_inline)) float tanh_one(float x) {
  const uint32_t u = bits_of(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float e = exp_neg_abs(bits_of(2.0f * float_of(u & kAbsMask)));
  const float large_abs = (1.0f - e) / (1.0f + e);
  const uint32_t large = bits_of(large_abs) | (u & ~kAbsMask);
  return float_of(select_bits((u & kAbsMask) < bits_of(0.625f), bits_of(small), large));
}

// y[i] = f(x[i]) over [begin, end), inlined into a portable and an AVX-512 build per function.
template <float (*F)(float)>
inline __attribute__((always_inline)) void map_range(float* __restrict y, const float* __restrict x, idx begin,
                                                     idx end) {
  for (idx i = begin; i < end; ++i) y[i] = F(x[i]);
}

void sigmoid_range_generic(float* y, const float* x, idx begin, idx end) { map_range<sigmoid_one>(y, x, begin, end); }
CNNLITE_TARGET_AVX512
void sigmoid_range_avx512(float* y, const float* x, idx begin, idx end) { map_range<sigmoid_one>(y, x, begin, end); }
void tanh_range_generic(float* y, const float* x, idx begin, idx end) { map_range<tanh_one>(y, x, begin, end); }
CNNLITE_TARGET_AVX512
void tanh_range_avx512(float* y, const float* x, idx begin, idx end) { map_range<tanh_one>(y, x, begin, end); }

// See relu_backward_column_sums. Only selects and adds (no FMA to contract), so both builds round alike.
inline __attribute__((always_inline)) void relu_mask_sums(float* __restrict dz, float* __restrict sums,
                                                          const float* __restrict dy, const float* __restrict y,
                                                          idx rows, idx cols) {
  if (!sums) {
    for (idx i = 0; i < rows * cols; ++i) {
      const float d = dy[i];
      dz[i] = y[i] > 0.0f ? d : 0.0f;
    }
    return;
  }
  for (idx j = 0; j < cols; ++j) sums[j] = 0.0f;
  for (idx r = 0; r < rows; ++r, dz += cols, dy += cols, y += cols) {
    for (idx j = 0; j < cols; ++j) {
      const float g = dy[j];  // loaded unconditionally so the select vectorises
      const float d = y[j] > 0.0f ? g : 0.0f;
      dz[j] = d;
      sums[j] += d;
    }
  }
}

void relu_mask_sums_generic(float* dz, float* sums, const float* dy, const float* y, idx rows, idx cols) {
  relu_mask_sums(dz, sums, dy, y, rows, cols);
}
CNNLITE_TARGET_AVX512
void relu_mask_sums_avx512(float* dz, float* sums, const float* dy, const float* y, idx rows, idx cols) {
  relu_mask_sums(dz, sums, dy, y, rows, cols);
}

}  // namespace

void relu_forward(float* y, const float* x, idx n) {
  require_size(n, "relu_forward: n must be non-negative");
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict yo = y;
    const float* __restrict xi = x;
    for (idx i = begin; i < end; ++i) yo[i] = xi[i] < 0.0f ? 0.0f : xi[i];
  });
}

void relu_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "relu_backward: n must be non-negative");
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) {
      const float d = dyi[i];  // loaded unconditionally so the select vectorises
      dxo[i] = yi[i] > 0.0f ? d : 0.0f;
    }
  });
}

void relu_backward_column_sums(float* dz, float* sums, const float* dy, const float* y, idx rows, idx cols) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("relu_backward_column_sums: sizes must be non-negative");
  (isa() == Isa::kAvx512 ? relu_mask_sums_avx512 : relu_mask_sums_generic)(dz, sums, dy, y, rows, cols);
}

void sigmoid_forward(float* y, const float* x, idx n) {
  require_size(n, "sigmoid_forward: n must be non-negative");
  const auto range_fn = isa() == Isa::kAvx512 ? sigmoid_range_avx512 : sigmoid_range_generic;
  parallel_for_elements(n, [=](idx begin, idx end) { range_fn(y, x, begin, end); });
}

void sigmoid_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "sigmoid_backward: n must be non-negative");
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) dxo[i] = dyi[i] * (yi[i] * (1.0f - yi[i]));
  });
}

void tanh_forward(float* y, const float* x, idx n) {
  require_size(n, "tanh_forward: n must be non-negative");
  const auto range_fn = isa() == Isa::kAvx512 ? tanh_range_avx512 : tanh_range_generic;
  parallel_for_elements(n, [=](idx begin, idx end) { range_fn(y, x, begin, end); });
}

void tanh_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "tanh_backward: n must be non-negative");
  parallel_for_elements(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) dxo[i] = dyi[i] * (1.0f - yi[i] * yi[i]);
  });
}

void softmax_row(float* __restrict y, const float* __restrict x, idx k) {
  float row_max = x[0];
  for (idx j = 1; j < k; ++j) row_max = x[j] > row_max ? x[j] : row_max;
  float sum = 0.0f;
  for (idx j = 0; j < k; ++j) {
    y[j] = std::exp(x[j] - row_max);
    sum += y[j];
  }
  const float inv = 1.0f / sum;
  for (idx j = 0; j < k; ++j) y[j] *= inv;
}

void softmax_forward(float* y, const float* x, idx rows, idx k) {
  if (rows < 0 || k <= 0) throw std::invalid_argument("softmax_forward: rows must be >= 0 and k > 0");
  parallel_for_blocks(rows, rows_per_block(k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) softmax_row(y + r * k, x + r * k, k);
  });
}

void softmax_backward(float* dx, const float* dy, const float* y, idx rows, idx k) {
  if (rows < 0 || k <= 0) throw std::invalid_argument("softmax_backward: rows must be >= 0 and k > 0");
  parallel_for_blocks(rows, rows_per_block(k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) {
      const float* __restrict dyr = dy + r * k;
      const float* __restrict yr = y + r * k;
      float* __restrict dxr = dx + r * k;
      float dot = 0.0f;
      for (idx j = 0; j < k; ++j) dot += dyr[j] * yr[j];
      for (idx j = 0; j < k; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
    }
  });
}

}  // namespace cnnlite
