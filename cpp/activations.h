// Element-wise activations (any shape, flat length n) and the row softmax. Backward passes take the forward output y.
#pragma once
#include "common.h"

namespace cnnlite {

// y, x: (n,). y = max(x, 0) (NaN propagates).
void relu_forward(float* y, const float* x, idx n);
// dx, dy, y: (n,). dx = dy where y > 0, else 0 (overwritten).
void relu_backward(float* dx, const float* dy, const float* y, idx n);

// y, x: (n,). y = 1 / (1 + exp(-x)), evaluated without overflow for large |x|.
void sigmoid_forward(float* y, const float* x, idx n);
// dx, dy, y: (n,). dx = dy * y * (1 - y) (overwritten).
void sigmoid_backward(float* dx, const float* dy, const float* y, idx n);

// y, x: (n,).
void tanh_forward(float* y, const float* x, idx n);
// dx, dy, y: (n,). dx = dy * (1 - y^2) (overwritten).
void tanh_backward(float* dx, const float* dy, const float* y, idx n);

// y, x: (rows, k). Softmax over each row; the row maximum is subtracted first.
void softmax_forward(float* y, const float* x, idx rows, idx k);
// dx, dy, y: (rows, k). dx = y * (dy - sum(dy * y)) per row (overwritten).
void softmax_backward(float* dx, const float* dy, const float* y, idx rows, idx k);

// Row softmax of one row (shared with the fused loss).
void softmax_row(float* __restrict y, const float* __restrict x, idx k);

}  // namespace cnnlite
