// 2-D convolution (cross-correlation, as Keras): NHWC activations, HWIO kernels, explicit pads, strides, bias.
// Forward and weight gradient are indirect GEMMs (cpp/gemm.h): per output pixel, one pointer per kernel row into x,
// no im2col copy except zero-filled patches at the borders; the input gradient is dy @ k^T scattered back (col2im)
// per chunk of whole images. Work is split into fixed-size chunks with per-thread workspaces reused across calls.
#pragma once
#include "common.h"

namespace cnnlite {

// Output length along one axis: (in + pad_before + pad_after - k) / stride + 1, or 0 when the window does not fit.
idx conv2d_out_size(idx in, idx k, idx stride, idx pad_before, idx pad_after);

// y (n, oh, ow, cout) = conv(x (n, h, w, cin), k (kh, kw, cin, cout)) + bias (cout) [then max(y, 0) when relu,
// fused into the store]; bias may be null; oh = conv2d_out_size(h, kh, sh, pt, pb), ow = conv2d_out_size(w, kw, sw,
// pl, pr).
void conv2d_forward(float* y, const float* x, const float* k, const float* bias, idx n, idx h, idx w, idx cin, idx kh,
                    idx kw, idx cout, idx sh, idx sw, idx pt, idx pb, idx pl, idx pr, bool relu = false);

// dx (n, h, w, cin), dk (kh, kw, cin, cout), dbias (cout) from dy (n, oh, ow, cout), x and k; dx and dbias may be
// null (not computed). Overwrites every gradient it writes. dk and dbias are summed over fixed chunks of whole
// images in chunk order, so results do not depend on the thread count.
// relu_y (n, oh, ow, cout), optional: the output of conv2d_forward(..., relu = true). When given, the gradients are
// those of the ReLU'd convolution: dy is masked by relu_y > 0 chunk by chunk (in a per-thread workspace, fused with
// the bias-gradient sum), never as a full-size array.
void conv2d_backward(float* dx, float* dk, float* dbias, const float* dy, const float* x, const float* k, idx n, idx h,
                     idx w, idx cin, idx kh, idx kw, idx cout, idx sh, idx sw, idx pt, idx pb, idx pl, idx pr,
                     const float* relu_y = nullptr);

// Algorithm selection. Paths: "gemm" (always applies), "winograd" (3x3 stride 1; its input gradient also needs
// pads <= 2), "direct" (any geometry, forward pass and weight gradient only: cpp/conv2d_direct.h). conv2d_algo names
// the path the given pass of a geometry takes: the forced algorithm when it applies, else the automatic choice.
// The forced algorithm starts as the environment variable CNNLITE_CONV_ALGO (read once; "auto" when unset) and can
// be changed with conv2d_set_algo ("auto", "gemm", "winograd", "direct"; std::invalid_argument otherwise), e.g. by
// tests.
enum ConvPass : int { kConvForward = 0, kConvBackwardInput = 1, kConvBackwardWeights = 2 };
const char* conv2d_algo(int pass, idx n, idx h, idx w, idx cin, idx kh, idx kw, idx cout, idx sh, idx sw, idx pt,
                        idx pb, idx pl, idx pr);
void conv2d_set_algo(const char* name);
const char* conv2d_get_algo();

}  // namespace cnnlite
