#include "conv2d_direct.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>

#include "dispatch.h"
#include "gemm.h"
#include "gemm_skinny.h"
#include "parallel.h"

// The loops below use GCC/Clang vector extensions (one vector = a block of output channels), built per ISA level
// (CNNLITE_ISA_VARIANTS, dispatch.h). The AVX-512F build may contract multiply-adds into FMAs (512-bit and scalar
// code), the others have no FMA: the levels may differ in the last bits.
#define CNNLITE_INLINE inline __attribute__((always_inline))
// Lambdas too: a lambda is its own function, compiled for the default target unless inlined into the ISA build.
#define CNNLITE_INLINE_LAMBDA __attribute__((always_inline))
// Vectors are only passed between always-inlined functions, so the ABI note about passing them by value is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace cnnlite {

namespace {

// A block of CB output channels.
template <int CB>
struct Lanes {
  typedef float V __attribute__((vector_size(CB * sizeof(float))));
  static CNNLITE_INLINE V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static CNNLITE_INLINE void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
  static CNNLITE_INLINE V zero() { return V{} * 0.0f; }
  // r < 0 ? 0 : r, as relu_forward (NaN and -0 pass through).
  static CNNLITE_INLINE V relu(V v) {
    const V z = zero();
    return v < z ? z : v;
  }
};

// Output pixels per forward register block: P accumulators of CB lanes each.
constexpr idx kPixelBlock = 8;

// Valid kernel taps along one axis for output coordinate o: [k0, k1) with 0 <= o*stride - pad + k < extent.
CNNLITE_INLINE void tap_range(idx o, idx stride, idx pad, idx kernel, idx extent, idx& k0, idx& k1) {
  const idx i0 = o * stride - pad;
  k0 = std::max<idx>(0, -i0);
  k1 = std::min<idx>(kernel, extent - i0);
}

// acc[p] (p < P) += sum over valid taps of x * k for the output pixels ox0 + p of one output row, whose input rows
// start at xi (the image) and whose kernel rows are [ky0, ky1). kx0, kx1: the kx range (the same for every p).
template <int CB, int P>
CNNLITE_INLINE void accumulate_pixels(typename Lanes<CB>::V* acc, const float* xi, const float* k,
                                      const Conv2dGeometry& s, idx iy0, idx ky0, idx ky1, idx ox0, idx kx0, idx kx1,
                                      idx co0) {
  using L = Lanes<CB>;
  const idx cin = s.cin, row = s.w * cin, xstep = s.sw * cin;
  for (idx ky = ky0; ky < ky1; ++ky) {
    const float* xr = xi + (iy0 + ky) * row + (ox0 * s.sw - s.pl) * cin;
    const float* kr = k + ky * s.kw * cin * s.cout + co0;
    for (idx kx = kx0; kx < kx1; ++kx) {
      for (idx ci = 0; ci < cin; ++ci) {
        const typename L::V wv = L::load(kr + (kx * cin + ci) * s.cout);
        const float* xp = xr + kx * cin + ci;
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) acc[p] += xp[p * xstep] * wv;
      }
    }
  }
}

// One output row (image img, row oy), output channels [co0, co0 + CB).
template <int CB>
CNNLITE_INLINE void forward_row_block(float* yrow, const float* xi, const float* k, const float* bias,
                                      const Conv2dGeometry& s, idx oy, idx co0, bool relu) {
  using L = Lanes<CB>;
  using V = typename L::V;
  idx ky0, ky1;
  tap_range(oy, s.sh, s.pt, s.kh, s.h, ky0, ky1);
  const idx iy0 = oy * s.sh - s.pt;
  const V init = bias ? L::load(bias + co0) : L::zero();
  auto finish = [&](V* acc, idx ox0, int count) CNNLITE_INLINE_LAMBDA {
    for (int p = 0; p < count; ++p) L::store(yrow + (ox0 + p) * s.cout + co0, relu ? L::relu(acc[p]) : acc[p]);
  };
  // Pixels whose whole kernel row lies inside the input: [ox_lo, ox_hi).
  const idx ox_lo = std::min<idx>(s.ow, (s.pl + s.sw - 1) / s.sw);
  const idx ox_hi = std::max<idx>(ox_lo, std::min<idx>(s.ow, s.w + s.pl - s.kw >= 0 ? (s.w + s.pl - s.kw) / s.sw + 1
                                                                                       : 0));
  auto single = [&](idx ox) CNNLITE_INLINE_LAMBDA {
    V acc[1] = {init};
    idx kx0, kx1;
    tap_range(ox, s.sw, s.pl, s.kw, s.w, kx0, kx1);
    accumulate_pixels<CB, 1>(acc, xi, k, s, iy0, ky0, ky1, ox, kx0, kx1, co0);
    finish(acc, ox, 1);
  };
  for (idx ox = 0; ox < ox_lo; ++ox) single(ox);
  idx ox = ox_lo;
  for (; ox + kPixelBlock <= ox_hi; ox += kPixelBlock) {
    V acc[kPixelBlock];
    for (int p = 0; p < kPixelBlock; ++p) acc[p] = init;
    accumulate_pixels<CB, kPixelBlock>(acc, xi, k, s, iy0, ky0, ky1, ox, 0, s.kw, co0);
    finish(acc, ox, kPixelBlock);
  }
  for (; ox < s.ow; ++ox) single(ox);
}

// Calls fn(co0, width) for blocks of the output channels: 16s, then at most one 8 and one 4, and single channels
// for the rest.
template <class Fn>
CNNLITE_INLINE void for_channel_blocks(idx cout, Fn fn) {
  idx co = 0;
  for (; co + 16 <= cout; co += 16) fn(co, 16);
  if (co + 8 <= cout) fn(co, 8), co += 8;
  if (co + 4 <= cout) fn(co, 4), co += 4;
  for (; co < cout; ++co) fn(co, 1);
}

CNNLITE_INLINE void forward_rows_loops(float* y, const float* x, const float* k, const float* bias,
                                       const Conv2dGeometry& s, idx r0, idx r1, bool relu) {
  for (idx r = r0; r < r1; ++r) {
    const idx img = r / s.oh, oy = r % s.oh;
    const float* xi = x + img * s.h * s.w * s.cin;
    float* yrow = y + r * s.ow * s.cout;
    // (No blocks of 32 channels, two AVX-512 registers per pixel: GCC lowers those vectors badly; measured: see
    // BENCHMARKS.md, direct section.)
    for_channel_blocks(s.cout, [&](idx co0, int width) CNNLITE_INLINE_LAMBDA {
      switch (width) {
        case 16: return forward_row_block<16>(yrow, xi, k, bias, s, oy, co0, relu);
        case 8: return forward_row_block<8>(yrow, xi, k, bias, s, oy, co0, relu);
        case 4: return forward_row_block<4>(yrow, xi, k, bias, s, oy, co0, relu);
        default: return forward_row_block<1>(yrow, xi, k, bias, s, oy, co0, relu);
      }
    });
  }
}
CNNLITE_ISA_VARIANTS(, forward_rows, forward_rows_loops,
                     (float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& s, idx r0,
                      idx r1, bool relu),
                     (y, x, k, bias, s, r0, r1, relu))

// part (depth * cout [+ cout]) = the weight (and bias) gradient of images [i0, i1), pixels in order.
template <int CB>
CNNLITE_INLINE void weights_block(float* part, float* dbias_part, typename Lanes<CB>::V* acc, const float* dy,
                                  const float* gate, const float* x, const Conv2dGeometry& s, idx i0, idx i1, idx co0) {
  using L = Lanes<CB>;
  using V = typename L::V;
  const idx depth = s.depth(), cin = s.cin;
  for (idx t = 0; t < depth; ++t) acc[t] = L::zero();
  V bacc = L::zero();
  for (idx img = i0; img < i1; ++img) {
    const float* xi = x + img * s.h * s.w * cin;
    const float* dyi = dy + img * s.pixels() * s.cout + co0;
    const float* gi = gate ? gate + img * s.pixels() * s.cout + co0 : nullptr;
    for (idx oy = 0; oy < s.oh; ++oy) {
      idx ky0, ky1;
      tap_range(oy, s.sh, s.pt, s.kh, s.h, ky0, ky1);
      const idx iy0 = oy * s.sh - s.pt;
      for (idx ox = 0; ox < s.ow; ++ox) {
        V g = L::load(dyi + (oy * s.ow + ox) * s.cout);
        if (gi) g = L::load(gi + (oy * s.ow + ox) * s.cout) > L::zero() ? g : L::zero();
        bacc += g;
        idx kx0, kx1;
        tap_range(ox, s.sw, s.pl, s.kw, s.w, kx0, kx1);
        const idx ix0 = ox * s.sw - s.pl;
        for (idx ky = ky0; ky < ky1; ++ky) {
          const float* xr = xi + ((iy0 + ky) * s.w + ix0) * cin;
          V* ar = acc + ky * s.kw * cin;
          for (idx j = kx0 * cin; j < kx1 * cin; ++j) ar[j] += xr[j] * g;
        }
      }
    }
  }
  for (idx t = 0; t < depth; ++t) L::store(part + t * s.cout + co0, acc[t]);
  if (dbias_part) L::store(dbias_part + co0, bacc);
}

// As weights_block for a depth D known at compile time: the D accumulators stay in registers. Taps outside the
// input add x = 0 (exactly the sum without them).
template <int CB, int D>
CNNLITE_INLINE void weights_block_fixed(float* part, float* dbias_part, const float* dy, const float* gate,
                                        const float* x, const Conv2dGeometry& s, idx i0, idx i1, idx co0) {
  using L = Lanes<CB>;
  using V = typename L::V;
  const idx cin = s.cin;
  idx off[D], tap_y[D], tap_x[D];  // per tap: offset in x from the window's corner, kernel row and column
  for (int t = 0; t < D; ++t) {
    tap_y[t] = t / (s.kw * cin);
    tap_x[t] = (t / cin) % s.kw;
    off[t] = (tap_y[t] * s.w + tap_x[t]) * cin + t % cin;
  }
  V acc[D];
  for (int t = 0; t < D; ++t) acc[t] = L::zero();
  V bacc = L::zero();
  for (idx img = i0; img < i1; ++img) {
    const float* xi = x + img * s.h * s.w * cin;
    const float* dyi = dy + img * s.pixels() * s.cout + co0;
    const float* gi = gate ? gate + img * s.pixels() * s.cout + co0 : nullptr;
    for (idx oy = 0; oy < s.oh; ++oy) {
      idx ky0, ky1;
      tap_range(oy, s.sh, s.pt, s.kh, s.h, ky0, ky1);
      const idx iy0 = oy * s.sh - s.pt;
      const bool rows_inside = ky0 == 0 && ky1 == s.kh;
      for (idx ox = 0; ox < s.ow; ++ox) {
        V g = L::load(dyi + (oy * s.ow + ox) * s.cout);
        if (gi) g = L::load(gi + (oy * s.ow + ox) * s.cout) > L::zero() ? g : L::zero();
        bacc += g;
        idx kx0, kx1;
        tap_range(ox, s.sw, s.pl, s.kw, s.w, kx0, kx1);
        const idx ix0 = ox * s.sw - s.pl;
        const float* corner = xi + (iy0 * s.w + ix0) * cin;  // may lie outside x: only read through valid taps
        if (rows_inside && kx0 == 0 && kx1 == s.kw) {
#pragma GCC unroll 32
          for (int t = 0; t < D; ++t) acc[t] += corner[off[t]] * g;
        } else {
#pragma GCC unroll 32
          for (int t = 0; t < D; ++t) {
            const bool valid = tap_y[t] >= ky0 && tap_y[t] < ky1 && tap_x[t] >= kx0 && tap_x[t] < kx1;
            acc[t] += (valid ? corner[off[t]] : 0.0f) * g;
          }
        }
      }
    }
  }
  for (int t = 0; t < D; ++t) L::store(part + t * s.cout + co0, acc[t]);
  if (dbias_part) L::store(dbias_part + co0, bacc);
}

// Depths with register accumulators: 3x3 kernels over 1-3 channels, 5x5 over 1.
template <int CB>
CNNLITE_INLINE void weights_block_any(float* part, float* dbias_part, float* acc_space, const float* dy,
                                      const float* gate, const float* x, const Conv2dGeometry& s, idx i0, idx i1,
                                      idx co0) {
  switch (s.depth()) {
    case 9: return weights_block_fixed<CB, 9>(part, dbias_part, dy, gate, x, s, i0, i1, co0);
    case 18: return weights_block_fixed<CB, 18>(part, dbias_part, dy, gate, x, s, i0, i1, co0);
    case 25: return weights_block_fixed<CB, 25>(part, dbias_part, dy, gate, x, s, i0, i1, co0);
    case 27: return weights_block_fixed<CB, 27>(part, dbias_part, dy, gate, x, s, i0, i1, co0);
    default:
      return weights_block<CB>(part, dbias_part, reinterpret_cast<typename Lanes<CB>::V*>(acc_space), dy, gate, x, s,
                               i0, i1, co0);
  }
}

CNNLITE_INLINE void weights_chunk_loops(float* part, float* dbias_part, float* acc_space, const float* dy,
                                        const float* gate, const float* x, const Conv2dGeometry& s, idx i0, idx i1) {
  for_channel_blocks(s.cout, [&](idx co0, int width) CNNLITE_INLINE_LAMBDA {
    switch (width) {
      case 16: return weights_block_any<16>(part, dbias_part, acc_space, dy, gate, x, s, i0, i1, co0);
      case 8: return weights_block_any<8>(part, dbias_part, acc_space, dy, gate, x, s, i0, i1, co0);
      case 4: return weights_block_any<4>(part, dbias_part, acc_space, dy, gate, x, s, i0, i1, co0);
      default: return weights_block_any<1>(part, dbias_part, acc_space, dy, gate, x, s, i0, i1, co0);
    }
  });
}
CNNLITE_ISA_VARIANTS(, weights_chunk, weights_chunk_loops,
                     (float* part, float* dbias_part, float* acc_space, const float* dy, const float* gate,
                      const float* x, const Conv2dGeometry& s, idx i0, idx i1),
                     (part, dbias_part, acc_space, dy, gate, x, s, i0, i1))

// Per-thread workspaces (parallel.h), reused across calls.
struct AccTag;
struct PartialsTag;
struct TotalTag;
Workspace& acc_workspace() { return thread_workspace<AccTag>(); }
Workspace& partial_workspace() { return thread_workspace<PartialsTag>(); }
Workspace& total_workspace() { return thread_workspace<TotalTag>(); }

// Output pixels per weight-gradient chunk (whole images, fixed by the shape): enough work per chunk, few partials.
constexpr idx kChunkPixels = 2048;
// Chunk partials held at once (a wave); each wave is then added to the total in chunk order.
constexpr idx kWaveChunks = 256;

}  // namespace

void conv2d_direct_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& s,
                           bool relu) {
  const idx n = s.n, cout = s.cout, oh = s.oh, ow = s.ow;
  const idx rows = n * oh;
  if (rows == 0) return;
  // Output rows per task: about kChunkPixels pixels. Every output is computed the same way in any task.
  const idx rows_per_task = std::max<idx>(1, kChunkPixels / ow);
  const idx tasks = (rows + rows_per_task - 1) / rows_per_task;
  const double work = static_cast<double>(rows) * ow * cout * s.depth();
  auto task = [&](idx t) {
    const idx r0 = t * rows_per_task;
    forward_rows(y, x, k, bias, s, r0, std::min(rows, r0 + rows_per_task), relu);
  };
  parallel_for(tasks, task, enough_work(work));
}

void conv2d_direct_forward_dense(float* y, float* z, const float* x, const float* k, const float* bias,
                                 const float* dense_bp, const float* dense_bias, idx units, const Conv2dGeometry& s,
                                 bool relu) {
  const idx n = s.n, out_image = s.pixels() * s.cout;
  if (n == 0) return;
  // Whole images per task, so a task's rows of z need only the y it wrote itself (still in L2): enough rows for the
  // GEMM micro-kernel's 12-row tiles, few enough to stay in cache. z's bits are sgemm's: its depth blocks depend
  // on the depth alone, and bias is added after the last one, as in sgemm's store.
  constexpr idx kDenseImages = 12;
  const idx tasks = (n + kDenseImages - 1) / kDenseImages;
  const double work = static_cast<double>(n) * out_image * (s.depth() + units);
  auto task = [&](idx t) {
    const idx i0 = t * kDenseImages, count = std::min(n, i0 + kDenseImages) - i0;
    forward_rows(y, x, k, bias, s, i0 * s.oh, (i0 + count) * s.oh, relu);
    float* zt = z + i0 * units;
    sgemm_packed(count, units, out_image, y + i0 * out_image, out_image, dense_bp, zt, units);
    if (dense_bias)
      for (idx r = 0; r < count; ++r)
        for (idx j = 0; j < units; ++j) zt[r * units + j] += dense_bias[j];
  };
  parallel_for(tasks, task, enough_work(work));
}

namespace {

// The weight-gradient driver: dy_of(img0, imgs) gives the dy (imgs, oh, ow, cout) of images [img0, img0 + imgs),
// asked for once per chunk on the thread that runs the chunk.
template <class DyOf>
void backward_weights_chunks(float* dk, float* dbias, DyOf&& dy_of, const float* gate, const float* x,
                             const Conv2dGeometry& s) {
  const idx n = s.n, cout = s.cout;
  const idx depth = s.depth(), dk_size = depth * cout, size = dk_size + cout;
  if (n == 0) {
    std::fill(dk, dk + dk_size, 0.0f);
    if (dbias) std::fill(dbias, dbias + cout, 0.0f);
    return;
  }
  const idx imgs = std::max<idx>(1, kChunkPixels / s.pixels());
  const idx chunks = (n + imgs - 1) / imgs;
  const idx in_image = s.h * s.w * s.cin, out_image = s.pixels() * cout;
  const double work = static_cast<double>(n) * s.pixels() * cout * depth;
  // Each chunk's partial: its dk (depth x cout) followed by its dbias (cout).
  float* total = total_workspace().get(size);
  float* partials = partial_workspace().get(std::min(chunks, kWaveChunks) * size);
  auto chunk = [&](idx c, float* part) {
    float* acc = acc_workspace().get(depth * 16);
    const idx i0 = c * imgs, count = std::min(n, i0 + imgs) - i0;
    weights_chunk(part, part + dk_size, acc, dy_of(i0, count), gate ? gate + i0 * out_image : nullptr,
                  x + i0 * in_image, s, 0, count);
  };
  sum_over_chunks(total, partials, chunks, size, kWaveChunks, chunk, enough_work(work));
  std::copy(total, total + dk_size, dk);
  if (dbias) std::copy(total + dk_size, total + size, dbias);
}

struct DenseDyTag;  // a chunk's dy computed from the next Dense layer's dz

}  // namespace

void conv2d_direct_backward_weights(float* dk, float* dbias, const float* dy, const float* gate, const float* x,
                                    const Conv2dGeometry& s) {
  const idx out_image = s.pixels() * s.cout;
  backward_weights_chunks(dk, dbias, [&](idx i0, idx) { return dy + i0 * out_image; }, gate, x, s);
}

void conv2d_direct_backward_weights_from_dense(float* dk, float* dbias, const float* dz, const float* wt, idx units,
                                               const float* gate, const float* x, const Conv2dGeometry& s) {
  const idx out_image = s.pixels() * s.cout;
  // Each thread computes the dy of kDyGroup images at a time, kept for the chunks it runs next (mostly the
  // following ones): one pass over wt then serves several images. Every dy element has the same bits whichever
  // group computed it; `call` tells this call's groups from a previous call's.
  constexpr idx kDyGroup = 8;
  static std::atomic<std::uint64_t> calls{0};
  const std::uint64_t call = ++calls;
  struct Held {
    std::uint64_t call;
    idx first, count;
    float* dy;
  };
  static thread_local Held held{0, 0, 0, nullptr};
  auto dy_of = [&](idx i0, idx count) -> const float* {
    Held& h = held;
    if (h.call != call || i0 < h.first || i0 + count > h.first + h.count) {
      const idx group = std::min(s.n - i0, std::max(count, kDyGroup));
      h = Held{call, i0, group, thread_workspace<DenseDyTag>().get(group * out_image)};
      sgemm_skinny_nt_packed(h.dy, dz + i0 * units, wt, group, out_image, units);
    }
    return h.dy + (i0 - h.first) * out_image;
  };
  backward_weights_chunks(dk, dbias, dy_of, gate, x, s);
}

}  // namespace cnnlite
