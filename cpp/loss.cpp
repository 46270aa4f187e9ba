#include "loss.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "activations.h"
#include "parallel.h"

namespace cnnlite {

namespace {

void require_sizes(idx n, idx k, const char* fn) {
  if (n < 1 || k < 1) {
    throw std::invalid_argument(std::string(fn) + ": need n >= 1 and k >= 1, got n=" + std::to_string(n) +
                                " k=" + std::to_string(k));
  }
}

struct RowLossTag;

// Rows per task of the per-row pass: a batch of 1000 ten-class rows makes several tasks (one block of
// rows_per_block(k) rows would leave the second thread idle).
constexpr idx kLossTaskElements = 2048;

// Sums row_loss(r) (a double) over rows [0, n). The rows are computed in parallel, each loss kept; the sum then
// runs on the calling thread in a fixed grouping: per block of rows_per_block(k) rows in row order, then the blocks
// in order. Neither depends on the thread count or on how the rows were split.
template <class RowLoss>
double sum_rows(idx n, idx k, RowLoss row_loss) {
  std::vector<double>& losses = thread_workspace<RowLossTag, std::vector<double>>();
  losses.resize(static_cast<std::size_t>(n));
  double* out = losses.data();
  parallel_for_blocks(n, std::max<idx>(1, kLossTaskElements / k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) out[r] = row_loss(r);
  });
  const idx block = rows_per_block(k);
  double total = 0.0;
  for (idx r0 = 0; r0 < n; r0 += block) {
    double s = 0.0;
    for (idx r = r0; r < std::min(n, r0 + block); ++r) s += out[r];
    total += s;
  }
  return total;
}

inline float clip_prob(float p) { return std::min(std::max(p, kProbEpsilon), 1.0f - kProbEpsilon); }

template <class Label>
double sparse_softmax_xent_impl(float* probs, float* dlogits, const float* logits, const Label* labels, idx n, idx k) {
  require_sizes(n, k, "sparse_softmax_xent");
  for (idx r = 0; r < n; ++r) {
    if (labels[r] < 0 || labels[r] >= k) {
      throw std::invalid_argument("sparse_softmax_xent: labels[" + std::to_string(r) +
                                  "] = " + std::to_string(labels[r]) + " is outside [0, " + std::to_string(k) + ")");
    }
  }
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(n));
  const double total = sum_rows(n, k, [=](idx r) {
    float* p = probs + r * k;
    float* d = dlogits + r * k;
    softmax_row(p, logits + r * k, k);
    const idx label = static_cast<idx>(labels[r]);
    for (idx j = 0; j < k; ++j) d[j] = p[j] * inv_n;
    d[label] = (p[label] - 1.0f) * inv_n;
    return -std::log(static_cast<double>(clip_prob(p[label])));
  });
  return total / static_cast<double>(n);
}

}  // namespace

double softmax_xent(float* probs, float* dlogits, const float* logits, const float* targets, idx n, idx k) {
  require_sizes(n, k, "softmax_xent");
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(n));
  const double total = sum_rows(n, k, [=](idx r) {
    float* __restrict p = probs + r * k;
    float* __restrict d = dlogits + r * k;
    const float* __restrict t = targets + r * k;
    softmax_row(p, logits + r * k, k);
    double loss = 0.0;
    for (idx j = 0; j < k; ++j) {
      d[j] = (p[j] - t[j]) * inv_n;
      if (t[j] != 0.0f) loss -= static_cast<double>(t[j]) * std::log(static_cast<double>(clip_prob(p[j])));
    }
    return loss;
  });
  return total / static_cast<double>(n);
}

double sparse_softmax_xent(float* probs, float* dlogits, const float* logits, const int32_t* labels, idx n, idx k) {
  return sparse_softmax_xent_impl(probs, dlogits, logits, labels, n, k);
}

double sparse_softmax_xent(float* probs, float* dlogits, const float* logits, const int64_t* labels, idx n, idx k) {
  return sparse_softmax_xent_impl(probs, dlogits, logits, labels, n, k);
}

double xent_forward(const float* probs, const float* targets, idx n, idx k) {
  require_sizes(n, k, "xent_forward");
  const double total = sum_rows(n, k, [=](idx r) {
    const float* p = probs + r * k;
    const float* t = targets + r * k;
    float row_sum = 0.0f;
    for (idx j = 0; j < k; ++j) row_sum += p[j];
    double loss = 0.0;
    for (idx j = 0; j < k; ++j) {
      if (t[j] != 0.0f) loss -= static_cast<double>(t[j]) * std::log(static_cast<double>(clip_prob(p[j] / row_sum)));
    }
    return loss;
  });
  return total / static_cast<double>(n);
}

void xent_backward(float* dprobs, const float* probs, const float* targets, idx n, idx k) {
  require_sizes(n, k, "xent_backward");
  const double inv_n = 1.0 / static_cast<double>(n);
  parallel_for_blocks(n, rows_per_block(k), [=](idx r0, idx r1) {
    for (idx r = r0; r < r1; ++r) {
      const float* p = probs + r * k;
      const float* t = targets + r * k;
      float* d = dprobs + r * k;
      float row_sum = 0.0f;
      for (idx j = 0; j < k; ++j) row_sum += p[j];
      // loss = -sum_j t_j log(clip(q_j)) / n with q = p / row_sum. With g_j = dloss/dq_j (0 where the clip is
      // active), dloss/dp_i = (g_i - sum_j g_j q_j) / row_sum.
      // q_j is formed in float as in the forward pass, so the clip decision matches it exactly.
      auto grad_q = [=](idx j, double& q) {
        const float qf = p[j] / row_sum;
        q = static_cast<double>(qf);
        const bool clipped = qf < kProbEpsilon || qf > 1.0f - kProbEpsilon;
        return clipped ? 0.0 : -static_cast<double>(t[j]) / q * inv_n;
      };
      double gq = 0.0, q;
      for (idx j = 0; j < k; ++j) gq += grad_q(j, q) * q;
      for (idx j = 0; j < k; ++j) d[j] = static_cast<float>((grad_q(j, q) - gq) / static_cast<double>(row_sum));
    }
  });
}

double mse_forward(const float* pred, const float* targets, idx n, idx k) {
  require_sizes(n, k, "mse_forward");
  const double total = sum_rows(n, k, [=](idx r) {
    const float* p = pred + r * k;
    const float* t = targets + r * k;
    double s = 0.0;
    for (idx j = 0; j < k; ++j) {
      const double diff = static_cast<double>(p[j]) - static_cast<double>(t[j]);
      s += diff * diff;
    }
    return s / static_cast<double>(k);
  });
  return total / static_cast<double>(n);
}

void mse_backward(float* dpred, const float* pred, const float* targets, idx n, idx k) {
  require_sizes(n, k, "mse_backward");
  const float scale = static_cast<float>(2.0 / (static_cast<double>(n) * static_cast<double>(k)));
  parallel_for_elements(n * k, [=](idx begin, idx end) {
    float* __restrict d = dpred;
    const float* __restrict p = pred;
    const float* __restrict t = targets;
    for (idx i = begin; i < end; ++i) d[i] = (p[i] - t[i]) * scale;
  });
}

}  // namespace cnnlite
