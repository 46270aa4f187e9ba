// Element-wise activations (any shape, flat length n) and the row softmax. Backward passes take the forward output y.
#pragma once
#include "common.h"

namespace cnnlite {

// y, x: (n,). y = max(x, 0) (NaN propagates).
void relu_forward(float* y, const float* x, idx n);
// dx, dy, y: (n,). dx = dy where y > 0, else 0 (overwritten).
void relu_backward(float* dx, const float* dy, const float* y, idx n);
// dz, dy, y: (rows, cols); sums: (cols). dz = relu_backward(dy, y) and, when sums is not null, sums = the column sums
// of dz, in one pass: a layer's ReLU backward fused with its bias gradient. Rows are added in order (as a serial
// row-by-row sum), so results do not depend on how callers split their work. Serial: callers run it per chunk.
// Overwrites dz and sums.
void relu_backward_column_sums(float* dz, float* sums, const float* dy, const float* y, idx rows, idx cols);

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
