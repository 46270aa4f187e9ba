#include "dropout.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dispatch.h"
#include "parallel.h"

namespace cnnlite {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// out[i] = in[i] * scale where element i is kept, else 0, for i in [begin, end). Inlined into a portable and an
// AVX-512 build (the latter vectorises the 64-bit multiplies).
inline __attribute__((always_inline)) void mask_range(float* __restrict out, const float* __restrict in, idx begin,
                                                      idx end, uint64_t key, uint64_t threshold, float scale,
                                                      uint64_t offset) {
  for (idx i = begin; i < end; ++i) {
    const uint64_t bits = mix64(key + kGolden * (offset + static_cast<uint64_t>(i + 1))) >> 11;
    // Branch-free select (the keep decision is random, a branch would mispredict half the time).
    const uint32_t keep = 0u - static_cast<uint32_t>(bits >= threshold);
    uint32_t value;
    const float kept = in[i] * scale;
    std::memcpy(&value, &kept, sizeof value);
    value &= keep;
    std::memcpy(&out[i], &value, sizeof value);
  }
}

void mask_range_generic(float* out, const float* in, idx begin, idx end, uint64_t key, uint64_t threshold,
                        float scale, uint64_t offset) {
  mask_range(out, in, begin, end, key, threshold, scale, offset);
}

CNNLITE_TARGET_AVX512
void mask_range_avx512(float* out, const float* in, idx begin, idx end, uint64_t key, uint64_t threshold, float scale,
                       uint64_t offset) {
  mask_range(out, in, begin, end, key, threshold, scale, offset);
}

// Applies the mask of (seed, step) with inverted scaling: out = in * scale where kept, else 0.
void apply_mask(float* out, const float* in, idx n, double rate, uint64_t seed, uint64_t step, uint64_t offset,
                const char* fn) {
  if (n < 0) throw std::invalid_argument(std::string(fn) + ": n must be non-negative");
  if (!(rate >= 0.0 && rate < 1.0)) throw std::invalid_argument(std::string(fn) + ": rate must be in [0, 1)");
  if (rate == 0.0) {
    if (out != in && n > 0) std::memcpy(out, in, sizeof(float) * n);
    return;
  }
  const uint64_t key = mix64(seed + kGolden * mix64(step + kGolden));
  // Keep iff the top 53 bits, read as u in [0, 1), satisfy u >= rate; rate * 2^53 is exact in double.
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(std::ldexp(rate, 53)));
  const float scale = static_cast<float>(1.0 / (1.0 - rate));
  const auto range_fn = isa() == Isa::kAvx512 ? mask_range_avx512 : mask_range_generic;
  parallel_for_elements(n, [=](idx begin, idx end) { range_fn(out, in, begin, end, key, threshold, scale, offset); });
}

}  // namespace

void dropout_forward(float* y, const float* x, idx n, double rate, uint64_t seed, uint64_t step, uint64_t offset) {
  apply_mask(y, x, n, rate, seed, step, offset, "dropout_forward");
}

void dropout_backward(float* dx, const float* dy, idx n, double rate, uint64_t seed, uint64_t step,
                      uint64_t offset) {
  apply_mask(dx, dy, n, rate, seed, step, offset, "dropout_backward");
}

}  // namespace cnnlite
