// Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (cross-correlation, as Keras), NHWC activations, HWIO kernels.
// Per block of 2x2 output tiles: input transform B^T d B (vectorised over channels), 16 small GEMMs
// (tiles x cin) @ (cin x cout) with the transformed weights U = G g G^T, output transform A^T m A + bias [+ ReLU]
// written straight to NHWC. 2.25x fewer multiplications than the direct (GEMM) path. The input gradient is the same
// routine on dy with the rotated kernel; the weight gradient sums V^T (A dy A^T) over tiles. Blocks of a fixed number
// of tiles, per-thread workspaces reused across calls; results do not depend on the thread count.
#pragma once
#include <cstdint>

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

// Max-pool in the store (the plan's fusion of a ReLU'd Winograd convolution with the 2x2, stride-2, unpadded
// max-pool after it). When oh and ow are even, each 2x2 output tile is one pooling window, so the output transform
// can write the pooled maximum and its argmax instead of the tile, and the gradient kernels can rebuild each tile's
// output gradient from the pool's (dy routed to the argmax cell, cut by the ReLU where the pooled value is not > 0).
// Every result has the bits of the unfused calls: winograd_conv2d_forward then maxpool2d_forward, and
// maxpool2d_backward(relu_y = the pooled output) then the gradients below without gate.
bool winograd_maxpool_applies(const Conv2dGeometry& g);  // winograd_forward_applies(g), oh and ow even

// y, argmax (n, oh / 2, ow / 2, cout): the 2x2 max-pool of winograd_conv2d_forward(x, k, bias, g, relu), argmax the
// flat index r * ow + c of the maximum in its image/channel plane of the convolution's output, ties and NaNs as
// maxpool2d_forward. Needs winograd_maxpool_applies(g).
void winograd_conv2d_forward_maxpool(float* y, int32_t* argmax, const float* x, const float* k, const float* bias,
                                     const Conv2dGeometry& g, bool relu, bool bf16 = false);

// dx (n, h, w, cin) of the convolution from the pool's gradient dy, argmax (n, oh / 2, ow / 2, cout) and, optional,
// gate (same shape: the pooled output; dy then passes only where gate > 0). An argmax outside its window routes
// nothing. Needs winograd_maxpool_applies(g) and winograd_backward_input_applies(g). Overwrites dx.
void winograd_conv2d_backward_input_maxpool(float* dx, const float* dy, const int32_t* argmax, const float* gate,
                                            const float* k, const Conv2dGeometry& g, bool bf16 = false);

// dk (3, 3, cin, cout) and dbias (cout, may be null) from dy, argmax, gate as above and x (n, h, w, cin). Needs
// winograd_maxpool_applies(g) and n > 0. Overwrites dk and dbias.
void winograd_conv2d_backward_weights_maxpool(float* dk, float* dbias, const float* dy, const int32_t* argmax,
                                              const float* gate, const float* x, const Conv2dGeometry& g,
                                              bool bf16 = false);

// bf16 (the mixed_bfloat16 policy): each pass's 16 products per tile block take their operands (the transformed
// input / output gradient and the transformed weights U) rounded to bfloat16 and accumulate in float32 (gemm_bf16.h,
// vdpbf16ps or its portable twin: the same bits); the transforms, the bias, the ReLU and every sum across blocks stay
// float32. Bitwise identical for any thread count.

}  // namespace cnnlite
