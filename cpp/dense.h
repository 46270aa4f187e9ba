// Fully connected layer: y = x @ w + b, and its gradients. Thin wrappers around sgemm.
#pragma once
#include "common.h"

namespace cnnlite {

// y (n, out) = x (n, in) @ w (in, out) + bias (out) [then max(y, 0) when relu, fused into the GEMM's store]; bias may
// be null.
void dense_forward(float* y, const float* x, const float* w, const float* bias, idx n, idx in, idx out,
                   bool relu = false);

// dx (n, in) = dz @ w^T, dw (in, out) = x^T @ dz, dbias (out) = column sums of dz (n, out), where dz = dy, or, when
// relu_y (n, out) (the output of dense_forward(..., relu = true)) is given, dz = dy * (relu_y > 0), computed in the
// same pass as the bias gradient into a workspace reused across calls. dx, dw and dbias may each be null (not
// computed): the engine takes dx over a whole batch and dw, dbias per reduction shard (cnnlite/engine/plan.py).
// Overwrites every gradient it writes. Results do not depend on the thread count. skinny: dx and dw by the skinny
// GEMMs (gemm_skinny.h: the same bits; out <= kSkinnyMax, else std::invalid_argument).
void dense_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w, idx n, idx in,
                    idx out, const float* relu_y = nullptr, bool skinny = false);

// The mixed_bfloat16 pair (gemm_bf16.h): the same products with x, w and dz rounded to bfloat16 and accumulated in
// float32 (vdpbf16ps, or its portable twin: same bits); the bias, the ReLU and the bias gradient stay float32, the
// bias gradient computed exactly as dense_backward's. Results do not depend on the thread count.
// y (n, out) = bf16(x) (n, in) @ bf16(w) (in, out) + bias (out) [then max(y, 0) when relu]; bias may be null.
void dense_bf16_forward(float* y, const float* x, const float* w, const float* bias, idx n, idx in, idx out,
                        bool relu = false);
// dx (n, in) = bf16(dz) @ bf16(w)^T, dw (in, out) = bf16(x)^T @ bf16(dz), dbias (out) = column sums of dz (float32),
// dz as in dense_backward; each may be null.
void dense_bf16_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w, idx n,
                         idx in, idx out, const float* relu_y = nullptr);

// One weight gradient per reduction shard: dw_parts (shards, in, out), dbias_parts (shards, out; may be null), shard s
// being rows [bounds[s], bounds[s + 1]) of dy, x and relu_y (bounds: shards + 1 increasing row indices from 0 to n,
// checked); each has the bits dense_backward (dense_bf16_backward when bf16) gives for those rows alone (run as
// conv2d_backward_weights_shards); skinny as dense_backward's (float32 only: not with bf16).
void dense_backward_weights_shards(float* dw_parts, float* dbias_parts, const float* dy, const float* x, idx n,
                                   idx in, idx out, const float* relu_y, const idx* bounds, idx shards,
                                   bool bf16 = false, bool skinny = false);

}  // namespace cnnlite
