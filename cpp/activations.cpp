#include "activations.h"

#include <cmath>
#include <stdexcept>

#include "parallel_chunks.h"

namespace cnnlite {

namespace {

void require_size(idx n, const char* what) {
  if (n < 0) throw std::invalid_argument(what);
}

}  // namespace

void relu_forward(float* y, const float* x, idx n) {
  require_size(n, "relu_forward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    float* __restrict yo = y;
    const float* __restrict xi = x;
    for (idx i = begin; i < end; ++i) yo[i] = xi[i] < 0.0f ? 0.0f : xi[i];
  });
}

void relu_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "relu_backward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) {
      const float d = dyi[i];  // loaded unconditionally so the select vectorises
      dxo[i] = yi[i] > 0.0f ? d : 0.0f;
    }
  });
}

void sigmoid_forward(float* y, const float* x, idx n) {
  require_size(n, "sigmoid_forward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    for (idx i = begin; i < end; ++i) {
      // exp of a non-positive argument never overflows.
      const float e = std::exp(-std::fabs(x[i]));
      y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
  });
}

void sigmoid_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "sigmoid_backward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) dxo[i] = dyi[i] * (yi[i] * (1.0f - yi[i]));
  });
}

void tanh_forward(float* y, const float* x, idx n) {
  require_size(n, "tanh_forward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    for (idx i = begin; i < end; ++i) y[i] = std::tanh(x[i]);
  });
}

void tanh_backward(float* dx, const float* dy, const float* y, idx n) {
  require_size(n, "tanh_backward: n must be non-negative");
  for_each_chunk(n, [=](idx begin, idx end) {
    float* __restrict dxo = dx;
    const float* __restrict dyi = dy;
    const float* __restrict yi = y;
    for (idx i = begin; i < end; ++i) dxo[i] = dyi[i] * (1.0f - yi[i] * yi[i]);
  });
}

void softmax_row(float* __restrict y, const float* __restrict x, idx k) {
  float row_max = x[0];
  for (idx j = 1; j < k; ++j) row_max = x[j] > row_max ? x[j] : row_max;
  float sum = 0.0f;
  for (idx j = 0; j < k; ++j) {
    y[j] = std::exp(x[j] - row_max);
    sum += y[j];
  }
  const float inv = 1.0f / sum;
  for (idx j = 0; j < k; ++j) y[j] *= inv;
}

void softmax_forward(float* y, const float* x, idx rows, idx k) {
  if (rows < 0 || k <= 0) throw std::invalid_argument("softmax_forward: rows must be >= 0 and k > 0");
  for_each_block(rows, rows_per_block(k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) softmax_row(y + r * k, x + r * k, k);
  });
}

void softmax_backward(float* dx, const float* dy, const float* y, idx rows, idx k) {
  if (rows < 0 || k <= 0) throw std::invalid_argument("softmax_backward: rows must be >= 0 and k > 0");
  for_each_block(rows, rows_per_block(k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) {
      const float* __restrict dyr = dy + r * k;
      const float* __restrict yr = y + r * k;
      float* __restrict dxr = dx + r * k;
      float dot = 0.0f;
      for (idx j = 0; j < k; ++j) dot += dyr[j] * yr[j];
      for (idx j = 0; j < k; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
    }
  });
}

}  // namespace cnnlite
