// gemm_bf16 (gemm_bf16.h): packing with float32 -> bfloat16 rounding, the portable micro-kernel, run-time choice of
// the AVX512_BF16 one, and OpenMP over fixed micro-tile blocks.
#include "gemm_bf16.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dispatch.h"
#include "parallel.h"

namespace cnnlite {

using gemm_bf16_detail::kMR;
using gemm_bf16_detail::MicroFn;

uint16_t bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN: quiet
  if ((u & 0x7F800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero or subnormal
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

bool cpu_has_avx512_bf16() {
#if defined(CNNLITE_X86) && defined(__GNUC__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
  }();
  return has;
#else
  return false;
#endif
}

namespace {

bool use_avx512_bf16() { return isa() == Isa::kAvx512 && cpu_has_avx512_bf16(); }

// bf16_round on the bits of a float32, branch-free so the packing loops vectorise; the same results.
typedef uint32_t __attribute__((__may_alias__)) alias_u32;
inline uint32_t round_bits(uint32_t u) {
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet = ((u >> 16) | 0x0040u) & 0xFFFFu;
  const uint32_t zero = (u >> 16) & 0x8000u;
  const uint32_t r = (u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rounded;
  return (u & 0x7F800000u) == 0 ? zero : r;
}

inline float ftz(float x) { return std::fabs(x) < FLT_MIN ? std::copysign(0.0f, x) : x; }

// The portable micro-kernel: vdpbf16ps emulated element by element (high pair element first, each step rounded,
// subnormal results flushed). Inputs are never subnormal (bf16_round flushed them), nor is acc.
template <int NV>
void micro_portable(idx kp, const uint32_t* a, idx ars, idx aps, const uint32_t* b, float* c, idx ldc, idx mv,
                    idx nv, const float* bias, bool relu) {
  constexpr int NR = 16 * NV;
  float acc[kMR][NR];
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = 0.0f;
  float bl[NR], bh[NR];
  for (idx q = 0; q < kp; ++q) {
    for (int j = 0; j < NR; ++j) {
      bl[j] = bf16_to_float(static_cast<uint16_t>(b[j] & 0xFFFFu));
      bh[j] = bf16_to_float(static_cast<uint16_t>(b[j] >> 16));
    }
    for (int i = 0; i < kMR; ++i) {
      const uint32_t pair = ars > 0 ? a[i * ars] : a[i];
      const float al = bf16_to_float(static_cast<uint16_t>(pair & 0xFFFFu));
      const float ah = bf16_to_float(static_cast<uint16_t>(pair >> 16));
      for (int j = 0; j < NR; ++j) {
        float t = ftz(acc[i][j] + ah * bh[j]);
        acc[i][j] = ftz(t + al * bl[j]);
      }
    }
    a += ars > 0 ? 1 : aps;
    b += NR;
  }
  for (idx i = 0; i < mv; ++i)
    for (idx j = 0; j < nv; ++j) {
      float r = acc[i][j];
      if (bias) r += bias[j];
      c[i * ldc + j] = relu && r < 0.0f ? 0.0f : r;
    }
}

MicroFn micro_for(int nv_vectors) {
#ifdef CNNLITE_X86
  if (use_avx512_bf16()) return gemm_bf16_detail::micro_avx512bf16(nv_vectors);
#endif
  return nv_vectors == 1 ? micro_portable<1> : micro_portable<2>;
}

void convert_rows_portable(uint32_t* dst, idx dst_ld, const float* x, idx ld, idx rows, idx k) {
  const idx kfull = k / 2;
  for (idx r = 0; r < rows; ++r) {
    const alias_u32* u = reinterpret_cast<const alias_u32*>(x + r * ld);
    uint32_t* __restrict d = dst + r * dst_ld;
    for (idx q = 0; q < kfull; ++q) d[q] = round_bits(u[2 * q]) | (round_bits(u[2 * q + 1]) << 16);
    if (k % 2) d[kfull] = round_bits(u[2 * kfull]);
  }
}

void pack_pairs_portable(uint32_t* dst, idx width, const float* x, idx ld, idx k, idx count) {
  const idx kp = (k + 1) / 2;
  for (idx q = 0; q < kp; ++q) {
    const alias_u32* l = reinterpret_cast<const alias_u32*>(x + 2 * q * ld);
    const alias_u32* h = 2 * q + 1 < k ? l + ld : nullptr;
    uint32_t* __restrict d = dst + q * width;
    for (idx r = 0; r < count; ++r) d[r] = round_bits(l[r]) | (h ? round_bits(h[r]) << 16 : 0u);
    for (idx r = count; r < width; ++r) d[r] = 0;
  }
}

gemm_bf16_detail::PackPairsFn pack_pairs_for() {
#ifdef CNNLITE_X86
  if (use_avx512_bf16()) return gemm_bf16_detail::pack_pairs_avx512bf16();
#endif
  return pack_pairs_portable;
}

gemm_bf16_detail::ConvertFn convert_for() {
#ifdef CNNLITE_X86
  if (use_avx512_bf16()) return gemm_bf16_detail::convert_rows_avx512bf16();
#endif
  return convert_rows_portable;
}

// Row-major a-slivers of op(a) = a (m x k, leading dimension lda): rows [0, m_sl * kMR) of dst (kp words each),
// rows past m zero.
void convert_a(uint32_t* dst, const float* a, idx lda, idx m, idx k, idx m_sl, gemm_bf16_detail::ConvertFn convert,
               bool parallel) {
  const idx kp = (k + 1) / 2;
  parallel_for(m_sl, [&](idx s) {
    const idx r0 = s * kMR, rows = std::min<idx>(kMR, m - r0);
    if (lda == k && k % 2 == 0)  // the sliver's rows and their pairs are contiguous: one run of rows * k floats
      convert(dst + r0 * kp, rows * kp, a + r0 * lda, rows * k, 1, rows * k);
    else
      convert(dst + r0 * kp, kp, a + r0 * lda, lda, rows, k);
    std::fill(dst + (r0 + rows) * kp, dst + (r0 + kMR) * kp, 0u);
  }, parallel);
}

inline idx ceil_div(idx a, idx b) { return (a + b - 1) / b; }

// Packs rows [r0, r0 + rows) of op(x) (rows x k; element (r, p) at x[r * ld + p], or x[p * ld + r] when trans) into
// one sliver of `width` rows, k-pair major: dst[q * width + r] = pair (2q, 2q + 1) of row r, zero-padded.
void pack_sliver(uint32_t* __restrict dst, const float* x, idx ld, bool trans, idx r0, idx rows, idx k, int width) {
  const idx kp = ceil_div(k, 2), kfull = k / 2;
  const alias_u32* u = reinterpret_cast<const alias_u32*>(x);
  if (trans) {  // rows of op(x) are columns of x: each k step reads `rows` contiguous floats
    pack_pairs_for()(dst, width, x + r0, ld, k, rows);
    return;
  }
  for (idx r = 0; r < width; ++r) {  // one row of x at a time: contiguous pairs
    if (r >= rows) {
      for (idx q = 0; q < kp; ++q) dst[q * width + r] = 0;
      continue;
    }
    const alias_u32* row = u + (r0 + r) * ld;
    for (idx q = 0; q < kfull; ++q) dst[q * width + r] = round_bits(row[2 * q]) | (round_bits(row[2 * q + 1]) << 16);
    if (kp > kfull) dst[kfull * width + r] = round_bits(row[2 * kfull]);
  }
}

struct PackATag;
struct PackBTag;

// Row slivers per task: a task computes a block of rows against one column sliver.
constexpr idx kSliversPerTask = 4;

}  // namespace

const char* gemm_bf16_isa() { return use_avx512_bf16() ? "avx512_bf16" : "portable"; }

void gemm_bf16(float* c, const float* a, const float* b, const float* bias, idx m, idx n, idx k, bool trans_a,
               bool trans_b, bool relu) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("gemm_bf16: sizes must be >= 0, got m=" + std::to_string(m) + " n=" +
                                std::to_string(n) + " k=" + std::to_string(k));
  if (m == 0 || n == 0) return;
  if (!c || (k > 0 && (!a || !b))) throw std::invalid_argument("gemm_bf16: null pointer");
  if (k == 0) {
    for (idx i = 0; i < m; ++i)
      for (idx j = 0; j < n; ++j) {
        const float r = bias ? 0.0f + bias[j] : 0.0f;
        c[i * n + j] = relu && r < 0.0f ? 0.0f : r;
      }
    return;
  }
  const int nvec = n <= 16 ? 1 : 2;
  const int NR = 16 * nvec;
  const idx kp = ceil_div(k, 2);
  const idx m_sl = ceil_div(m, kMR), n_sl = ceil_div(n, NR);
  const idx a_words = checked_product("gemm_bf16", {m_sl, kp, kMR});
  const idx b_words = checked_product("gemm_bf16", {n_sl, kp, NR});
  static_assert(sizeof(float) == sizeof(uint32_t), "packed pairs live in float workspaces");
  uint32_t* ap = reinterpret_cast<uint32_t*>(thread_workspace<PackATag>().get(a_words));
  uint32_t* bp = reinterpret_cast<uint32_t*>(thread_workspace<PackBTag>().get(b_words));
  const bool parallel = enough_work(static_cast<double>(m) * n * k);
  const idx lda = trans_a ? m : k, ldb = trans_b ? k : n;
  // op(b) (k x n) packed as slivers of its columns: column j of op(b) is row j of op(b)^T, which is b itself when
  // trans_b, else b read transposed.
  // op(a) = a: row-major pairs (a vector conversion, no transposition); a^T: pair-major, all m_sl * kMR rows of a
  // pair side by side (sliver s reads words [s * kMR, (s + 1) * kMR) of each), packed in runs of pairs.
  const idx a_width = m_sl * kMR;
  if (trans_a) {
    const gemm_bf16_detail::PackPairsFn pack = pack_pairs_for();
    constexpr idx kPairsPerTask = 64;
    parallel_for(ceil_div(kp, kPairsPerTask), [&](idx t) {
      const idx q0 = t * kPairsPerTask, q1 = std::min(kp, q0 + kPairsPerTask);
      pack(ap + q0 * a_width, a_width, a + 2 * q0 * lda, lda, std::min(k, 2 * q1) - 2 * q0, m);
    }, parallel);
  } else {
    convert_a(ap, a, lda, m, k, m_sl, convert_for(), parallel);
  }
  const idx ars = trans_a ? 0 : kp;
  parallel_for(n_sl, [&](idx s) {
    pack_sliver(bp + s * kp * NR, b, ldb, !trans_b, s * NR, std::min<idx>(NR, n - s * NR), k, NR);
  }, parallel);
  const MicroFn micro = micro_for(nvec);
  const idx row_tasks = ceil_div(m_sl, kSliversPerTask);
  parallel_for(row_tasks * n_sl, [&](idx t) {
    const idx js = t % n_sl, rt = t / n_sl;
    const idx j0 = js * NR, nv = std::min<idx>(NR, n - j0);
    const uint32_t* bs = bp + js * kp * NR;
    const float* bias_j = bias ? bias + j0 : nullptr;
    for (idx s = rt * kSliversPerTask; s < std::min(m_sl, (rt + 1) * kSliversPerTask); ++s) {
      const idx i0 = s * kMR;
      const uint32_t* as = trans_a ? ap + i0 : ap + i0 * kp;
      micro(kp, as, ars, a_width, bs, c + i0 * n + j0, n, std::min<idx>(kMR, m - i0), nv, bias_j, relu);
    }
  }, parallel);
}

namespace {
struct PackedSliverTag;
inline int packed_nr(idx n) { return n <= 16 ? 16 : 32; }
}  // namespace

idx gemm_bf16_packed_size(idx k, idx n) {
  if (k <= 0 || n <= 0) throw std::invalid_argument("gemm_bf16_packed_size: k and n must be > 0");
  const idx nr = packed_nr(n);
  return checked_product("gemm_bf16_packed_size", {ceil_div(n, nr), ceil_div(k, 2), nr});
}

void gemm_bf16_pack_b(uint32_t* bp, const float* b, idx ldb, idx k, idx n) {
  if (k <= 0 || n <= 0 || ldb < n) throw std::invalid_argument("gemm_bf16_pack_b: bad sizes");
  const idx nr = packed_nr(n), kp = ceil_div(k, 2);
  for (idx s = 0; s * nr < n; ++s)
    pack_sliver(bp + s * kp * nr, b, ldb, true, s * nr, std::min<idx>(nr, n - s * nr), k, static_cast<int>(nr));
}

void gemm_bf16_packed(float* c, idx ldc, const float* a, idx lda, const uint32_t* bp, idx m, idx n, idx k) {
  if (m < 0 || n <= 0 || k <= 0 || lda < k || ldc < n) throw std::invalid_argument("gemm_bf16_packed: bad sizes");
  if (m == 0) return;
  const idx kp = ceil_div(k, 2);
  const idx m_sl = ceil_div(m, kMR);
  uint32_t* ap = reinterpret_cast<uint32_t*>(
      thread_workspace<PackedSliverTag>().get(checked_product("gemm_bf16_packed", {m_sl, kMR, kp})));
  convert_a(ap, a, lda, m, k, m_sl, convert_for(), false);
  gemm_bf16_packed_pairs(c, ldc, ap, bp, m, n, k);
}

idx gemm_bf16_rows_per_sliver() { return kMR; }

void bf16_convert_pairs(uint32_t* dst, const float* x, idx count) {
  if (count < 0 || count % 2) throw std::invalid_argument("bf16_convert_pairs: count must be even and >= 0");
  if (count > 0) convert_for()(dst, count / 2, x, count, 1, count);
}

void gemm_bf16_packed_pairs(float* c, idx ldc, const uint32_t* ap, const uint32_t* bp, idx m, idx n, idx k) {
  if (m < 0 || n <= 0 || k <= 0 || ldc < n) throw std::invalid_argument("gemm_bf16_packed_pairs: bad sizes");
  const idx nr = packed_nr(n), kp = ceil_div(k, 2);
  const MicroFn micro = micro_for(nr == 16 ? 1 : 2);
  for (idx i0 = 0; i0 < m; i0 += kMR) {
    const idx rows = std::min<idx>(kMR, m - i0);
    for (idx j0 = 0; j0 < n; j0 += nr)
      micro(kp, ap + i0 * kp, kp, 0, bp + (j0 / nr) * kp * nr, c + i0 * ldc + j0, ldc, rows,
            std::min<idx>(nr, n - j0), nullptr, false);
  }
}

}  // namespace cnnlite
