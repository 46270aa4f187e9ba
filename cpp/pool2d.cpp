#include "pool2d.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "parallel.h"

namespace cnnlite {

namespace {

// Range [begin, end) of real input rows (or columns) covered by output position o.
struct Span {
  idx begin, end;
};

inline Span window(idx o, idx stride, idx pad_before, idx pool, idx in) {
  const idx start = o * stride - pad_before;
  return {std::max<idx>(start, 0), std::min<idx>(start + pool, in)};
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

void check_pool2d_geometry(const Pool2dGeometry& g) {
  require(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0, "pool2d: input sizes must be positive (n may be 0)");
  require(g.ph > 0 && g.pw > 0 && g.sh > 0 && g.sw > 0, "pool2d: pool sizes and strides must be positive");
  require(g.pad_top >= 0 && g.pad_bottom >= 0 && g.pad_left >= 0 && g.pad_right >= 0,
          "pool2d: pads must be non-negative");
  for (idx v : {g.h, g.w, g.c, g.ph, g.pw, g.sh, g.sw, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right})
    require(v <= kMaxExtent, "pool2d: a size, stride or pad exceeds " + std::to_string(kMaxExtent));
  require(g.pad_top < g.ph && g.pad_bottom < g.ph && g.pad_left < g.pw && g.pad_right < g.pw,
          "pool2d: every pad must be smaller than the pool size");
  require(g.h + g.pad_top + g.pad_bottom >= g.ph && g.w + g.pad_left + g.pad_right >= g.pw,
          "pool2d: the padded input is smaller than the pool");
  require(g.h * g.w <= INT32_MAX, "pool2d: h*w must fit in int32 (argmax)");
  checked_product("pool2d", {std::max<idx>(g.n, 1), g.h, g.w, g.c});
  checked_product("pool2d", {std::max<idx>(g.n, 1), g.oh(), g.ow(), g.c});
}

namespace {

// The max-pool forward pass keeps blocks of channels' running max and argmax in SIMD registers, written with
// GCC/Clang vector extensions (a plain loop does not vectorise: the compilers will not if-convert the argmax
// select). The portable build holds 16 channels in four 4-lane vectors (SSE2 on baseline x86-64); the AVX-512
// build in one 16-lane vector.
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

// Max and argmax over one window for the kVecs * lanes(FV) channels starting at xi (channel cb of the image's
// cell 0). Strict '>' keeps the first maximum in row-major window order (TensorFlow's tie rule).
template <class FV, class IV, int kVecs>
inline __attribute__((always_inline)) void max_window_block(float* yo, int32_t* ao, const float* xi, idx c, idx w,
                                                            Span rs, Span cs) {
  constexpr idx kLanes = sizeof(FV) / sizeof(float);
  const int32_t first = static_cast<int32_t>(rs.begin * w + cs.begin);
  FV best[kVecs];
  IV arg[kVecs];
  for (int q = 0; q < kVecs; ++q) {
    std::memcpy(&best[q], xi + first * c + q * kLanes, sizeof(FV));
    arg[q] = first - IV{};
  }
  for (idx r = rs.begin; r < rs.end; ++r) {
    for (idx col = (r == rs.begin ? cs.begin + 1 : cs.begin); col < cs.end; ++col) {
      const int32_t cell = static_cast<int32_t>(r * w + col);
      const float* xp = xi + cell * c;
      for (int q = 0; q < kVecs; ++q) {
        FV v;
        std::memcpy(&v, xp + q * kLanes, sizeof v);
        const IV greater = v > best[q];  // all-ones lanes where v wins
        best[q] = greater ? v : best[q];
        arg[q] = greater ? cell - IV{} : arg[q];
      }
    }
  }
  for (int q = 0; q < kVecs; ++q) {
    std::memcpy(yo + q * kLanes, &best[q], sizeof(FV));
    std::memcpy(ao + q * kLanes, &arg[q], sizeof(IV));
  }
}

// The same for a 2x2 window lying wholly inside the image, its top-left cell `first` at xi + first * c: all loads of
// the block (four cells x kVecs vectors) are issued up front, then compared in row-major order (the same comparisons,
// so the same bits, as above), instead of the loop above whose every step waits for the previous one.
template <class FV, class IV, int kVecs>
inline __attribute__((always_inline)) void max_window_2x2(float* yo, int32_t* ao, const float* xi, idx c, idx w,
                                                          int32_t first) {
  constexpr idx kLanes = sizeof(FV) / sizeof(float);
  const int32_t cells[4] = {first, first + 1, static_cast<int32_t>(first + w), static_cast<int32_t>(first + w + 1)};
  FV v[kVecs][4];
  for (int t = 0; t < 4; ++t)
    for (int q = 0; q < kVecs; ++q) std::memcpy(&v[q][t], xi + cells[t] * c + q * kLanes, sizeof(FV));
  for (int q = 0; q < kVecs; ++q) {
    FV best = v[q][0];
    IV arg = cells[0] - IV{};
    for (int t = 1; t < 4; ++t) {
      const IV greater = v[q][t] > best;
      best = greater ? v[q][t] : best;
      arg = greater ? cells[t] - IV{} : arg;
    }
    std::memcpy(yo + q * kLanes, &best, sizeof(FV));
    std::memcpy(ao + q * kLanes, &arg, sizeof(IV));
  }
}

// The same for the last `lanes` < 4 channels, one channel at a time.
inline void max_window_tail(float* yo, int32_t* ao, const float* xi, idx c, idx w, Span rs, Span cs, idx lanes) {
  for (idx l = 0; l < lanes; ++l) {
    int32_t arg = static_cast<int32_t>(rs.begin * w + cs.begin);
    float best = xi[arg * c + l];
    for (idx r = rs.begin; r < rs.end; ++r) {
      for (idx col = (r == rs.begin ? cs.begin + 1 : cs.begin); col < cs.end; ++col) {
        const int32_t cell = static_cast<int32_t>(r * w + col);
        const float v = xi[cell * c + l];
        if (v > best) {
          best = v;
          arg = cell;
        }
      }
    }
    yo[l] = best;
    ao[l] = arg;
  }
}

// Output rows [row_begin, row_end) of the flattened (n, oh) range; inlined into a portable and an AVX-512 build.
template <class Vec16, class Int16, int kVecs16>
inline __attribute__((always_inline)) void maxpool2d_rows(float* y, int32_t* argmax, const float* x,
                                                          const Pool2dGeometry& g, idx row_begin, idx row_end) {
  const idx oh = g.oh(), ow = g.ow(), c = g.c;
  for (idx row = row_begin; row < row_end; ++row) {
    const idx img = row / oh, i = row % oh;
    const float* xi = x + img * g.h * g.w * c;
    const Span rs = window(i, g.sh, g.pad_top, g.ph, g.h);
    for (idx j = 0; j < ow; ++j) {
      const Span cs = window(j, g.sw, g.pad_left, g.pw, g.w);
      float* yo = y + (row * ow + j) * c;
      int32_t* ao = argmax + (row * ow + j) * c;
      idx cb = 0;
      if (rs.end - rs.begin == 2 && cs.end - cs.begin == 2) {  // a whole 2x2 window (the chapter's pooling)
        const int32_t first = static_cast<int32_t>(rs.begin * g.w + cs.begin);
        for (; cb + 32 <= c; cb += 32)
          max_window_2x2<Vec16, Int16, 2 * kVecs16>(yo + cb, ao + cb, xi + cb, c, g.w, first);
        for (; cb + 16 <= c; cb += 16) max_window_2x2<Vec16, Int16, kVecs16>(yo + cb, ao + cb, xi + cb, c, g.w, first);
        for (; cb + 4 <= c; cb += 4) max_window_2x2<f32x4, i32x4, 1>(yo + cb, ao + cb, xi + cb, c, g.w, first);
      }
      for (; cb + 16 <= c; cb += 16) {
        max_window_block<Vec16, Int16, kVecs16>(yo + cb, ao + cb, xi + cb, c, g.w, rs, cs);
      }
      for (; cb + 4 <= c; cb += 4) max_window_block<f32x4, i32x4, 1>(yo + cb, ao + cb, xi + cb, c, g.w, rs, cs);
      if (cb < c) max_window_tail(yo + cb, ao + cb, xi + cb, c, g.w, rs, cs, c - cb);
    }
  }
}

void maxpool2d_rows_generic(float* y, int32_t* argmax, const float* x, const Pool2dGeometry& g, idx begin, idx end) {
  maxpool2d_rows<f32x4, i32x4, 4>(y, argmax, x, g, begin, end);
}

CNNLITE_TARGET_AVX512
void maxpool2d_rows_avx512(float* y, int32_t* argmax, const float* x, const Pool2dGeometry& g, idx begin, idx end) {
  maxpool2d_rows<f32x16, i32x16, 1>(y, argmax, x, g, begin, end);
}

}  // namespace

void maxpool2d_forward(float* y, int32_t* argmax, const float* x, const Pool2dGeometry& g) {
  check_pool2d_geometry(g);
  const idx rows = g.n * g.oh();
  const auto rows_fn = isa() == Isa::kAvx512 ? maxpool2d_rows_avx512 : maxpool2d_rows_generic;
  // Output rows (image, oh) are independent: any partition gives the same bits (max and argmax are exact).
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (rows > 1)
#endif
  for (idx row = 0; row < rows; ++row) {
    note_parallel_work();
    rows_fn(y, argmax, x, g, row, row + 1);
  }
}

void maxpool2d_backward(float* dx, const float* dy, const int32_t* argmax, idx n, idx h, idx w, idx oh, idx ow, idx c,
                        const float* relu_y) {
  require(n >= 0 && h > 0 && w > 0 && oh > 0 && ow > 0 && c > 0, "maxpool2d_backward: sizes must be positive");
  for (idx v : {h, w, oh, ow, c})
    require(v <= kMaxExtent, "maxpool2d_backward: a size exceeds " + std::to_string(kMaxExtent));
  checked_product("maxpool2d_backward", {std::max<idx>(n, 1), h, w, c});
  checked_product("maxpool2d_backward", {std::max<idx>(n, 1), oh, ow, c});
  const idx plane = h * w, out_plane = oh * ow;
  int bad = 0;
  // One thread owns one image of dx, so overlapping windows accumulate without races in a fixed order.
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > 1)
#endif
  for (idx img = 0; img < n; ++img) {
    note_parallel_work();
    float* __restrict dxi = dx + img * plane * c;
    const float* __restrict dyi = dy + img * out_plane * c;
    const int32_t* __restrict ai = argmax + img * out_plane * c;
    const float* __restrict yi = relu_y ? relu_y + img * out_plane * c : nullptr;
    std::memset(dxi, 0, sizeof(float) * plane * c);
    for (idx o = 0; o < out_plane; ++o) {
      const float* dyo = dyi + o * c;
      const int32_t* ao = ai + o * c;
      for (idx ch = 0; ch < c; ++ch) {
        const int32_t a = ao[ch];
        if (a < 0 || a >= plane) {
          bad = 1;
          continue;
        }
        if (yi && !(yi[o * c + ch] > 0.0f)) continue;  // the ReLU cut this cell: no gradient (and +0 stays +0)
        dxi[a * c + ch] += dyo[ch];
      }
    }
  }
  require(!bad, "maxpool2d_backward: argmax holds an index outside [0, h*w)");
}

namespace {

// One image of the non-overlapping max-pool backward: every dx cell is written once, in row order; a cell of a window
// gets dy where it is the window's argmax (0 + dy, so -0 becomes +0 exactly as the zero-fill-and-add path does), and
// cells outside every window get 0. hits (ow * c ints) counts, per output cell, the window cells that matched its
// argmax: anything but one means the argmax lay outside its window. Returns false then.
inline __attribute__((always_inline)) bool maxpool_backward_direct_image(float* __restrict dxi,
                                                                         const float* __restrict dyi,
                                                                         const int32_t* __restrict ai,
                                                                         const float* __restrict yi,
                                                                         const Pool2dGeometry& g,
                                                                         int32_t* __restrict hits) {
  const idx c = g.c, w = g.w, oh = g.oh(), ow = g.ow(), row_floats = w * c;
  auto zero = [](float* p, idx floats) {
    if (floats > 0) std::memset(p, 0, sizeof(float) * floats);
  };
  bool ok = true;
  idx next_row = 0;
  for (idx i = 0; i < oh; ++i) {
    const Span rs = window(i, g.sh, g.pad_top, g.ph, g.h);
    zero(dxi + next_row * row_floats, (rs.begin - next_row) * row_floats);
    for (idx k = 0; k < ow * c; ++k) hits[k] = 0;
    const float* dyr = dyi + i * ow * c;
    const int32_t* ar = ai + i * ow * c;
    const float* yr = yi ? yi + i * ow * c : nullptr;
    for (idx r = rs.begin; r < rs.end; ++r) {
      float* drow = dxi + r * row_floats;
      idx next_col = 0;
      for (idx j = 0; j < ow; ++j) {
        const Span cs = window(j, g.sw, g.pad_left, g.pw, w);
        zero(drow + next_col * c, (cs.begin - next_col) * c);
        const float* dyo = dyr + j * c;
        const int32_t* ao = ar + j * c;
        int32_t* ho = hits + j * c;
        for (idx col = cs.begin; col < cs.end; ++col) {
          const int32_t cell = static_cast<int32_t>(r * w + col);
          float* d = drow + col * c;
          if (yr) {  // the pooling's input was a ReLU's output: cells it cut get no gradient
            const float* yo = yr + j * c;
            for (idx ch = 0; ch < c; ++ch) {
              const bool hit = ao[ch] == cell;
              const float v = 0.0f + dyo[ch];
              d[ch] = hit && yo[ch] > 0.0f ? v : 0.0f;
              ho[ch] += hit;
            }
            continue;
          }
          for (idx ch = 0; ch < c; ++ch) {
            const bool hit = ao[ch] == cell;
            const float v = 0.0f + dyo[ch];  // loaded unconditionally so the select vectorises
            d[ch] = hit ? v : 0.0f;
            ho[ch] += hit;
          }
        }
        next_col = cs.end;
      }
      zero(drow + next_col * c, (w - next_col) * c);
    }
    for (idx k = 0; k < ow * c; ++k) ok &= hits[k] == 1;
    next_row = rs.end;
  }
  zero(dxi + next_row * row_floats, (g.h - next_row) * row_floats);
  return ok;
}

bool maxpool_backward_direct_generic(float* dxi, const float* dyi, const int32_t* ai, const float* yi,
                                     const Pool2dGeometry& g, int32_t* hits) {
  return maxpool_backward_direct_image(dxi, dyi, ai, yi, g, hits);
}
CNNLITE_TARGET_AVX512
bool maxpool_backward_direct_avx512(float* dxi, const float* dyi, const int32_t* ai, const float* yi,
                                    const Pool2dGeometry& g, int32_t* hits) {
  return maxpool_backward_direct_image(dxi, dyi, ai, yi, g, hits);
}

}  // namespace

void maxpool2d_backward(float* dx, const float* dy, const int32_t* argmax, const Pool2dGeometry& g,
                        const float* relu_y) {
  check_pool2d_geometry(g);
  const idx oh = g.oh(), ow = g.ow();
  if (g.sh < g.ph || g.sw < g.pw) {
    maxpool2d_backward(dx, dy, argmax, g.n, g.h, g.w, oh, ow, g.c, relu_y);
    return;
  }
  const auto image_fn = isa() == Isa::kAvx512 ? maxpool_backward_direct_avx512 : maxpool_backward_direct_generic;
  const idx plane = g.h * g.w * g.c, out_plane = oh * ow * g.c;
  int bad = 0, no_memory = 0;
  // One thread owns one image of dx. Nothing may throw out of the parallel loop: failures are flags, raised after.
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) reduction(| : bad, no_memory) if (g.n > 1)
#endif
  for (idx img = 0; img < g.n; ++img) {
    note_parallel_work();
    // per output row: ow * c counters, reused across calls
    std::vector<int32_t>& hits = thread_workspace<struct HitsTag, std::vector<int32_t>>();
    try {
      if (static_cast<idx>(hits.size()) < out_plane / oh) hits.resize(out_plane / oh);
    } catch (const std::bad_alloc&) {
      no_memory = 1;
      continue;
    }
    const float* yi = relu_y ? relu_y + img * out_plane : nullptr;
    if (!image_fn(dx + img * plane, dy + img * out_plane, argmax + img * out_plane, yi, g, hits.data())) bad = 1;
  }
  if (no_memory) throw std::bad_alloc();
  require(!bad, "maxpool2d_backward: argmax holds an index outside its pooling window");
}

void avgpool2d_forward(float* y, const float* x, const Pool2dGeometry& g) {
  check_pool2d_geometry(g);
  const idx oh = g.oh(), ow = g.ow(), c = g.c, rows = g.n * oh;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (rows > 1)
#endif
  for (idx row = 0; row < rows; ++row) {
    note_parallel_work();
    const idx img = row / oh, i = row % oh;
    const float* xi = x + img * g.h * g.w * c;
    const Span rs = window(i, g.sh, g.pad_top, g.ph, g.h);
    for (idx j = 0; j < ow; ++j) {
      const Span cs = window(j, g.sw, g.pad_left, g.pw, g.w);
      float* __restrict yo = y + (row * ow + j) * c;
      std::fill(yo, yo + c, 0.0f);
      for (idx r = rs.begin; r < rs.end; ++r) {
        for (idx col = cs.begin; col < cs.end; ++col) {
          const float* __restrict xp = xi + (r * g.w + col) * c;
          for (idx ch = 0; ch < c; ++ch) yo[ch] += xp[ch];
        }
      }
      const float count = static_cast<float>((rs.end - rs.begin) * (cs.end - cs.begin));
      for (idx ch = 0; ch < c; ++ch) yo[ch] /= count;
    }
  }
}

void avgpool2d_backward(float* dx, const float* dy, const Pool2dGeometry& g) {
  check_pool2d_geometry(g);
  const idx oh = g.oh(), ow = g.ow(), c = g.c, plane = g.h * g.w;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (g.n > 1)
#endif
  for (idx img = 0; img < g.n; ++img) {
    note_parallel_work();
    float* __restrict dxi = dx + img * plane * c;
    std::memset(dxi, 0, sizeof(float) * plane * c);
    for (idx i = 0; i < oh; ++i) {
      const Span rs = window(i, g.sh, g.pad_top, g.ph, g.h);
      for (idx j = 0; j < ow; ++j) {
        const Span cs = window(j, g.sw, g.pad_left, g.pw, g.w);
        const float* __restrict dyo = dy + ((img * oh + i) * ow + j) * c;
        const float count = static_cast<float>((rs.end - rs.begin) * (cs.end - cs.begin));
        for (idx r = rs.begin; r < rs.end; ++r) {
          for (idx col = cs.begin; col < cs.end; ++col) {
            float* __restrict dxp = dxi + (r * g.w + col) * c;
            for (idx ch = 0; ch < c; ++ch) dxp[ch] += dyo[ch] / count;
          }
        }
      }
    }
  }
}

}  // namespace cnnlite
