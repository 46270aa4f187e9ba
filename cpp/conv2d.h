// 2-D convolution (cross-correlation, as Keras): NHWC activations, HWIO kernels, explicit pads, strides, bias.
// Three algorithms share one geometry (Conv2dGeometry) and three entry points, one per pass; the caller names the
// algorithm (conv2d_choose gives the automatic choice), and an algorithm that does not apply to a pass and geometry
// is an error, never silently replaced.
//   gemm:     forward and weight gradient are indirect GEMMs (cpp/gemm.h): per output pixel, one pointer per kernel
//             row into x, no im2col copy except zero-filled patches at the borders; the input gradient is dy @ k^T
//             scattered back (col2im) per chunk of whole images. Applies to every geometry and pass.
//   winograd: F(2x2, 3x3) (cpp/conv2d_winograd.h): 3x3 kernels, stride 1; the input gradient also needs pads <= 2.
//   direct:   loops straight over NHWC for few input channels (cpp/conv2d_direct.h): any geometry, forward and
//             weight gradient only (a first layer needs no input gradient).
// Work is split into fixed-size chunks with per-thread workspaces reused across calls; every result is bitwise
// identical for any thread count.
#pragma once
#include <cstdint>

#include "common.h"
#include "dispatch.h"

namespace cnnlite {

// Output length along one axis: (in + pad_before + pad_after - k) / stride + 1, or 0 when the window does not fit.
idx conv2d_out_size(idx in, idx k, idx stride, idx pad_before, idx pad_after);

// The sizes of one convolution: input (n, h, w, cin), kernel (kh, kw, cin, cout), strides, pads (top, bottom, left,
// right) and the output size (oh, ow). Build it with conv2d_geometry, which validates it.
struct Conv2dGeometry {
  idx n, h, w, cin, kh, kw, cout, sh, sw, pt, pb, pl, pr, oh, ow;
  idx depth() const { return kh * kw * cin; }  // GEMM K: one im2col row
  idx pixels() const { return oh * ow; }       // output pixels per image
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt + pb + pl + pr == 0; }
};

// The checked geometry (oh = conv2d_out_size(h, kh, sh, pt, pb), ow likewise), or std::invalid_argument whose message
// names the offending argument (n, h, w, cin, kh, kw, cout, sh, sw, pad_top, ...): negative or zero sizes, sizes
// above kMaxExtent, a kernel that does not fit the padded input, or buffer sizes that overflow.
Conv2dGeometry conv2d_geometry(idx n, idx h, idx w, idx cin, idx kh, idx kw, idx cout, idx sh, idx sw, idx pt, idx pb,
                               idx pl, idx pr);

enum class Conv2dAlgo : int { kGemm = 0, kWinograd = 1, kDirect = 2 };
enum class Conv2dPass : int { kForward = 0, kBackwardInput = 1, kBackwardWeights = 2 };

// "gemm", "winograd", "direct"; and back (std::invalid_argument for any other name).
const char* conv2d_algo_name(Conv2dAlgo algo);
Conv2dAlgo conv2d_algo_from_name(const char* name);
// "forward", "input gradient", "weight gradient".
const char* conv2d_pass_name(Conv2dPass pass);

// True when `algo` can compute `pass` of geometry g (see the list above).
bool conv2d_algo_applies(Conv2dAlgo algo, Conv2dPass pass, const Conv2dGeometry& g);

// The automatic choice for `pass` of g when the kernels run at ISA level `level` (dispatch.h; usually isa()): direct
// up to 3 input channels (forward and weight gradient), else Winograd where it applies and the input channels reach a
// per-level, per-pass threshold (the GEMM micro-kernel's), else GEMM. Always an algorithm that applies.
Conv2dAlgo conv2d_choose(Conv2dPass pass, const Conv2dGeometry& g, Isa level);

// y (n, oh, ow, cout) = conv(x (n, h, w, cin), k (kh, kw, cin, cout)) + bias (cout) [then max(y, 0) when relu,
// fused into the store]; bias may be null. bf16: the mixed_bfloat16 products (conv2d_winograd.h), for algo
// winograd only (std::invalid_argument else), as for the two gradients below.
void conv2d_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
                    Conv2dAlgo algo, bool relu, bool bf16 = false);

// dx (n, h, w, cin) from dy (n, oh, ow, cout) and k (kh, kw, cin, cout); overwrites dx. relu_y_gate (n, oh, ow,
// cout), optional: the output of conv2d_forward(..., relu = true); dy is then masked by relu_y_gate > 0 chunk by
// chunk, never as a full-size array (the gradient of the ReLU'd convolution). Not for the direct algorithm.
void conv2d_backward_input(float* dx, const float* dy, const float* k, const float* relu_y_gate,
                           const Conv2dGeometry& g, Conv2dAlgo algo, bool bf16 = false);

// dk (kh, kw, cin, cout) and dbias (cout; may be null: not computed) from dy (n, oh, ow, cout) and x (n, h, w, cin);
// overwrites both. relu_y_gate as for conv2d_backward_input (masked per chunk, fused with the bias-gradient sum).
// Summed over fixed chunks in chunk order, so results do not depend on the thread count.
void conv2d_backward_weights(float* dk, float* dbias, const float* dy, const float* x, const float* relu_y_gate,
                             const Conv2dGeometry& g, Conv2dAlgo algo, bool bf16 = false);

// One weight gradient per reduction shard: dk_parts (shards, kh, kw, cin, cout), dbias_parts (shards, cout; may be
// null), shard s being rows [bounds[s], bounds[s + 1]) of dy and x (bounds: shards + 1 increasing row indices from 0
// to g.n, checked). Each shard's gradient has the bits conv2d_backward_weights (with the same bf16) gives for those
// rows alone; shards run
// side by side on one thread each when there are at least as many as threads (no barrier per shard), else one after
// the other with the threads inside each.
void conv2d_backward_weights_shards(float* dk_parts, float* dbias_parts, const float* dy, const float* x,
                                    const float* relu_y_gate, const Conv2dGeometry& g, const idx* bounds, idx shards,
                                    Conv2dAlgo algo, bool bf16 = false);

// The direct forward pass (conv2d_forward, algo direct) with the Dense layer after the Flatten of its output:
// y (n, oh, ow, cout) as conv2d_forward, and z (n, units) = flat(y) @ dense_w (oh * ow * cout, units) + dense_bias
// (units; may be null), with dense_forward's bits (relu=False), computed a few images at a time from the y just
// written. std::invalid_argument when the direct algorithm does not apply.
void conv2d_forward_dense(float* y, float* z, const float* x, const float* k, const float* bias, const float* dense_w,
                          const float* dense_bias, idx units, const Conv2dGeometry& g, bool relu);

// The direct weight gradient per reduction shard with dy taken from the Dense layer that follows the flattened
// output: dy (n, oh, ow, cout) = dz (n, units) @ dense_w^T, dense_w (oh * ow * cout, units), units <= kSkinnyMax
// (gemm_skinny.h), never written in full (conv2d_direct_backward_weights_from_dense). Shard s's gradient has the bits
// conv2d_backward_weights_shards(algo direct) gives on dense_backward's skinny input gradient (below the avx512 level,
// where that is sgemm over other row counts, a NaN may come out with the other sign). std::invalid_argument
// on a size that does not fit, or when the direct algorithm does not apply.
void conv2d_backward_weights_shards_from_dense(float* dk_parts, float* dbias_parts, const float* dz,
                                               const float* dense_w, idx units, const float* x,
                                               const float* relu_y_gate, const Conv2dGeometry& g, const idx* bounds,
                                               idx shards);

// Max-pool in the store: a Winograd convolution (every pass) fused with the 2x2, stride-2, unpadded max-pool of its
// output (conv2d_winograd.h says how; same bits as the unfused calls). std::invalid_argument unless
// conv2d_maxpool_applies(g) (Winograd applies to the forward and the weight gradient, oh and ow even) and, for the
// input gradient, Winograd applies to it. Pooled arrays (y, argmax, dy, gate) are (n, oh / 2, ow / 2, cout).
bool conv2d_maxpool_applies(const Conv2dGeometry& g);
void conv2d_maxpool_forward(float* y, int32_t* argmax, const float* x, const float* k, const float* bias,
                            const Conv2dGeometry& g, bool relu, bool bf16 = false);
// gate may be null (no ReLU cut).
void conv2d_maxpool_backward_input(float* dx, const float* dy, const int32_t* argmax, const float* gate,
                                   const float* k, const Conv2dGeometry& g, bool bf16 = false);
// Per reduction shard as conv2d_backward_weights_shards; shard s's gradient has the bits of
// conv2d_backward_weights(algo winograd) on the unfused gradient of its rows.
void conv2d_maxpool_backward_weights_shards(float* dk_parts, float* dbias_parts, const float* dy,
                                            const int32_t* argmax, const float* gate, const float* x,
                                            const Conv2dGeometry& g, const idx* bounds, idx shards,
                                            bool bf16 = false);

}  // namespace cnnlite
