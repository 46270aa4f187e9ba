#include "dense.h"

#include <stdexcept>
#include <string>

#include "activations.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "gemm_skinny.h"
#include "parallel.h"

namespace cnnlite {

namespace {

struct DzTag;  // the masked dy of a fused ReLU

void check_sizes(const char* fn, idx n, idx in, idx out) {
  if (n < 0 || in <= 0 || out <= 0)
    throw std::invalid_argument(std::string(fn) + ": need n >= 0, in > 0, out > 0; got n=" + std::to_string(n) +
                                " in=" + std::to_string(in) + " out=" + std::to_string(out));
}

// The skinny gradient GEMMs take at most kSkinnyMax columns.
void require_skinny_fits(bool skinny, idx out, const char* fn) {
  if (skinny && out > kSkinnyMax)
    throw std::invalid_argument(std::string(fn) + ": skinny needs out <= " + std::to_string(kSkinnyMax) +
                                ", got out=" + std::to_string(out));
}

// dbias (out) = column sums of dz; returns dz: dy, or dy * (relu_y > 0) in a workspace when relu_y is given.
// The bias gradient is serial, row by row: a fixed order, vectorised across the columns; n * out is small next to
// the GEMMs.
const float* bias_gradient(float* dbias, const float* dy, const float* relu_y, idx n, idx out, const char* fn) {
  if (relu_y) {
    float* dz = thread_workspace<DzTag>().get(checked_product(fn, {n, out}));
    relu_backward_column_sums(dz, dbias, dy, relu_y, n, out);
    return dz;
  }
  if (dbias) {
    for (idx j = 0; j < out; ++j) dbias[j] = 0.0f;
    for (idx r = 0; r < n; ++r) {
      const float* row = dy + r * out;
      for (idx j = 0; j < out; ++j) dbias[j] += row[j];
    }
  }
  return dy;
}

}  // namespace

void dense_forward(float* y, const float* x, const float* w, const float* bias, idx n, idx in, idx out, bool relu) {
  check_sizes("dense_forward", n, in, out);
  sgemm(false, false, n, out, in, 1.0f, x, in, w, out, 0.0f, y, out, bias, relu);
}

void dense_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w, idx n, idx in,
                    idx out, const float* relu_y, bool skinny) {
  check_sizes("dense_backward", n, in, out);
  require_skinny_fits(skinny, out, "dense_backward");
  dy = bias_gradient(dbias, dy, relu_y, n, out, "dense_backward");
  if (skinny) {
    if (dx) sgemm_skinny_nt(dx, dy, w, n, in, out);
    if (dw) sgemm_skinny_tn(dw, x, dy, in, out, n);
    return;
  }
  if (dx) sgemm(false, true, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
  if (dw) sgemm(true, false, in, out, n, 1.0f, x, in, dy, out, 0.0f, dw, out);
}

void dense_bf16_forward(float* y, const float* x, const float* w, const float* bias, idx n, idx in, idx out,
                        bool relu) {
  check_sizes("dense_bf16_forward", n, in, out);
  gemm_bf16(y, x, w, bias, n, out, in, false, false, relu);
}

void dense_bf16_backward(float* dx, float* dw, float* dbias, const float* dy, const float* x, const float* w, idx n,
                         idx in, idx out, const float* relu_y) {
  check_sizes("dense_bf16_backward", n, in, out);
  dy = bias_gradient(dbias, dy, relu_y, n, out, "dense_bf16_backward");
  if (dx) gemm_bf16(dx, dy, w, nullptr, n, in, out, false, true);
  if (dw) gemm_bf16(dw, x, dy, nullptr, in, out, n, true, false);
}

void dense_backward_weights_shards(float* dw_parts, float* dbias_parts, const float* dy, const float* x, idx n,
                                   idx in, idx out, const float* relu_y, const idx* bounds, idx shards,
                                   bool bf16, bool skinny) {
  check_sizes("dense_backward_weights_shards", n, in, out);
  require_shard_bounds(bounds, shards, n, "dense_backward_weights_shards");
  if (bf16 && skinny) throw std::invalid_argument("dense_backward_weights_shards: skinny is float32 only (bf16 set)");
  require_skinny_fits(skinny, out, "dense_backward_weights_shards");
  for_each_shard(bounds, shards, [&](idx s, idx r0, idx rows) {
    float* dw = dw_parts + s * in * out;
    float* db = dbias_parts ? dbias_parts + s * out : nullptr;
    const float* ry = relu_y ? relu_y + r0 * out : nullptr;
    if (bf16)
      dense_bf16_backward(nullptr, dw, db, dy + r0 * out, x + r0 * in, nullptr, rows, in, out, ry);
    else
      dense_backward(nullptr, dw, db, dy + r0 * out, x + r0 * in, nullptr, rows, in, out, ry, skinny);
  });
}

}  // namespace cnnlite
