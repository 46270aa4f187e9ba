#include "conv2d_winograd.h"

#include <algorithm>
#include <exception>
#include <type_traits>

#include "dispatch.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "parallel.h"

// The transforms are plain C++ loops over channels, built per ISA level (CNNLITE_ISA_VARIANTS_BY_LEVEL, dispatch.h).
// They only add and subtract, so every build gives the same bits.

namespace cnnlite {

namespace {

constexpr int kTaps = 16;  // 4x4 transformed points per tile

// F(2x2, 3x3)'s weight transform: U = G g G^T; the weight gradient maps back with G^T dU G.
constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

// Tiles per block: the block's transformed input (16 x tiles x cin) and products (16 x tiles x cout) take about
// 512 KiB, so they stay in L2 next to U. Depends on the channel counts only, never on the thread count.
idx tiles_per_block(idx cin, idx cout) {
  constexpr idx kBudget = 128 * 1024;  // floats
  const idx t = kBudget / (kTaps * (cin + cout));
  return std::max<idx>(24, std::min<idx>(t, 480)) / 24 * 24;
}

// A 3x3 stride-1 correlation (geometry g) cut into 2x2 output tiles, in blocks of `block` tiles.
struct Plan : Conv2dGeometry {
  idx tiles_y, tiles_x, tiles, block;
  explicit Plan(const Conv2dGeometry& g)
      : Conv2dGeometry(g),
        tiles_y((g.oh + 1) / 2),
        tiles_x((g.ow + 1) / 2),
        tiles(g.n * tiles_y * tiles_x),
        block(tiles_per_block(g.cin, g.cout)) {}
};

// Walks tiles in order (image, tile row, tile column) from a flat tile index.
struct TileCursor {
  idx img, ty, tx;
  TileCursor(const Plan& p, idx t) : img(t / (p.tiles_y * p.tiles_x)), ty(t / p.tiles_x % p.tiles_y), tx(t % p.tiles_x) {}
  void next(const Plan& p) {
    if (++tx == p.tiles_x) {
      tx = 0;
      if (++ty == p.tiles_y) {
        ty = 0;
        ++img;
      }
    }
  }
};

// Explicit SIMD through GCC vector extensions, so the transforms vectorise over channels with no run-time alias
// checks or remainder loops: vectors one register wide at each level (for_lanes: 16 floats at avx512, 8 at avx2, 4 at
// generic), then single floats. (GCC lowers arrays of wider vectors through the stack lane by lane: 16-float vectors at
// avx2 made the full network's conv2 backward 16 % slower.) Loads and stores go through memcpy (unaligned, no aliasing
// assumptions). Every lane width performs the same operations per element, so gives the same bits.
// (Internal, always-inlined helpers: the warning that vector arguments change the ABI does not apply.)
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));

template <class V>
struct LaneTag {
  using type = V;
};
// Calls fn(LaneTag<V>{}, i) over [0, count) in steps of V's width: register-wide vectors at level L, then floats.
// fn must be always_inline (CNNLITE_INLINE_LAMBDA), as must everything it calls.
#define CNNLITE_INLINE_LAMBDA __attribute__((always_inline))
template <Isa L, class Fn>
__attribute__((always_inline)) inline void for_lanes(idx count, Fn&& fn) {
  idx i = 0;
  if constexpr (L == Isa::kAvx512)
    for (; i + 16 <= count; i += 16) fn(LaneTag<F16>{}, i);
  else if constexpr (L == Isa::kAvx2)
    for (; i + 8 <= count; i += 8) fn(LaneTag<F8>{}, i);
  else
    for (; i + 4 <= count; i += 4) fn(LaneTag<F4>{}, i);
  if constexpr (L == Isa::kAvx512)
    for (; i + 8 <= count; i += 8) fn(LaneTag<F8>{}, i);
  for (; i < count; ++i) fn(LaneTag<float>{}, i);
}
// The vector type of a for_lanes tag.
#define CNNLITE_LANES(tag) typename decltype(tag)::type

template <class V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
__attribute__((always_inline)) inline void store(float* p, V v) {
  __builtin_memcpy(p, &v, sizeof(V));
}
template <class V>
__attribute__((always_inline)) inline V relu_of(V v) {  // relu_forward's rule: v < 0 ? 0 : v (NaN and -0 kept)
  if constexpr (std::is_same_v<V, float>)
    return v < 0.0f ? 0.0f : v;
  else
    return v < V{} ? V{} : v;
}
template <class V>
__attribute__((always_inline)) inline V positive_or_zero(V gate, V value) {  // gate > 0 ? value : 0
  if constexpr (std::is_same_v<V, float>)
    return gate > 0.0f ? value : 0.0f;
  else
    return gate > V{} ? value : V{};
}

// B^T d for one column of a tile's 4x4 input (rows e0..e3): t[r * stride + c] for r = 0..3.
template <class V>
__attribute__((always_inline)) inline void input_row_pass(V* t, int stride, V e0, V e1, V e2, V e3, int c) {
  t[0 * stride + c] = e0 - e2;
  t[1 * stride + c] = e1 + e2;
  t[2 * stride + c] = e2 - e1;
  t[3 * stride + c] = e1 - e3;
}

// (B^T d) B from the row pass t[r * 4 + c], stored to v[tap * ld + ci].
template <class V>
__attribute__((always_inline)) inline void input_column_pass(float* v, idx ld, const V* t, idx ci) {
  for (int r = 0; r < 4; ++r) {
    store<V>(v + (r * 4 + 0) * ld + ci, t[r * 4 + 0] - t[r * 4 + 2]);
    store<V>(v + (r * 4 + 1) * ld + ci, t[r * 4 + 1] + t[r * 4 + 2]);
    store<V>(v + (r * 4 + 2) * ld + ci, t[r * 4 + 2] - t[r * 4 + 1]);
    store<V>(v + (r * 4 + 3) * ld + ci, t[r * 4 + 1] - t[r * 4 + 3]);
  }
}

// Channels [ci, ci + width of V) of one tile's input transform (see input_tile).
template <class V, bool Gated>
__attribute__((always_inline)) inline void input_lanes(float* v, idx ld, const float* d, const float* g, idx rs,
                                                        idx cin, idx ci) {
  V e[kTaps];
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      const idx at = r * rs + c * cin + ci;
      e[r * 4 + c] = Gated ? positive_or_zero<V>(load<V>(g + at), load<V>(d + at)) : load<V>(d + at);
    }
  V t[kTaps];  // B^T d: rows
  for (int c = 0; c < 4; ++c) input_row_pass<V>(t, 4, e[0 * 4 + c], e[1 * 4 + c], e[2 * 4 + c], e[3 * 4 + c], c);
  input_column_pass<V>(v, ld, t, ci);
}

// v[tap * ld + ci] = (B^T d B)[tap] for one tile whose input d[r][c][ci] is at d[r * rs + c * cin + ci]; with Gated,
// each input is first masked by its gate (same layout) > 0.
template <Isa L, bool Gated>
__attribute__((always_inline)) inline void input_tile(float* v, idx ld, const float* d, const float* g, idx rs,
                                                       idx cin) {
  for_lanes<L>(cin, [=](auto tag, idx ci) CNNLITE_INLINE_LAMBDA {
    input_lanes<CNNLITE_LANES(tag), Gated>(v, ld, d, g, rs, cin, ci);
  });
}

// v (16, block, cin): the transformed inputs of tiles [t0, t1), tap-major, tile i of the block at row i. gate (same
// shape as x) may be null. A tile that overlaps the padding is first copied, gated and zero-filled, into patch
// (16 * cin floats).
template <Isa L, bool Gated>
__attribute__((always_inline)) inline void input_block(float* v, const float* x, const float* gate, float* patch,
                                                        const Plan& p, idx t0, idx t1) {
  const idx ld = p.block * p.cin, rs = p.w * p.cin, size = p.n * p.h * rs;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const idx iy0 = 2 * tc.ty - p.pt, ix0 = 2 * tc.tx - p.pl;
    const idx off = tc.img * p.h * rs + iy0 * rs + ix0 * p.cin;  // may point outside x: only used when inside
    // The input is read once, from memory: a tile row of work ahead, prefetch what the tile below will add to its
    // left neighbour (after an image's last tile row: the next image's first rows).
    for (idx ahead = off + 4 * rs; ahead < off + 6 * rs; ahead += rs)
      for (idx at = std::max<idx>(ahead + 2 * p.cin, 0); at < std::min(ahead + 4 * p.cin, size); at += 16) {
        __builtin_prefetch(x + at);
        if (Gated) __builtin_prefetch(gate + at);
      }
    float* vt = v + (t - t0) * p.cin;
    if (iy0 >= 0 && iy0 + 4 <= p.h && ix0 >= 0 && ix0 + 4 <= p.w) {
      input_tile<L, Gated>(vt, ld, x + off, Gated ? gate + off : nullptr, rs, p.cin);
      continue;
    }
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) {
        float* dst = patch + (r * 4 + c) * p.cin;
        const idx iy = iy0 + r, ix = ix0 + c;
        if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) {
          for (idx ci = 0; ci < p.cin; ++ci) dst[ci] = 0.0f;
          continue;
        }
        const idx at = off + r * rs + c * p.cin;
        for (idx ci = 0; ci < p.cin; ++ci)
          dst[ci] = !Gated || gate[at + ci] > 0.0f ? x[at + ci] : 0.0f;
      }
    input_tile<L, false>(vt, ld, patch, nullptr, 4 * p.cin, p.cin);
  }
}

template <Isa L>
__attribute__((always_inline)) inline void transform_inputs_loops(float* v, const float* x, const float* gate,
                                                                   float* patch, const Plan& p, idx t0, idx t1) {
  if (gate)
    input_block<L, true>(v, x, gate, patch, p, t0, t1);
  else
    input_block<L, false>(v, x, gate, patch, p, t0, t1);
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_inputs, transform_inputs_loops,
                     (float* v, const float* x, const float* gate, float* patch, const Plan& p, idx t0, idx t1),
                     (v, x, gate, patch, p, t0, t1))

// o[2 * r + c] = (A^T m A)[r][c] + bias for channels [co, co + width of V) of one tile (products m[tap * ld + co]).
template <class V>
__attribute__((always_inline)) inline void tile_outputs(V* o, const float* m, idx ld, const float* bias, idx co) {
  V s[2][4];  // A^T m: rows
  for (int c = 0; c < 4; ++c) {
    const V m0 = load<V>(m + (0 * 4 + c) * ld + co), m1 = load<V>(m + (1 * 4 + c) * ld + co);
    const V m2 = load<V>(m + (2 * 4 + c) * ld + co), m3 = load<V>(m + (3 * 4 + c) * ld + co);
    s[0][c] = m0 + m1 + m2;
    s[1][c] = m1 - m2 - m3;
  }
  const V b = load<V>(bias + co);
  for (int r = 0; r < 2; ++r) {
    o[2 * r] = s[r][0] + s[r][1] + s[r][2] + b;
    o[2 * r + 1] = s[r][1] - s[r][2] - s[r][3] + b;
  }
}

// Channels [co, co + width of V) of one tile's output transform (see output_tile).
template <class V, bool Relu>
__attribute__((always_inline)) inline void output_lanes(float* y, idx rs, const float* m, idx ld, const float* bias,
                                                         idx cout, idx co) {
  V o[4];
  tile_outputs<V>(o, m, ld, bias, co);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) store<V>(y + r * rs + c * cout + co, Relu ? relu_of<V>(o[2 * r + c]) : o[2 * r + c]);
}

// One tile's outputs A^T m A + bias [ReLU], output (r, c) written to y[r * rs + c * cout + co].
template <Isa L, bool Relu>
__attribute__((always_inline)) inline void output_tile(float* y, idx rs, const float* m, idx ld, const float* bias,
                                                        idx cout) {
  for_lanes<L>(cout, [=](auto tag, idx co) CNNLITE_INLINE_LAMBDA {
    output_lanes<CNNLITE_LANES(tag), Relu>(y, rs, m, ld, bias, cout, co);
  });
}

// Output tiles [t0, t1) from m (16, block, cout). A tile cut by the output's edge goes through patch (4 * cout).
template <Isa L, bool Relu>
__attribute__((always_inline)) inline void output_block(float* y, const float* m, const float* bias, float* patch,
                                                         const Plan& p, idx t0, idx t1) {
  const idx ld = p.block * p.cout, rs = p.ow * p.cout, size = p.n * p.oh * rs;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const idx oy = 2 * tc.ty, ox = 2 * tc.tx;
    float* y00 = y + tc.img * p.oh * rs + oy * rs + ox * p.cout;
    const float* mt = m + (t - t0) * p.cout;
    // Write-prefetch the tile below's outputs, a tile row ahead.
    const idx below_at = (y00 - y) + 2 * rs;
    for (idx at = below_at; at < std::min(below_at + 2 * rs, size); at += rs)
      for (idx j = 0; j < 2 * p.cout; j += 16) __builtin_prefetch(y + at + j, 1);
    const bool right = ox + 1 < p.ow, below = oy + 1 < p.oh;
    if (right && below) {
      output_tile<L, Relu>(y00, rs, mt, ld, bias, p.cout);
      continue;
    }
    output_tile<L, Relu>(patch, 2 * p.cout, mt, ld, bias, p.cout);
    for (int r = 0; r < (below ? 2 : 1); ++r)
      for (int c = 0; c < (right ? 2 : 1); ++c)
        std::copy(patch + (r * 2 + c) * p.cout, patch + (r * 2 + c + 1) * p.cout, y00 + r * rs + c * p.cout);
  }
}

template <Isa L>
__attribute__((always_inline)) inline void transform_outputs_loops(float* y, const float* m, const float* bias,
                                                                    float* patch, bool relu, const Plan& p, idx t0,
                                                                    idx t1) {
  if (relu)
    output_block<L, true>(y, m, bias, patch, p, t0, t1);
  else
    output_block<L, false>(y, m, bias, patch, p, t0, t1);
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_outputs, transform_outputs_loops,
                     (float* y, const float* m, const float* bias, float* patch, bool relu, const Plan& p, idx t0,
                      idx t1),
                     (y, m, bias, patch, relu, p, t0, t1))

// --- max-pool in the store (2x2 windows, stride 2, no padding, over an output of even height and width) ----------
// With oh and ow even, output tile t (image, ty, tx) covers exactly pooling window t: cells (2ty + r, 2tx + c) of its
// image, r, c in {0, 1}. The pooled output and its argmax are (n, oh / 2, ow / 2, cout), tile t's window at t * cout.

typedef int32_t I16 __attribute__((vector_size(64)));
typedef int32_t I8 __attribute__((vector_size(32)));
typedef int32_t I4 __attribute__((vector_size(16)));
template <class V>
struct IntLanes;
template <>
struct IntLanes<F16> {
  using type = I16;
};
template <>
struct IntLanes<F8> {
  using type = I8;
};
template <>
struct IntLanes<F4> {
  using type = I4;
};
template <>
struct IntLanes<float> {
  using type = int32_t;
};

// Channels [co, co + width of V) of one tile: its four outputs as output_lanes computes them (tile_outputs, then
// [ReLU]), then their maximum and its argmax as maxpool2d_forward takes them: compared in row-major order, a later
// cell winning only when strictly greater (the first maximum wins ties; a NaN in the first cell stays, a later NaN
// never wins). cell00 is the flat index r * ow + c of the tile's top-left output in its image plane.
template <class V, bool Relu>
__attribute__((always_inline)) inline void output_pool_lanes(float* yp, int32_t* ap, const float* m, idx ld,
                                                              const float* bias, int32_t cell00, int32_t ow, idx co) {
  using I = typename IntLanes<V>::type;
  V o[4];
  tile_outputs<V>(o, m, ld, bias, co);
  if (Relu)
    for (int t = 0; t < 4; ++t) o[t] = relu_of<V>(o[t]);
  const int32_t cells[4] = {cell00, cell00 + 1, cell00 + ow, cell00 + ow + 1};
  V best = o[0];
  I arg;
  if constexpr (std::is_same_v<V, float>) {
    arg = cells[0];
    for (int t = 1; t < 4; ++t)
      if (o[t] > best) {
        best = o[t];
        arg = cells[t];
      }
  } else {
    arg = cells[0] - I{};
    for (int t = 1; t < 4; ++t) {
      const I greater = o[t] > best;
      best = greater ? o[t] : best;
      arg = greater ? cells[t] - I{} : arg;
    }
  }
  store<V>(yp + co, best);
  __builtin_memcpy(ap + co, &arg, sizeof(I));
}

// Tiles [t0, t1) from m (16, block, cout): pooled y and argmax (n, oh / 2, ow / 2, cout).
template <Isa L, bool Relu>
__attribute__((always_inline)) inline void output_pool_block(float* y, int32_t* argmax, const float* m,
                                                              const float* bias, const Plan& p, idx t0, idx t1) {
  const idx ld = p.block * p.cout;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const int32_t cell00 = static_cast<int32_t>(2 * tc.ty * p.ow + 2 * tc.tx), ow = static_cast<int32_t>(p.ow);
    const float* mt = m + (t - t0) * p.cout;
    float* yp = y + t * p.cout;
    int32_t* ap = argmax + t * p.cout;
    for_lanes<L>(p.cout, [=](auto tag, idx co) CNNLITE_INLINE_LAMBDA {
      output_pool_lanes<CNNLITE_LANES(tag), Relu>(yp, ap, mt, ld, bias, cell00, ow, co);
    });
  }
}

template <Isa L>
__attribute__((always_inline)) inline void transform_pooled_outputs_loops(float* y, int32_t* argmax, const float* m,
                                                                           const float* bias, bool relu,
                                                                           const Plan& p, idx t0, idx t1) {
  if (relu)
    output_pool_block<L, true>(y, argmax, m, bias, p, t0, t1);
  else
    output_pool_block<L, false>(y, argmax, m, bias, p, t0, t1);
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_pooled_outputs, transform_pooled_outputs_loops,
                     (float* y, int32_t* argmax, const float* m, const float* bias, bool relu, const Plan& p, idx t0,
                      idx t1),
                     (y, argmax, m, bias, relu, p, t0, t1))

// Channels [ch, ch + width of V) of the gradient of one cell of the convolution's output, as the max-pool's
// backward writes it (maxpool2d_backward with relu_y): the window's dy where `cell` is its argmax and, with a gate
// (the pooled output), the gate is > 0; else 0. 0 + dy, as there, so that -0 becomes +0.
template <class V>
__attribute__((always_inline)) inline V pooled_grad_value(const float* dy, const int32_t* a, const float* gate,
                                                           int32_t cell, idx ch) {
  using I = typename IntLanes<V>::type;
  const V d = load<V>(dy + ch);
  if constexpr (std::is_same_v<V, float>) {
    return a[ch] == cell && (!gate || gate[ch] > 0.0f) ? 0.0f + d : 0.0f;
  } else {
    // As bits: the lanes' all-ones masks AND the bits of 0 + dy. (GCC lowers an integer vector compare here lane
    // by lane, so a != cell is the sign of (a ^ cell) | -(a ^ cell), in unsigned arithmetic.)
    typedef uint32_t U __attribute__((vector_size(sizeof(I))));
    I av;
    __builtin_memcpy(&av, a + ch, sizeof(I));
    const U diff = reinterpret_cast<U>(av ^ cell);
    I hit = ~(reinterpret_cast<I>(diff | (0u - diff)) >> 31);
    if (gate) hit &= load<V>(gate + ch) > V{};
    const V sum = V{} + d;
    I bits;
    __builtin_memcpy(&bits, &sum, sizeof(I));
    bits &= hit;
    V out;
    __builtin_memcpy(&out, &bits, sizeof(I));
    return out;
  }
}

// The four cells of one whole window (its top-left cell00, row length ow) in row-major order, dy, argmax, gate read
// once: the same values as four pooled_grad_value calls.
template <class V>
__attribute__((always_inline)) inline void pooled_window_values(V out[4], const float* dy, const int32_t* a,
                                                                 const float* gate, int32_t cell00, int32_t ow,
                                                                 idx ch) {
  const int32_t cells[4] = {cell00, cell00 + 1, cell00 + ow, cell00 + ow + 1};
  if constexpr (std::is_same_v<V, float>) {
    for (int q = 0; q < 4; ++q) out[q] = pooled_grad_value<float>(dy, a, gate, cells[q], ch);
  } else {
    using I = typename IntLanes<V>::type;
    typedef uint32_t U __attribute__((vector_size(sizeof(I))));
    I av;
    __builtin_memcpy(&av, a + ch, sizeof(I));
    const V sum = V{} + load<V>(dy + ch);
    I bits;
    __builtin_memcpy(&bits, &sum, sizeof(I));
    if (gate) bits &= load<V>(gate + ch) > V{};
    for (int q = 0; q < 4; ++q) {
      const U diff = reinterpret_cast<U>(av ^ cells[q]);
      const I hit = bits & ~(reinterpret_cast<I>(diff | (0u - diff)) >> 31);
      __builtin_memcpy(&out[q], &hit, sizeof(I));
    }
  }
}

// Channels [ch, ch + width of V) of the row pass B^T dz of column ix, rows iy0 .. iy0 + 3, of an image's dz padded
// by (p.pt, p.pl) (see pooled_input_block), into col[r * c + ch]: a padding cell is 0, as input_block zero-fills.
template <class V>
__attribute__((always_inline)) inline void pooled_column_lanes(float* col, const float* dy, const int32_t* argmax,
                                                                const float* gate, const Plan& p, idx img, idx iy0,
                                                                idx ix, idx ch) {
  const idx c = p.cin, ph = p.h / 2, pw = p.w / 2;
  V e[4];
  for (int r = 0; r < 4; ++r) {
    const idx iy = iy0 + r;
    if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) {
      e[r] = V{};
      continue;
    }
    const idx at = ((img * ph + iy / 2) * pw + ix / 2) * c;
    e[r] = pooled_grad_value<V>(dy + at, argmax + at, gate ? gate + at : nullptr, static_cast<int32_t>(iy * p.w + ix),
                                ch);
  }
  V t[4];
  input_row_pass<V>(t, 1, e[0], e[1], e[2], e[3], 0);
  for (int r = 0; r < 4; ++r) store<V>(col + r * c + ch, t[r]);
}

// As pooled_column_lanes for columns ix and ix + 1 when they and rows iy0 .. iy0 + 3 are two whole windows (ix, iy0
// even, inside the image): each window's dy, argmax, gate read once for its four cells.
template <class V>
__attribute__((always_inline)) inline void pooled_column_pair_lanes(float* col0, float* col1, const float* dy,
                                                                     const int32_t* argmax, const float* gate,
                                                                     const Plan& p, idx img, idx iy0, idx ix, idx ch) {
  const idx c = p.cin, ph = p.h / 2, pw = p.w / 2;
  V q[2][4];
  for (int w = 0; w < 2; ++w) {
    const idx at = ((img * ph + iy0 / 2 + w) * pw + ix / 2) * c;
    pooled_window_values<V>(q[w], dy + at, argmax + at, gate ? gate + at : nullptr,
                            static_cast<int32_t>((iy0 + 2 * w) * p.w + ix), static_cast<int32_t>(p.w), ch);
  }
  V t[4];
  input_row_pass<V>(t, 1, q[0][0], q[0][2], q[1][0], q[1][2], 0);
  for (int r = 0; r < 4; ++r) store<V>(col0 + r * c + ch, t[r]);
  input_row_pass<V>(t, 1, q[0][1], q[0][3], q[1][1], q[1][3], 0);
  for (int r = 0; r < 4; ++r) store<V>(col1 + r * c + ch, t[r]);
}

// Channels [ch, ch + width of V) of the column pass of one tile whose four row-passed columns are at col[q]
// (r * c + ch), into v[tap * ld + ch].
template <class V>
__attribute__((always_inline)) inline void pooled_tile_lanes(float* v, idx ld, const float* const col[4], idx c,
                                                              idx ch) {
  V t[kTaps];
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) t[r * 4 + q] = load<V>(col[q] + r * c + ch);
  input_column_pass<V>(v, ld, t, ch);
}

// Column ix's slot (4 * c floats) in a ring of four (ix may be negative: the padding).
__attribute__((always_inline)) inline float* ring_column(float* ring, idx ix, idx c) {
  return ring + ((ix % 4 + 4) % 4) * 4 * c;
}

// The input gradient's input transform from the pooled gradient: tiles [t0, t1) of p, the correlation of the
// convolution's output gradient dz (n, p.h, p.w, p.cin) = (n, oh, ow, cout), padded by (p.pt, p.pl), with the rotated
// kernel. dz (zeros in the padding, elsewhere pooled_grad_value of the window (iy / 2, ix / 2) of dy, argmax, gate:
// (n, oh / 2, ow / 2, cout)) is rebuilt column by column with its row pass B^T dz, the same operations input_tile
// does on a patch, so v has the bits the materialised dz gives. Horizontal neighbours share two columns, so along a
// tile row each column's dz and row pass are computed once, kept in a ring of four columns in patch (16 * cin).
template <Isa L>
__attribute__((always_inline)) inline void pooled_input_block(float* v, const float* dy, const int32_t* argmax,
                                                               const float* gate, float* patch, const Plan& p, idx t0,
                                                               idx t1) {
  const idx ld = p.block * p.cin, c = p.cin;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const idx iy0 = 2 * tc.ty - p.pt, ix0 = 2 * tc.tx - p.pl;
    const bool rows_whole = iy0 % 2 == 0 && iy0 >= 0 && iy0 + 4 <= p.h;  // two whole window rows
    // The first tile of a tile row (or of the block) computes all four columns, the others their right two.
    for (idx ix = t == t0 || tc.tx == 0 ? ix0 : ix0 + 2; ix < ix0 + 4; ++ix) {
      float* col = ring_column(patch, ix, c);
      if (rows_whole && ix % 2 == 0 && ix >= 0 && ix + 2 <= p.w && ix + 2 <= ix0 + 4) {
        float* col1 = ring_column(patch, ix + 1, c);
        const idx img = tc.img;
        for_lanes<L>(c, [=](auto tag, idx ch) CNNLITE_INLINE_LAMBDA {
          pooled_column_pair_lanes<CNNLITE_LANES(tag)>(col, col1, dy, argmax, gate, p, img, iy0, ix, ch);
        });
        ++ix;
        continue;
      }
      for_lanes<L>(c, [=](auto tag, idx ch) CNNLITE_INLINE_LAMBDA {
        pooled_column_lanes<CNNLITE_LANES(tag)>(col, dy, argmax, gate, p, tc.img, iy0, ix, ch);
      });
    }
    const float* const col[4] = {ring_column(patch, ix0, c), ring_column(patch, ix0 + 1, c),
                                 ring_column(patch, ix0 + 2, c), ring_column(patch, ix0 + 3, c)};
    float* vt = v + (t - t0) * c;
    for_lanes<L>(c, [=](auto tag, idx ch) CNNLITE_INLINE_LAMBDA {
      pooled_tile_lanes<CNNLITE_LANES(tag)>(vt, ld, col, c, ch);
    });
  }
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_pooled_inputs, pooled_input_block,
                     (float* v, const float* dy, const int32_t* argmax, const float* gate, float* patch, const Plan& p,
                      idx t0, idx t1),
                     (v, dy, argmax, gate, patch, p, t0, t1))

// u (16, cin', cout') = G g G^T per channel pair, from k (3, 3, cin, cout). Forward: g = k, cin' = cin. Input
// gradient (rotated): g'[a][b][co][ci] = k[2 - a][2 - b][ci][co], cin' = cout, cout' = cin. Computed in double.
void transform_weights(float* u, const float* k, idx cin, idx cout, bool rotated) {
  const auto& G = kG;
  const idx in2 = rotated ? cout : cin, out2 = rotated ? cin : cout;
  for (idx ci = 0; ci < cin; ++ci) {
    for (idx co = 0; co < cout; ++co) {
      double g[3][3];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          const int ka = rotated ? 2 - a : a, kb = rotated ? 2 - b : b;
          g[a][b] = k[((ka * 3 + kb) * cin + ci) * cout + co];
        }
      double gt[4][3];  // G g
      for (int r = 0; r < 4; ++r)
        for (int b = 0; b < 3; ++b) gt[r][b] = G[r][0] * g[0][b] + G[r][1] * g[1][b] + G[r][2] * g[2][b];
      const idx row = rotated ? co : ci, col = rotated ? ci : co;
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
          const double value = gt[r][0] * G[c][0] + gt[r][1] * G[c][1] + gt[r][2] * G[c][2];
          u[(r * 4 + c) * in2 * out2 + row * out2 + col] = static_cast<float>(value);
        }
    }
  }
}

// Per-thread workspaces (parallel.h), reused across calls.
struct WeightsTag;
struct PackedTag;
struct BlockTag;
struct PatchTag;
struct BiasTag;
struct GradPartialsTag;
struct GradTotalTag;
struct GradProductTag;
Workspace& weights_workspace() { return thread_workspace<WeightsTag>(); }
Workspace& packed_workspace() { return thread_workspace<PackedTag>(); }
Workspace& block_workspace() { return thread_workspace<BlockTag>(); }
Workspace& patch_workspace() { return thread_workspace<PatchTag>(); }
Workspace& bias_workspace() { return thread_workspace<BiasTag>(); }
Workspace& grad_partials_workspace() { return thread_workspace<GradPartialsTag>(); }
Workspace& grad_total_workspace() { return thread_workspace<GradTotalTag>(); }

struct SubBlockTag;

// bf16 with an even cin: the block's transformed inputs go straight to bfloat16 pairs vb (16, block, cin / 2 words,
// the layout gemm_bf16_packed_pairs reads), whole slivers of tiles at a time through an L1-sized float32 scratch,
// instead of a float32 v that the products convert again (measured: that pass was 20 % of conv2's bf16 forward).
// in(v, patch, plan, t0, t1) writes with plan's block as the plane stride; the bits are those of the whole block.
template <class In>
void bf16_input_pairs(uint32_t* vb, float* patch, const Plan& p, idx t0, idx t1, In&& in) {
  // Tiles per pass through the scratch: whole slivers, the scratch within 24 KiB (L1) where a sliver fits.
  constexpr idx kScratchFloats = 6 * 1024;
  const idx sliver = gemm_bf16_rows_per_sliver(), kp = p.cin / 2;
  const idx sub = sliver * std::max<idx>(1, kScratchFloats / (kTaps * sliver * p.cin));
  Plan sp = p;
  sp.block = sub;
  float* scratch = thread_workspace<SubBlockTag>().get(kTaps * sub * p.cin);
  for (idx s0 = t0; s0 < t1; s0 += sub) {
    const idx rows = std::min(sub, t1 - s0);
    in(scratch, patch, sp, s0, s0 + rows);
    for (int q = 0; q < kTaps; ++q) {
      uint32_t* dst = vb + (q * p.block + (s0 - t0)) * kp;
      bf16_convert_pairs(dst, scratch + q * sub * p.cin, rows * p.cin);
      const idx padded = (rows + sliver - 1) / sliver * sliver;
      std::fill(dst + rows * kp, dst + padded * kp, 0u);  // the last sliver's rows past the block's tiles
    }
  }
}

// The tiles of p, block by block on the threads: in(v, patch, plan, t0, t1) writes the block's transformed inputs v
// (16, plan.block, cin), the 16 products m = v U follow, then out(m, patch, t0, t1) stores the block's outputs. up
// holds the packed transforms of the weights (bf16: packed by gemm_bf16_pack_b, as words, and the products run
// gemm_bf16_packed_pairs, or gemm_bf16_packed for an odd cin).
template <class In, class Out>
void winograd_tiles(const float* up, const Plan& p, bool bf16, In&& in, Out&& out) {
  const idx packed = bf16 ? gemm_bf16_packed_size(p.cin, p.cout) : sgemm_packed_size(p.cin, p.cout);
  const idx chunks = (p.tiles + p.block - 1) / p.block;
  const bool pairs = bf16 && p.cin % 2 == 0 && p.block % gemm_bf16_rows_per_sliver() == 0;
  auto body = [&](idx c) {
    const idx t0 = c * p.block, t1 = std::min(p.tiles, t0 + p.block), count = t1 - t0;
    float* v = block_workspace().get(kTaps * p.block * (p.cin + p.cout));
    float* m = v + kTaps * p.block * p.cin;
    float* patch = patch_workspace().get(kTaps * std::max(p.cin, p.cout));
    uint32_t* vb = reinterpret_cast<uint32_t*>(v);  // with pairs: half of v's floats
    if (pairs)
      bf16_input_pairs(vb, patch, p, t0, t1, in);
    else
      in(v, patch, p, t0, t1);
    for (int q = 0; q < kTaps; ++q) {
      if (pairs)
        gemm_bf16_packed_pairs(m + q * p.block * p.cout, p.cout, vb + q * p.block * (p.cin / 2),
                               reinterpret_cast<const uint32_t*>(up + q * packed), count, p.cout, p.cin);
      else if (bf16)
        gemm_bf16_packed(m + q * p.block * p.cout, p.cout, v + q * p.block * p.cin, p.cin,
                         reinterpret_cast<const uint32_t*>(up + q * packed), count, p.cout, p.cin);
      else
        sgemm_packed(count, p.cout, p.cin, v + q * p.block * p.cin, p.cin, up + q * packed, m + q * p.block * p.cout,
                     p.cout);
    }
    out(m, patch, t0, t1);
  };
  parallel_for(chunks, body);
}

// y (n, oh, ow, cout) = corr(x [gated], weights whose transform is packed in up) + bias [ReLU]. bias has cout floats.
void winograd_run(float* y, const float* x, const float* gate, const float* up, const float* bias, bool relu,
                  const Plan& p, bool bf16) {
  winograd_tiles(
      up, p, bf16,
      [&](float* v, float* patch, const Plan& pl, idx t0, idx t1) { transform_inputs(v, x, gate, patch, pl, t0, t1); },
      [&](const float* m, float* patch, idx t0, idx t1) { transform_outputs(y, m, bias, patch, relu, p, t0, t1); });
}

// The packed transformed weights (16 blocks of sgemm_packed_size(cin', cout') floats, or with bf16 of
// gemm_bf16_packed_size words) in the calling thread's workspace.
const float* packed_weights(const float* k, idx cin, idx cout, bool rotated, bool bf16) {
  const idx in2 = rotated ? cout : cin, out2 = rotated ? cin : cout;
  float* u = weights_workspace().get(kTaps * in2 * out2);
  transform_weights(u, k, cin, cout, rotated);
  const idx packed = bf16 ? gemm_bf16_packed_size(in2, out2) : sgemm_packed_size(in2, out2);
  float* up = packed_workspace().get(kTaps * packed);
  for (int q = 0; q < kTaps; ++q) {
    if (bf16)
      gemm_bf16_pack_b(reinterpret_cast<uint32_t*>(up + q * packed), u + q * in2 * out2, out2, in2, out2);
    else
      sgemm_pack_b(up + q * packed, u + q * in2 * out2, out2, in2, out2);
  }
  return up;
}

const float* bias_or_zeros(const float* bias, idx cout) {
  if (bias) return bias;
  float* z = bias_workspace().get(cout);
  std::fill(z, z + cout, 0.0f);
  return z;
}

// --- weight gradient ----------------------------------------------------------------------------------------------

// Channels [co, co + width of V) of one tile's output-gradient transform A e A^T (e its 2x2 output gradient) into
// mg[tap * ld + co]; e is also added, in a fixed order, to the bias-gradient sums db.
template <class V>
__attribute__((always_inline)) inline void grad_cells(float* mg, idx ld, float* db, const V (&e)[2][2], idx co) {
  store<V>(db + co, load<V>(db + co) + e[0][0] + e[0][1] + e[1][0] + e[1][1]);
  V t[4][2];  // A d: rows
  for (int c = 0; c < 2; ++c) {
    t[0][c] = e[0][c];
    t[1][c] = e[0][c] + e[1][c];
    t[2][c] = e[0][c] - e[1][c];
    t[3][c] = -e[1][c];
  }
  for (int r = 0; r < 4; ++r) {  // (A d) A^T: columns
    store<V>(mg + (r * 4 + 0) * ld + co, t[r][0]);
    store<V>(mg + (r * 4 + 1) * ld + co, t[r][0] + t[r][1]);
    store<V>(mg + (r * 4 + 2) * ld + co, t[r][0] - t[r][1]);
    store<V>(mg + (r * 4 + 3) * ld + co, -t[r][1]);
  }
}

// Channels [co, co + width of V) of one tile's output-gradient transform (grad_cells) from its 2x2 dy, output (r, c)
// at d[r * rs + c * cout + co]; with Gated masked by its gate > 0.
template <class V, bool Gated>
__attribute__((always_inline)) inline void grad_lanes(float* mg, idx ld, float* db, const float* d, const float* g,
                                                       idx rs, idx cout, idx co) {
  V e[2][2];
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      const idx at = r * rs + c * cout + co;
      e[r][c] = Gated ? positive_or_zero<V>(load<V>(g + at), load<V>(d + at)) : load<V>(d + at);
    }
  grad_cells<V>(mg, ld, db, e, co);
}

template <Isa L, bool Gated>
__attribute__((always_inline)) inline void grad_tile(float* mg, idx ld, float* db, const float* d, const float* g,
                                                      idx rs, idx cout) {
  for_lanes<L>(cout, [=](auto tag, idx co) CNNLITE_INLINE_LAMBDA {
    grad_lanes<CNNLITE_LANES(tag), Gated>(mg, ld, db, d, g, rs, cout, co);
  });
}

// mg (16, block, cout): transformed output gradients of tiles [t0, t1); db (cout) += their dy. A tile cut by the
// output's edge is copied (masked, zero-filled) into patch (4 * cout) first: outputs past the edge have no gradient.
template <Isa L, bool Gated>
__attribute__((always_inline)) inline void grad_block(float* mg, float* db, const float* dy, const float* gate,
                                                       float* patch, const Plan& p, idx t0, idx t1) {
  const idx ld = p.block * p.cout, rs = p.ow * p.cout, size = p.n * p.oh * rs;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const idx oy = 2 * tc.ty, ox = 2 * tc.tx;
    const idx off = tc.img * p.oh * rs + oy * rs + ox * p.cout;
    for (idx at = off + 2 * rs; at < std::min(off + 4 * rs, size); at += rs)  // the tile below, a tile row ahead
      for (idx j = 0; j < 2 * p.cout; j += 16) {
        __builtin_prefetch(dy + at + j);
        if (Gated) __builtin_prefetch(gate + at + j);
      }
    float* mt = mg + (t - t0) * p.cout;
    const bool right = ox + 1 < p.ow, below = oy + 1 < p.oh;
    if (right && below) {
      grad_tile<L, Gated>(mt, ld, db, dy + off, Gated ? gate + off : nullptr, rs, p.cout);
      continue;
    }
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) {
        float* dst = patch + (r * 2 + c) * p.cout;
        const bool inside = (r == 0 || below) && (c == 0 || right);
        const idx at = off + r * rs + c * p.cout;
        for (idx co = 0; co < p.cout; ++co)
          dst[co] = inside && (!Gated || gate[at + co] > 0.0f) ? dy[at + co] : 0.0f;
      }
    grad_tile<L, false>(mt, ld, db, patch, nullptr, 2 * p.cout, p.cout);
  }
}

template <Isa L>
__attribute__((always_inline)) inline void transform_output_grads_loops(float* mg, float* db, const float* dy,
                                                                         const float* gate, float* patch,
                                                                         const Plan& p, idx t0, idx t1) {
  if (gate)
    grad_block<L, true>(mg, db, dy, gate, patch, p, t0, t1);
  else
    grad_block<L, false>(mg, db, dy, gate, patch, p, t0, t1);
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_output_grads, transform_output_grads_loops,
                     (float* mg, float* db, const float* dy, const float* gate, float* patch, const Plan& p, idx t0,
                      idx t1),
                     (mg, db, dy, gate, patch, p, t0, t1))

// Channels [co, co + width of V) of one pooled tile's output-gradient transform: the window's dz in registers
// (pooled_window_values), then grad_cells as grad_lanes.
template <class V>
__attribute__((always_inline)) inline void pooled_grad_lanes(float* mg, idx ld, float* db, const float* dy,
                                                              const int32_t* a, const float* gate, int32_t cell00,
                                                              int32_t ow, idx co) {
  V q[4];
  pooled_window_values<V>(q, dy, a, gate, cell00, ow, co);
  const V e[2][2] = {{q[0], q[1]}, {q[2], q[3]}};
  grad_cells<V>(mg, ld, db, e, co);
}

// The weight gradient's output-gradient transform from the pooled gradient: tiles [t0, t1) of the forward's plan p
// (oh and ow even), tile t being pooling window t of dy, argmax, gate (n, oh / 2, ow / 2, cout); the bits of
// grad_block on the materialised dz.
template <Isa L>
__attribute__((always_inline)) inline void pooled_grad_block(float* mg, float* db, const float* dy,
                                                              const int32_t* argmax, const float* gate, float*,
                                                              const Plan& p, idx t0, idx t1) {
  const idx ld = p.block * p.cout, c = p.cout;
  TileCursor tc(p, t0);
  for (idx t = t0; t < t1; ++t, tc.next(p)) {
    const int32_t cell00 = static_cast<int32_t>(2 * tc.ty * p.ow + 2 * tc.tx), ow = static_cast<int32_t>(p.ow);
    const idx at = t * c;
    const float* g = gate ? gate + at : nullptr;
    float* mt = mg + (t - t0) * c;
    // The 16 strided stores to mg keep the hardware prefetchers busy: fetch the window 8 tiles ahead by hand.
    for (idx j = std::min(at + 8 * c, p.tiles * c - c); j < std::min(at + 9 * c, p.tiles * c); j += 16) {
      __builtin_prefetch(dy + j);
      __builtin_prefetch(argmax + j);
      if (gate) __builtin_prefetch(gate + j);
    }
    for_lanes<L>(c, [=](auto tag, idx ch) CNNLITE_INLINE_LAMBDA {
      pooled_grad_lanes<CNNLITE_LANES(tag)>(mt, ld, db, dy + at, argmax + at, g, cell00, ow, ch);
    });
  }
}
CNNLITE_ISA_VARIANTS_BY_LEVEL(, transform_pooled_output_grads, pooled_grad_block,
                     (float* mg, float* db, const float* dy, const int32_t* argmax, const float* gate, float* patch,
                      const Plan& p, idx t0, idx t1),
                     (mg, db, dy, argmax, gate, patch, p, t0, t1))

// dk[a][b][ci][co] = (G^T du G)[a][b], du (16, cout, cin) the gradient with respect to U = G g G^T, transposed.
// In double.
void untransform_weight_grads(float* dk, const float* du, idx cin, idx cout) {
  const auto& G = kG;
  const idx plane = cin * cout;
  for (idx e = 0; e < plane; ++e) {
    const idx ci = e / cout, co = e % cout;
    double m[4][4];
    for (int q = 0; q < kTaps; ++q) m[q / 4][q % 4] = du[q * plane + co * cin + ci];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        double s = 0.0;
        for (int r = 0; r < 4; ++r)
          for (int c = 0; c < 4; ++c) s += G[r][a] * m[r][c] * G[c][b];
        dk[(a * 3 + b) * plane + e] = static_cast<float>(s);
      }
  }
}

// Tile blocks per weight-gradient chunk: fixed, so the sums' order never depends on the threads. Chunks per wave: up
// to 32, fewer when their partials would take more than 16 MiB (large channel counts).
constexpr idx kBlocksPerGradChunk = 8;
constexpr idx kGradChunksPerWave = 32;
constexpr idx kGradPartialsBudget = 4 * 1024 * 1024;  // floats

}  // namespace

bool winograd_forward_applies(const Conv2dGeometry& g) { return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1; }

bool winograd_backward_input_applies(const Conv2dGeometry& g) {
  return winograd_forward_applies(g) && g.pt <= 2 && g.pb <= 2 && g.pl <= 2 && g.pr <= 2;
}

void winograd_conv2d_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
                             bool relu, bool bf16) {
  const Plan p(g);
  if (p.tiles == 0) return;
  const float* up = packed_weights(k, g.cin, g.cout, false, bf16);
  winograd_run(y, x, nullptr, up, bias_or_zeros(bias, g.cout), relu, p, bf16);
}

void winograd_conv2d_backward_input(float* dx, const float* dy, const float* gate, const float* k,
                                    const Conv2dGeometry& g, bool bf16) {
  // dx = corr(dy padded by 2 - pad, k rotated by 180 degrees with cin and cout swapped): an (oh, ow) input, (h, w) out.
  const Conv2dGeometry t{g.n, g.oh, g.ow, g.cout, 3, 3, g.cin, 1, 1, 2 - g.pt, 2 - g.pb, 2 - g.pl, 2 - g.pr, g.h, g.w};
  const Plan p(t);
  if (p.tiles == 0) return;
  const float* up = packed_weights(k, g.cin, g.cout, true, bf16);
  winograd_run(dx, dy, gate, up, bias_or_zeros(nullptr, g.cin), false, p, bf16);
}

namespace {

// dk, dbias (may be null) of the weight gradient over the tiles of p, grads(mg, db, patch, t0, t1) writing the
// transformed output gradients of tiles [t0, t1) and adding their dy to db (see winograd_conv2d_backward_weights).
template <class Grads>
void weight_grad_run(float* dk, float* dbias, const float* x, const Plan& p, bool bf16, Grads&& grads) {
  const idx cin = p.cin, cout = p.cout;
  // Per chunk of tiles a partial (du^T (16, cout, cin), db (cout)): each block's 16 products Mg^T V are added to it
  // in block order; the partials are then added to the total in chunk order, wave by wave.
  const idx du_size = kTaps * cin * cout, partial = du_size + cout;
  const idx blocks = (p.tiles + p.block - 1) / p.block;
  const idx chunks = (blocks + kBlocksPerGradChunk - 1) / kBlocksPerGradChunk;
  const idx wave = std::max<idx>(1, std::min(kGradChunksPerWave, kGradPartialsBudget / partial));
  float* total = grad_total_workspace().get(partial);
  float* parts = grad_partials_workspace().get(std::min(chunks, wave) * partial);
  auto body = [&](idx c, float* part) {
    float* db = part + du_size;
    std::fill(db, db + cout, 0.0f);
    float* v = block_workspace().get(kTaps * p.block * (cin + cout));
    float* mg = v + kTaps * p.block * cin;
    float* patch = patch_workspace().get(kTaps * std::max(cin, cout));
    const idx b1 = std::min(blocks, (c + 1) * kBlocksPerGradChunk);
    for (idx b = c * kBlocksPerGradChunk; b < b1; ++b) {
      const idx t0 = b * p.block, t1 = std::min(p.tiles, t0 + p.block);
      transform_inputs(v, x, nullptr, patch, p, t0, t1);
      grads(mg, db, patch, t0, t1);
      const float beta = b == c * kBlocksPerGradChunk ? 0.0f : 1.0f;
      // du^T (cout x cin) = Mg^T V: the micro-kernel's rows run over cout, which fills them better than cin
      // (measured: see BENCHMARKS.md, Winograd section).
      if (bf16) {  // each block's product in float32 from bf16 operands, then added to the chunk's partial
        float* prod = thread_workspace<GradProductTag>().get(cin * cout);
        for (int q = 0; q < kTaps; ++q) {
          float* dst = part + q * cin * cout;
          gemm_bf16(beta == 0.0f ? dst : prod, mg + q * p.block * cout, v + q * p.block * cin, nullptr, cout, cin,
                    t1 - t0, true, false);
          if (beta != 0.0f)
            for (idx e = 0; e < cin * cout; ++e) dst[e] += prod[e];
        }
        continue;
      }
      for (int q = 0; q < kTaps; ++q)
        sgemm(true, false, cout, cin, t1 - t0, 1.0f, mg + q * p.block * cout, cout, v + q * p.block * cin, cin, beta,
              part + q * cin * cout, cin);
    }
  };
  sum_over_chunks(total, parts, chunks, partial, wave, body);
  untransform_weight_grads(dk, total, cin, cout);
  if (dbias) std::copy(total + du_size, total + partial, dbias);
}

}  // namespace

void winograd_conv2d_backward_weights(float* dk, float* dbias, const float* dy, const float* gate, const float* x,
                                      const Conv2dGeometry& g, bool bf16) {
  const Plan p(g);
  weight_grad_run(dk, dbias, x, p, bf16, [&](float* mg, float* db, float* patch, idx t0, idx t1) {
    transform_output_grads(mg, db, dy, gate, patch, p, t0, t1);
  });
}

// --- max-pool in the store ----------------------------------------------------------------------------------------

bool winograd_maxpool_applies(const Conv2dGeometry& g) {
  return winograd_forward_applies(g) && g.oh % 2 == 0 && g.ow % 2 == 0;
}

void winograd_conv2d_forward_maxpool(float* y, int32_t* argmax, const float* x, const float* k, const float* bias,
                                     const Conv2dGeometry& g, bool relu, bool bf16) {
  const Plan p(g);
  if (p.tiles == 0) return;
  const float* up = packed_weights(k, g.cin, g.cout, false, bf16);
  const float* b = bias_or_zeros(bias, g.cout);
  winograd_tiles(
      up, p, bf16,
      [&](float* v, float* patch, const Plan& pl, idx t0, idx t1) {
        transform_inputs(v, x, nullptr, patch, pl, t0, t1);
      },
      [&](const float* m, float*, idx t0, idx t1) { transform_pooled_outputs(y, argmax, m, b, relu, p, t0, t1); });
}

void winograd_conv2d_backward_input_maxpool(float* dx, const float* dy, const int32_t* argmax, const float* gate,
                                            const float* k, const Conv2dGeometry& g, bool bf16) {
  const Conv2dGeometry t{g.n, g.oh, g.ow, g.cout, 3, 3, g.cin, 1, 1, 2 - g.pt, 2 - g.pb, 2 - g.pl, 2 - g.pr, g.h, g.w};
  const Plan p(t);
  if (p.tiles == 0) return;
  const float* up = packed_weights(k, g.cin, g.cout, true, bf16);
  const float* b = bias_or_zeros(nullptr, g.cin);
  winograd_tiles(
      up, p, bf16,
      [&](float* v, float* patch, const Plan& pl, idx t0, idx t1) {
        transform_pooled_inputs(v, dy, argmax, gate, patch, pl, t0, t1);
      },
      [&](const float* m, float* patch, idx t0, idx t1) { transform_outputs(dx, m, b, patch, false, p, t0, t1); });
}

void winograd_conv2d_backward_weights_maxpool(float* dk, float* dbias, const float* dy, const int32_t* argmax,
                                              const float* gate, const float* x, const Conv2dGeometry& g, bool bf16) {
  const Plan p(g);
  weight_grad_run(dk, dbias, x, p, bf16, [&](float* mg, float* db, float* patch, idx t0, idx t1) {
    transform_pooled_output_grads(mg, db, dy, argmax, gate, patch, p, t0, t1);
  });
}

}  // namespace cnnlite
