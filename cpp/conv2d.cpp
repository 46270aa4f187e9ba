#include "conv2d.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "activations.h"
#include "conv2d_direct.h"
#include "conv2d_winograd.h"
#include "dispatch.h"
#include "gemm.h"
#include "gemm_skinny.h"
#include "parallel.h"

// The copy, scatter-add and column-sum loops below are plain C++, built per ISA level (CNNLITE_ISA_VARIANTS,
// dispatch.h); they only copy and add, so every build gives the same bits.
#define CNNLITE_INLINE inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
#define CNNLITE_NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CNNLITE_NO_MEMCPY_CALLS
#endif

namespace cnnlite {

namespace {

// Below this many floats per kernel row (kw * cin) the weight gradient goes through an im2col panel: the indirect
// kernel would have to gather most micro-tiles element by element.
constexpr idx kMinIndirectSpan = 16;

// Output rows per forward task (fixed): enough work per task, a small indirection buffer.
constexpr idx kForwardChunkRows = 960;

// Fixed chunk of output rows (depends on the geometry only, never on the thread count): its im2col panel stays
// around 384 KiB, well inside L2.
idx chunk_rows(idx depth) {
  constexpr idx kColBudget = 96 * 1024;  // floats
  idx rows = kColBudget / depth;
  rows = std::max<idx>(48, std::min<idx>(rows, 6144));
  return rows / 48 * 48;
}

// col (r1 - r0, kh*kw*cin): rows [r0, r1) of the im2col matrix (row = output pixel over the whole batch). Used for
// short kernel rows only, so the copies are inlined rather than turned into memcpy calls.
CNNLITE_INLINE CNNLITE_NO_MEMCPY_CALLS void im2col_loops(float* __restrict col, const float* __restrict x,
                                                         const Conv2dGeometry& g, idx r0, idx r1) {
  const idx depth = g.depth(), span = g.kw * g.cin;
  idx img = r0 / g.pixels(), oy = (r0 % g.pixels()) / g.ow, ox = r0 % g.ow;
  for (idx r = r0; r < r1; ++r) {
    float* dst = col + (r - r0) * depth;
    const float* xi = x + img * g.h * g.w * g.cin;
    const idx iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
    const bool cols_inside = ix0 >= 0 && ix0 + g.kw <= g.w;
    for (idx ky = 0; ky < g.kh; ++ky, dst += span) {
      const idx iy = iy0 + ky;
      if (iy < 0 || iy >= g.h) {
        for (idx t = 0; t < span; ++t) dst[t] = 0.0f;
        continue;
      }
      const float* src = xi + (iy * g.w + ix0) * g.cin;
      if (cols_inside) {
        for (idx t = 0; t < span; ++t) dst[t] = src[t];
        continue;
      }
      for (idx kx = 0; kx < g.kw; ++kx) {
        const idx ix = ix0 + kx;
        float* d = dst + kx * g.cin;
        if (ix < 0 || ix >= g.w) {
          for (idx ci = 0; ci < g.cin; ++ci) d[ci] = 0.0f;
        } else {
          const float* s = src + kx * g.cin;
          for (idx ci = 0; ci < g.cin; ++ci) d[ci] = s[ci];
        }
      }
    }
    if (++ox == g.ow) {
      ox = 0;
      if (++oy == g.oh) {
        oy = 0;
        ++img;
      }
    }
  }
}
CNNLITE_ISA_VARIANTS(CNNLITE_NO_MEMCPY_CALLS, im2col, im2col_loops,
                     (float* __restrict col, const float* __restrict x, const Conv2dGeometry& g, idx r0, idx r1),
                     (col, x, g, r0, r1))

// dx images [i0, i1) = scatter-add of dcol (their rows of the im2col gradient). Overwrites those images.
CNNLITE_INLINE void col2im_loops(float* __restrict dx, const float* __restrict dcol, const Conv2dGeometry& g, idx i0,
                                 idx i1) {
  const idx depth = g.depth(), image = g.h * g.w * g.cin;
  std::memset(dx + i0 * image, 0, sizeof(float) * (i1 - i0) * image);
  const float* src = dcol;
  for (idx img = i0; img < i1; ++img) {
    float* xi = dx + img * image;
    for (idx oy = 0; oy < g.oh; ++oy) {
      for (idx ox = 0; ox < g.ow; ++ox, src += depth) {
        const idx iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
        for (idx ky = 0; ky < g.kh; ++ky) {
          const idx iy = iy0 + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (idx kx = 0; kx < g.kw; ++kx) {
            const idx ix = ix0 + kx;
            if (ix < 0 || ix >= g.w) continue;
            float* d = xi + (iy * g.w + ix) * g.cin;
            const float* s = src + (ky * g.kw + kx) * g.cin;
            for (idx ci = 0; ci < g.cin; ++ci) d[ci] += s[ci];
          }
        }
      }
    }
  }
}
CNNLITE_ISA_VARIANTS(, col2im, col2im_loops,
                     (float* __restrict dx, const float* __restrict dcol, const Conv2dGeometry& g, idx i0, idx i1),
                     (dx, dcol, g, i0, i1))

// ind (r1 - r0, kh): for output rows [r0, r1) (over the whole batch), a pointer per kernel row ky to the kw * cin
// input floats it multiplies. Inside the input those are contiguous in x; a window that overlaps the padding gets its
// spans copied, zero-filled, into `patch` (room for (r1 - r0) * kh * kw * cin floats) instead, and kernel rows that
// fall entirely into the padding point at `zero` (kw * cin zeros).
void build_indirection(const float** ind, float* patch, const float* zero, const float* x, const Conv2dGeometry& g,
                       idx r0, idx r1) {
  const idx span = g.kw * g.cin;
  idx img = r0 / g.pixels(), oy = (r0 % g.pixels()) / g.ow, ox = r0 % g.ow;
  for (idx r = r0; r < r1; ++r) {
    const float* xi = x + img * g.h * g.w * g.cin;
    const idx iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
    if (iy0 >= 0 && iy0 + g.kh <= g.h && ix0 >= 0 && ix0 + g.kw <= g.w) {  // the whole window is inside
      const float* row = xi + (iy0 * g.w + ix0) * g.cin;
      for (idx ky = 0; ky < g.kh; ++ky, row += g.w * g.cin) *ind++ = row;
    } else {
      const bool cols_inside = ix0 >= 0 && ix0 + g.kw <= g.w;
      for (idx ky = 0; ky < g.kh; ++ky) {
        const idx iy = iy0 + ky;
        if (iy < 0 || iy >= g.h) {
          *ind++ = zero;
        } else if (cols_inside) {
          *ind++ = xi + (iy * g.w + ix0) * g.cin;
        } else {
          *ind++ = patch;
          for (idx kx = 0; kx < g.kw; ++kx) {
            const idx ix = ix0 + kx;
            float* d = patch + kx * g.cin;
            if (ix < 0 || ix >= g.w) {
              for (idx ci = 0; ci < g.cin; ++ci) d[ci] = 0.0f;
            } else {
              const float* src = xi + (iy * g.w + ix) * g.cin;
              for (idx ci = 0; ci < g.cin; ++ci) d[ci] = src[ci];
            }
          }
          patch += span;
        }
      }
    }
    if (++ox == g.ow) {
      ox = 0;
      if (++oy == g.oh) {
        oy = 0;
        ++img;
      }
    }
  }
}

// Per-thread workspaces (parallel.h), reused across calls.
struct IndirectionTag;
struct ColTag;
struct DcolTag;
struct TotalTag;
struct PartialsTag;
struct DzTag;
std::vector<const float*>& indirection_workspace() {
  return thread_workspace<IndirectionTag, std::vector<const float*>>();
}
Workspace& col_workspace() { return thread_workspace<ColTag>(); }
Workspace& dcol_workspace() { return thread_workspace<DcolTag>(); }
Workspace& total_workspace() { return thread_workspace<TotalTag>(); }
Workspace& partial_workspace() { return thread_workspace<PartialsTag>(); }
Workspace& dz_workspace() { return thread_workspace<DzTag>(); }

// cin zeros (at least), for kernel rows that fall into the padding.
struct Zeros {
  Workspace ws;
  idx zeroed = 0;
};
const float* zero_workspace(idx cin) {
  Zeros& z = thread_workspace<Zeros, Zeros>();
  float* p = z.ws.get(cin);
  if (z.zeroed < cin) {
    std::fill(p, p + cin, 0.0f);
    z.zeroed = cin;
  }
  return p;
}

// sums (cout) = column sums of rows (n, cout), added row by row (a fixed order). Overwrites sums.
CNNLITE_INLINE void column_sums_loops(float* __restrict sums, const float* __restrict rows, idx n, idx cout) {
  for (idx j = 0; j < cout; ++j) sums[j] = 0.0f;
  for (idx r = 0; r < n; ++r)
    for (idx j = 0; j < cout; ++j) sums[j] += rows[r * cout + j];
}
CNNLITE_ISA_VARIANTS(, column_sums, column_sums_loops,
                     (float* __restrict sums, const float* __restrict rows, idx n, idx cout), (sums, rows, n, cout))

// y = conv(x, k) + bias [relu] for a checked geometry (see conv2d_forward).
void forward_impl(float* y, const float* x, const float* k, const float* bias, bool relu, const Conv2dGeometry& g) {
  const idx cin = g.cin, cout = g.cout;
  const idx rows = g.n * g.pixels(), depth = g.depth();
  if (rows == 0) return;
  if (g.pointwise()) {
    sgemm(false, false, rows, cout, depth, 1.0f, x, depth, k, cout, 0.0f, y, cout, bias, relu);
    return;
  }
  // Indirect GEMM: each output pixel gets kh pointers, each to the kw * cin input floats of one kernel row.
  const idx span = g.kw * cin;
  const idx chunk = kForwardChunkRows;
  const idx chunks = (rows + chunk - 1) / chunk;
  auto body = [&](idx c) {
    const idx r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
    std::vector<const float*>& ind = indirection_workspace();
    if (static_cast<idx>(ind.size()) < chunk * g.kh) ind.resize(chunk * g.kh);
    float* patch = col_workspace().get(chunk * depth);
    const float* zero = zero_workspace(span);
    build_indirection(ind.data(), patch, zero, x, g, r0, r1);
    sgemm_indirect(r1 - r0, cout, g.kh, span, ind.data(), zero, k, y + r0 * cout, cout, bias, relu);
  };
  parallel_for(chunks, body, enough_chunks(chunks));
}

// Images per backward chunk (whole images, so col2im of a chunk touches only its own images and threads never write
// the same memory): fixed by the geometry.
idx backward_chunk_images(const Conv2dGeometry& g) { return std::max<idx>(1, chunk_rows(g.depth()) / g.pixels()); }

// dx = the GEMM path's input gradient for a checked geometry with n > 0 (see conv2d_backward_input).
void backward_input_gemm(float* dx, const float* dy, const float* k, const float* relu_y, const Conv2dGeometry& g) {
  const idx n = g.n, cin = g.cin, cout = g.cout, depth = g.depth(), pixels = g.pixels(), image = g.h * g.w * cin;
  const idx imgs = backward_chunk_images(g);
  const idx chunks = (n + imgs - 1) / imgs;
  auto body = [&](idx c) {
    const idx i0 = c * imgs, i1 = std::min(n, i0 + imgs);
    const idx rows = (i1 - i0) * pixels;
    const float* dyc = dy + i0 * pixels * cout;
    if (relu_y) {  // dz = dy * (relu_y > 0) for this chunk only
      float* dz = dz_workspace().get(imgs * pixels * cout);
      relu_backward_column_sums(dz, nullptr, dyc, relu_y + i0 * pixels * cout, rows, cout);
      dyc = dz;
    }
    if (g.pointwise()) {
      sgemm(false, true, rows, cin, cout, 1.0f, dyc, cout, k, cout, 0.0f, dx + i0 * image, cin);
    } else {
      float* dcol = dcol_workspace().get(imgs * pixels * depth);
      sgemm(false, true, rows, depth, cout, 1.0f, dyc, cout, k, cout, 0.0f, dcol, depth);
      col2im(dx, dcol, g, i0, i1);
    }
  };
  parallel_for(chunks, body, enough_chunks(chunks));
}

// dk, dbias = the GEMM path's weight gradient for a checked geometry with n > 0 (see conv2d_backward_weights).
void backward_weights_gemm(float* dk, float* dbias, const float* dy, const float* x, const float* relu_y,
                           const Conv2dGeometry& g) {
  const idx n = g.n, kh = g.kh, cout = g.cout;
  const idx depth = g.depth(), pixels = g.pixels(), image = g.h * g.w * g.cin, span = g.kw * g.cin;
  const idx imgs = backward_chunk_images(g);
  const idx chunks = (n + imgs - 1) / imgs;
  // Each chunk's partial holds its dk (depth x cout) followed by its dbias (cout).
  const idx dk_size = depth * cout, partial_size = dk_size + (dbias ? cout : 0);
  auto body = [&](idx c, float* part) {
    const idx i0 = c * imgs, i1 = std::min(n, i0 + imgs);
    const idx rows = (i1 - i0) * pixels;
    const float* dyc = dy + i0 * pixels * cout;
    if (relu_y) {  // dz = dy * (relu_y > 0) for this chunk only, with the bias gradient in the same pass
      float* dz = dz_workspace().get(imgs * pixels * cout);
      relu_backward_column_sums(dz, dbias ? part + dk_size : nullptr, dyc, relu_y + i0 * pixels * cout, rows, cout);
      dyc = dz;
    } else if (dbias) {
      column_sums(part + dk_size, dyc, rows, cout);
    }
    if (g.pointwise()) {
      sgemm(true, false, depth, cout, rows, 1.0f, x + i0 * image, depth, dyc, cout, 0.0f, part, cout);
    } else if (span < kMinIndirectSpan) {  // short kernel rows: an explicit im2col panel is cheaper
      float* col = col_workspace().get(imgs * pixels * depth);
      im2col(col, x, g, i0 * pixels, i1 * pixels);
      sgemm(true, false, depth, cout, rows, 1.0f, col, depth, dyc, cout, 0.0f, part, cout);
    } else {  // dk = col^T @ dy with col read through kernel-row pointers, as in the forward pass
      std::vector<const float*>& ind = indirection_workspace();
      if (static_cast<idx>(ind.size()) < imgs * pixels * kh) ind.resize(imgs * pixels * kh);
      float* patch = col_workspace().get(imgs * pixels * depth);
      const float* zero = zero_workspace(span);
      build_indirection(ind.data(), patch, zero, x, g, i0 * pixels, i1 * pixels);
      sgemm_indirect_t(kh, span, cout, rows, ind.data(), dyc, cout, part, cout);
    }
  };
  // Chunks per wave: as many partials as fit in about 4 MiB (fewer barriers), from the sizes alone.
  const idx wave = std::max<idx>(16, std::min<idx>(256, (1 << 20) / partial_size));
  float* total = total_workspace().get(partial_size);
  float* partials = partial_workspace().get(std::min(chunks, wave) * partial_size);
  sum_over_chunks(total, partials, chunks, partial_size, wave, body, enough_chunks(chunks));
  std::copy(total, total + dk_size, dk);
  if (dbias) std::copy(total + dk_size, total + partial_size, dbias);
}

// --- algorithm choice -------------------------------------------------------------------------------------------

// Winograd wins once its small GEMMs have some depth; the fewest input channels for which it is chosen, per pass
// and GEMM micro-kernel (measured: see BENCHMARKS.md, Winograd section). The narrower micro-kernels lose more to the
// short depth: the portable kernel's forward pass and weight gradient never win, its input gradient does.
struct WinogradMinChannels {
  idx forward, backward_input, backward_weights;
};
WinogradMinChannels winograd_min_channels(Isa level) {
  switch (level) {
    case Isa::kAvx512: return {8, 4, 16};
    case Isa::kAvx2: return {32, 4, 16};
    default: return {kMaxExtent, 4, kMaxExtent};
  }
}

// Up to this many input channels the direct kernel computes the forward pass and the weight gradient: the GEMM's
// depth kh * kw * cin is then too shallow to amortise its tiling (measured: see BENCHMARKS.md, direct section).
constexpr idx kDirectMaxChannels = 3;

// Rebuilds g through conv2d_geometry: a hand-made geometry gets the same checks as one from conv2d_geometry.
void check_geometry(const Conv2dGeometry& g) {
  const Conv2dGeometry c =
      conv2d_geometry(g.n, g.h, g.w, g.cin, g.kh, g.kw, g.cout, g.sh, g.sw, g.pt, g.pb, g.pl, g.pr);
  if (c.oh != g.oh || c.ow != g.ow)
    throw std::invalid_argument("conv2d: geometry's output size " + std::to_string(g.oh) + "x" + std::to_string(g.ow) +
                                " does not match its input, kernel, strides and pads (" + std::to_string(c.oh) + "x" +
                                std::to_string(c.ow) + ")");
}

void require_applies(Conv2dAlgo algo, Conv2dPass pass, const Conv2dGeometry& g) {
  check_geometry(g);
  if (!conv2d_algo_applies(algo, pass, g))
    throw std::invalid_argument(std::string("conv2d: algorithm '") + conv2d_algo_name(algo) +
                                "' does not apply to the " + conv2d_pass_name(pass) + " of a " + std::to_string(g.kh) +
                                "x" + std::to_string(g.kw) +
                                " kernel with strides " + std::to_string(g.sh) + "x" + std::to_string(g.sw) +
                                " and pads (" + std::to_string(g.pt) + ", " + std::to_string(g.pb) + ", " +
                                std::to_string(g.pl) + ", " + std::to_string(g.pr) + ")");
}

}  // namespace

idx conv2d_out_size(idx in, idx k, idx stride, idx pad_before, idx pad_after) {
  const idx span = in + pad_before + pad_after - k;
  if (stride <= 0 || span < 0) return 0;
  return span / stride + 1;
}

Conv2dGeometry conv2d_geometry(idx n, idx h, idx w, idx cin, idx kh, idx kw, idx cout, idx sh, idx sw, idx pt, idx pb,
                               idx pl, idx pr) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  auto str = [](idx v) { return std::to_string(v); };
  if (n < 0) fail("batch size n must be >= 0, got " + str(n));
  if (h <= 0 || w <= 0 || cin <= 0)
    fail("x must have non-zero height, width and channels, got h=" + str(h) + ", w=" + str(w) + ", cin=" + str(cin));
  if (kh <= 0 || kw <= 0 || cout <= 0)
    fail("w must have non-zero (kh, kw, cin, cout), got kh=" + str(kh) + ", kw=" + str(kw) + ", cout=" + str(cout));
  const std::pair<const char*, idx> strides[] = {{"sh", sh}, {"sw", sw}};
  for (const auto& [name, v] : strides)
    if (v <= 0) fail(std::string(name) + " must be a positive integer, got " + str(v));
  const std::pair<const char*, idx> pads[] = {{"pad_top", pt}, {"pad_bottom", pb}, {"pad_left", pl}, {"pad_right", pr}};
  for (const auto& [name, v] : pads)
    if (v < 0) fail(std::string(name) + " must be a non-negative integer, got " + str(v));
  const std::pair<const char*, idx> extents[] = {{"h", h},   {"w", w},   {"cin", cin},     {"kh", kh},
                                                 {"kw", kw}, {"cout", cout}, {"sh", sh},   {"sw", sw},
                                                 {"pad_top", pt}, {"pad_bottom", pb}, {"pad_left", pl},
                                                 {"pad_right", pr}};
  for (const auto& [name, v] : extents)
    if (v > kMaxExtent)
      fail(std::string(name) + "=" + str(v) + " exceeds " + str(kMaxExtent) + " (the largest size, stride or pad)");
  Conv2dGeometry g{n, h, w, cin, kh, kw, cout, sh, sw, pt, pb, pl, pr, 0, 0};
  g.oh = conv2d_out_size(h, kh, sh, pt, pb);
  g.ow = conv2d_out_size(w, kw, sw, pl, pr);
  if (g.oh <= 0)
    fail("kernel height kh=" + str(kh) + " exceeds the padded input height h + pad_top + pad_bottom = " + str(h) +
         " + " + str(pt) + " + " + str(pb) + " (output size <= 0)");
  if (g.ow <= 0)
    fail("kernel width kw=" + str(kw) + " exceeds the padded input width w + pad_left + pad_right = " + str(w) +
         " + " + str(pl) + " + " + str(pr) + " (output size <= 0)");
  // Every buffer size the kernels form (x, y, w, im2col rows) must be representable, even for an empty batch.
  const char* what = "conv2d";
  checked_product(what, {std::max<idx>(n, 1), h, w, cin});
  checked_product(what, {std::max<idx>(n, 1), g.oh, g.ow, std::max(cout, checked_product(what, {kh, kw, cin}))});
  checked_product(what, {kh, kw, cin, cout});
  return g;
}

const char* conv2d_algo_name(Conv2dAlgo algo) {
  switch (algo) {
    case Conv2dAlgo::kGemm: return "gemm";
    case Conv2dAlgo::kWinograd: return "winograd";
    case Conv2dAlgo::kDirect: return "direct";
  }
  throw std::invalid_argument("conv2d: unknown algorithm " + std::to_string(static_cast<int>(algo)));
}

Conv2dAlgo conv2d_algo_from_name(const char* name) {
  const std::string s = name ? name : "";
  for (Conv2dAlgo a : {Conv2dAlgo::kGemm, Conv2dAlgo::kWinograd, Conv2dAlgo::kDirect})
    if (s == conv2d_algo_name(a)) return a;
  throw std::invalid_argument("conv2d algorithm must be 'gemm', 'winograd' or 'direct', got '" + s + "'");
}

const char* conv2d_pass_name(Conv2dPass pass) {
  switch (pass) {
    case Conv2dPass::kForward: return "forward pass";
    case Conv2dPass::kBackwardInput: return "input gradient";
    case Conv2dPass::kBackwardWeights: return "weight gradient";
  }
  throw std::invalid_argument("conv2d: unknown pass " + std::to_string(static_cast<int>(pass)));
}

bool conv2d_algo_applies(Conv2dAlgo algo, Conv2dPass pass, const Conv2dGeometry& g) {
  switch (algo) {
    case Conv2dAlgo::kGemm: return true;
    case Conv2dAlgo::kWinograd:
      return pass == Conv2dPass::kBackwardInput ? winograd_backward_input_applies(g) : winograd_forward_applies(g);
    case Conv2dAlgo::kDirect: return pass != Conv2dPass::kBackwardInput;
  }
  return false;
}

Conv2dAlgo conv2d_choose(Conv2dPass pass, const Conv2dGeometry& g, Isa level) {
  if (pass != Conv2dPass::kBackwardInput && g.cin <= kDirectMaxChannels) return Conv2dAlgo::kDirect;
  if (!conv2d_algo_applies(Conv2dAlgo::kWinograd, pass, g)) return Conv2dAlgo::kGemm;
  const WinogradMinChannels mins = winograd_min_channels(level);
  const idx min_cin = pass == Conv2dPass::kForward         ? mins.forward
                      : pass == Conv2dPass::kBackwardInput ? mins.backward_input
                                                           : mins.backward_weights;
  return g.cin >= min_cin ? Conv2dAlgo::kWinograd : Conv2dAlgo::kGemm;
}

namespace {
void require_bf16_winograd(bool bf16, Conv2dAlgo algo) {
  if (bf16 && algo != Conv2dAlgo::kWinograd)
    throw std::invalid_argument(std::string("precision 'bfloat16' needs algo 'winograd' (the convolution with a "
                                            "bfloat16 kernel), got algo '") + conv2d_algo_name(algo) + "'");
}
}  // namespace

void conv2d_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
                    Conv2dAlgo algo, bool relu, bool bf16) {
  require_applies(algo, Conv2dPass::kForward, g);
  require_bf16_winograd(bf16, algo);
  switch (algo) {
    case Conv2dAlgo::kWinograd: return winograd_conv2d_forward(y, x, k, bias, g, relu, bf16);
    case Conv2dAlgo::kDirect: return conv2d_direct_forward(y, x, k, bias, g, relu);
    case Conv2dAlgo::kGemm: return forward_impl(y, x, k, bias, relu, g);
  }
}

void conv2d_backward_input(float* dx, const float* dy, const float* k, const float* relu_y_gate,
                           const Conv2dGeometry& g, Conv2dAlgo algo, bool bf16) {
  require_applies(algo, Conv2dPass::kBackwardInput, g);
  require_bf16_winograd(bf16, algo);
  if (g.n == 0) return;
  if (algo == Conv2dAlgo::kWinograd) return winograd_conv2d_backward_input(dx, dy, relu_y_gate, k, g, bf16);
  backward_input_gemm(dx, dy, k, relu_y_gate, g);
}

void conv2d_backward_weights(float* dk, float* dbias, const float* dy, const float* x, const float* relu_y_gate,
                             const Conv2dGeometry& g, Conv2dAlgo algo, bool bf16) {
  require_applies(algo, Conv2dPass::kBackwardWeights, g);
  require_bf16_winograd(bf16, algo);
  if (g.n == 0) {
    std::fill(dk, dk + g.depth() * g.cout, 0.0f);
    if (dbias) std::fill(dbias, dbias + g.cout, 0.0f);
    return;
  }
  switch (algo) {
    case Conv2dAlgo::kWinograd: return winograd_conv2d_backward_weights(dk, dbias, dy, relu_y_gate, x, g, bf16);
    case Conv2dAlgo::kDirect: return conv2d_direct_backward_weights(dk, dbias, dy, relu_y_gate, x, g);
    case Conv2dAlgo::kGemm: return backward_weights_gemm(dk, dbias, dy, x, relu_y_gate, g);
  }
}

void conv2d_backward_weights_shards(float* dk_parts, float* dbias_parts, const float* dy, const float* x,
                                    const float* relu_y_gate, const Conv2dGeometry& g, const idx* bounds, idx shards,
                                    Conv2dAlgo algo, bool bf16) {
  require_shard_bounds(bounds, shards, g.n, "conv2d_backward_weights");
  require_applies(algo, Conv2dPass::kBackwardWeights, g);
  require_bf16_winograd(bf16, algo);
  const idx dk_size = g.depth() * g.cout, in_image = g.h * g.w * g.cin, out_image = g.pixels() * g.cout;
  for_each_shard(bounds, shards, [&](idx s, idx r0, idx n) {
    Conv2dGeometry rows = g;
    rows.n = n;
    conv2d_backward_weights(dk_parts + s * dk_size, dbias_parts ? dbias_parts + s * g.cout : nullptr,
                            dy + r0 * out_image, x + r0 * in_image,
                            relu_y_gate ? relu_y_gate + r0 * out_image : nullptr, rows, algo, bf16);
  });
}

void conv2d_forward_dense(float* y, float* z, const float* x, const float* k, const float* bias, const float* dense_w,
                          const float* dense_bias, idx units, const Conv2dGeometry& g, bool relu) {
  const char* fn = "conv2d_forward_dense";
  require_applies(Conv2dAlgo::kDirect, Conv2dPass::kForward, g);
  if (units < 1) throw std::invalid_argument(std::string(fn) + ": need units >= 1, got " + std::to_string(units));
  if (g.n == 0) return;
  const idx depth = g.pixels() * g.cout;
  std::vector<float> bp(sgemm_packed_size(depth, units));
  sgemm_pack_b(bp.data(), dense_w, units, depth, units);
  conv2d_direct_forward_dense(y, z, x, k, bias, bp.data(), dense_bias, units, g, relu);
}

void conv2d_backward_weights_shards_from_dense(float* dk_parts, float* dbias_parts, const float* dz,
                                               const float* dense_w, idx units, const float* x,
                                               const float* relu_y_gate, const Conv2dGeometry& g, const idx* bounds,
                                               idx shards) {
  const char* fn = "conv2d_backward_weights_shards_from_dense";
  require_shard_bounds(bounds, shards, g.n, fn);
  require_applies(Conv2dAlgo::kDirect, Conv2dPass::kBackwardWeights, g);
  if (units < 1 || units > kSkinnyMax)
    throw std::invalid_argument(std::string(fn) + ": need 1 <= units <= " + std::to_string(kSkinnyMax) + ", got " +
                                std::to_string(units));
  const idx dk_size = g.depth() * g.cout, in_image = g.h * g.w * g.cin, out_image = g.pixels() * g.cout;
  // dense_w^T once, read by every shard.
  std::vector<float> wt(checked_product(fn, {units, out_image}));
  sgemm_skinny_nt_pack(wt.data(), dense_w, out_image, units);
  for_each_shard(bounds, shards, [&](idx s, idx r0, idx n) {
    Conv2dGeometry rows = g;
    rows.n = n;
    conv2d_direct_backward_weights_from_dense(dk_parts + s * dk_size, dbias_parts ? dbias_parts + s * g.cout : nullptr,
                                              dz + r0 * units, wt.data(), units,
                                              relu_y_gate ? relu_y_gate + r0 * out_image : nullptr,
                                              x + r0 * in_image, rows);
  });
}

namespace {
void require_maxpool(const Conv2dGeometry& g, bool input_grad) {
  if (!conv2d_maxpool_applies(g))
    throw std::invalid_argument("conv2d max-pool in the store needs a 3x3, stride-1 convolution (Winograd) whose output "
                                "height and width are even, got output (" + std::to_string(g.oh) + ", " +
                                std::to_string(g.ow) + ")");
  if (input_grad) require_applies(Conv2dAlgo::kWinograd, Conv2dPass::kBackwardInput, g);
}
}  // namespace

bool conv2d_maxpool_applies(const Conv2dGeometry& g) { return winograd_maxpool_applies(g); }

void conv2d_maxpool_forward(float* y, int32_t* argmax, const float* x, const float* k, const float* bias,
                            const Conv2dGeometry& g, bool relu, bool bf16) {
  require_maxpool(g, false);
  winograd_conv2d_forward_maxpool(y, argmax, x, k, bias, g, relu, bf16);
}

void conv2d_maxpool_backward_input(float* dx, const float* dy, const int32_t* argmax, const float* gate,
                                   const float* k, const Conv2dGeometry& g, bool bf16) {
  require_maxpool(g, true);
  if (g.n == 0) return;
  winograd_conv2d_backward_input_maxpool(dx, dy, argmax, gate, k, g, bf16);
}

void conv2d_maxpool_backward_weights_shards(float* dk_parts, float* dbias_parts, const float* dy,
                                            const int32_t* argmax, const float* gate, const float* x,
                                            const Conv2dGeometry& g, const idx* bounds, idx shards, bool bf16) {
  require_shard_bounds(bounds, shards, g.n, "conv2d_maxpool_backward_weights");
  require_maxpool(g, false);
  const idx dk_size = g.depth() * g.cout, in_image = g.h * g.w * g.cin, out_image = g.pixels() / 4 * g.cout;
  for_each_shard(bounds, shards, [&](idx s, idx r0, idx n) {  // n >= 1: require_shard_bounds
    Conv2dGeometry rows = g;
    rows.n = n;
    winograd_conv2d_backward_weights_maxpool(dk_parts + s * dk_size, dbias_parts ? dbias_parts + s * g.cout : nullptr,
                                             dy + r0 * out_image, argmax + r0 * out_image,
                                             gate ? gate + r0 * out_image : nullptr, x + r0 * in_image, rows, bf16);
  });
}

}  // namespace cnnlite
