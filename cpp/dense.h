// Fully connected layer: y = x @ w + b, and its gradients. Thin wrappers around sgemm.
#pragma once
#include "common.h"

namespace cnnlite {

// y (n, out) = x (n, in) @ w (in, out) + bias (out) [then max(y, 0) when relu, fused into the GEMM's store]; bias may
// be null.
void dense_forward(float* y, const float* x, const float* w, const float* bias, idx n, idx in, idx out,
                   bool relu = false);

// dx (n, in) = dy @ w^T, dw (in, out) = x^T @ dy, dbias (out) = column sums of dy (n, out); dx and dbias may be null
// (not computed). Overwrites every gradient it writes. Results do not depend on the thread count.
void dense_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w, idx n, idx in,
                    idx out);

}  // namespace cnnlite
