// Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (cross-correlation, as Keras), NHWC activations, HWIO kernels.
// Per block of 2x2 output tiles: input transform B^T d B (vectorised over channels), 16 small GEMMs
// (tiles x cin) @ (cin x cout) with the transformed weights U = G g G^T, output transform A^T m A + bias [+ ReLU]
// written straight to NHWC. 2.25x fewer multiplications than the direct (GEMM) path. The input gradient is the same
// routine on dy with the rotated kernel; the weight gradient sums V^T (A dy A^T) over tiles. Blocks of a fixed number
// of tiles, per-thread workspaces reused across calls; results do not depend on the thread count.
#pragma once
#include "conv2d.h"

namespace cnnlite {

// True when Winograd can compute this forward convolution or weight gradient (3x3 kernel, stride 1; any pads).
bool winograd_forward_applies(const Conv2dGeometry& g);
// True when it can compute the input gradient: as the forward, and every pad <= 2 (the gradient is then a 3x3
// correlation of dy padded by 2 - pad with the rotated kernel).
bool winograd_backward_input_applies(const Conv2dGeometry& g);

// y (n, oh, ow, cout) = corr(x (n, h, w, cin), k (3, 3, cin, cout)) + bias (cout), then max(., 0) when relu. bias may
// be null. Needs winograd_forward_applies(g).
void winograd_conv2d_forward(float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
                             bool relu, bool bf16 = false);

// dx (n, h, w, cin) of winograd_conv2d_forward's convolution (without ReLU) from dy (n, oh, ow, cout) and k; when
// gate (n, oh, ow, cout) is not null, dy is first masked by gate > 0 (the ReLU's backward, gate being its output).
// Needs winograd_backward_input_applies(g). Overwrites dx.
void winograd_conv2d_backward_input(float* dx, const float* dy, const float* gate, const float* k,
                                    const Conv2dGeometry& g, bool bf16 = false);

// dk (3, 3, cin, cout) and dbias (cout, may be null) of winograd_conv2d_forward's convolution (without ReLU) from
// dy (n, oh, ow, cout) and x; with gate (n, oh, ow, cout) dy is first masked by gate > 0. F(2x2, 3x3) for the weight
// gradient: per tile, Mg = A dy A^T, then dU = sum over tiles of V^T Mg (16 GEMMs whose depth is the tile count) and
// dk = G^T dU G. Sums over fixed chunks of tiles, added in chunk order: results do not depend on the thread count.
// Overwrites dk and dbias. Needs winograd_forward_applies(g) and n > 0.
void winograd_conv2d_backward_weights(float* dk, float* dbias, const float* dy, const float* gate, const float* x,
                                      const Conv2dGeometry& g, bool bf16 = false);

// bf16 (the mixed_bfloat16 policy): each pass's 16 products per tile block take their operands (the transformed
// input / output gradient and the transformed weights U) rounded to bfloat16 and accumulate in float32 (gemm_bf16.h,
// vdpbf16ps or its portable twin: the same bits); the transforms, the bias, the ReLU and every sum across blocks stay
// float32. Bitwise identical for any thread count.

}  // namespace cnnlite
