// Direct 2-D convolution for few input channels (the first layer of an image network): the GEMM's depth
// K = kh * kw * cin is then too small to amortise its packing and tiling, so these loops run straight over NHWC,
// vectorised across the output channels (contiguous in NHWC/HWIO). Any kernel size, strides and pads.
// The geometry must come from conv2d_geometry (conv2d.h).
#pragma once
#include "conv2d.h"

namespace cnnlite {

// y (n, oh, ow, cout) = conv(x (n, h, w, cin), k (kh, kw, cin, cout)) + bias (cout) [then max(y, 0) when relu];
// bias may be null. Each output is summed over (ky, kx, ci) in that order, whatever the thread count.
void conv2d_direct_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
                           bool relu);

// conv2d_direct_forward, and z (n, units) = flat(y) (n, oh * ow * cout) @ dense_w + dense_bias (units; may be null),
// the Dense layer after the Flatten, dense_bp = sgemm_pack_b(dense_w): z is computed a few images at a time right after
// their y, from cache, with dense_forward's bits (no ReLU).
void conv2d_direct_forward_dense(float* y, float* z, const float* x, const float* k, const float* bias,
                                 const float* dense_bp, const float* dense_bias, idx units, const Conv2dGeometry& g,
                                 bool relu);

// dk (kh, kw, cin, cout) and dbias (cout; may be null) from dy (n, oh, ow, cout) and x (n, h, w, cin); when gate
// (n, oh, ow, cout) is not null, dy is first masked by gate > 0 (a fused ReLU's backward, gate being its output).
// Overwrites both. Summed per fixed chunk of images, then the chunk partials in chunk order: independent of the
// thread count.
void conv2d_direct_backward_weights(float* dk, float* dbias, const float* dy, const float* gate, const float* x,
                                    const Conv2dGeometry& g);

// The same, with dy (n, oh, ow, cout) = dz (n, units) @ w^T the input gradient of the Dense layer that follows (on the
// flattened output), wt = w^T (units, oh * ow * cout) as sgemm_skinny_nt_pack writes it, units <= kSkinnyMax: each
// chunk's dy is computed by sgemm_skinny_nt_packed into a per-thread buffer just before it is used, so the full dy
// is never written (the bits of conv2d_direct_backward_weights on sgemm_skinny_nt's dy).
void conv2d_direct_backward_weights_from_dense(float* dk, float* dbias, const float* dz, const float* wt, idx units,
                                               const float* gate, const float* x, const Conv2dGeometry& g);

}  // namespace cnnlite
